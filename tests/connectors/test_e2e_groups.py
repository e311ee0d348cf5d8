"""End to end: connectors as consumer groups — replay after ``logsvc groups reset-offsets``, and
several processes with one connector name sharing the partitions. A real broker subprocess,
PostgreSQL, and MongoDB (nx-27017, or LOGSVC_TEST_MONGO_URI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from logsvc_client import Admin
from logsvc_client.records import TopicPartition
from tests.conftest import BrokerProcess
from tests.connectors.e2e import (
    Connectors,
    PostgresTarget,
    Target,
    committed,
    create_topic,
    describe_group,
    end_offsets,
    order,
    produce,
    wait_until,
)


def logsvc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "logsvc.cli", *args], capture_output=True, text=True, timeout=60, check=False
    )


def sunk_exactly_once(connectors: Connectors, pg_target: PostgresTarget, address: str, name: str, total: int) -> Path:
    """The config of an exactly-once connector ``name`` that has sunk ``total`` orders of a new
    3-partition topic "orders" into ``pg_target`` and was stopped (SIGTERM, exit 0)."""
    create_topic(address, "orders", 3)
    produce(address, "orders", (order(n) for n in range(total)))
    config = connectors.config(name, pg_target, ["orders"], {"exactly_once": True})
    process = connectors.start("postgres", config)
    wait_until("every record", pg_target.count, lambda n: n == total)
    assert process.terminate() == 0
    return config


def test_reset_offsets_to_earliest_replays_into_an_identical_table_or_collection(
    broker_process: BrokerProcess, connectors: Connectors, target: Target
) -> None:
    # Given a connector that has sunk a topic and was stopped, and what it wrote
    total = 3_000 if target.kind == "postgres" else 1_000
    name, address = f"orders-{target.kind}", broker_process.address
    create_topic(address, "orders", 3)
    produce(address, "orders", (order(n) for n in range(total)))
    config = connectors.config(name, target, ["orders"])
    process = connectors.start(target.kind, config)
    wait_until("every record", target.count, lambda n: n == total)
    assert process.terminate() == 0
    before = target.contents()
    # ... then lost: the table or collection emptied
    target.clear()

    # When the group's offsets are reset to the earliest with the CLI and the connector restarts
    reset = logsvc("groups", "reset-offsets", name, "--topic", "orders", "--to-earliest", "--execute",
                   "--server", address)  # fmt: skip
    assert reset.returncode == 0, reset.stderr
    assert "reset 3 partition(s)" in reset.stderr
    process = connectors.start(target.kind, config)

    # Then it rewrites everything, and the final contents are identical, row for row
    wait_until("the replay", target.count, lambda n: n == total)
    assert target.contents() == before
    assert process.terminate() == 0


def test_an_exactly_once_connector_replays_from_earliest_into_an_identical_table(
    broker_process: BrokerProcess, connectors: Connectors, pg_target: PostgresTarget
) -> None:
    # Given an exactly-once connector (its offsets live in PostgreSQL, with the rows) that has sunk
    # a topic and was stopped, and what it wrote, then lost
    name, address = "orders-pg", broker_process.address
    config = sunk_exactly_once(connectors, pg_target, address, name, 3_000)
    before = pg_target.contents()
    pg_target.clear()

    # When it is started with --from earliest
    process = connectors.start("postgres", config, "--from", "earliest")

    # Then it rewrites everything into identical rows, and its stored offsets end at the end again
    wait_until("the replay", pg_target.count, lambda n: n == 3_000)
    assert pg_target.contents() == before
    assert sum(pg_target.stored_offsets(name).values()) == 3_000
    assert process.terminate() == 0


def test_a_group_reset_replays_an_exactly_once_connector_too(
    broker_process: BrokerProcess, connectors: Connectors, pg_target: PostgresTarget
) -> None:
    # Given an exactly-once connector that has sunk a topic, was stopped, and whose rows were lost
    name, address = "orders-pg", broker_process.address
    config = sunk_exactly_once(connectors, pg_target, address, name, 2_000)
    before = pg_target.contents()
    pg_target.clear()

    # When its group is reset to the earliest offsets with the CLI and it is started again
    reset = subprocess.run(
        [sys.executable, "-m", "logsvc.cli", "--server", address, "groups", "reset-offsets", name,
         "--topic", "orders", "--to-earliest", "--execute"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert reset.returncode == 0, reset.stderr
    process = connectors.start("postgres", config)

    # Then the reset wins over the offsets stored with the rows: everything is written again
    wait_until("the replay", pg_target.count, lambda n: n == 2_000)
    assert pg_target.contents() == before
    assert sum(pg_target.stored_offsets(name).values()) == 2_000
    assert process.terminate() == 0


def test_an_exactly_once_connector_brings_a_group_left_behind_up_to_its_stored_offsets(
    broker_process: BrokerProcess, connectors: Connectors, pg_target: PostgresTarget
) -> None:
    # Given an exactly-once connector that has sunk a topic and was stopped, and a group whose
    # commits are behind the offsets stored with the rows (as after a kill between the two)
    name, address = "orders-pg", broker_process.address
    config = sunk_exactly_once(connectors, pg_target, address, name, 1_500)
    with Admin(address) as admin:
        admin.commit_offsets(name, {TopicPartition("orders", p): 0 for p in range(3)})

    # When it is started again, with nothing new to write
    process = connectors.start("postgres", config)

    # Then the group's commits catch up with the stored offsets (its lag is 0), and nothing is
    # written again
    ends = {TopicPartition("orders", p): o for p, o in end_offsets(address, "orders").items()}
    wait_until("the group's commits", lambda: committed(address, name), lambda c: c == ends)
    assert pg_target.count() == 1_500
    assert process.terminate() == 0


def test_processes_with_one_connector_name_share_the_partitions_and_take_over_from_each_other(
    broker_process: BrokerProcess, connectors: Connectors, pg_target: PostgresTarget
) -> None:
    # Given two processes of one connector (one consumer group) on a topic of 6 partitions
    name, address = "orders-pg", broker_process.address
    create_topic(address, "orders", 6)
    config = connectors.config(name, pg_target, ["orders"], metrics_port=0)
    first, second = connectors.start("postgres", config), connectors.start("postgres", config)
    group = wait_until(
        "two members with three partitions each",
        lambda: describe_group(address, name),
        lambda g: g is not None and g.state == "Stable" and sorted(len(m.assignment) for m in g.members) == [3, 3],
    )
    assert group is not None
    owned = [tp for m in group.members for tp in m.assignment]
    assert sorted(tp.partition for tp in owned) == list(range(6))

    # When orders arrive
    produce(address, "orders", (order(n) for n in range(20_000)))

    # Then both processes write, and every record is in the table once
    wait_until("every record", pg_target.count, lambda n: n == 20_000)
    assert len(set(pg_target.origins())) == 20_000
    written = [first.counter("records_written"), second.counter("records_written")]
    assert all(n > 0 for n in written), written
    assert sum(written) >= 20_000

    # When one process stops, the other takes its partitions over and writes what comes next
    assert first.terminate() == 0
    wait_until(
        "one member with every partition",
        lambda: describe_group(address, name),
        lambda g: g is not None and len(g.members) == 1 and len(g.members[0].assignment) == 6,
    )
    produce(address, "orders", (order(n) for n in range(20_000, 22_000)))
    wait_until("the records after the takeover", pg_target.count, lambda n: n == 22_000)
    assert second.terminate() == 0
