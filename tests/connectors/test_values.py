"""Value decoding, shared by the adapters: each format read, and a bad value in a strict format
refused as a data error."""

from __future__ import annotations

import msgpack
import pytest

from logsvc_connect.sink import DataError
from logsvc_connect.values import decode_value


@pytest.mark.parametrize(
    ("value", "value_format", "doc"),
    [
        (b'{"a": 1}', "auto", {"a": 1}),
        (b' {"a": 1}', "json", {"a": 1}),
        (msgpack.packb({"a": b"\x00"}), "auto", {"a": b"\x00"}),
        (msgpack.packb({"a": 1}), "msgpack", {"a": 1}),
        (b"[1, 2]", "auto", b"[1, 2]"),
        (b"{not json", "auto", b"{not json"),
        (b"\x81\xc1", "auto", b"\x81\xc1"),
        (b'{"a": NaN}', "auto", b'{"a": NaN}'),
        (b'{"a": 1}', "raw", b'{"a": 1}'),
        (None, "json", None),
    ],
)
def test_decode_value_reads_each_format(value: bytes | None, value_format: str, doc: object) -> None:
    assert decode_value(value, value_format) == doc


@pytest.mark.parametrize(
    ("value", "value_format", "error_class"),
    [
        (b"[1, 2]", "json", "InvalidJson"),
        (b"{oops", "json", "InvalidJson"),
        (b'{"a": Infinity}', "json", "InvalidJson"),
        (b'{"a": "\xff"}', "json", "InvalidJson"),
        (msgpack.packb([1]), "msgpack", "InvalidMsgpack"),
        (b"\x81", "msgpack", "InvalidMsgpack"),
        (msgpack.packb({1: 2}), "msgpack", "InvalidMsgpack"),
    ],
)
def test_decode_value_refuses_a_bad_value_in_a_strict_format(value: bytes, value_format: str, error_class: str) -> None:
    with pytest.raises(DataError) as raised:
        decode_value(value, value_format)
    assert raised.value.error_class == error_class
