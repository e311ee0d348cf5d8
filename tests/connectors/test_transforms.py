"""Filters and field transforms: :class:`Transforms` over SinkRecords, then end to end through a
handler connector on a real broker (skips counted in /metrics and committed past, a raising
filter dead-lettering one record) and ``logsvc connect python`` refusing a bad filter at start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import msgpack
import pytest

from logsvc.server.app import Broker
from logsvc_client import Admin, Producer
from logsvc_client.errors import InvalidConfig
from logsvc_connect.config import RuntimeConfig
from logsvc_connect.handler import HandlerConnector
from logsvc_connect.sink import SinkRecord
from logsvc_connect.transforms import Transforms
from logsvc_connect.values import decode_value
from tests.connectors.e2e import caught_up, read_topic, wait_until

HERE = "tests.connectors.test_transforms"


def record(
    offset: int,
    value: Any,
    key: bytes | None = None,
    headers: tuple[tuple[str, bytes], ...] | None = None,
    *,
    decoded: bool = True,
) -> SinkRecord:
    """A record as the runtime hands it over: ``value`` a dict (sent as JSON), bytes or None;
    ``doc`` decoded as for the database sinks, or None as for a handler sink."""
    raw = json.dumps(value).encode() if isinstance(value, dict) else value
    doc = decode_value(raw, "auto") if decoded else None
    return SinkRecord("orders", 0, offset, 1_700_000_000_000 + offset, key, raw, headers, doc)


# Filters, imported by path ("tests.connectors.test_transforms:<name>") as a config names them.


def skip_odd(r: SinkRecord) -> SinkRecord | None:
    return None if r.decoded["n"] % 2 else r  # type: ignore[index]


def raise_on_13(r: SinkRecord) -> SinkRecord | None:
    if r.decoded["n"] == 13:  # type: ignore[index]
        raise KeyError("no route for 13")
    return r


def add_region_to_value(r: SinkRecord) -> SinkRecord:
    doc = json.loads(r.value or b"{}")
    return r._replace(value=json.dumps({**doc, "region": "eu"}).encode())


def value_to_array(r: SinkRecord) -> SinkRecord:
    return r._replace(value=b"[1]")


def add_region_to_doc(r: SinkRecord) -> SinkRecord:
    return r._replace(doc={**r.doc, "region": "eu"})  # type: ignore[dict-item]


def return_a_dict_for_13(r: SinkRecord) -> Any:
    return dict(r.decoded) if r.decoded["n"] == 13 else r  # type: ignore[arg-type, index]


def two_arguments(r: SinkRecord, extra: object) -> SinkRecord:
    return r


def apply(transforms: Transforms, *records: SinkRecord) -> tuple[list[SinkRecord], list[Any], int]:
    kept, failed, skipped = transforms.apply(list(records))
    return kept, [(r.offset, e.error_class, e.message) for r, e in failed], skipped


# -- field transforms -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "doc"),
    [
        ({"keep_fields": ["id", "qty"]}, {"id": 1, "qty": 2}),
        ({"drop_fields": ["secret"]}, {"id": 1, "qty": 2, "price": 9.5}),
        ({"keep_fields": ["id", "secret"], "drop_fields": ["secret"]}, {"id": 1}),
        ({"rename_fields": {"qty": "quantity"}}, {"id": 1, "price": 9.5, "secret": "s", "quantity": 2}),
        ({"rename_fields": {"id": "price", "price": "id"}}, {"qty": 2, "secret": "s", "price": 1, "id": 9.5}),
        ({"keep_fields": ["id"], "rename_fields": {"id": "order_id", "qty": "q"}}, {"order_id": 1}),
    ],
    ids=["keep", "drop", "keep-then-drop", "rename", "rename-swaps", "keep-then-rename"],
)
def test_keep_drop_and_rename_change_the_top_level_fields_and_the_value_bytes(
    options: dict[str, Any], doc: dict[str, Any]
) -> None:
    # Given a decoded JSON object
    original = record(0, {"id": 1, "qty": 2, "price": 9.5, "secret": "s"})

    # When the transforms apply
    [out], failed, skipped = apply(Transforms(**options), original)

    # Then the document has the expected fields, the value is the same document as compact JSON,
    # and the original record's document is untouched
    assert (failed, skipped) == ([], 0)
    assert out.doc == doc and list(out.doc) == list(doc)
    assert json.loads(out.value or b"") == doc
    assert b" " not in (out.value or b"")
    assert original.doc == {"id": 1, "qty": 2, "price": 9.5, "secret": "s"}


def test_header_fields_and_key_field_copy_text_and_base64_for_bytes_that_are_not_utf8() -> None:
    # Given a record with a text header, a binary header, an unrelated header and a key
    headers = (("trace-id", b"abc-123"), ("sig", b"\xff\x00"), ("other", b"x"))
    original = record(0, {"id": 1}, key=b"customer-7", headers=headers)

    # When header_fields and key_field apply
    transforms = Transforms(header_fields={"trace-id": "trace", "sig": "signature"}, key_field="customer")
    [out], _, _ = apply(transforms, original)

    # Then the named headers and the key are fields of the value
    assert out.doc == {"id": 1, "trace": "abc-123", "signature": "/wA=", "customer": "customer-7"}
    assert json.loads(out.value or b"") == out.doc


def test_a_msgpack_map_is_transformed_and_re_encoded_as_json() -> None:
    # Given a msgpack map value
    original = record(0, msgpack.packb({"id": 1, "secret": "s"}))

    # When a drop applies
    [out], _, _ = apply(Transforms(drop_fields=["secret"]), original)

    # Then the value is the transformed document as JSON
    assert out.doc == {"id": 1} and out.value == b'{"id":1}'


def test_values_that_are_not_objects_and_tombstones_pass_unchanged() -> None:
    # Given a raw value, a JSON array and a tombstone
    records = [record(0, b"plain text"), record(1, b"[1, 2]"), record(2, None, key=b"k")]

    # When field transforms apply
    kept, failed, skipped = apply(Transforms(keep_fields=["id"], key_field="key"), *records)

    # Then they come out as they went in
    assert kept == records and failed == [] and skipped == 0


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"rename_fields": {"a": ""}}, "rename_fields"),
        ({"header_fields": {"trace": 3}}, "header_fields"),
        ({"filter": "tests.connectors.no_such_module:f"}, "filter"),
        ({"filter": f"{HERE}:no_such_function"}, "filter"),
        ({"filter": f"{HERE}:two_arguments"}, "filter"),
        ({"filter": "no_colon"}, "filter"),
    ],
)
def test_bad_transform_options_are_a_configuration_error_naming_the_key(options: dict[str, Any], key: str) -> None:
    # When transforms are built from a bad option, Then InvalidConfig names the key
    with pytest.raises(InvalidConfig) as raised:
        Transforms(**options)
    assert raised.value.details["key"] == key


# -- filters --------------------------------------------------------------------------------------------


def test_a_filter_returning_none_skips_the_record_and_counts_it() -> None:
    # Given records 0..9 and a filter that skips odd numbers
    records = [record(n, {"n": n}) for n in range(10)]

    # When it applies
    kept, failed, skipped = apply(Transforms(filter=f"{HERE}:skip_odd"), *records)

    # Then the even ones are kept, unchanged, and five were skipped
    assert kept == records[::2] and failed == [] and skipped == 5


@pytest.mark.parametrize("decoded", [True, False], ids=["database-sink", "handler-sink"])
def test_a_filter_that_changes_the_value_gets_a_document_that_agrees_with_it(decoded: bool) -> None:
    # Given a record decoded (as for a database sink) or not (as for a handler)
    original = record(0, {"n": 1}, decoded=decoded)

    # When a filter replaces its value
    [out], _, _ = apply(Transforms(filter=f"{HERE}:add_region_to_value"), original)

    # Then the document is the new value's, decoded now or on access
    assert json.loads(out.value or b"") == {"n": 1, "region": "eu"}
    assert out.doc == ({"n": 1, "region": "eu"} if decoded else None)
    assert out.decoded == {"n": 1, "region": "eu"}


def test_a_filter_that_changes_the_document_gets_a_value_that_agrees_with_it() -> None:
    # When a filter replaces a decoded record's document only
    [out], _, _ = apply(Transforms(filter=f"{HERE}:add_region_to_doc"), record(0, {"n": 1}))

    # Then the value is the new document as JSON
    assert out.value == b'{"n":1,"region":"eu"}'


def test_a_changed_value_that_does_not_decode_in_a_strict_format_fails_that_record() -> None:
    # Given value_format json and a filter that turns the value into a JSON array
    transforms = Transforms(filter=f"{HERE}:value_to_array", value_format="json")

    # When it applies, Then the record fails as invalid JSON for the sink
    kept, failed, _ = apply(transforms, record(0, {"n": 1}))
    assert kept == [] and [(offset, cls) for offset, cls, _ in failed] == [(0, "InvalidJson")]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("raise_on_13", "filter raised KeyError: 'no route for 13'"),
        ("return_a_dict_for_13", "filter returned a dict, not a record or None"),
    ],
)
def test_a_filter_that_raises_or_returns_something_else_fails_only_that_record(name: str, message: str) -> None:
    # Given records 12..14
    records = [record(n, {"n": n}) for n in (12, 13, 14)]

    # When a filter raises for 13 (or returns a dict)
    kept, failed, _ = apply(Transforms(filter=f"{HERE}:{name}"), *records)

    # Then that record is a FilterError; the others pass
    assert failed == [(13, "FilterError", message)]
    assert kept == [records[0], records[2]]


def test_the_filter_runs_before_the_field_transforms() -> None:
    # Given a filter that adds a field, and transforms that keep and rename it
    transforms = Transforms(filter=f"{HERE}:add_region_to_value", keep_fields=["region"], rename_fields={"region": "r"})

    # When they apply, Then the field the filter added went through the transforms
    [out], _, _ = apply(transforms, record(0, {"n": 1}))
    assert out.doc == {"r": "eu"} and out.value == b'{"r":"eu"}'


# -- end to end through a handler connector ---------------------------------------------------------------


@pytest.fixture
def topic(broker: Broker) -> str:
    name = f"orders-{uuid.uuid4().hex[:8]}"
    with Admin(broker.address) as admin:
        admin.create_topic(name, 2)
    return name


def produce(address: str, topic: str, docs: list[dict[str, Any]], headers: Any = None) -> None:
    with Producer(address, linger_ms=5) as producer:
        for doc in docs:
            producer.send(topic, json.dumps(doc).encode(), str(doc["n"]).encode(), headers=headers)
        producer.flush()


def group_lag(address: str, group: str) -> list[int]:
    with Admin(address) as admin:
        return [p.lag for p in admin.describe_group(group).partitions]


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    [value] = [line.rsplit(" ", 1)[1] for line in text.splitlines() if line.startswith(name + "{")]
    return float(value)


def connector_config(address: str, topic: str, name: str, **options: Any) -> RuntimeConfig:
    return RuntimeConfig(name=name, server=address, topics=(topic,), linger_ms=20, **options)


def test_skipped_records_are_counted_in_metrics_and_committed_past(broker: Broker, topic: str) -> None:
    # Given 100 records and a connector whose filter skips the odd ones, with /metrics on
    produce(broker.address, topic, [{"n": n} for n in range(100)])
    handled: list[int] = []
    config = connector_config(broker.address, topic, "evens", filter=f"{HERE}:skip_odd", metrics_port=0)

    # When it runs until the group has caught up
    with HandlerConnector(lambda records: handled.extend(r.decoded["n"] for r in records), config) as connector:
        wait_until("the group to catch up", lambda: caught_up(broker.address, "evens", topic), bool)
        assert connector.metrics_port is not None
        skipped = metric(connector.metrics_port, "logsvc_connect_records_skipped_total")
        written = metric(connector.metrics_port, "logsvc_connect_records_written_total")

    # Then the handler saw the even ones, /metrics counts 50 skipped, and the group has no lag
    assert sorted(handled) == list(range(0, 100, 2))
    assert (skipped, written) == (50, 50)
    assert group_lag(broker.address, "evens") == [0, 0]


def test_a_filter_that_raises_dead_letters_that_record_and_the_partition_goes_on(broker: Broker) -> None:
    # Given one partition holding records 0..29 and a filter that raises on 13
    name = f"one-{uuid.uuid4().hex[:8]}"
    with Admin(broker.address) as admin:
        admin.create_topic(name, 1)
    produce(broker.address, name, [{"n": n} for n in range(30)])
    handled: list[int] = []
    config = connector_config(broker.address, name, "routes", filter=f"{HERE}:raise_on_13", batch_max_records=10)

    # When the connector runs until the group has caught up
    with HandlerConnector(lambda records: handled.extend(r.decoded["n"] for r in records), config):
        wait_until("the group to catch up", lambda: caught_up(broker.address, "routes", name), bool)

    # Then 13 is in the dead-letter topic with the filter's error, and every later record was handled
    assert handled == [n for n in range(30) if n != 13]
    [dead] = read_topic(broker.address, "routes.dlq")
    headers = dict(dead.headers or ())
    assert json.loads(dead.value or b"") == {"n": 13}
    assert headers["dlq.error.class"] == b"FilterError"
    assert headers["dlq.error.message"] == b"filter raised KeyError: 'no route for 13'"


def test_a_filter_and_field_transforms_shape_what_the_handler_receives(broker: Broker, topic: str) -> None:
    # Given records with a trace header, and a connector whose filter adds a field, keeping three
    # fields, renaming one, and copying the header and the key into fields
    produce(broker.address, topic, [{"n": n, "secret": "s", "qty": n * 2} for n in range(20)], {"trace": "t-1"})
    received: list[SinkRecord] = []
    config = connector_config(
        broker.address, topic, "shaped", filter=f"{HERE}:add_region_to_value", keep_fields=("n", "qty", "region"),
        rename_fields={"qty": "quantity"}, header_fields={"trace": "trace_id"}, key_field="key",
    )  # fmt: skip

    # When it runs until the group has caught up
    with HandlerConnector(received.extend, config):
        wait_until("the group to catch up", lambda: caught_up(broker.address, "shaped", topic), bool)

    # Then the handler got the shaped documents, as dicts and as the value's JSON
    by_n = {r.decoded["n"]: r for r in received}  # type: ignore[index]
    assert sorted(by_n) == list(range(20))
    expected = {"n": 7, "region": "eu", "quantity": 14, "trace_id": "t-1", "key": "7"}
    assert by_n[7].decoded == expected
    assert json.loads(by_n[7].value or b"") == expected


@pytest.mark.parametrize(
    ("filter_path", "message"),
    [
        ("no_such_filters:keep", "error: filter 'no_such_filters:keep' does not import"),
        (f"{HERE}:two_arguments", f"error: filter '{HERE}:two_arguments' must take one argument"),
    ],
)
def test_a_bad_filter_path_is_one_error_line_at_start_up(tmp_path: Path, filter_path: str, message: str) -> None:
    # Given a valid handler and a config naming a filter that does not import (or takes two arguments)
    (tmp_path / "noop_handlers.py").write_text("def handle(records):\n    pass\n")
    config = tmp_path / "connector.toml"
    config.write_text(f'name = "bad"\nserver = "127.0.0.1:1"\ntopics = ["orders"]\nfilter = "{filter_path}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGSVC_")}
    root = Path(__file__).resolve().parents[2]
    env.update(PYTHONWARNINGS="error", PYTHONPATH=os.pathsep.join([str(tmp_path), str(root)]))

    # When the connector starts
    cmd = [sys.executable, "-m", "logsvc.cli", "connect", "python", "--handler", "noop_handlers:handle"]
    done = subprocess.run([*cmd, "--config", str(config)], capture_output=True, text=True, env=env, timeout=30)

    # Then it exits non-zero with one error line naming the filter
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(message), done.stderr
    assert "Traceback" not in done.stderr
