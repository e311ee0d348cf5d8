"""A connector process: load its config, build the adapter, run the runtime until SIGTERM.

``logsvc connect postgres|mongo|python --config FILE`` (see :mod:`logsvc.cli.connect`) calls
:func:`load` then :func:`run`. Several processes with the same connector name form one consumer
group and share the partitions. The adapter comes from :mod:`logsvc_connect.registry` by kind;
:func:`run` and :class:`Connector` are :mod:`logsvc_connect.process`'s.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from logsvc_client.errors import InvalidConfig
from logsvc_connect.config import load_runtime, read_file, split_sources
from logsvc_connect.process import Connector, run, tune_gc
from logsvc_connect.registry import KINDS, configure_for
from logsvc_wire.metrics_http import load_metrics_token

__all__ = ["Connector", "load", "run", "tune_gc"]


def load(
    kind: str,
    path: str,
    environ: Mapping[str, str] | None = None,
    handler: str | None = None,
    *,
    server: str | None = None,
    cli_server: str | None = None,
) -> Connector:
    """Read and validate a connector config. Precedence, lowest first: the file, ``cli_server``
    (the CLI's ``LOGSVC_SERVER``, for the server only: as every other command, a connector goes
    where the CLI's environment says), the ``LOGSVC_CONNECT_*`` environment, then the command
    line: ``server`` (the CLI's ``--server`` flag) and ``handler`` (the ``--handler`` flag of a
    python connector). A handler is imported here, so a path that does not
    import or a function with the wrong signature fails at start-up. An error about a key set by
    the environment names its variable, one about a key of the file names the file."""
    configure = configure_for(kind)
    env = os.environ if environ is None else environ
    runtime_values, adapter_values, from_env = split_sources(kind, read_file(path), env, path, KINDS)
    if server:
        runtime_values["server"] = server
        from_env.pop("server", None)
    elif cli_server and "server" not in from_env:
        runtime_values["server"] = cli_server
    if handler:  # the --handler flag overrides the [python] table's handler key
        adapter_values["handler"] = handler
    try:
        runtime = load_runtime(runtime_values, path)
        if runtime.metrics_token_file:  # a bad token file fails here, before any connection is made
            load_metrics_token(runtime.metrics_token_file)
        adapter = configure(adapter_values, runtime)
    except InvalidConfig as e:
        variable = from_env.get(str(e.details.get("key", "")))
        if variable is None:
            raise
        what = e.message
        for source in (f"{path}: ", f"[{kind}]: "):  # the file's name, put there by the checks
            if what.startswith(source):
                what = what[len(source) :]
        raise InvalidConfig(f"environment variable {variable}: {what}", **e.details) from None
    return Connector(kind, runtime, adapter.config, adapter.sink_factory)
