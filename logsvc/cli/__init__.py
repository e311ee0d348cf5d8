"""The ``logsvc`` command line: one module per noun.

``main`` (the group, global options, error reporting), ``serve``, ``topics``, ``produce``,
``consume``, ``offsets``, ``partitions``; helpers: ``output`` (tables, JSON, progress), ``timespec``
(``--from`` values), ``sources`` (broker or data directory), ``state`` (``--server``, ``--debug``);
kcat's habits: ``read_range`` (what consume reads, where it starts and ends), ``record_format``
(``-f``), ``record_reader`` (``-D``), ``json_records`` (``--jsonl``), ``escapes`` (``\0``, ``\t``),
``client_overrides`` (``-X``).
"""
