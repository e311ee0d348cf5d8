"""The MongoDB adapter: each record one document, a batch one unordered bulk write per collection
(``logsvc connect mongo``).

==========================  =====================================================================
:func:`configure`           the ``[mongo]`` table → an :class:`~logsvc_connect.registry.Adapter`
:class:`MongoConfig`        its keys, validated (:mod:`.config`)
:class:`MongoSink`          the :class:`~logsvc_connect.sink.Sink`: ids, documents, bulk writes (:mod:`.sink`)
:func:`escape_names`        field names MongoDB rejects, escaped (or :func:`check_names`) (:mod:`.names`)
:func:`translate`           pymongo errors → transient, data or config errors; one record's
                            failures out of a bulk write (:func:`record_failures`) (:mod:`.errors`)
==========================  =====================================================================
"""

from .config import MongoConfig
from .errors import record_failures, translate
from .names import check_names, escape_names
from .sink import MongoSink, configure

__all__ = ["MongoConfig", "MongoSink", "check_names", "configure", "escape_names", "record_failures", "translate"]
