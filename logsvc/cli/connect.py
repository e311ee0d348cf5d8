"""``logsvc connect postgres|mongo --config FILE`` and ``logsvc connect python --handler
module:function --config FILE``: run a sink connector in the foreground.

Several processes with the same connector ``name`` form one consumer group and share the
partitions. SIGTERM or Ctrl-C finishes the batch in flight, commits and leaves the group.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from logsvc.cli.serve import LOG_FORMAT
from logsvc.cli.state import get_state, server_option
from logsvc.cli.timespec import StartSpec, StartType

CONFIG_HELP = "TOML file: runtime keys at the top, adapter keys in a [postgres] / [mongo] / [python] table."
PATH_HELP = (
    "Also import handler and filter modules from DIR (repeatable). Installed packages come first, "
    "then each --path DIR, then the working directory: a module there never replaces an installed one."
)
F = TypeVar("F", bound=Callable[..., Any])
FROM_HELP = (
    "Where partitions start when this process first gets them: earliest, latest, OFFSET, @TIME or "
    "@-DURATION. Without it: the group's committed offsets (or the sink's own, with exactly_once)."
)


def import_path(directories: Sequence[str] = ()) -> None:
    """Where handler and filter modules import from: installed packages first, then each --path
    directory, then the working directory. ``python -m`` puts the working directory first on
    ``sys.path``; it is moved to the end, so a ``psycopg.py`` or ``json.py`` lying there can never
    stand in for an installed module (a handler module needs a name of its own)."""
    cwd = os.getcwd()
    if sys.path and sys.path[0] in ("", cwd):
        del sys.path[0]
    for directory in (*directories, cwd):
        path = os.path.abspath(directory)
        if path not in sys.path:
            sys.path.append(path)


def _run(
    kind: str,
    config_file: str,
    start: StartSpec | None,
    log_level: str,
    paths: Sequence[str] = (),
    handler: str | None = None,
) -> None:
    from logsvc_connect import app
    from logsvc_connect.runtime import StartFrom

    logging.basicConfig(level=log_level.upper(), format=LOG_FORMAT)
    import_path(paths)
    flag, env = _server_sources()
    connector = app.load(kind, config_file, handler=handler, server=flag, cli_server=env)
    start_from = None
    if start is not None:
        start_from = StartFrom(
            start.kind,
            timestamp_ms=start.value if start.kind == "time" else None,
            offset=start.value if start.kind == "offset" else None,
        )
    app.tune_gc()  # this process only runs the connector
    app.run(connector, start_from)


def _server_sources() -> tuple[str | None, str | None]:
    """(the ``--server`` flag, when one was given before or after ``connect``; ``LOGSVC_SERVER``).

    A flag wins over everything; ``LOGSVC_SERVER`` over the config file's ``server`` (but not over
    ``LOGSVC_CONNECT_SERVER``, the connector's own variable): the TOML's server is used when
    neither is given."""
    state = get_state()
    root = click.get_current_context().find_root()
    given = state.server_explicit or root.get_parameter_source("server") == ParameterSource.COMMANDLINE
    return (state.server if given else None), (os.environ.get("LOGSVC_SERVER") or None)


def path_option(fn: F) -> F:
    return click.option(
        "--path",
        "paths",
        metavar="DIR",
        multiple=True,
        type=click.Path(file_okay=False, exists=True),
        help=PATH_HELP,
    )(fn)


def _command(kind: str, doc: str) -> click.Command:
    @click.command(name=kind, help=doc)
    @click.option("--config", "config_file", required=True, type=click.Path(dir_okay=False), help=CONFIG_HELP)
    @click.option("--from", "start", type=StartType(), default=None, help=FROM_HELP)
    @path_option
    @server_option
    @click.option(
        "--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False), default="INFO"
    )
    def command(config_file: str, start: StartSpec | None, paths: tuple[str, ...], log_level: str) -> None:
        _run(kind, config_file, start, log_level, paths)

    return command


@click.group()
def connect() -> None:
    """Run a sink connector: topics into PostgreSQL, MongoDB or a Python handler (at-least-once)."""


@connect.command(name="python")
@click.option(
    "--handler",
    metavar="MODULE:FUNCTION",
    default=None,
    help="The handler: a function taking a list of records, or a class (instantiated with the [python] options).",
)
@click.option("--config", "config_file", required=True, type=click.Path(dir_okay=False), help=CONFIG_HELP)
@click.option("--from", "start", type=StartType(), default=None, help=FROM_HELP)
@path_option
@server_option
@click.option(
    "--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False), default="INFO"
)
def python_handler(
    handler: str | None, config_file: str, start: StartSpec | None, paths: tuple[str, ...], log_level: str
) -> None:
    """Run a Python handler on each batch, under the same runtime as the database sinks: consumer
    group, batching, retries (raise TransientSinkError, ConnectionError or TimeoutError), the
    dead-letter topic (raise or return RecordError for single records), SIGTERM drain, /metrics.
    The handler may also be set in the config's [python] table (handler = "module:function").
    Its module is found among installed packages, then in each --path DIR, then in the working
    directory."""
    _run("python", config_file, start, log_level, paths, handler)


connect.add_command(
    _command(
        "postgres",
        "Sink topics into PostgreSQL tables (COPY + INSERT ... ON CONFLICT; exactly_once = true keeps "
        "the offsets in the same transaction as the rows). Every key can be overridden with "
        "LOGSVC_CONNECT_<KEY> or LOGSVC_CONNECT_POSTGRES_<KEY>.",
    )
)
connect.add_command(
    _command(
        "mongo",
        "Sink topics into MongoDB collections (unordered bulk writes, replace-upsert by default). "
        "Every key can be overridden with LOGSVC_CONNECT_<KEY> or LOGSVC_CONNECT_MONGO_<KEY>.",
    )
)
