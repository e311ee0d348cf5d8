"""``logsvc quotas set|list|remove`` (modelled on ``kafka-configs --entity-type users``)."""

from __future__ import annotations

from typing import Any

import click

from logsvc.acl import check_principal
from logsvc.cli import numbers
from logsvc.cli.output import echo_json, echo_line, echo_table, note, output_option
from logsvc.cli.state import get_state, server_option
from logsvc_client import Admin, Quota, Quotas
from logsvc_client.errors import InvalidRequest

DEFAULT_ROW = "(default)"


def _principal(value: str) -> str:
    try:
        return check_principal(value, wildcard=False)
    except InvalidRequest as e:
        raise click.BadParameter(e.message, param_hint="'PRINCIPAL'") from None


def _rate(rate: int | None, default: int) -> str:
    """How a table shows a rate: unlimited (0), the default (None), or bytes per second."""
    if rate is None:
        return f"default ({_rate(default, 0)})" if default else "default (unlimited)"
    return "unlimited" if rate == 0 else str(rate)


def quotas_json(quotas: Quotas) -> dict[str, Any]:
    return {
        "default": {
            "produce_bytes_per_second": quotas.default_produce_bytes_per_second,
            "fetch_bytes_per_second": quotas.default_fetch_bytes_per_second,
        },
        "overrides": [q._asdict() for q in quotas.overrides],
    }


def echo_quotas(quotas: Quotas, output: str, with_default: bool = True) -> None:
    if output == "json":
        echo_json(quotas_json(quotas))
        return
    produce, fetch = quotas.default_produce_bytes_per_second, quotas.default_fetch_bytes_per_second
    rows = [(DEFAULT_ROW, _rate(produce, 0), _rate(fetch, 0))] if with_default else []
    rows += [
        (q.principal, _rate(q.produce_bytes_per_second, produce), _rate(q.fetch_bytes_per_second, fetch))
        for q in quotas.overrides
    ]
    echo_table(("PRINCIPAL", "PRODUCE BYTES/S", "FETCH BYTES/S"), rows)


@click.group()
def quotas() -> None:
    """Set, list and remove per-principal quotas (bytes per second).

    A principal over its produce (request bytes) or fetch (response bytes) quota has its responses
    held back until its rate is within the quota again; nothing is refused. The broker's
    quota_produce_bytes_per_second / quota_fetch_bytes_per_second are the defaults (0 = no
    limit); an override set here wins for one principal. Changing quotas needs alter on the
    cluster, listing them describe on the cluster.

    \b
    Examples:
      logsvc quotas set User:alice --produce-bytes-per-second 1048576
      logsvc quotas set User:etl --fetch-bytes-per-second 0          # no fetch limit for User:etl
      logsvc quotas list
      logsvc quotas remove User:alice
    """


@quotas.command("set")
@click.argument("principal")
@click.option(
    "--produce-bytes-per-second",
    "produce",
    type=numbers.BYTES_PER_SECOND,
    metavar="N",
    help="Produce quota (0 = no limit) [default: keep the current one].",
)
@click.option(
    "--fetch-bytes-per-second",
    "fetch",
    type=numbers.BYTES_PER_SECOND,
    metavar="N",
    help="Fetch quota (0 = no limit) [default: keep the current one].",
)
@server_option
@output_option(as_table="the principal's quotas", as_json="the quotas object of list")
def set_(principal: str, produce: int | None, fetch: int | None, output: str) -> None:
    """Override PRINCIPAL's (User:NAME) quotas; a rate not given keeps its current value."""
    principal = _principal(principal)
    if produce is None and fetch is None:
        raise click.UsageError("give --produce-bytes-per-second and/or --fetch-bytes-per-second")
    with Admin(get_state().address()) as admin:
        admin.alter_quotas(set=[Quota(principal, produce, fetch)])
        now = admin.describe_quotas(principal)
    echo_quotas(now, output, with_default=False)


@quotas.command("list")
@click.argument("principal", required=False)
@server_option
@output_option(as_table="the defaults, then one row per override", as_json="an object with default and overrides")
def list_(principal: str | None, output: str) -> None:
    """List the broker's default quotas and the overrides (of PRINCIPAL only, when given)."""
    wanted = _principal(principal) if principal else None
    with Admin(get_state().address()) as admin:
        found = admin.describe_quotas(wanted)
    echo_quotas(found, output)


@quotas.command()
@click.argument("principals", metavar="PRINCIPAL...", nargs=-1, required=True)
@server_option
@output_option(as_table="a line per principal", as_json="an object with removed")
def remove(principals: tuple[str, ...], output: str) -> None:
    """Remove the quota overrides of PRINCIPAL(s): the defaults apply to them again."""
    names = sorted({_principal(p) for p in principals})
    with Admin(get_state().address()) as admin:
        had = {q.principal for q in admin.describe_quotas().overrides}
        admin.alter_quotas(remove=names)
    removed = [p for p in names if p in had]
    if output == "json":
        echo_json({"removed": removed})
    for name in names:
        if name not in had:
            note(f"{name} had no quota override")
        elif output != "json":
            echo_line(f"removed the quota override of {name}")
