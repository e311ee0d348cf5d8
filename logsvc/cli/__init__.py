"""The ``logsvc`` command line: one module per noun.

``main`` (the group, global options, error reporting), ``serve``, ``topics``, ``produce``,
``consume``, ``partitions``; helpers: ``output`` (tables, JSON, progress), ``timespec``
(``--from`` values), ``sources`` (broker or data directory), ``state`` (``--server``).
"""
