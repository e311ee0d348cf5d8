"""``logsvc acls``, ``logsvc quotas`` and ``logsvc whoami`` as a user runs them: a subprocess
against a real ``logsvc serve`` of their own (its ACLs would change what other tests may do once
they are enforced; the CLI, calling without a token, is one of its super users)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.cli.conftest import Cli
from tests.conftest import BrokerProcess, cli_env


@pytest.fixture(scope="module")
def access_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    data_dir = tmp_path_factory.mktemp("cli-acls") / "data"
    proc = BrokerProcess(
        data_dir,
        base_env=cli_env(),
        env={"LOGSVC_SUPER_USERS": "User:ANONYMOUS", "LOGSVC_QUOTA_FETCH_BYTES_PER_SECOND": "5000"},
    ).start()
    try:
        yield proc
    finally:
        proc.kill()


@pytest.fixture
def cli(access_broker: BrokerProcess) -> Iterator[Cli]:
    c = Cli(access_broker.address, access_broker.data_dir)
    yield c
    c.run("acls", "remove", "--resource-pattern-type", "any", "--topic", "*", "--yes")  # best effort


def lines(done: object) -> list[str]:
    return done.stdout.decode().splitlines()  # type: ignore[attr-defined]


def acls_json(cli: Cli, *args: str) -> list[dict[str, str]]:
    return list(json.loads(cli.ok("acls", "list", "-o", "json", *args).stdout)["acls"])


def test_add_creates_the_cross_product_in_one_request_and_list_shows_it(cli: Cli) -> None:
    # When two principals get two operations on two topics
    done = cli.ok(
        "acls", "add", "--allow-principal", "User:alice", "--allow-principal", "User:bob",
        "--operation", "read", "--operation", "describe", "--topic", "a1", "--topic", "a2",
    )  # fmt: skip
    # Then eight ACLs are added and printed
    assert len(lines(done)) == 1 + 8
    assert "added 8 ACL(s), 8 of them new" in done.stderr.decode()
    # And listing one principal's on one topic shows them as a table
    table = lines(cli.ok("acls", "list", "--principal", "User:alice", "--topic", "a1"))
    assert table[0].split() == ["PRINCIPAL", "PERMISSION", "OPERATION", "RESOURCE", "NAME", "PATTERN"]
    assert [row.split() for row in table[1:]] == [
        ["User:alice", "allow", "describe", "topic", "a1", "literal"],
        ["User:alice", "allow", "read", "topic", "a1", "literal"],
    ]
    # And adding one of them again adds nothing new
    again = cli.ok("acls", "add", "--allow-principal", "User:bob", "--operation", "read", "--topic", "a2")
    assert "1 ACL(s), 0 of them new" in again.stderr.decode()


def test_list_by_match_shows_every_acl_that_applies_to_a_topic(cli: Cli) -> None:
    cli.ok("acls", "add", "--deny-principal", "User:*", "--operation", "write", "--topic", "m.",
           "--resource-pattern-type", "prefixed")  # fmt: skip
    cli.ok("acls", "add", "--allow-principal", "User:carol", "--operation", "all", "--topic", "m.orders")
    cli.ok("acls", "add", "--allow-principal", "User:carol", "--operation", "read", "--topic", "other")
    found = acls_json(cli, "--topic", "m.orders", "--resource-pattern-type", "match")
    assert [(a["principal"], a["resource_name"], a["pattern_type"]) for a in found] == [
        ("User:*", "m.", "prefixed"),
        ("User:carol", "m.orders", "literal"),
    ]


def test_remove_shows_what_it_would_remove_until_told_yes(cli: Cli) -> None:
    cli.ok("acls", "add", "--allow-principal", "User:dave", "--operation", "read", "--operation", "write",
           "--topic", "r1")  # fmt: skip
    # When removing without --yes
    done = cli.run("acls", "remove", "--allow-principal", "User:dave", "--topic", "r1")
    # Then the ACLs are shown, nothing is removed, and the exit is non-zero with one error line
    assert done.returncode == 1
    assert len(lines(done)) == 3
    assert done.stderr.decode().strip() == "error: re-run with --yes to remove these 2 ACLs"
    assert len(acls_json(cli, "--principal", "User:dave")) == 2
    # When one operation is removed with --yes
    removed = cli.ok("acls", "remove", "--allow-principal", "User:dave", "--operation", "write", "--topic", "r1",
                     "--yes")  # fmt: skip
    assert [row.split()[2] for row in lines(removed)[1:]] == ["write"]
    assert [a["operation"] for a in acls_json(cli, "--principal", "User:dave")] == ["read"]
    # And a selection that matches nothing says so and succeeds
    nothing = cli.ok("acls", "remove", "--principal", "User:nobody")
    assert "nothing to remove" in nothing.stderr.decode()


def test_cluster_acls_take_no_name(cli: Cli) -> None:
    cli.ok("acls", "add", "--allow-principal", "User:ops", "--operation", "alter", "--cluster")
    assert acls_json(cli, "--cluster") == [
        {
            "principal": "User:ops",
            "resource_type": "cluster",
            "resource_name": "logsvc-cluster",
            "pattern_type": "literal",
            "operation": "alter",
            "permission": "allow",
        }
    ]
    cli.ok("acls", "remove", "--cluster", "--yes")
    assert acls_json(cli, "--cluster") == []


@pytest.mark.parametrize(
    ("args", "in_error"),
    [
        (("acls", "add", "--allow-principal", "alice", "--operation", "read", "--topic", "t"),
         "principal 'alice' is not a principal: use User:NAME"),
        (("acls", "add", "--allow-principal", "User:alice", "--operation", "reed", "--topic", "t"),
         "'reed' is not one of"),
        (("acls", "add", "--allow-principal", "User:alice", "--operation", "read", "--topic", "a b"),
         "resource_name 'a b' is not a topic name"),
        (("acls", "add", "--allow-principal", "User:alice", "--operation", "read"),
         "give at least one --topic, --group or --cluster"),
        (("acls", "add", "--operation", "read", "--topic", "t"), "give at least one --allow-principal"),
        (("acls", "add", "--allow-principal", "User:a", "--operation", "alter", "--cluster",
          "--resource-pattern-type", "prefixed"), "'prefixed' is not allowed for the cluster"),
        (("acls", "list", "--topic", "t", "--group", "g"), "at most one of --topic, --group, --cluster"),
        (("acls", "list", "--resource-pattern-type", "match"), "match needs --topic, --group or --cluster"),
        (("acls", "remove"), "name a principal"),
        (("quotas", "set", "alice", "--produce-bytes-per-second", "1"), "principal 'alice' is not a principal"),
        (("quotas", "set", "User:alice"), "give --produce-bytes-per-second and/or --fetch-bytes-per-second"),
        (("quotas", "set", "User:alice", "--fetch-bytes-per-second", "-1"), "-1 is not in the range 0<=x<="),
        (("quotas", "remove", "User:*"), "name one principal here"),
    ],
)  # fmt: skip
def test_bad_input_is_one_error_line_and_a_usage_exit(cli: Cli, args: tuple[str, ...], in_error: str) -> None:
    line = cli.fails(*args, code=2)
    assert in_error in line


def test_quotas_set_list_and_remove(cli: Cli) -> None:
    # When alice gets a produce quota, then a fetch quota of "no limit"
    cli.ok("quotas", "set", "User:alice", "--produce-bytes-per-second", "1000")
    shown = cli.ok("quotas", "set", "User:alice", "--fetch-bytes-per-second", "0")
    # Then the set prints her row, keeping the produce quota
    assert [row.split() for row in lines(shown)[1:]] == [["User:alice", "1000", "unlimited"]]
    # And the list shows the defaults first (fetch 5000 from the broker's settings)
    table = [row.split() for row in lines(cli.ok("quotas", "list"))]
    assert table[1:] == [["(default)", "unlimited", "5000"], ["User:alice", "1000", "unlimited"]]
    listed = json.loads(cli.ok("quotas", "list", "User:alice", "-o", "json").stdout)
    assert listed == {
        "default": {"produce_bytes_per_second": 0, "fetch_bytes_per_second": 5000},
        "overrides": [{"principal": "User:alice", "produce_bytes_per_second": 1000, "fetch_bytes_per_second": 0}],
    }
    # When her override is removed (and bob, who had none)
    done = cli.ok("quotas", "remove", "User:alice", "User:bob")
    assert lines(done) == ["removed the quota override of User:alice"]
    assert "User:bob had no quota override" in done.stderr.decode()
    assert json.loads(cli.ok("quotas", "list", "-o", "json").stdout)["overrides"] == []


def test_a_default_rate_shows_as_default(cli: Cli) -> None:
    cli.ok("quotas", "set", "User:erin", "--produce-bytes-per-second", "7")
    row = lines(cli.ok("quotas", "list", "User:erin"))[2]
    assert row.split(None, 2) == ["User:erin", "7", "default (5000)"]
    cli.ok("quotas", "remove", "User:erin")


def test_whoami_shows_the_principal_the_broker_sees(cli: Cli) -> None:
    assert lines(cli.ok("whoami")) == ["User:ANONYMOUS"]
    assert json.loads(cli.ok("whoami", "-o", "json").stdout) == {"principal": "User:ANONYMOUS"}


def test_help_texts_name_the_commands(cli: Cli) -> None:
    assert "acls" in cli.ok("--help", server=False).stdout.decode()
    for group, commands in (("acls", ("add", "list", "remove")), ("quotas", ("set", "list", "remove"))):
        text = cli.ok(group, "--help", server=False).stdout.decode()
        assert all(c in text for c in commands)
