"""logsvc sink connectors: one runtime, thin adapters behind one contract.

=============================  ====================================================================
:mod:`.sink`                   the contract: :class:`~.sink.Sink`, :class:`~.sink.SinkRecord`,
                               :class:`~.sink.WriteResult`; errors in :mod:`.errors`
                               (:class:`~.errors.TransientSinkError`: retry; :class:`~.errors.DataError`:
                               dead-letter)
:mod:`.runtime`                :class:`~.runtime.SinkRuntime`: group, batches, decoding, compaction of
                               duplicate ids, retries, dead letters, commits
:mod:`.config`                 :class:`~.config.RuntimeConfig`: the runtime's keys, file < env < flags
:mod:`.values`                 value bytes → ``doc`` (``value_format``)
:mod:`.transforms`             filter, keep/drop/rename fields, header fields, key field
:mod:`.hooks`                  user code named ``module:attr`` (handler, filter), checked at start-up
:mod:`.dead_letters`           the dead-letter format, its writer, and reviewing/replaying
:mod:`.metrics`                Prometheus metrics and ``/metrics``
:mod:`.registry`               ``kind -> adapter package``: :mod:`.postgres`, :mod:`.mongo`, :mod:`.handler`
:mod:`.app` / :mod:`.process`  ``logsvc connect``: load a config, run until SIGTERM
:mod:`.mirror`                 ``logsvc mirror``: topics and their groups' offsets moved live onto a
                               Kafka cluster (a copy, not a sink: it has a runtime of its own)
=============================  ====================================================================
"""
