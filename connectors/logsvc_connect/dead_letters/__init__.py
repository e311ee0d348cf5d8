"""Dead letters: the records a connector could not write because of their data.

=========================  ========================================================================
:mod:`.format`             the format, defined once: the topic (``<connector>.dlq``, partition 0),
                           the ``dlq.*`` headers and what they mean, a corrupt stored batch as one
                           raw entry, replay headers and markers; :class:`DeadLetter` and
                           :class:`Replay` read them back
:class:`DeadLetters`       the writer the runtime uses (:mod:`.writer`)
:mod:`.review`             reading a DLQ and its replays, finding a record's dead letters,
                           planning and carrying out a replay (``logsvc dlq``, ``records status``)
=========================  ========================================================================
"""

from . import format, review
from .format import CORRUPT_BATCH, DLQ_PARTITION, DeadLetter, Replay, dlq_topic, marker_topic
from .writer import DeadLetters, dead_letter_headers

__all__ = [
    "CORRUPT_BATCH",
    "DLQ_PARTITION",
    "DeadLetter",
    "DeadLetters",
    "Replay",
    "dead_letter_headers",
    "dlq_topic",
    "format",
    "marker_topic",
    "review",
]
