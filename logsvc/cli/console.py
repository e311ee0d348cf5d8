"""``logsvc console``: serve the web console (:mod:`logsvc.console`) for a broker.

The broker is ``--server`` / ``LOGSVC_SERVER``, reached with the CLI's TLS and token settings
(``LOGSVC_TLS*``, ``LOGSVC_TOKEN``, read by the client library). Prints ``console listening on
http://HOST:PORT`` on stderr once the socket listens (``--listen 127.0.0.1:0`` picks a free port).
"""

from __future__ import annotations

import click

from logsvc.cli.output import note
from logsvc.cli.state import get_state, server_option
from logsvc.console.config import DEFAULT_LISTEN, DEFAULT_SAMPLE_INTERVAL_MS, ConsoleConfig, parse_listen
from logsvc_client.errors import InvalidConfig


@click.command()
@click.option(
    "--listen",
    metavar="HOST:PORT",
    default=DEFAULT_LISTEN,
    envvar="LOGSVC_CONSOLE_LISTEN",
    show_default=True,
    show_envvar=True,
    help="Where the console listens. Only this machine can reach the default.",
)
@click.option(
    "--auth-tokens",
    "auth_tokens",
    metavar="FILE",
    default="",
    envvar="LOGSVC_CONSOLE_AUTH_TOKENS",
    show_envvar=True,
    help="'NAME TOKEN' lines, the broker's format: signing in with one of these tokens allows the actions "
    "that change state (reset offsets, replay). Without it they are refused.",
)
@click.option("--read-only", is_flag=True, envvar="LOGSVC_CONSOLE_READ_ONLY", help="Hide and refuse every action.")
@click.option(
    "--sample-interval-ms",
    type=click.IntRange(min=50),
    default=DEFAULT_SAMPLE_INTERVAL_MS,
    show_default=True,
    help="How often lag and produce rates are sampled for the charts (kept in memory for an hour).",
)
@click.option(
    "--connector-metrics",
    "connector_metrics",
    metavar="URL",
    multiple=True,
    envvar="LOGSVC_CONSOLE_CONNECTOR_METRICS",
    show_envvar=True,
    help="A connector's /metrics URL, for its write and dead-letter rates (repeatable; "
    "space-separated in the variable).",
)
@server_option
def console(
    listen: str, auth_tokens: str, read_only: bool, sample_interval_ms: int, connector_metrics: tuple[str, ...]
) -> None:
    """Serve a web console: topics, messages, group lag over time, dead letters.

    \b
    Examples:
      logsvc console                                   # http://127.0.0.1:8080
      logsvc console --auth-tokens console-tokens.txt  # allow resets and replays after signing in
      logsvc console --read-only --connector-metrics http://127.0.0.1:9101/metrics
    """
    try:
        from logsvc.console.app import serve  # Starlette, uvicorn, Jinja2: the console extra
    except ImportError as e:
        raise click.ClickException(
            f"the console needs its extra: pip install 'logsvc[console]' ({e.name} is missing)"
        ) from None
    try:
        host, port = parse_listen(listen)
        config = ConsoleConfig(
            server=get_state().address(),
            listen_host=host,
            listen_port=port,
            auth_tokens_file=auth_tokens,
            read_only=read_only,
            sample_interval_ms=sample_interval_ms,
            connector_metrics=tuple(connector_metrics),
        )
    except InvalidConfig as e:
        raise click.UsageError(e.message) from None

    def ready(bound_host: str, bound_port: int) -> None:
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        note(f"console listening on http://{shown}:{bound_port} (broker {config.server})")

    serve(config, ready)
