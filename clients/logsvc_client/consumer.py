"""Consumer: read records from assigned partitions, from any offset or time (no groups).

Assign partitions (or a whole topic), optionally seek, then :meth:`Consumer.poll` or iterate.
Partitions never positioned start at the earliest offset (the latest with
``auto_offset_reset="latest"``). When a position falls outside the log (trimmed away, or past the
end) the consumer moves it to the earliest or latest offset by ``auto_offset_reset``, or raises
:class:`~logsvc_client.errors.OffsetOutOfRange` under ``"none"``.

The fetch loop lives in :class:`~logsvc_client.fetcher.Fetcher`, so a group consumer reuses it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from . import channel
from ._proto import logsvc_pb2 as pb
from ._proto import logsvc_pb2_grpc as pb_grpc
from .errors import FailedPrecondition, InvalidConfig
from .fetcher import Fetcher, OffsetReset
from .records import Record, TopicPartition


class Consumer:
    """Reads assigned partitions in offset order (per partition); see the module docstring.

    ``max_poll_records`` bounds one poll; ``fetch_max_bytes`` one Fetch response;
    ``fetch_max_wait_ms`` how long the broker holds a Fetch open when there is no new data.
    ``check_crcs`` verifies each batch's CRC32 before decoding it. ``prefetch`` starts the next
    Fetch as soon as a poll returns, so the broker reads while the application works.
    """

    def __init__(
        self,
        address: str,
        *,
        max_poll_records: int = 10_000,
        fetch_max_bytes: int = 16 * 1024 * 1024,
        fetch_max_wait_ms: int = 500,
        check_crcs: bool = True,
        auto_offset_reset: OffsetReset = "earliest",
        prefetch: bool = True,
        request_timeout_ms: int = 30_000,
        retries: int = 5,
        retry_backoff_ms: int = 100,
    ) -> None:
        for name, value, minimum in (
            ("max_poll_records", max_poll_records, 1),
            ("fetch_max_bytes", fetch_max_bytes, 1),
            ("fetch_max_wait_ms", fetch_max_wait_ms, 0),
            ("request_timeout_ms", request_timeout_ms, 1),
            ("retries", retries, 0),
            ("retry_backoff_ms", retry_backoff_ms, 0),
        ):
            if not isinstance(value, int) or value < minimum:
                raise InvalidConfig(f"consumer option {name}={value!r} must be an int >= {minimum}", key=name)
        if fetch_max_bytes > channel.MAX_MESSAGE_BYTES:
            raise InvalidConfig(
                f"fetch_max_bytes={fetch_max_bytes} is above the channel's {channel.MAX_MESSAGE_BYTES}",
                key="fetch_max_bytes",
            )
        self.address = address
        self._channel = channel.connect(address)
        self._stub = pb_grpc.BrokerStub(self._channel)
        self._retry = channel.RetryPolicy(
            retries=retries, backoff=channel.Backoff(base_ms=retry_backoff_ms), timeout_ms=request_timeout_ms
        )
        self._fetcher = Fetcher(
            self._stub,
            max_poll_records=max_poll_records,
            fetch_max_bytes=fetch_max_bytes,
            fetch_max_wait_ms=fetch_max_wait_ms,
            check_crcs=check_crcs,
            auto_offset_reset=auto_offset_reset,
            prefetch=prefetch,
            retry=self._retry,
        )
        self._closed = False

    # -- assignment -----------------------------------------------------------------------------

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        """Read exactly these partitions (replacing the assignment); positions of kept ones stay."""
        self._fetcher.assign(partitions)

    def assign_topic(self, topic: str) -> list[TopicPartition]:
        """Assign every partition of ``topic`` (replacing the assignment); TopicNotFound."""
        description = channel.call_with_retry(
            self._stub.DescribeTopic, pb.DescribeTopicRequest(name=topic), self._retry
        )
        tps = [TopicPartition(topic, p.partition) for p in sorted(description.partitions, key=lambda p: p.partition)]
        self._fetcher.assign(tps)
        return tps

    def assignment(self) -> list[TopicPartition]:
        return self._fetcher.assignment()

    # -- positions ------------------------------------------------------------------------------

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """The next poll returns ``tp``'s records from ``offset`` on."""
        self._fetcher.seek(TopicPartition(*tp), offset)

    def seek_to_beginning(self, tps: Iterable[TopicPartition] | None = None) -> None:
        """Move partitions (default: all assigned) to their log start offsets."""
        self._fetcher.seek_to("earliest", tps)

    def seek_to_end(self, tps: Iterable[TopicPartition] | None = None) -> None:
        """Move partitions (default: all assigned) past their last records."""
        self._fetcher.seek_to("latest", tps)

    def seek_to_time(self, timestamp_ms: int, tps: Iterable[TopicPartition] | None = None) -> None:
        """Move partitions to the first record with a timestamp at or after ``timestamp_ms``
        (past the last record when there is none)."""
        self._fetcher.seek_to("timestamp", tps, timestamp_ms)

    def position(self, tp: TopicPartition) -> int:
        """The offset of the next record poll returns for ``tp``."""
        return self._fetcher.position(TopicPartition(*tp))

    # -- reading --------------------------------------------------------------------------------

    def poll(self, timeout_ms: float = 1_000, max_records: int | None = None) -> list[Record]:
        """Records from the assigned partitions, in offset order per partition, waiting up to
        ``timeout_ms`` for the first; an empty list when none arrived. Returns at most
        ``max_records`` (default ``max_poll_records``)."""
        if self._closed:
            raise FailedPrecondition("the consumer is closed")
        if not self._fetcher.assignment():
            raise FailedPrecondition("no partitions are assigned: call assign() or assign_topic() first")
        return self._fetcher.fetch(timeout_ms / 1000, max_records)

    def __iter__(self) -> Iterator[Record]:
        """Every record, forever (until the consumer is closed)."""
        while not self._closed:
            yield from self.poll(timeout_ms=1_000)

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._fetcher.close()
            self._channel.close()

    def __enter__(self) -> Consumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
