"""The broker's check of a produced batch (proto/logsvc/v1/logsvc.proto, RECORD BATCH ENCODING):
every case issue 8 lists, with both implementations of the per-record walk (the C extension
_codec and the pure-Python fallback), which must give the same verdict and the same message
for every input; and the reader's side, decode_records, which refuses the same records."""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator

import msgpack
import pytest

from logsvc.topic_config import TopicConfig
from logsvc_client.errors import CorruptBatch, InvalidBatch, InvalidConfig, InvalidRequest
from logsvc_client.records import check_timestamp
from logsvc_wire import batch as codec
from logsvc_wire import record_check, record_codec
from tests.batch_mutations import T0, Case, by_hand, cases, corpus, is_bomb, of_records, packb

CASES = cases()
FUZZ_SEED = 20_268
FUZZ_LIMIT = 1 << 20  # max_uncompressed_batch_bytes of the fuzz: a bomb costs 1 MiB of inflating, not 32


def _c_check() -> record_check.Check:
    if record_check.check_c is None:
        pytest.fail("the C extension logsvc_wire._codec was not built (pip install -e . builds it)")
    return record_check.check_c


def _c_decode() -> record_codec.Decode:
    from logsvc_wire import _codec

    return _codec.decode


@pytest.fixture(params=["c", "python"])
def implementation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run the test with the C walker, then again with the pure-Python fallback."""
    if request.param == "python":
        monkeypatch.setattr(codec, "check", record_check.check_py)
        monkeypatch.setattr(codec, "_decode", record_codec.decode_py)
    else:
        monkeypatch.setattr(codec, "check", _c_check())
        monkeypatch.setattr(codec, "_decode", _c_decode())
    yield request.param


def verdict(data: bytes, limit: int = codec.DEFAULT_MAX_UNCOMPRESSED_BYTES) -> str | None:
    try:
        codec.validate(data, limit)
    except InvalidBatch as e:
        return e.message
    return None


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_listed_case_is_refused_naming_the_record_and_field(implementation: str, case: Case) -> None:
    # Given a batch off the spec in one of the ways issue 8 lists
    _, data, match = case
    # When the broker's check runs on it
    with pytest.raises(InvalidBatch) as caught:
        codec.validate(data)
    # Then it is refused with a message saying what and where
    assert re.search(match, caught.value.message), caught.value.message


def test_a_good_batch_with_headers_tombstones_and_every_int_width_is_accepted(implementation: str) -> None:
    # Given records using every msgpack int width for the timestamp, nil keys and values, and headers
    rows = [
        [5, None, b"", None],
        [200, b"k", None, []],
        [70_000, b"k" * 300, b"v" * 70_000, [("", None), ("ä日本", b"\x00")]],
        [5_000_000_000, b"", b"v", [("trace", b"x")]],
        [record_check.MAX_TIMESTAMP_MS, None, None, None],
    ]
    for compress in ("none", "gzip", "zstd"):
        data = of_records(rows, compress=compress)
        # Then it passes, whatever its compression
        assert codec.validate(data).record_count == 5


def test_records_in_longer_msgpack_forms_than_needed_are_still_the_spec(implementation: str) -> None:
    # Given an array16 of 4 for the record, a uint64 timestamp, a bin32 key and an array32 of headers
    record = b"\xdc\x00\x04\xcf" + T0.to_bytes(8, "big") + b"\xc6\x00\x00\x00\x01k\xc0\xdd\x00\x00\x00\x00"
    data = by_hand(b"\xdc\x00\x01" + record, 1, T0, T0)
    # Then it is accepted and decodes as written
    codec.validate(data)
    (r,) = codec.decode_records("t", 0, 0, data)
    assert (r.timestamp_ms, r.key, r.value, r.headers) == (T0, b"k", None, ())


def test_the_per_record_walk_can_be_turned_off_but_the_header_crc_and_counts_are_still_checked() -> None:
    # Given a str key (refused by the walk) and a count the bytes cannot hold (refused without it)
    str_key = of_records([[T0, "k", b"v", None]])
    too_many = by_hand(b"\x93\xc0\xc0\xc0", 3, T0, T0)
    # Then records=False skips the walk but still refuses the count
    assert codec.validate(str_key, records=False).record_count == 1
    with pytest.raises(InvalidBatch, match=r"record_count 3 needs at least 16 payload bytes \(5 per record\)"):
        codec.validate(too_many, records=False)
    with pytest.raises(InvalidBatch, match="record_count 1000001 is more than 1000000"):
        codec.validate(by_hand(b"\xdd\x00\x0f\x42\x41", 1_000_001, 0, 0), records=False)


def test_a_compressed_count_the_inflate_bound_cannot_hold_is_refused_before_inflating() -> None:
    data = by_hand(b"not even zstd", 1_000_000, T0, T0, attributes=2 << 1)
    with pytest.raises(
        InvalidBatch, match="needs at least 5000001 payload bytes, more than the topic's max_uncompressed"
    ):
        codec.validate(data, max_uncompressed_bytes=1 << 20)


def test_the_c_walker_and_the_python_fallback_agree_on_every_case_and_a_fuzz_corpus() -> None:
    # Given both implementations of the per-record check
    c, py = _c_check(), record_check.check_py
    # When each checks the listed cases and 20,000 mutated batches (bit flips, truncation, counts,
    # types, bombs, header timestamps)
    batches = [case.data for case in CASES] + corpus(FUZZ_SEED, 20_000)
    disagreements = []
    for data in batches:
        verdicts = []
        for check in (c, py):
            original = codec.check
            codec.check = check
            try:
                verdicts.append(verdict(data, FUZZ_LIMIT))
            finally:
                codec.check = original
        if verdicts[0] != verdicts[1]:
            disagreements.append((data.hex(), verdicts))
    # Then they give the same verdict, word for word
    assert not disagreements, disagreements[:5]


def test_the_python_fallback_walk_and_its_fast_path_agree() -> None:
    # Given the fallback's two halves: msgpack's decoder plus a type check, and the byte walk
    for data in corpus(FUZZ_SEED + 1, 5_000):
        if len(data) <= codec.HEADER_SIZE:
            continue
        header = codec.BatchHeader(*codec.HEADER.unpack_from(data))
        if header.attributes & codec.ATTR_COMPRESSION_MASK:
            continue
        payload = data[codec.HEADER_SIZE :]
        fast = record_check.check_py(
            payload, header.record_count, header.first_timestamp_ms, header.max_timestamp_ms, True
        )
        slow = record_check.walk(payload, header.record_count, header.first_timestamp_ms, header.max_timestamp_ms, True)
        # Then the byte walk accepts exactly what the fast path accepts, with the same message otherwise
        assert fast == slow, data.hex()


def test_decoding_gives_the_same_verdict_with_either_implementation_and_never_another_error() -> None:
    # Given the corpus stored as it is (as data from before this check, or damaged data, would be)
    outcomes: dict[str, list[object]] = {"c": [], "python": []}
    for data in corpus(FUZZ_SEED, 5_000):
        if is_bomb(data):
            continue
        for impl in ("c", "python"):
            original = codec._decode
            codec._decode = record_codec.decode_py if impl == "python" else _c_decode()
            try:
                rows = codec.decode_records("t", 0, 10, data)
                outcomes[impl].append([tuple(r) for r in rows])
            except CorruptBatch as e:  # the one error a reader may see
                outcomes[impl].append(e.message)
            finally:
                codec._decode = original
    # Then both implementations decode or refuse alike
    assert outcomes["c"] == outcomes["python"]


def test_a_reader_refuses_a_stored_record_off_the_spec_naming_where_it_is(implementation: str) -> None:
    # Given a stored batch (written before the broker checked records) whose record 1 has a str key
    payload = packb([[T0, b"a", b"1", None], [T0 + 1, "b", b"2", None]])
    data = by_hand(payload, 2, T0, T0 + 1)
    # When a consumer decodes it
    with pytest.raises(CorruptBatch) as caught:
        codec.decode_records("orders", 3, 40, data)
    # Then it gets the typed error with the offset range and the record's fault, not the record
    assert caught.value.message == (
        "stored batch at offsets 40-41 of orders/3 is corrupt: record 1: key is msgpack str (0xa1); keys must be "
        "bin or nil (send text as bin: encode it to bytes)"
    )


def test_a_float_timestamp_stored_long_ago_never_reaches_the_application(implementation: str) -> None:
    payload = msgpack.packb([[1.5, b"k", b"v", None]], use_bin_type=True)
    data = codec.HEADER.pack(1, 0, 0, 1, 1, 1, zlib.crc32(payload)) + payload
    with pytest.raises(CorruptBatch, match=r"record 0: timestamp is msgpack float64 \(0xcb\)"):
        codec.decode_records("t", 0, 0, data)


def test_max_uncompressed_batch_bytes_defaults_to_four_times_max_batch_bytes_and_is_validated() -> None:
    assert TopicConfig().uncompressed_limit == 4 * TopicConfig().max_batch_bytes
    assert TopicConfig.parse({"max_batch_bytes": "65536"}).uncompressed_limit == 262_144
    assert TopicConfig.parse({"max_uncompressed_batch_bytes": "10000000"}).uncompressed_limit == 10_000_000
    with pytest.raises(
        InvalidConfig, match=r"max_uncompressed_batch_bytes=1024 must be 0 .* or between max_batch_bytes"
    ):
        TopicConfig.parse({"max_uncompressed_batch_bytes": "1024"})
    with pytest.raises(InvalidConfig, match="max_uncompressed_batch_bytes=2147483648"):
        TopicConfig.parse({"max_uncompressed_batch_bytes": str(1 << 31)})


def test_the_producer_refuses_a_timestamp_the_broker_would_refuse_before_it_joins_a_batch() -> None:
    # Given the producer's own check of one record's timestamp
    check_timestamp(record_check.MAX_TIMESTAMP_MS)
    # Then a timestamp past 9999-12-31 fails that record alone, not the batch it would have joined
    with pytest.raises(InvalidRequest, match=r"up to 253402300799999 \(9999-12-31\), not 253402300800000"):
        check_timestamp(record_check.MAX_TIMESTAMP_MS + 1)
