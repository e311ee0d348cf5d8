"""The idempotent producer's sequence rules (logsvc/storage/producers.py) over plain data: no
store, no clock but the numbers passed in."""

from __future__ import annotations

import pytest

from logsvc.storage import producers
from logsvc.storage.producers import BatchEntry, Produced, ProducerState
from logsvc_client.errors import InvalidRequest, OutOfOrderSequence, ProducerFenced, UnknownProducer

PID = 7
T0 = 1_700_000_000_000
DAY_MS = 86_400_000


def stored(batches: int, per_batch: int = 10, epoch: int = 0) -> ProducerState:
    """The state after ``batches`` batches of ``per_batch`` records from sequence 0, the i-th at
    offset 100 * i."""
    state = None
    for i in range(batches):
        produced = Produced(PID, epoch, i * per_batch)
        assert producers.decide(state, produced, per_batch, "t/0") is None
        state = producers.appended(state, produced, per_batch, (100 * i, -1), T0 + i)
    assert state is not None
    return state


@pytest.mark.parametrize("back", [1, 2, 3, 4, 5])
def test_a_retry_of_each_of_the_last_five_batches_is_a_duplicate_with_its_original_offsets(back: int) -> None:
    # Given a producer that stored eight batches of ten records on a partition
    state = stored(8)
    # When the batch `back` batches before the end is sent again
    i = 8 - back
    duplicate = producers.decide(state, Produced(PID, 0, i * 10), 10, "t/0")
    # Then it is a duplicate, answered with the offset it was stored at
    assert duplicate == BatchEntry(i * 10, i * 10 + 9, 100 * i, -1)


def test_a_retry_older_than_the_last_five_batches_is_out_of_order() -> None:
    # Given eight stored batches
    state = stored(8)
    # When the sixth from the end comes again, Then the broker no longer knows it
    with pytest.raises(OutOfOrderSequence, match="sent sequence 20 to t/0; expected 80"):
        producers.decide(state, Produced(PID, 0, 20), 10, "t/0")


def test_the_next_sequence_is_appended_and_a_gap_is_out_of_order() -> None:
    # Given three stored batches (sequences 0 to 29)
    state = stored(3)
    # Then sequence 30 is next, and a batch starting at 40 leaves records 30 to 39 missing
    assert producers.decide(state, Produced(PID, 0, 30), 10, "t/0") is None
    with pytest.raises(OutOfOrderSequence) as e:
        producers.decide(state, Produced(PID, 0, 40), 10, "t/0")
    assert e.value.details["expected"] == 30 and e.value.code == "out_of_order_sequence"


def test_a_batch_with_a_known_first_sequence_but_another_length_is_out_of_order() -> None:
    state = stored(3)
    with pytest.raises(OutOfOrderSequence):
        producers.decide(state, Produced(PID, 0, 20), 5, "t/0")


def test_an_older_epoch_is_fenced() -> None:
    # Given a producer's state at epoch 3
    state = stored(2, epoch=3)
    # When a batch of epoch 2 arrives, Then it is fenced, naming both epochs
    with pytest.raises(ProducerFenced, match="epoch 2 on t/0 is fenced: the broker holds epoch 3"):
        producers.decide(state, Produced(PID, 2, 20), 10, "t/0")


def test_a_new_epoch_starts_at_sequence_zero_and_resets_the_state() -> None:
    # Given a producer's state at epoch 0 after two batches
    state = stored(2)
    # When epoch 1 starts at sequence 0, Then it is appended and the state starts anew
    produced = Produced(PID, 1, 0)
    assert producers.decide(state, produced, 5, "t/0") is None
    after = producers.appended(state, produced, 5, (200, -1), T0 + 9)
    assert after == ProducerState(1, (BatchEntry(0, 4, 200, -1),), T0 + 9)
    # And a new epoch that does not start at 0 is out of order
    with pytest.raises(OutOfOrderSequence, match="a new epoch starts at 0"):
        producers.decide(state, Produced(PID, 1, 20), 10, "t/0")


def test_no_state_accepts_sequence_zero_only() -> None:
    assert producers.decide(None, Produced(PID, 0, 0), 3, "t/0") is None
    with pytest.raises(UnknownProducer, match="producer 7 has no state on t/0"):
        producers.decide(None, Produced(PID, 0, 30), 3, "t/0")


def test_state_expires_after_the_expiration_since_the_last_write() -> None:
    # Given a producer whose last write was at T0 + 1
    state = stored(2)
    # Then it is live one day later, and gone one ms after that
    assert producers.live(state, T0 + 1 + DAY_MS, DAY_MS) is state
    assert producers.live(state, T0 + 2 + DAY_MS, DAY_MS) is None
    # And its next batch is then refused as unknown (its sequences are forgotten)
    with pytest.raises(UnknownProducer):
        producers.decide(producers.live(state, T0 + 2 + DAY_MS, DAY_MS), Produced(PID, 0, 20), 10, "t/0")


def test_only_the_last_five_batches_are_remembered() -> None:
    state = stored(9)
    assert [e.first_seq for e in state.entries] == [40, 50, 60, 70, 80]
    assert state.next_seq == 90


def test_sequences_wrap_after_two_to_the_31() -> None:
    # Given a batch whose records take the sequences up to 2^31 - 1 and past it
    top = producers.SEQUENCE_MODULUS - 4
    state = producers.appended(None, Produced(PID, 0, top), 10, (0, -1), T0)
    # Then its last sequence wrapped, and the next batch starts at 6
    assert state.entries[-1] == BatchEntry(top, 5, 0, -1)
    assert state.next_seq == 6
    assert producers.decide(state, Produced(PID, 0, 6), 1, "t/0") is None
    assert producers.decide(state, Produced(PID, 0, top), 10, "t/0") == state.entries[-1]


def test_state_round_trips_through_its_bytes() -> None:
    state = stored(7)
    assert producers.decode(producers.encode(state)) == state
    assert producers.last_write_ms(producers.encode(state)) == state.last_write_ms


def test_request_fields_are_checked() -> None:
    assert producers.request_fields(0, 0, None, 2) == (None, None)
    assert producers.request_fields(3, 1, [0, 10], 2) == ((3, 1), [0, 10])
    with pytest.raises(InvalidRequest, match="must be 0 without a producer_id"):
        producers.request_fields(0, 0, [0, 5], 2)
    with pytest.raises(InvalidRequest, match="one base_sequence per batch"):
        producers.request_fields(3, 0, [0], 2)
    with pytest.raises(InvalidRequest, match="base_sequence 2147483648 is out of range"):
        producers.request_fields(3, 0, [1 << 31], 1)
    with pytest.raises(InvalidRequest, match="producer_epoch 40000"):
        producers.request_fields(3, 40_000, [0], 1)


def test_init_producer_bumps_the_epoch_of_an_issued_id_and_refuses_others() -> None:
    assert producers.next_identity(3, 0, next_producer_id=4) == (3, 1)
    assert producers.next_identity(3, producers.MAX_EPOCH, next_producer_id=4) is None  # a new id then
    with pytest.raises(UnknownProducer, match="producer id 4 was never issued"):
        producers.next_identity(4, 0, next_producer_id=4)
