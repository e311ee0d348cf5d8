"""What every command shares: the broker address (``--server`` / ``LOGSVC_SERVER``) and flags.

``--server`` is accepted both before the command (``logsvc --server H:P topics list``) and after
it (``logsvc topics list --server H:P``); the later one wins.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_SERVER = "127.0.0.1:50051"


@dataclasses.dataclass
class CliState:
    server: str = DEFAULT_SERVER
    server_explicit: bool = False  # given with the command itself (``topics list --server X``)
    debug: bool = False
    remote_used: bool = False  # a command talked to the broker: Unavailable means unreachable

    def address(self) -> str:
        """The broker address, noting that this command talks to a broker."""
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
    """``--server HOST:PORT`` on a command (overrides the one given before the command)."""
    return click.option(
        "--server",
        metavar="HOST:PORT",
        default=None,
        expose_value=False,
        is_eager=True,
        callback=_set_server,
        help="Address of the logsvc broker [default: $LOGSVC_SERVER or 127.0.0.1:50051].",
    )(fn)
