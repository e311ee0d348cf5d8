"""The record codec's two implementations, the C extension ``logsvc_wire._codec`` and the
pure-Python fallback, over the same cases: byte-identical encodings, equal decodings, the same
verdict and message for every malformed payload (the listed cases and the fuzz corpus), and a
whole produce/consume round trip through a real broker with the fallback forced
(``LOGSVC_PURE_PYTHON=1``)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from array import array
from pathlib import Path
from typing import Any

import msgpack
import pytest

from logsvc_wire import batch as codec
from logsvc_wire import record_codec
from logsvc_wire.native import ENV_PURE_PYTHON
from logsvc_wire.partitioner import partition_for_key
from logsvc_wire.record_check import MAX_TIMESTAMP_MS
from logsvc_wire.types import Record
from tests.batch_mutations import T0, cases, corpus, is_bomb, random_record
from tests.conftest import BrokerProcess, cli_env
from tests.wide_record import WideRecord

SEED = 20_269


def _native() -> Any:
    from logsvc_wire import _codec

    return _codec


PY = {
    "append_record": record_codec.append_record_py,
    "encode_bulk": record_codec.encode_bulk_py,
    "payload": record_codec.payload_py,
    "decode": record_codec.decode_py,
}


def both(name: str) -> list[Any]:
    """The C and the Python function of that name."""
    return [getattr(_native(), name), PY[name]]


def packb(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def records(rng: random.Random, n: int) -> list[list[Any]]:
    return [random_record(rng) for _ in range(n)]


# -- encoding -----------------------------------------------------------------------------------


def test_the_c_extension_is_built_and_used() -> None:
    # Given an installed checkout; Then the codec runs in C (the fallback is tested by name here)
    assert record_codec.NATIVE
    assert record_codec.decode is _native().decode


def test_records_appended_one_at_a_time_are_exactly_msgpack_of_the_record_list() -> None:
    # Given 3,000 random records: every timestamp width, nil and empty keys and values, values
    # past 64 KiB, headers with nil, empty and non-ASCII values
    rng = random.Random(SEED)
    rows = records(rng, 3_000)
    encodings = []
    for append, make_payload in zip(both("append_record"), both("payload"), strict=True):
        # When each implementation appends them to a buffer and makes the payload of it
        buffer = bytearray()
        for ts, key, value, headers in rows:
            assert append(buffer, ts, key, value, record_codec.pack_headers(headers)) is True
        encodings.append((bytes(buffer), make_payload(buffer, len(rows))))
    # Then both wrote the same bytes, and the payload is msgpack's own encoding of the list, with
    # the first and the greatest timestamp
    assert encodings[0] == encodings[1]
    payload, first, greatest = encodings[0][1]
    assert payload == packb(rows)
    assert (first, greatest) == (rows[0][0], max(r[0] for r in rows))


@pytest.mark.parametrize("count", [1, 15, 16, 65_535, 65_536])
def test_the_payload_array_header_is_msgpacks_shortest_form(count: int) -> None:
    # Given count one-byte-ish records; When the payload is made; Then it equals msgpack's
    rows = [[T0, None, b"", None]] * count
    buffer = bytearray(b"".join(packb(r) for r in rows[:1]) * count)
    for make_payload in both("payload"):
        assert make_payload(buffer, count)[0] == packb(rows)


def test_a_key_or_value_that_is_not_bytes_is_left_to_the_caller_and_nothing_is_appended() -> None:
    for append in both("append_record"):
        buffer = bytearray(b"x")
        for key, value in [("text", b"v"), (b"k", "text"), (b"k", bytearray(b"v")), (b"k", 5)]:
            # When a record with a str, bytearray or int key/value is appended
            # Then the codec says no and the buffer is untouched
            assert append(buffer, T0, key, value, record_codec.NO_HEADERS) is False
        assert buffer == b"x"


@pytest.mark.parametrize("timestamp", [-1, MAX_TIMESTAMP_MS + 1])
def test_a_timestamp_out_of_range_is_refused_by_both(timestamp: int) -> None:
    for append in both("append_record"):
        with pytest.raises(ValueError, match="out of range"):
            append(bytearray(), timestamp, b"k", b"v", record_codec.NO_HEADERS)
    for encode in both("encode_bulk"):
        with pytest.raises(ValueError, match="out of range"):
            encode(None, [b"v"], timestamp, record_codec.NO_HEADERS, 21, 4, -1)


def bulk_cases(rng: random.Random) -> list[tuple[Any, ...]]:
    """(keys, values, headers, partitions, partition) for encode_bulk."""
    out = []
    for i in range(60):
        n = rng.choice([1, 2, 17, 300, 1_000])
        values = [rng.choice([None, b"", rng.randbytes(rng.randrange(1, 300))]) for _ in range(n)]
        key_mode = i % 4
        keys: list[bytes | None] | None
        if key_mode == 0:
            keys = None
        elif key_mode == 1:
            keys = [b"key-%d" % rng.randrange(10_000) for _ in range(n)]
        else:  # some keys None: sticky and keyed records mixed
            keys = [None if rng.random() < 0.3 else rng.randbytes(rng.randrange(0, 40)) for _ in range(n)]
        partitions = rng.choice([1, 3, 4, 7])
        partition = rng.randrange(partitions) if key_mode == 3 else -1
        headers = rng.choice([None, [("trace", b"abc"), ("ünï", b"")]])
        out.append((keys, values, headers, partitions, partition))
    return out


def test_a_send_many_call_is_encoded_and_partitioned_alike_and_as_kafka_would() -> None:
    # Given 60 calls: no keys, keys, keys mixed with None, an explicit partition; with and without headers
    for keys, values, headers, partitions, partition in bulk_cases(random.Random(SEED)):
        packed = record_codec.pack_headers(headers)
        # When both implementations encode the call
        c, py = (f(keys, values, T0, packed, 25, partitions, partition) for f in both("encode_bulk"))
        # Then their results are identical
        assert c == py
        chunks, ends, bounds, slots, ranks = c
        slot_of, rank_of = array("I", slots), array("I", ranks)
        # And each record is in the slot Kafka's partitioner gives it (the sticky slot: no key)
        for i, key in enumerate(keys or [None] * len(values)):
            expected = (
                partition if partition >= 0 else partitions if key is None else partition_for_key(key, partitions)
            )
            assert slot_of[i] == expected
        # And each slot's chunk is its records' msgpack, in call order, with their ends and bounds
        for s, chunk in enumerate(chunks):
            mine = [i for i in range(len(values)) if slot_of[i] == s]
            if not mine:
                assert chunk is None and ends[s] is None and bounds[s] is None
                continue
            assert [rank_of[i] for i in mine] == list(range(len(mine)))
            rows = [[T0, None if keys is None else keys[i], values[i], headers] for i in mine]
            assert chunk == b"".join(packb(r) for r in rows)
            assert list(array("I", ends[s])) == [
                len(b"".join(packb(r) for r in rows[: j + 1])) for j in range(len(rows))
            ]
            sizes = [25 + len(r[1] or b"") + len(r[2] or b"") for r in rows]
            assert list(array("Q", bounds[s])) == [sum(sizes[: j + 1]) for j in range(len(sizes))]


def test_a_call_holding_a_value_that_is_not_bytes_is_left_to_the_caller() -> None:
    for encode in both("encode_bulk"):
        assert encode([b"k"] * 3, [b"v", "text", b"v"], T0, record_codec.NO_HEADERS, 21, 4, -1) is None
        assert encode([b"k", 7], [b"v", b"v"], T0, record_codec.NO_HEADERS, 21, 4, -1) is None
        assert encode(None, "text", T0, record_codec.NO_HEADERS, 21, 4, -1) is None
        with pytest.raises(ValueError):
            encode([b"k"], [b"v", b"w"], T0, record_codec.NO_HEADERS, 21, 4, -1)
        with pytest.raises(ValueError):
            encode(None, [b"v"], T0, record_codec.NO_HEADERS, 21, 4, 4)


# -- decoding -----------------------------------------------------------------------------------


def decoded(decode: Any, data: bytes, base: int, skip: int, append_ts: int) -> Any:
    header = codec.read_header(data)
    payload = codec._plain(data, header)
    return decode(payload, header.record_count, Record, "orders", 3, base, skip, append_ts)


def test_good_batches_decode_alike_from_any_start_and_with_log_append_time() -> None:
    # Given 300 random good batches, some compressed
    rng = random.Random(SEED + 1)
    for _ in range(300):
        rows = records(rng, rng.choice([1, 5, 40]))
        data = codec.encode_batch(rows, compression=rng.choice(["none", "none", "gzip", "zstd"]))
        skip = rng.choice([0, 0, 1, len(rows) // 2, len(rows), len(rows) + 3, -2])
        append_ts = rng.choice([-1, -1, T0])
        # When both implementations decode them from some offset on, with or without LogAppendTime
        c, py = (decoded(f, data, 1_000, skip, append_ts) for f in both("decode"))
        # Then they give equal Record tuples: the expected fields, offsets from the first taken
        assert c == py
        start = min(max(skip, 0), len(rows))
        assert c == [
            Record(
                "orders",
                3,
                1_000 + i,
                append_ts if append_ts >= 0 else ts,
                key,
                value,
                None if headers is None else tuple(tuple(h) for h in headers),
            )
            for i, (ts, key, value, headers) in enumerate(rows)
            if i >= start
        ]
        assert all(type(r) is Record for r in c)


def test_a_wider_record_type_is_decoded_alike_with_none_in_its_other_fields() -> None:
    # Given random good batches, with headers or not
    rng = random.Random(SEED + 2)
    for _ in range(100):
        rows = records(rng, rng.choice([1, 5, 40]))
        data = codec.encode_batch(rows)
        header = codec.read_header(data)
        skip = rng.choice([0, 1, len(rows) // 2])
        # When both implementations decode them into a NamedTuple of nine fields
        c, py = (
            f(codec._plain(data, header), header.record_count, WideRecord, "orders", 3, 1_000, skip, -1)
            for f in both("decode")
        )
        # Then they agree: Record's seven fields as decoded into Record, then None, None
        assert c == py
        assert all(type(r) is WideRecord for r in c)
        assert [r[:7] for r in c] == [tuple(r) for r in decoded(record_codec.decode, data, 1_000, skip, -1)]
        assert all(r.doc is None and r.note is None for r in c)


def test_every_listed_case_and_the_fuzz_corpus_decode_or_are_refused_alike() -> None:
    # Given the malformed-batch cases issue 8 lists and 5,000 mutated batches
    batches = [case.data for case in cases()] + corpus(SEED, 5_000)
    disagreements = []
    for data in batches:
        if is_bomb(data):
            continue
        try:
            header = codec.read_header(data)
            payload = codec._plain(data, header)
        except codec.InvalidBatch:
            continue  # refused before the per-record loop, the same code for both
        outcomes = []
        for decode in both("decode"):
            # When both decode the payload as it is stored
            got = decode(payload, header.record_count, Record, "t", 0, 10, 0, -1)
            outcomes.append(got if isinstance(got, str) else [tuple(r) for r in got])
        if outcomes[0] != outcomes[1]:
            disagreements.append((data.hex(), outcomes))
    # Then each is decoded to equal records, or refused with the same message
    assert not disagreements, disagreements[:3]


# -- the whole client with the fallback ---------------------------------------------------------

ROUND_TRIP = r"""
import json, sys
from logsvc_client import Admin, Consumer, Producer
from logsvc_wire import record_codec, record_check, partitioner

address, topic = sys.argv[1], sys.argv[2]
assert record_codec.NATIVE is (sys.argv[3] == "native"), record_codec.NATIVE
with Admin(address) as admin:
    admin.create_topic(topic, 3)
with Producer(address, linger_ms=50, max_batch_bytes=4096) as producer:
    futures = list(producer.send_many(topic, [b"v%d" % i for i in range(500)], [b"k%d" % (i % 37) for i in range(500)],
                                      headers={"h": b"1"}, timestamp_ms=1_700_000_000_000))
    # records without a key to a chosen partition: the sticky one is random, and would differ
    futures += [producer.send(topic, "text-%d" % i, None if i % 3 == 0 else "k%d" % i,
                              partition=1 if i % 3 == 0 else None, timestamp_ms=1_700_000_000_001 + i)
                for i in range(300)]
    futures += list(producer.send_many(topic, [None, b"", "é"], None, partition=2, timestamp_ms=1_700_000_000_500))
    positions = [f.result(timeout=20) for f in futures]
with Consumer(address) as consumer:
    consumer.assign_topic(topic)
    consumer.seek_to_beginning()
    got = []
    while len(got) < len(positions):
        batch = consumer.poll(timeout_ms=5000)
        assert batch, len(got)
        got += batch
def hexed(data):
    return None if data is None else data.hex()
out = sorted([r.partition, r.offset, r.timestamp_ms, hexed(r.key), hexed(r.value),
              r.headers and [[name, hexed(value)] for name, value in r.headers]] for r in got)
print(json.dumps({"positions": sorted(map(list, positions)), "records": out}))
"""


def round_trip(address: str, topic: str, mode: str) -> Any:
    env = cli_env(**({ENV_PURE_PYTHON: "1"} if mode == "python" else {}))
    done = subprocess.run(
        [sys.executable, "-c", ROUND_TRIP, address, topic, mode], env=env, capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


def test_a_producer_and_consumer_on_the_fallback_store_and_read_what_the_c_codec_does(tmp_path: Path) -> None:
    # Given a real broker checking records with the fallback (LOGSVC_PURE_PYTHON=1)
    broker = BrokerProcess(tmp_path / "data", env={ENV_PURE_PYTHON: "1"}).start()
    try:
        # When the same records (send_many keyed with headers, send with str values and some keys,
        # keyless tombstones) are produced and read back with the C codec and with the fallback
        native = round_trip(broker.address, "with-c", "native")
        fallback = round_trip(broker.address, "with-python", "python")
    finally:
        broker.kill()
    # Then both placed every record on the same partition and offset, and read the same records
    assert native == fallback
    assert len(native["records"]) == 803
