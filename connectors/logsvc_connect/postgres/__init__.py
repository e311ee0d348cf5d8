"""The PostgreSQL adapter: topics into tables, one transaction per batch (``logsvc connect postgres``).

==========================  =====================================================================
:func:`configure`           the ``[postgres]`` table → an :class:`~logsvc_connect.registry.Adapter`
:class:`PostgresConfig`     its keys, validated (:mod:`.config`)
:class:`PostgresSink`       the :class:`~logsvc_connect.sink.Sink`: DELETE tombstones, load rows,
                            store offsets (exactly-once), commit (:mod:`.sink`)
:func:`group_records`       a batch per topic, tombstones applied (:mod:`.groups`)
:class:`RowEncoder`         records → staging rows, per-column conversion (:mod:`.rows`)
:func:`jsonb_copy`          a plain jsonb batch → binary COPY data in one pass, in C (:mod:`.copy_stream`)
:class:`RowLoader`          rows → table: binary COPY, or staging + INSERT … ON CONFLICT (:mod:`.loader`)
:class:`TableLayout`        a table's columns, DDL and statements (:mod:`.schema`)
:func:`translate`           psycopg errors → transient, data or config errors (:mod:`.errors`)
==========================  =====================================================================
"""

from .config import PostgresConfig
from .copy_stream import jsonb_copy
from .errors import translate
from .groups import TopicGroup, group_records
from .loader import RowLoader
from .rows import RowEncoder
from .schema import TableLayout
from .sink import PostgresSink, configure

__all__ = [
    "PostgresConfig",
    "PostgresSink",
    "RowEncoder",
    "RowLoader",
    "TableLayout",
    "TopicGroup",
    "configure",
    "group_records",
    "jsonb_copy",
    "translate",
]
