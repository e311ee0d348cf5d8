"""Handler connector benchmark: the runtime's own cost per record, with a handler that does nothing.

Starts its own broker (``logsvc serve`` on a temporary data directory, fsync durability) unless
given ``--server HOST:PORT``; then:

1. produces ``--records`` records with ``--value-bytes``-byte values into a new topic of
   ``--partitions`` partitions, through one Producer, and waits for every acknowledgement;
2. starts ONE connector process, ``logsvc connect python --handler bench_noop:handle --config
   FILE`` (the handler module written to a temporary directory on its PYTHONPATH), reading the
   topic from the earliest offset as a new consumer group;
3. times from the connector's start (process spawn included) until the group's committed offsets
   reach the end of every partition, polling ``Admin.committed_offsets``; then SIGTERMs it.

The connector is the only consumer of CPU besides the broker, so the rate is the runtime's
ceiling: everything a real handler does comes on top of it.

Last line: ``handler_noop_rps=N``
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from own_broker import broker

from logsvc_client import Admin, Producer

RECORD_OVERHEAD_BYTES = 20  # msgpack framing + timestamp per record, for sizing producer batches
NOOP_HANDLER = '''"""A handler that does nothing (bench/handler.py)."""


def handle(records):
    return None
'''


def produce(address: str, topic: str, args: argparse.Namespace) -> dict[int, int]:
    """Fill ``topic``; returns its end offset per partition."""
    with Admin(address) as admin:
        admin.create_topic(topic, args.partitions)
    value = os.urandom(args.value_bytes // 2 + 1).hex().encode()[: args.value_bytes]
    batch_bytes = 1_000 * (args.value_bytes + 12 + RECORD_OVERHEAD_BYTES)
    started = time.perf_counter()
    with Producer(address, linger_ms=5, max_batch_bytes=batch_bytes) as producer:
        send = producer.send
        for i in range(args.records):
            send(topic, value, b"key-%d" % i)
        producer.flush()
    print(f"produced {args.records:,} records in {time.perf_counter() - started:.2f} s", file=sys.stderr)
    with Admin(address) as admin:
        return admin.list_offsets(topic, "latest")


def run_connector(address: str, topic: str, ends: dict[int, int], args: argparse.Namespace, tmp: Path) -> float:
    """Seconds from spawning the connector until its group has committed every end offset."""
    (tmp / "bench_noop.py").write_text(NOOP_HANDLER)
    group = f"bench-handler-{uuid.uuid4().hex[:8]}"
    config = tmp / "connector.toml"
    config.write_text(
        f'name = "{group}"\nserver = "{address}"\ntopics = ["{topic}"]\n'
        + "".join(f"{key} = {value}\n" for key, value in args.set)
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "logsvc.cli", "connect", "python", "--handler", "bench_noop:handle"]
    with Admin(address) as admin:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [*cmd, "--config", str(config), "--log-level", "WARNING"], stdin=subprocess.DEVNULL, env=env
        )
        try:
            deadline = time.monotonic() + args.timeout_s
            while True:
                committed = admin.committed_offsets(group)
                if all((c := committed.get((topic, p))) is not None and c.offset >= end for p, end in ends.items()):
                    elapsed = time.perf_counter() - started
                    break
                if proc.poll() is not None:
                    raise SystemExit(f"the connector exited with {proc.returncode} before the end")
                if time.monotonic() > deadline:
                    raise SystemExit(f"the connector did not commit every record within {args.timeout_s} s")
                time.sleep(args.poll_ms / 1000)
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(30)
    if code != 0:
        raise SystemExit(f"the connector exited with {code} after SIGTERM")
    return elapsed


def run(address: str, args: argparse.Namespace) -> str:
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    ends = produce(address, topic, args)
    total = sum(ends.values())
    with tempfile.TemporaryDirectory(prefix="logsvc-bench-handler-") as tmp:
        elapsed = run_connector(address, topic, ends, args, Path(tmp))
    print(f"the connector handled and committed {total:,} records in {elapsed:.2f} s", file=sys.stderr)
    return f"handler_noop_rps={total / elapsed:.0f}"


def parse_setting(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=TOML_VALUE")
    return key.strip(), value.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", help="benchmark an already running broker at HOST:PORT")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--value-bytes", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--set",
        type=parse_setting,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a runtime key for the connector's config, as TOML (e.g. --set batch_max_records=20000)",
    )
    parser.add_argument("--poll-ms", type=float, default=10, help="how often the committed offsets are checked")
    parser.add_argument("--timeout-s", type=float, default=300)
    parser.add_argument("--durability", choices=["fsync", "os"], default="fsync", help="for the broker it starts")
    args = parser.parse_args()
    with broker(args.server, "--durability", args.durability) as address:
        print(run(address, args))


if __name__ == "__main__":
    main()
