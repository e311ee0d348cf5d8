"""Consumer groups moved along with their topics: logsvc committed offsets as Kafka offsets.

For each group named with ``--groups``, :class:`GroupTranslator` reads the group's committed
offsets on logsvc, maps each through the partition's :class:`~.offset_map.PartitionMap` and
commits the result to the group of the same name on Kafka, so a consumer or connector restarted
against Kafka resumes at the record it would have read next on logsvc. It runs again as the copy
advances; a partition is translated only once the record at its committed offset has been copied
(before that there is no Kafka offset to give it).

It never writes over a Kafka consumer: nothing is committed while the Kafka group has members,
and a partition whose Kafka offset was committed by someone else than the mirror is left alone
from then on (one log line says so). Which offsets were the mirror's is kept in the checkpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

from logsvc_client import Admin
from logsvc_client.errors import GroupNotFound, LogsvcError
from logsvc_client.records import TopicPartition

from .offset_map import PartitionMap
from .target import KafkaTarget

log = logging.getLogger("logsvc_connect.mirror")


def translate(
    committed: Mapping[TopicPartition, int], maps: Mapping[tuple[str, int], PartitionMap]
) -> tuple[dict[TopicPartition, int], list[TopicPartition]]:
    """The Kafka offsets of the mirrored partitions among ``committed`` (source offsets), and the
    partitions that cannot be translated yet (their committed record is not copied)."""
    ready: dict[TopicPartition, int] = {}
    waiting: list[TopicPartition] = []
    for tp, offset in sorted(committed.items()):
        pmap = maps.get(tp)
        if pmap is None:
            continue
        kafka = pmap.to_kafka(offset)
        if kafka is None:
            waiting.append(tp)
        else:
            ready[tp] = kafka
    return ready, waiting


def _name(tp: TopicPartition) -> str:
    return f"{tp.topic}[{tp.partition}]"


class GroupTranslator:
    """Translates ``groups`` from the ``source`` admin to ``target`` (see the module docstring).

    ``written`` is the checkpoint's record of the mirror's own Kafka commits (updated in place):
    per partition the offset the mirror last committed, and while a commit is on its way the one
    before it too (a crash may leave either on Kafka). ``save`` writes the checkpoint, and is
    called before each commit.
    """

    def __init__(
        self,
        groups: Sequence[str],
        source: Admin,
        target: KafkaTarget,
        written: dict[str, dict[TopicPartition, tuple[int, ...]]],
        save: Callable[[], None],
    ) -> None:
        self.groups = list(groups)
        self._source = source
        self._target = target
        self._written = written
        self._save = save
        self._said: set[tuple[str, ...]] = set()  # problems already logged (one line each)

    def _once(self, key: tuple[str, ...], message: str, *args: object) -> None:
        if key not in self._said:
            self._said.add(key)
            log.info(message, *args)

    def run_once(self, maps: Mapping[tuple[str, int], PartitionMap]) -> None:
        """Translate every group as far as the copy allows; a group that fails is logged and
        tried again next time."""
        for group in self.groups:
            try:
                self._translate(group, maps)
            except LogsvcError as e:
                self._once(("error", group, e.message), "group %s not translated: %s", group, e.message)

    def _translate(self, group: str, maps: Mapping[tuple[str, int], PartitionMap]) -> None:
        try:
            committed = self._source.committed_offsets(group)
        except GroupNotFound:
            self._once(("missing", group), "group %s has no committed offsets on logsvc (yet)", group)
            return
        ready, waiting = translate({tp: c.offset for tp, c in committed.items()}, maps)
        for tp in waiting:
            self._once(("waiting", group, _name(tp)), "group %s: %s waits until its offset is copied", group, _name(tp))
        if not ready:
            return
        written = self._written.setdefault(group, {})
        current = self._target.committed(group, ready)
        todo: dict[TopicPartition, int] = {}
        for tp, k in ready.items():
            now = current.get(tp)
            if now == k:
                continue
            if now is not None and now not in written.get(tp, ()):
                self._once(
                    ("foreign", group, _name(tp)),
                    "Kafka group %s committed %s at %d itself: the mirror leaves it alone",
                    group,
                    _name(tp),
                    now,
                )
                continue
            todo[tp] = k
        if not todo:
            return
        if self._target.group_is_active(group):
            self._once(("active", group), "Kafka group %s has members: its offsets wait until it is empty", group)
            return
        self._said.discard(("active", group))
        for tp, k in todo.items():  # Kafka's value (ours) and the one on its way, both the mirror's
            now = current.get(tp)
            written[tp] = (k,) if now is None else (now, k)
        self._save()
        self._target.commit(group, todo)
        for tp, k in todo.items():
            written[tp] = (k,)
        shown = ", ".join(f"{_name(tp)}={k}" for tp, k in sorted(todo.items()))
        log.info("group %s: committed on Kafka %s", group, shown)
