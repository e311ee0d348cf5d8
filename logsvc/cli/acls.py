"""``logsvc acls add|list|remove`` (modelled on ``kafka-acls``) and ``logsvc whoami``."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

import click
import grpc

from logsvc.acl import ALLOW, CLUSTER, DENY, GROUP, MATCH, OPERATIONS, TOPIC, check_principal, parse_acl
from logsvc.cli.output import echo_json, echo_line, echo_table, note, output_option
from logsvc.cli.state import get_state, server_option
from logsvc_client import Acl, AclFilter, Admin
from logsvc_client.errors import InvalidRequest, LogsvcError

ACL_HEADERS = ("PRINCIPAL", "PERMISSION", "OPERATION", "RESOURCE", "NAME", "PATTERN")


def acl_json(acl: Acl) -> dict[str, str]:
    return acl._asdict()


def echo_acls(acls: Sequence[Acl], output: str, **extra: Any) -> None:
    """The ACLs as a table (or one JSON object with ``acls`` and ``extra``)."""
    if output == "json":
        echo_json({**extra, "acls": [acl_json(a) for a in acls]})
    elif acls:
        echo_table(
            ACL_HEADERS,
            [(a.principal, a.permission, a.operation, a.resource_type, a.resource_name, a.pattern_type) for a in acls],
        )


def _principals(option: str, values: Iterable[str]) -> list[str]:
    out = []
    for value in values:
        try:
            out.append(check_principal(value))
        except InvalidRequest as e:
            raise click.BadParameter(e.message, param_hint=f"'{option}'") from None
    return out


def _resources(topics: Sequence[str], groups: Sequence[str], cluster: bool) -> list[tuple[str, str]]:
    return [(TOPIC, t) for t in topics] + [(GROUP, g) for g in groups] + ([(CLUSTER, "")] if cluster else [])


def _sort_key(acl: Acl) -> tuple[str, ...]:
    return (acl.resource_type, acl.resource_name, acl.pattern_type, acl.principal, acl.operation, acl.permission)


def principal_options(verb: str) -> Any:
    """``--allow-principal`` and ``--deny-principal``, repeatable."""

    def decorate(f: Any) -> Any:
        f = click.option(
            "--deny-principal",
            "deny_principals",
            metavar="User:NAME",
            multiple=True,
            help=f"{verb} a deny for this principal (User:* = every principal); repeatable.",
        )(f)
        return click.option(
            "--allow-principal",
            "allow_principals",
            metavar="User:NAME",
            multiple=True,
            help=f"{verb} an allow for this principal (User:* = every principal); repeatable.",
        )(f)

    return decorate


def resource_options(f: Any) -> Any:
    """``--topic``, ``--group`` (repeatable) and ``--cluster``."""
    f = click.option("--cluster", is_flag=True, help="The cluster (logsvc-cluster).")(f)
    f = click.option(
        "--group", "groups", metavar="NAME", multiple=True, help="A group name, prefix or * (every group); repeatable."
    )(f)
    return click.option(
        "--topic", "topics", metavar="NAME", multiple=True, help="A topic name, prefix or * (every topic); repeatable."
    )(f)


@click.group()
def acls() -> None:
    """Add, list and remove ACLs (access control lists, Kafka's model).

    An ACL allows or denies one operation (read, write, create, delete, alter, describe, all) on
    one resource (a topic or group by literal name, * for every one, or a name prefix; or the
    cluster) to one principal (User:NAME, User:* for every principal). A deny beats any allow;
    read, write, delete and alter imply describe; the broker's super_users may do anything. While
    the broker holds no ACL at all, everyone may do anything (unless allow_if_no_acl = false).
    Adding or removing ACLs needs alter on the cluster, listing them describe on the cluster.

    \b
    Examples:
      logsvc acls add --allow-principal User:alice --operation read --operation describe --topic orders
      logsvc acls add --allow-principal User:etl --operation write --topic orders. --resource-pattern-type prefixed
      logsvc acls add --allow-principal User:ops --operation alter --cluster
      logsvc acls list --topic orders --resource-pattern-type match    # every ACL that applies to orders
      logsvc acls remove --allow-principal User:alice --topic orders    # shows what it would remove
      logsvc acls remove --allow-principal User:alice --topic orders --yes
    """


@acls.command()
@principal_options("Add")
@click.option(
    "--operation",
    "operations",
    type=click.Choice(OPERATIONS),
    multiple=True,
    required=True,
    help="The operation; repeatable.",
)
@resource_options
@click.option(
    "--resource-pattern-type",
    "pattern_type",
    type=click.Choice(["literal", "prefixed"]),
    default="literal",
    show_default=True,
    help="literal: the names as given (* = every one); prefixed: every name starting with them.",
)
@server_option
@output_option(as_table="the ACLs added", as_json="an object with created and acls")
def add(
    allow_principals: tuple[str, ...],
    deny_principals: tuple[str, ...],
    operations: tuple[str, ...],
    topics: tuple[str, ...],
    groups: tuple[str, ...],
    cluster: bool,
    pattern_type: str,
    output: str,
) -> None:
    """Add an ACL for every combination of principal, operation and resource, in one request
    (all or none). An ACL already there is kept once."""
    grants = [(p, ALLOW) for p in _principals("--allow-principal", allow_principals)]
    grants += [(p, DENY) for p in _principals("--deny-principal", deny_principals)]
    if not grants:
        raise click.UsageError("give at least one --allow-principal or --deny-principal")
    resources = _resources(topics, groups, cluster)
    if not resources:
        raise click.UsageError("give at least one --topic, --group or --cluster")
    wanted = []
    for (principal, permission), operation, (rtype, name) in itertools.product(grants, operations, resources):
        try:
            acl = parse_acl(principal, rtype, name, pattern_type, operation, permission)
        except InvalidRequest as e:
            raise click.UsageError(e.message) from None
        wanted.append(Acl(*acl))
    wanted = sorted(dict.fromkeys(wanted), key=_sort_key)
    with Admin(get_state().address()) as admin:
        created = admin.create_acls(wanted)
    echo_acls(wanted, output, created=created)
    note(f"added {len(wanted)} ACL(s), {created} of them new")


@acls.command("list")
@click.option(
    "--principal", metavar="User:NAME", help="Only the ACLs of this principal (User:* = those for every principal)."
)
@click.option("--topic", metavar="NAME", help="Only ACLs on this topic (see --resource-pattern-type).")
@click.option("--group", metavar="NAME", help="Only ACLs on this group (see --resource-pattern-type).")
@click.option("--cluster", is_flag=True, help="Only ACLs on the cluster.")
@click.option(
    "--resource-pattern-type",
    "pattern_type",
    type=click.Choice(["any", "literal", "prefixed", "match"]),
    default="any",
    show_default=True,
    help="any/literal/prefixed: ACLs whose resource is exactly the name given (of that pattern type); "
    "match: every ACL that applies to the named resource (its literal, * and prefixes of it).",
)
@click.option("--operation", type=click.Choice(OPERATIONS), help="Only ACLs for this operation.")
@click.option("--permission", type=click.Choice([ALLOW, DENY]), help="Only allows or only denies.")
@server_option
@output_option(as_table="one row per ACL", as_json="an object with acls")
def list_(
    principal: str | None,
    topic: str | None,
    group: str | None,
    cluster: bool,
    pattern_type: str,
    operation: str | None,
    permission: str | None,
    output: str,
) -> None:
    """List ACLs (all of them, or those the options select), sorted by resource, then principal."""
    resources = _resources([topic] if topic else [], [group] if group else [], cluster)
    if len(resources) > 1:
        raise click.UsageError("give at most one of --topic, --group, --cluster")
    rtype, name = resources[0] if resources else ("", "")
    if pattern_type == MATCH and not resources:
        raise click.UsageError("--resource-pattern-type match needs --topic, --group or --cluster")
    selector = AclFilter(
        principal=_principals("--principal", [principal])[0] if principal else "",
        resource_type=rtype,
        resource_name=name,
        pattern_type="" if pattern_type == "any" else pattern_type,
        operation=operation or "",
        permission=permission or "",
    )
    with Admin(get_state().address()) as admin:
        found = admin.describe_acls(selector)
    echo_acls(found, output)
    if not found and output != "json":
        note("no ACLs")


@acls.command()
@principal_options("Remove")
@click.option("--principal", "any_principals", metavar="User:NAME", multiple=True, help="Remove allows and denies.")
@click.option(
    "--operation",
    "operations",
    type=click.Choice(OPERATIONS),
    multiple=True,
    help="Only ACLs for this operation; repeatable [default: any operation].",
)
@resource_options
@click.option(
    "--resource-pattern-type",
    "pattern_type",
    type=click.Choice(["any", "literal", "prefixed", "match"]),
    default=None,
    help="As for list [default: literal when a resource is named, else any].",
)
@click.option("--yes", is_flag=True, help="Remove them [default: show what would be removed and exit 1].")
@server_option
@output_option(as_table="the ACLs (to be) removed", as_json="an object with removed and acls")
def remove(
    allow_principals: tuple[str, ...],
    deny_principals: tuple[str, ...],
    any_principals: tuple[str, ...],
    operations: tuple[str, ...],
    topics: tuple[str, ...],
    groups: tuple[str, ...],
    cluster: bool,
    pattern_type: str | None,
    yes: bool,
    output: str,
) -> None:
    """Remove the ACLs the options select: every combination of principal, operation and resource
    given (an option left out matches anything). Without --yes, print them and exit 1, removing
    nothing."""
    grants = [(p, ALLOW) for p in _principals("--allow-principal", allow_principals)]
    grants += [(p, DENY) for p in _principals("--deny-principal", deny_principals)]
    grants += [(p, "") for p in _principals("--principal", any_principals)]
    resources = _resources(topics, groups, cluster)
    if not grants and not resources:
        raise click.UsageError("name a principal (--allow-principal, --deny-principal, --principal) or a resource")
    if pattern_type is None:
        pattern_type = "literal" if resources else "any"
    if pattern_type == MATCH and not resources:
        raise click.UsageError("--resource-pattern-type match needs --topic, --group or --cluster")
    filters = [
        AclFilter(principal, rtype, name, "" if pattern_type == "any" else pattern_type, operation, permission)
        for (principal, permission), operation, (rtype, name) in itertools.product(
            grants or [("", "")], operations or [""], resources or [("", "")]
        )
    ]
    with Admin(get_state().address()) as admin:
        if not yes:
            found = {acl for f in filters for acl in admin.describe_acls(f)}
            shown = sorted(found, key=_sort_key)
            echo_acls(shown, output, removed=0)
            if not shown:
                note("no ACL matches: nothing to remove")
                return
            raise click.ClickException(f"re-run with --yes to remove these {len(shown)} ACLs")
        removed = sorted(admin.delete_acls(filters), key=_sort_key)
    echo_acls(removed, output, removed=len(removed))
    note(f"removed {len(removed)} ACL(s)")


@click.command()
@server_option
@output_option(as_table="the principal", as_json="an object with principal")
def whoami(output: str) -> None:
    """Show the principal the broker sees for this client (from its token or TLS certificate;
    User:ANONYMOUS without either)."""
    with Admin(get_state().address()) as admin:
        try:
            principal = admin.whoami()
        except LogsvcError as e:
            if e.status == grpc.StatusCode.UNIMPLEMENTED:
                raise LogsvcError(f"the broker at {admin.address} does not implement WhoAmI") from None
            raise
    if output == "json":
        echo_json({"principal": principal})
    else:
        echo_line(principal)
