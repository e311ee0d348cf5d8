"""``logsvc mirror``: a live move of topics (and their consumer groups) from logsvc onto Kafka.

Every record is copied to the same partition number, in order, with its key, value, headers and
timestamp; the copy tails the source until stopped and survives kill -9 with no gap and no
duplicate; listed groups' committed offsets follow, translated to Kafka offsets.

==========================  ========================================================================
:mod:`.offset_map`          source offset ↔ Kafka offset of one partition: progress and sync segments
                            (pure)
:mod:`.checkpoint`          the state directory's checkpoint, written atomically
:mod:`.target`              the Kafka side: topics, the end of partitions, group offsets
:mod:`.topics`              the mirrored topics on logsvc, created or checked on Kafka
:mod:`.options`             :class:`~.options.MirrorOptions`: what the mirror is asked to do
:mod:`.resume`              where a (re)start resumes: the checkpoint and what Kafka holds past it
:mod:`.copier`              :class:`~.copier.Mirror`: read, produce, acknowledge, checkpoint, tail
:mod:`.groups`              committed offsets of logsvc groups, translated and committed on Kafka
:mod:`.status`              ``logsvc mirror status``: per partition, how far the copy has got
==========================  ========================================================================
"""
