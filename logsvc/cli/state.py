"""What every command shares: the broker address (``--server`` / ``LOGSVC_SERVER``) and flags.

``--server`` is accepted both before the command (``logsvc --server H:P topics list``) and after
it (``logsvc topics list --server H:P``); the later one wins. ``--debug`` too, on every command
(:func:`add_debug_option`, applied by the ``logsvc`` group to each command it is given).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import click

from logsvc_client.errors import InvalidConfig
from logsvc_client.kafka.address import is_kafka
from logsvc_client.kafka.address import parse as parse_kafka

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_SERVER = "127.0.0.1:50051"


@dataclasses.dataclass
class CliState:
    server: str = DEFAULT_SERVER
    server_explicit: bool = False  # given with the command itself (``topics list --server X``)
    debug: bool = False
    remote_used: bool = False  # a command talked to the broker: Unavailable means unreachable

    def address(self) -> str:
        """The broker address (``HOST:PORT``, or a Kafka cluster's ``kafka://HOST:PORT,...``),
        noting that this command talks to a broker."""
        if is_kafka(self.server):
            try:
                parse_kafka(self.server)
            except InvalidConfig as e:
                raise click.BadParameter(e.message, param_hint="'--server' / LOGSVC_SERVER") from None
            self.remote_used = True
            return self.server
        host, sep, port = self.server.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise click.BadParameter(f"{self.server!r} is not HOST:PORT", param_hint="'--server' / LOGSVC_SERVER")
        self.remote_used = True
        return self.server


def get_state() -> CliState:
    return click.get_current_context().ensure_object(CliState)


def _set_server(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        state = ctx.ensure_object(CliState)
        state.server = value
        state.server_explicit = True


def server_option(fn: F) -> F:
    """``-b/--server HOST:PORT`` on a command (overrides the one given before the command)."""
    return click.option(
        "-b",
        "--server",
        metavar="HOST:PORT|kafka://HOST:PORT,...",
        default=None,
        expose_value=False,
        is_eager=True,
        callback=_set_server,
        help=(
            "The logsvc broker, or a Kafka cluster as kafka://HOST:PORT,... (-b as in kcat) "
            "[default: $LOGSVC_SERVER or 127.0.0.1:50051]."
        ),
    )(fn)


def _set_debug(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(CliState).debug = True


DEBUG_HELP = "Show a traceback for unexpected errors (for bug reports)."


def add_debug_option(command: click.Command) -> None:
    """Give ``command`` (and, for a group, every command under it) a ``--debug`` flag that works
    like the one before the command, so ``logsvc topics list --debug`` is ``logsvc --debug topics
    list``."""
    if not any(isinstance(p, click.Option) and "--debug" in p.opts for p in command.params):
        command.params.append(
            click.Option(
                ["--debug"], is_flag=True, expose_value=False, is_eager=True, callback=_set_debug, help=DEBUG_HELP
            )
        )
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_debug_option(sub)
