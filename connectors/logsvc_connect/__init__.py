"""logsvc sink connectors: one runtime (:mod:`.runtime`), thin adapters (:mod:`.postgres`,
:mod:`.mongo`) behind the :class:`~logsvc_connect.sink.Sink` contract."""
