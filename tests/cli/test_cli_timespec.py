"""Parsing `--from` values and formatting values for output (pure functions, no broker)."""

from __future__ import annotations

import pytest

from logsvc.cli.output import format_table, iso_ms, json_bytes, preview
from logsvc.cli.timespec import StartSpec, parse_duration_ms, parse_position, parse_start

NOW_MS = 1_767_323_045_000  # 2026-01-02T03:04:05Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("earliest", StartSpec("earliest")),
        ("latest", StartSpec("latest")),
        ("42", StartSpec("offset", 42)),
        ("@2026-01-02T03:04:05Z", StartSpec("time", NOW_MS)),
        ("@2026-01-02T03:04:05", StartSpec("time", NOW_MS)),  # naive is UTC
        ("@2026-01-02T04:04:05+01:00", StartSpec("time", NOW_MS)),
        ("@2026-01-02T03:04:05.250Z", StartSpec("time", NOW_MS + 250)),
        ("@2026-01-02", StartSpec("time", NOW_MS - (3 * 3600 + 4 * 60 + 5) * 1000)),
        ("@1767323045000", StartSpec("time", NOW_MS)),
        ("@-30s", StartSpec("time", NOW_MS - 30_000)),
        ("@-15m", StartSpec("time", NOW_MS - 900_000)),
        ("@-2h", StartSpec("time", NOW_MS - 7_200_000)),
        ("@-1d", StartSpec("time", NOW_MS - 86_400_000)),
        ("@-1h30m", StartSpec("time", NOW_MS - 5_400_000)),
    ],
)
def test_every_documented_from_form_parses(text: str, expected: StartSpec) -> None:
    # When the value is parsed with a fixed clock
    # Then it is the expected start
    assert parse_start(text, now_ms=lambda: NOW_MS) == expected


@pytest.mark.parametrize("text", ["", "first", "-5", "@", "@-", "@-15", "@-15x", "@-m15", "@yesterday", "@2026-13-01"])
def test_malformed_from_values_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_start(text, now_ms=lambda: NOW_MS)


def test_an_offset_or_a_time_past_a_64_bit_long_is_rejected_naming_the_range() -> None:
    past = str(2**63)
    for text in (past, f"@{past}"):
        with pytest.raises(ValueError, match=f"{past}' is out of range: .* from 0 to {2**63 - 1}"):
            parse_start(text, now_ms=lambda: NOW_MS)
        with pytest.raises(ValueError, match="out of range"):
            parse_position(text, now_ms=lambda: NOW_MS)
    assert parse_start(str(2**63 - 1), now_ms=lambda: NOW_MS) == StartSpec("offset", 2**63 - 1)


def test_a_duration_cannot_have_gaps_or_trailing_garbage() -> None:
    assert parse_duration_ms("500ms") == 500
    with pytest.raises(ValueError):
        parse_duration_ms("1h 30m")


def test_bytes_are_text_when_utf8_and_base64_otherwise() -> None:
    assert json_bytes(b"caf\xc3\xa9") == "café"
    assert json_bytes(b"\xff") == {"base64": "/w=="}
    assert json_bytes(None) is None
    assert preview(b"line\nbreak") == "line\\nbreak"
    assert preview(b"\x80\x81") == "0x8081"
    assert preview(b"x" * 100, width=10) == "x" * 9 + "…"


def test_tables_align_text_left_and_numbers_right() -> None:
    assert format_table(("NAME", "N"), [("a", 5), ("long", 123)]).splitlines() == [
        "NAME    N",
        "a       5",
        "long  123",
    ]


def test_timestamps_print_as_utc_with_milliseconds() -> None:
    assert iso_ms(NOW_MS + 7) == "2026-01-02T03:04:05.007Z"
    assert iso_ms(-1) == "-"
