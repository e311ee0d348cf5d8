"""The ``logsvc`` command: the group, its global options, and the one place errors are reported.

Every command raises; :func:`main` turns what it raises into one ``error: ...`` line on stderr and
an exit code (1 for runtime errors, 2 for bad usage, 130 for Ctrl-C, 74 when ``logsvc serve``
stopped because its storage can no longer write), never a traceback.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

import click
import grpc

from logsvc import __version__
from logsvc.cli.acls import acls, whoami
from logsvc.cli.connect import connect
from logsvc.cli.console import console
from logsvc.cli.consume import consume
from logsvc.cli.dlq import dlq
from logsvc.cli.groups import groups
from logsvc.cli.mirror import mirror
from logsvc.cli.offsets import offsets
from logsvc.cli.output import printable
from logsvc.cli.partitions import partitions
from logsvc.cli.produce import produce
from logsvc.cli.quotas import quotas
from logsvc.cli.records import records
from logsvc.cli.serve import serve
from logsvc.cli.state import DEBUG_HELP, DEFAULT_SERVER, CliState, add_debug_option
from logsvc.cli.topics import topics
from logsvc_client.errors import LogsvcError, StorageFailed, Unavailable, from_rpc_error
from logsvc_client.kafka.address import is_kafka

EXAMPLES = """\
A Kafka-style partitioned commit log: run the broker, manage topics, produce and consume
records, and inspect partitions.

\b
Examples:
  logsvc serve --data-dir ./data                      # run a broker on 127.0.0.1:50051
  logsvc topics create orders --partitions 3 --config retention.ms=86400000
  logsvc topics list
  printf 'k1:hello\\nk2:world\\n' | logsvc produce orders --key-separator :
  logsvc consume orders --from earliest --max-records 10
  logsvc consume orders --from @-15m -o json | jq .value
  logsvc consume orders --group audit                 # as a group member, committing what it printed
  logsvc consume orders -e -o -100 -f '%p:%o %k=%s\\n'  # kcat habits: the last 100, a format, exit at end
  logsvc offsets orders --at -1h                      # each partition's offset an hour ago
  logsvc groups describe audit                        # committed offsets, lag, owners
  logsvc partitions dump orders --partition 0 --data-dir ./data
  LOGSVC_SERVER=broker:50051 logsvc topics describe orders
  logsvc acls add --allow-principal User:alice --operation read --topic orders
  logsvc quotas set User:alice --produce-bytes-per-second 1048576
  logsvc mirror --from 127.0.0.1:50051 --to kafka://k1:9092 --topics orders --groups audit

A broker with TLS or tokens: LOGSVC_TLS_CA=ca.pem (or LOGSVC_TLS=1 for the system's CAs),
LOGSVC_TLS_CLIENT_CERT / LOGSVC_TLS_CLIENT_KEY for mutual TLS, LOGSVC_TOKEN=TOKEN.
"""


#: ``logsvc serve`` stopped because its storage can no longer write (EX_IOERR): restart it
EXIT_STORAGE_FAILED = 74


class OutputClosed(Exception):
    """The reader of stdout went away (``logsvc consume t | head -1``): not an error."""


class LogsvcGroup(click.Group):
    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        add_debug_option(cmd)  # `logsvc topics list --debug` as well as `logsvc --debug topics list`
        super().add_command(cmd, name)

    def invoke(self, ctx: click.Context) -> object:
        # Click would swallow EPIPE itself and exit 1; the reader leaving is a normal end for us.
        try:
            return super().invoke(ctx)
        except BrokenPipeError as e:
            raise OutputClosed() from e


@click.group(
    cls=LogsvcGroup, help=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.option(
    "-b",
    "--server",
    metavar="HOST:PORT|kafka://HOST:PORT,...",
    envvar="LOGSVC_SERVER",
    default=DEFAULT_SERVER,
    show_default=True,
    show_envvar=True,
    help="The logsvc broker, or a Kafka cluster (kafka://HOST:PORT,...: topics, produce, consume, groups).",
)
@click.option("--debug", is_flag=True, help=DEBUG_HELP + " Also accepted after the command.")
@click.version_option(__version__, "-V", "--version", prog_name="logsvc")
@click.pass_context
def cli(ctx: click.Context, server: str, debug: bool) -> None:
    state = ctx.ensure_object(CliState)
    if not state.server_explicit:
        state.server = server
    state.debug = state.debug or debug


cli.add_command(serve)
cli.add_command(topics)
cli.add_command(produce)
cli.add_command(consume)
cli.add_command(offsets)
cli.add_command(partitions)
cli.add_command(groups)
cli.add_command(connect)
cli.add_command(mirror)
cli.add_command(dlq)
cli.add_command(records)
cli.add_command(acls)
cli.add_command(quotas)
cli.add_command(whoami)
cli.add_command(console)


# -- error reporting ----------------------------------------------------------------------------


def _error(message: str) -> None:
    """One line, ``error: <message>``, on stderr (control characters in it escaped)."""
    line = printable("; ".join(part.strip() for part in message.splitlines() if part.strip()))
    try:
        sys.stderr.write(f"error: {line}\n")
        sys.stderr.flush()
    except OSError:
        pass


def _unreachable_detail(exc: LogsvcError) -> str:
    detail = exc.message.removeprefix("broker unavailable: ")
    if "failed to connect" in detail.lower() and ": " in detail:
        detail = detail.rsplit(": ", 1)[-1]
    return detail


def _silence_stdout() -> None:
    """After EPIPE: point stdout at /dev/null so the interpreter's final flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _report(exc: BaseException, state: CliState) -> int:
    if isinstance(exc, grpc.RpcError):  # the client library translates; this is a safety net
        exc = from_rpc_error(exc)
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):  # `logsvc topics` alone: show its help
        sys.stderr.write(exc.format_message() + "\n")
        return exc.exit_code
    if isinstance(exc, click.ClickException):
        message = exc.format_message()
        ctx = getattr(exc, "ctx", None)
        if isinstance(exc, click.UsageError) and ctx is not None:
            message = f"{message.rstrip('.')} (see '{ctx.command_path} --help')"
        _error(message)
        return exc.exit_code
    if isinstance(exc, StorageFailed):  # the broker's storage (remote), or this process's (serve)
        _error(exc.message)
        return 1 if state.remote_used else EXIT_STORAGE_FAILED
    if isinstance(exc, Unavailable) and state.remote_used:
        what = "Kafka" if is_kafka(state.server) else "logsvc"
        _error(f"cannot reach {what} at {state.server} ({_unreachable_detail(exc)})")
        return 1
    if isinstance(exc, LogsvcError):
        _error(exc.message)
        return 1
    if isinstance(exc, OutputClosed | BrokenPipeError):
        _silence_stdout()
        return 0
    if isinstance(exc, click.exceptions.Abort | KeyboardInterrupt):
        return 130
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        _error(f"{exc.strerror or exc}{where}")
        return 1
    if state.debug:
        traceback.print_exception(exc)
    _error(f"unexpected {type(exc).__name__}: {exc}" + ("" if state.debug else " (run with --debug for a traceback)"))
    return 1


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (what :func:`main` exits with)."""
    state = CliState()
    try:
        rv = cli.main(
            args=list(argv) if argv is not None else None, prog_name="logsvc", standalone_mode=False, obj=state
        )
    except Exception as e:  # the one place errors turn into a message and an exit code
        return _report(e, state)
    except KeyboardInterrupt as e:
        return _report(e, state)
    return rv if isinstance(rv, int) else 0


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console-script entry point (``logsvc``)."""
    code = run(argv)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    sys.exit(code)
