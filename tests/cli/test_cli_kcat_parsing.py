"""The pure parts of the kcat habits: escapes, format strings, delimited input, -o values, JSON
records, Kafka's topic config names (no broker)."""

from __future__ import annotations

import io

import pytest

from logsvc.cli.escapes import unescape
from logsvc.cli.json_records import parse_json_record
from logsvc.cli.offsets import At, parse_at
from logsvc.cli.record_format import compile_format
from logsvc.cli.record_reader import RecordReader
from logsvc.cli.timespec import StartSpec, StopSpec, parse_position
from logsvc.topic_config import TopicConfig
from logsvc_client.records import Record
from logsvc_wire.errors import InvalidConfig

NOW_MS = 1_767_323_045_000


def test_escapes_decode_to_bytes() -> None:
    assert unescape("a\\tb\\n\\0\\\\\\x41\\xff:é") == b"a\tb\n\0\\A\xff:" + "é".encode()
    for bad in ("\\q", "\\", "\\x4", "\\xzz"):
        with pytest.raises(ValueError):
            unescape(bad)


def test_a_format_string_writes_records_and_refuses_unknown_codes() -> None:
    record = Record("t", 1, 7, 99, None, b"v", [("a", b"1"), ("b", b"2")])
    assert compile_format("%t %p %o %k %s %K %S %T %h %%\\n", b"NULL")(record) == b"t 1 7 NULL v -1 1 99 a=1,b=2 %\n"
    for bad in ("%x", "tail %"):
        with pytest.raises(ValueError):
            compile_format(bad, b"null")


@pytest.mark.parametrize("chunk", [1, 2, 3, 64 * 1024])
def test_records_split_only_at_the_delimiter_across_reads(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a multi-byte delimiter that reads of every size cut in two
    monkeypatch.setattr("logsvc.cli.record_reader.READ_CHUNK_BYTES", chunk)
    data = b"a\n<>b<<>><>c<"

    # When the stream (without a file descriptor) is read
    reader = RecordReader(io.BytesIO(data), b"<>")
    records = list(iter(reader.read, None))

    # Then it splits exactly at each "<>", and the whole-input mode gives one record
    assert records == [b"a\n", b"b<", b">", b"c<"]
    whole = RecordReader(io.BytesIO(b""), b"")
    assert [whole.read(), whole.read()] == [b"", None]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("beginning", StartSpec("earliest")),
        ("end", StartSpec("latest")),
        ("42", StartSpec("offset", 42)),
        ("-100", StartSpec("last", 100)),
        ("stored", StartSpec("stored")),
        ("s@1767323045000", StartSpec("time", NOW_MS)),
        ("s@-1m", StartSpec("time", NOW_MS - 60_000)),
        ("e@1767323045000", StopSpec(NOW_MS)),
        ("@-15m", StartSpec("time", NOW_MS - 900_000)),
    ],
)
def test_kcat_offset_forms_parse(text: str, expected: StartSpec | StopSpec) -> None:
    assert parse_position(text, now_ms=lambda: NOW_MS) == expected


@pytest.mark.parametrize("text", ["-", "-1x", "x@5", "s@", "e@soon", "latestt"])
def test_malformed_kcat_offsets_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_position(text, now_ms=lambda: NOW_MS)


def test_offsets_at_forms_parse() -> None:
    assert [parse_at(t, NOW_MS) for t in ("earliest", "-2", "end", "-1", "@-1s", "1000")] == [
        At("earliest"), At("earliest"), At("latest"), At("latest"), At("time", NOW_MS - 1000), At("time", 1000),
    ]  # fmt: skip


def test_json_records_parse_and_name_what_is_wrong() -> None:
    doc = parse_json_record(b'{"key": null, "value": {"base64": "/w=="}, "headers": {"h": "x"}, "topic": "ignored"}')
    assert (doc.key, doc.value, doc.headers, doc.partition, doc.timestamp_ms) == (
        None,
        b"\xff",
        [("h", b"x")],
        None,
        None,
    )
    for bad, message in [
        (b"[1]", "not a JSON object"),
        (b'{"value": 1}', '"value" must be text'),
        (b'{"value": {"base64": "!"}}', "is not base64"),
        (b'{"partition": -1}', '"partition" must be an integer >= 0'),
        (b'{"headers": [["h"]]}', '"headers" must be an object or a list'),
        (b'{"headers": {"h": null}}', "header 'h' has no value"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_json_record(bad)


def test_kafka_config_names_map_to_logsvc_names() -> None:
    config = TopicConfig.parse({"retention.ms": "1000", "message.timestamp.type": "LogAppendTime"})
    assert (config.retention_ms, config.timestamp_type) == (1000, "LogAppendTime")
    assert TopicConfig.default("retention.bytes") == "-1"
    with pytest.raises(InvalidConfig, match=r"'segment\.ms'"):
        TopicConfig.parse({"segment.ms": "1"})
    with pytest.raises(InvalidConfig, match="same key"):
        TopicConfig.parse({"retention.ms": "1", "retention_ms": "2"})
