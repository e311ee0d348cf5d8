"""How the console shows a record's bytes, and that a template escapes them."""

from __future__ import annotations

import msgpack
import pytest
from prometheus_client import generate_latest

from logsvc.console.connectors import connector_of, parse_counters
from logsvc.console.pages import templates
from logsvc.console.rendering import key_bytes, render, render_key
from logsvc_connect.metrics import ConnectorMetrics


def test_json_is_pretty_printed() -> None:
    shown = render(b'{"id":1,"items":[2,3]}')
    assert shown.kind == "json"
    assert shown.text == '{\n  "id": 1,\n  "items": [\n    2,\n    3\n  ]\n}'


def test_printable_text_is_shown_as_it_is() -> None:
    shown = render(b"<script>alert(1)</script>")
    assert (shown.kind, shown.text) == ("text", "<script>alert(1)</script>")


def test_a_msgpack_map_is_decoded() -> None:
    shown = render(msgpack.packb({"id": 7, "raw": b"\x00\x01"}))
    assert shown.kind == "msgpack"
    assert '"id": 7' in shown.text and '"raw": "0001"' in shown.text


@pytest.mark.parametrize("data", [b"\xff\x00\x81", bytes(range(0x80, 0x90)) + b"\xc1"])
def test_other_bytes_are_hex(data: bytes) -> None:
    shown = render(data)
    assert shown.kind == "hex"
    assert shown.text.startswith("00000000  " + data[:1].hex())


def test_a_null_value_and_a_cut_value() -> None:
    assert render(None).kind == "null"
    long = render(b"x" * 100, max_bytes=10)
    assert (long.kind, long.text, long.size, long.truncated) == ("text", "x" * 10, 100, True)


def test_keys_show_as_text_or_hex_and_the_filter_reads_them_back() -> None:
    assert render_key(b"customer-7") == "customer-7"
    assert render_key(b"\x00\xff") == "0x00ff"
    assert render_key(None) == "null"
    assert key_bytes("0x00ff") == b"\x00\xff"
    assert key_bytes("customer-7") == b"customer-7"


def test_the_templates_escape_a_record_value() -> None:
    # Given the console's template environment and a value holding markup
    env = templates().env
    template = env.from_string('{% from "_macros.html" import value %}{{ value(data) }}')
    # When it is rendered
    html = template.render(data=b"<script>alert(1)</script>")
    # Then the markup is text
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_connector_is_told_by_its_client_id() -> None:
    assert connector_of("logsvc-connect/postgres/orders-pg") == ("postgres", "orders-pg")
    assert connector_of("logsvc-cli") is None
    assert connector_of("logsvc-connect/postgres") is None


def test_connector_counters_are_read_from_a_connectors_metrics_page() -> None:
    # Given the page a connector serves on /metrics after writing 120 records and dead-lettering 3
    metrics = ConnectorMetrics("orders-pg", "postgres")
    metrics.records_written.inc(120)
    metrics.records_dead_lettered.inc(3)
    page = generate_latest(metrics.registry).decode()
    # Then the console reads both counters, by connector
    assert parse_counters(page) == {"orders-pg": (120.0, 3.0)}
