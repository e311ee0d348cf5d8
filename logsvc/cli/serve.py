"""``logsvc serve``: run the broker in the foreground until SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING, Any

import click

from logsvc import settings as settings_mod

if TYPE_CHECKING:
    from logsvc.server.app import Broker

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def ready_line(broker: Broker) -> str:
    """The line announcing the bound addresses (tests read the port from it)."""
    host = broker.settings.metrics_host
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    port = broker.metrics.port
    metrics = f"metrics http://{host}:{port}/metrics" if port else "metrics off"
    return f"logsvc listening on {broker.address} ({metrics})"


def _announce(broker: Broker) -> None:
    sys.stderr.write(ready_line(broker) + "\n")
    sys.stderr.flush()


@click.command()
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    envvar="LOGSVC_CONFIG",
    show_envvar=True,
    default=None,
    help="TOML file of broker settings (top-level keys or a [server] table).",
)
@click.option(
    "--data-dir", metavar="DIR", default=None, help="Directory of the LMDB data (created if missing) [default: ./data]."
)
@click.option(
    "--listen",
    metavar="HOST:PORT",
    default=None,
    help="gRPC address; port 0 picks a free one [default: 127.0.0.1:50051].",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(min=-1, max=65535),
    default=None,
    help="HTTP port for /metrics on --metrics-host; 0 picks a free one, -1 turns it off [default: 9095].",
)
@click.option(
    "--metrics-host",
    metavar="HOST",
    default=None,
    help="Address /metrics listens on, whatever --listen says (it names every topic and group) [default: 127.0.0.1].",
)
@click.option(
    "--metrics-token",
    "metrics_token_file",
    metavar="FILE",
    default=None,
    help="File holding one token (16+ characters): /metrics then answers 401 unless a scrape sends "
    "'Authorization: Bearer TOKEN'.",
)
@click.option(
    "--durability",
    type=click.Choice(["fsync", "os"]),
    default=None,
    help="fsync: every acknowledged write is on disk (default). os: the OS flushes (faster; a machine crash "
    "loses the last writes).",
)
@click.option(
    "--auto-create-topics/--no-auto-create-topics",
    default=None,
    help="Create unknown topics on first produce [default: off].",
)
@click.option(
    "--tls-cert",
    "tls_cert_file",
    metavar="FILE",
    default=None,
    help="PEM certificate of the gRPC port; with --tls-key the port speaks TLS only.",
)
@click.option("--tls-key", "tls_key_file", metavar="FILE", default=None, help="PEM private key of --tls-cert.")
@click.option(
    "--tls-client-ca",
    "tls_client_ca_file",
    metavar="FILE",
    default=None,
    help="PEM CA: clients must present a certificate it signed (mutual TLS).",
)
@click.option(
    "--auth-tokens",
    "auth_tokens_file",
    metavar="FILE",
    default=None,
    help="File of 'NAME TOKEN' lines (the call acts as User:NAME; re-read on SIGHUP): every call but health checks "
    "(reflection too) must carry one of its tokens.",
)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default=None,
    help="Broker log level (logs go to stderr) [default: INFO].",
)
def serve(
    config_file: str | None,
    data_dir: str | None,
    listen: str | None,
    metrics_port: int | None,
    metrics_host: str | None,
    metrics_token_file: str | None,
    durability: str | None,
    auto_create_topics: bool | None,
    tls_cert_file: str | None,
    tls_key_file: str | None,
    tls_client_ca_file: str | None,
    auth_tokens_file: str | None,
    log_level: str | None,
) -> None:
    """Run the broker (until SIGTERM or Ctrl-C).

    On SIGTERM or Ctrl-C it stops accepting calls, lets those in flight finish, and exits 0.
    It exits 1 when it cannot start (a bad setting; the data directory locked by another
    broker), and 74 when its storage can no longer write (a failed fsync, an I/O error): health
    goes NOT_SERVING at once, writes fail, and a supervisor should restart it.

    Settings come from, lowest first: defaults < --config FILE < LOGSVC_<SETTING> environment
    variables (e.g. LOGSVC_DURABILITY=os) < these flags. Once serving, one line
    "logsvc listening on HOST:PORT (metrics http://HOST:PORT/metrics)" is printed to stderr.

    \b
    Examples:
      logsvc serve
      logsvc serve --data-dir /var/lib/logsvc --listen 0.0.0.0:50051 --metrics-port 9095
      logsvc serve --listen 0.0.0.0:50051 --metrics-host 10.0.0.5 --metrics-token metrics.token
      logsvc serve --config logsvc.toml --durability os
      logsvc serve --listen 0.0.0.0:50051 --tls-cert broker.pem --tls-key broker.key --auth-tokens tokens.txt

    With --auth-tokens, clients send a token from the file: LOGSVC_TOKEN for the CLI and the
    connectors, Security(token=...) in the client library (LOGSVC_TLS_CA names the CA that
    signed --tls-cert for them).
    """
    flags: dict[str, Any] = {
        "data_dir": data_dir,
        "listen": listen,
        "metrics_port": metrics_port,
        "metrics_host": metrics_host,
        "metrics_token_file": metrics_token_file,
        "durability": durability,
        "auto_create_topics": auto_create_topics,
        "tls_cert_file": tls_cert_file,
        "tls_key_file": tls_key_file,
        "tls_client_ca_file": tls_client_ca_file,
        "auth_tokens_file": auth_tokens_file,
        "log_level": log_level.upper() if log_level else None,
    }
    settings = settings_mod.load(config_file, os.environ, flags)
    logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT, stream=sys.stderr)

    from logsvc.server import app  # the server (gRPC, LMDB) only loads for this command

    app.serve(settings, ready=_announce)
