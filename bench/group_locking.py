"""Consumer-group coordinator costs in isolation, no broker: one big group and small ones.

1. ``join``: the time of a new member's join into a group that already has ``--members`` members
   (the coordinator's own work: expiry scan, assignor, hand-over), median and max of ``--joins``.
2. ``small``: while one thread keeps joining and leaving the big group, another joins and
   heartbeats a small group every ``--pace-ms``; the latency of each of those calls shows whether
   a busy group holds the others up (with one lock for all groups a call waits for the big
   group's join or leave in progress; with a lock per group it only shares the GIL, whose switch
   interval is 5 ms).

Run it against another checkout with ``PYTHONPATH=OTHER/clients:OTHER python bench/group_locking.py``.
Last line: ``members=N join_ms_median=X join_ms_max=X small_ms_median=X small_ms_p99=X small_ms_max=X``
"""

from __future__ import annotations

import argparse
import inspect
import itertools
import statistics
import threading
import time

from logsvc.groups import Coordinator

TOPICS = {"big": 64, "small": 4}


def ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=4_000)
    parser.add_argument("--joins", type=int, default=50)
    parser.add_argument("--small-ops", type=int, default=300)
    parser.add_argument("--pace-ms", type=float, default=5.0)
    args = parser.parse_args()
    options = {}
    if "max_members_per_group" in inspect.signature(Coordinator).parameters:  # checkouts before issue 9 have no cap
        options["max_members_per_group"] = args.members + 10
    coordinator = Coordinator(TOPICS.get, **options)
    session_ms = 300_000
    for _ in range(args.members):
        coordinator.join("big", topics={"big"}, now_ms=0, session_timeout_ms=session_ms)

    joins = []
    for i in range(args.joins):
        start = time.perf_counter()
        joined = coordinator.join("big", topics={"big"}, now_ms=i, session_timeout_ms=session_ms)
        joins.append(ms_since(start))
        coordinator.leave("big", joined.member_id, i)

    stop = threading.Event()

    def churn_big_group() -> None:
        for i in itertools.count():
            if stop.is_set():
                return
            joined = coordinator.join("big", topics={"big"}, now_ms=1_000 + i, session_timeout_ms=session_ms)
            coordinator.leave("big", joined.member_id, 1_000 + i)

    churn = threading.Thread(target=churn_big_group, daemon=True)
    churn.start()
    small = []
    try:
        for i in range(args.small_ops):
            start = time.perf_counter()
            joined = coordinator.join(f"small-{i}", topics={"small"}, now_ms=1_000)
            coordinator.heartbeat(f"small-{i}", joined.member_id, joined.generation, joined.assignment, 1_001)
            small.append(ms_since(start) / 2)
            time.sleep(args.pace_ms / 1000)
    finally:
        stop.set()
        churn.join()
    small.sort()
    print(
        f"members={args.members} join_ms_median={statistics.median(joins):.1f} join_ms_max={max(joins):.1f} "
        f"small_ms_median={statistics.median(small):.2f} small_ms_p99={small[int(len(small) * 0.99)]:.2f} "
        f"small_ms_max={small[-1]:.2f}"
    )


if __name__ == "__main__":
    main()
