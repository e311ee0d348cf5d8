"""What ``logsvc mirror`` is asked to do: :class:`MirrorOptions`, checked once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from logsvc_client.errors import InvalidConfig
from logsvc_client.kafka.address import is_kafka


@dataclass(frozen=True)
class MirrorOptions:
    """What ``logsvc mirror`` was asked to do."""

    source: str
    target: str
    topics: Sequence[str]
    state_dir: Path
    groups: Sequence[str] = ()
    checkpoint_interval_ms: int = 1_000
    group_interval_ms: int = 5_000
    #: how often the mirrored topics' partitions are read from logsvc, to copy added ones
    refresh_interval_ms: int = 5_000
    progress_interval_ms: int = 10_000
    flush_timeout_ms: int = 60_000
    #: at most this many records copied per second (0: as fast as Kafka takes them)
    max_records_per_second: int = 0

    def check(self) -> None:
        """InvalidConfig for a source that is not a logsvc broker, a target that is not Kafka,
        no topics, an interval below 1 ms or a negative rate limit."""
        if is_kafka(self.source):
            raise InvalidConfig(f"--from {self.source!r} must be a logsvc broker (host:port)", key="from")
        if not is_kafka(self.target):
            raise InvalidConfig(f"--to {self.target!r} must be a Kafka cluster (kafka://host:port,...)", key="to")
        if not self.topics:
            raise InvalidConfig("name the topics to mirror (--topics a,b)", key="topics")
        intervals = ("checkpoint_interval_ms", "group_interval_ms", "refresh_interval_ms", "progress_interval_ms")
        for name in (*intervals, "flush_timeout_ms"):
            if getattr(self, name) < 1:
                raise InvalidConfig(f"{name} must be at least 1", key=name)
        if self.max_records_per_second < 0:
            raise InvalidConfig("max_records_per_second must be 0 (no limit) or more", key="max_records_per_second")
