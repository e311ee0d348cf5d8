"""Where the inspect commands read from: a running broker (``--server``) or a data directory.

``partitions describe`` and ``partitions dump`` work on either. A data directory is opened
read-only (``LmdbStore.open(dir, readonly=True)``), so it can be inspected while a broker has it
open, or when no broker can start. Both sources give the same :class:`TopicDescription` and the same raw
``(base_offset, batch bytes)`` pairs, so the commands print identically.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator

from logsvc_client import Admin, PartitionInfo, TopicDescription
from logsvc_client.consumer.record_buffer import stored_count
from logsvc_client.errors import OffsetOutOfRange

READ_MAX_BYTES = 4 * 1024 * 1024


def out_of_range(topic: str, partition: int, offset: int, log_start: int, next_offset: int) -> OffsetOutOfRange:
    """The error for an offset outside ``[log_start, next_offset]``, naming both bounds."""
    return OffsetOutOfRange(
        f"offset {offset} is out of range for {topic}/{partition}: "
        f"the log start offset is {log_start} and the next offset {next_offset}",
        log_start_offset=log_start,
        next_offset=next_offset,
    )


class Source(abc.ABC):
    """Topic descriptions and raw record batches, from a broker or from a data directory."""

    @abc.abstractmethod
    def describe(self, topic: str) -> TopicDescription: ...

    @abc.abstractmethod
    def read(self, topic: str, partition: int, offset: int) -> tuple[int, int, list[tuple[int, bytes]]]:
        """``(log_start_offset, next_offset, [(base_offset, batch), ...])`` from ``offset`` on."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def batches(self, topic: str, partition: int, offset: int, end_offset: int) -> Iterator[tuple[int, bytes]]:
        """Every stored batch holding an offset in ``[offset, end_offset)``, in offset order."""
        while offset < end_offset:
            _, next_offset, got = self.read(topic, partition, offset)
            if not got:
                return
            for base, data in got:
                if base >= end_offset:
                    return
                yield base, data
                offset = max(offset, base + stored_count(data))  # as the broker counts, even a bad header
            end_offset = min(end_offset, next_offset)

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ServerSource(Source):
    """A broker, over one channel: :attr:`admin`, for the raw reads (:meth:`Admin.read_batches`)
    and the command's other calls."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.admin = Admin(address)

    def __enter__(self) -> ServerSource:
        return self

    def describe(self, topic: str) -> TopicDescription:
        return self.admin.describe_topic(topic)

    def read(self, topic: str, partition: int, offset: int) -> tuple[int, int, list[tuple[int, bytes]]]:
        got = self.admin.read_batches(topic, partition, offset, READ_MAX_BYTES)
        return got.log_start_offset, got.next_offset, [(base, bytes(data)) for base, data in got.batches]

    def close(self) -> None:
        self.admin.close()


class DataDirSource(Source):
    def __init__(self, data_dir: str) -> None:
        from logsvc.storage.lmdb_store import LmdbStore

        self._store = LmdbStore.open(data_dir, readonly=True)

    def describe(self, topic: str) -> TopicDescription:
        meta = self._store.topic(topic)
        return TopicDescription(
            meta.name,
            meta.topic_id,
            meta.config.as_strings(),
            meta.created_ms,
            [
                PartitionInfo(
                    st.partition,
                    st.log_start_offset,
                    st.next_offset,
                    st.record_count,
                    st.bytes,
                    st.first_timestamp_ms,
                    st.last_timestamp_ms,
                )
                for st in self._store.partition_states(topic)
            ],
        )

    def read(self, topic: str, partition: int, offset: int) -> tuple[int, int, list[tuple[int, bytes]]]:
        got = self._store.read(topic, partition, offset, READ_MAX_BYTES)
        return got.log_start_offset, got.next_offset, [(base, bytes(data)) for base, data in got.batches]

    def close(self) -> None:
        self._store.close()


def open_source(data_dir: str | None, address: str | None) -> Source:
    """A data-directory source when ``data_dir`` is given, else the broker at ``address``."""
    if data_dir is not None:
        return DataDirSource(data_dir)
    assert address is not None
    return ServerSource(address)
