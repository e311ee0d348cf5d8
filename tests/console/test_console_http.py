"""The console's safety rules over plain HTTP, against real consoles: the Origin and CSRF checks,
a console without ``--auth-tokens`` and one ``--read-only``; and :class:`Guard` on its own."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from logsvc.console.auth import COOKIE, NO_TOKENS, READ_ONLY, Guard, Sessions, same_origin
from logsvc.server.app import Broker
from logsvc_client import Admin, Consumer, TopicPartition
from logsvc_client.errors import InvalidConfig, PermissionDenied, Unauthenticated
from logsvc_connect.metrics import ConnectorMetrics
from tests.console.conftest import CONSOLE_TOKEN, ConsoleProcess, http, wait_for

GROUP = "http-group"
TOPIC = "http-topic"


@pytest.fixture(scope="module")
def group(console_broker: Broker) -> str:
    with Admin(console_broker.address) as admin:
        admin.create_topic(TOPIC, 1)
        admin.produce_records(TOPIC, [b"a", b"b", b"c"])
        admin.commit_offsets(GROUP, {TopicPartition(TOPIC, 0): 3})
    return GROUP


@pytest.fixture(scope="module")
def plain_console(console_broker: Broker) -> Iterator[ConsoleProcess]:
    """A console started without --auth-tokens."""
    proc = ConsoleProcess().start(console_broker.address)
    yield proc
    assert proc.terminate() == 0


@pytest.fixture(scope="module")
def read_only_console(console_broker: Broker, tokens_file: Path) -> Iterator[ConsoleProcess]:
    proc = ConsoleProcess().start(console_broker.address, "--read-only", "--auth-tokens", str(tokens_file))
    yield proc
    assert proc.terminate() == 0


def session_of(url: str) -> tuple[str, str]:
    """A new browser session: its cookie header and CSRF token, from the sign-in page."""
    status, body, headers = http(f"{url}/sign-in")
    assert status == 200
    cookie = headers["set-cookie"].split(";")[0]
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', body)
    assert match
    return cookie, match.group(1)


def signed_in(url: str) -> tuple[str, str]:
    cookie, csrf = session_of(url)
    status, _, headers = http(
        f"{url}/sign-in", {"csrf_token": csrf, "token": CONSOLE_TOKEN}, {"Cookie": cookie, "Origin": url}
    )
    assert status == 303
    # signing in gives a new session: the old id and its CSRF token are worth nothing now
    fresh = headers["set-cookie"].split(";")[0]
    assert fresh != cookie
    assert dry_run(url, cookie, csrf, Origin=url)[0] == 403
    _, body, _ = http(f"{url}/", headers={"Cookie": fresh})
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', body)
    assert match and match.group(1) != csrf
    return fresh, match.group(1)


def dry_run(url: str, cookie: str, csrf: str, **headers: str) -> tuple[int, str]:
    form = {"csrf_token": csrf, "topic": TOPIC, "spec": "earliest"}
    status, body, _ = http(f"{url}/groups/{GROUP}/reset", form, {"Cookie": cookie, **headers})
    return status, body


def test_a_post_from_another_site_or_without_origin_is_refused(console: ConsoleProcess, group: str) -> None:
    # Given a signed-in session
    cookie, csrf = signed_in(console.url)
    # Then a reset posted with another site's Origin, or with neither Origin nor Referer, is refused
    assert dry_run(console.url, cookie, csrf, Origin="http://evil.example")[0] == 403
    assert dry_run(console.url, cookie, csrf)[0] == 403
    assert dry_run(console.url, cookie, csrf, Referer="http://evil.example/groups")[0] == 403
    # And the same request from the console's own page is served
    status, body = dry_run(console.url, cookie, csrf, Referer=f"{console.url}/groups/{GROUP}")
    assert status == 200 and "reset-plan" in body


def test_a_post_without_the_sessions_csrf_token_is_refused(console: ConsoleProcess, group: str) -> None:
    cookie, _ = signed_in(console.url)
    _, other_csrf = session_of(console.url)
    status, body = dry_run(console.url, cookie, other_csrf, Origin=console.url)
    assert status == 403 and "CSRF" in body
    assert dry_run(console.url, cookie, "", Origin=console.url)[0] == 403


def test_a_reset_executes_only_after_its_dry_run_was_shown(console: ConsoleProcess, group: str) -> None:
    # Given a signed-in session that asks to execute a reset it never dry-ran
    cookie, csrf = signed_in(console.url)
    form = {"csrf_token": csrf, "topic": TOPIC, "spec": "latest", "confirm": "yes"}
    headers = {"Cookie": cookie, "Origin": console.url}
    status, body, _ = http(f"{console.url}/groups/{GROUP}/reset", form, headers)
    # Then it is refused; after the dry run of the same reset it executes
    assert status == 409 and "dry run first" in body
    dry = {k: v for k, v in form.items() if k != "confirm"}
    assert http(f"{console.url}/groups/{GROUP}/reset", dry, headers)[0] == 200
    status, body, _ = http(f"{console.url}/groups/{GROUP}/reset", form, headers)
    assert status == 200 and "reset-done" in body


def test_a_wrong_token_does_not_sign_in(console: ConsoleProcess) -> None:
    cookie, csrf = session_of(console.url)
    status, body, _ = http(
        f"{console.url}/sign-in", {"csrf_token": csrf, "token": "not-a-token-of-the-file"},
        {"Cookie": cookie, "Origin": console.url},
    )  # fmt: skip
    assert status == 401
    assert "not-a-token-of-the-file" not in body
    assert dry_run(console.url, cookie, csrf, Origin=console.url)[0] == 401


def test_pages_carry_a_strict_content_policy_and_session_cookie(console: ConsoleProcess) -> None:
    status, _, headers = http(f"{console.url}/")
    assert status == 200
    assert "script-src 'self'" in headers["content-security-policy"]
    cookie = headers["set-cookie"].lower()
    assert cookie.startswith(COOKIE) and "httponly" in cookie and "samesite=strict" in cookie


def test_without_auth_tokens_every_action_is_refused_and_the_page_says_so(
    plain_console: ConsoleProcess, group: str
) -> None:
    status, body, _ = http(f"{plain_console.url}/groups/{GROUP}")
    assert status == 200 and 'id="actions-refused"' in body and "without --auth-tokens" in body
    cookie, csrf = session_of(plain_console.url)
    status, body = dry_run(plain_console.url, cookie, csrf, Origin=plain_console.url)
    assert status == 403 and "without --auth-tokens" in body


def test_read_only_hides_the_actions_and_refuses_them(read_only_console: ConsoleProcess, group: str) -> None:
    status, body, _ = http(f"{read_only_console.url}/groups/{GROUP}")
    assert status == 200 and "reset-form" not in body
    cookie, csrf = session_of(read_only_console.url)
    status, body = dry_run(read_only_console.url, cookie, csrf, Origin=read_only_console.url)
    assert status == 403 and "read-only" in body


@pytest.fixture(scope="module")
def connector_metrics() -> Iterator[ConnectorMetrics]:
    """A connector's metrics page, as a running connector serves it."""
    metrics = ConnectorMetrics("orders-sink", "postgres")
    metrics.serve_http("127.0.0.1", 0)
    yield metrics
    metrics.stop_http()


def test_the_overview_shows_a_running_connector_with_its_rates_from_its_metrics(
    console_broker: Broker, connector_metrics: ConnectorMetrics
) -> None:
    # Given a console told a connector's metrics URL and one that answers nothing
    dead_url = "http://127.0.0.1:1/metrics"
    proc = ConsoleProcess().start(
        console_broker.address,
        "--connector-metrics", f"http://127.0.0.1:{connector_metrics.port}/metrics", "--connector-metrics", dead_url,
    )  # fmt: skip
    try:
        with Admin(console_broker.address) as admin:
            admin.create_topic("orders-in", 1)
        # And a member of group orders-sink whose client id says it is a postgres connector
        with Consumer(
            console_broker.address, group_id="orders-sink", client_id="logsvc-connect/postgres/orders-sink"
        ) as member:
            member.subscribe(["orders-in"])
            wait_for(lambda: member.poll(timeout_ms=100) or member.assignment(), what="the member joined")

            # When the connector writes records
            def shown() -> str | None:
                connector_metrics.records_written.inc(100)
                member.poll(timeout_ms=50)
                _, body, _ = http(f"{proc.url}/live/overview")
                connectors = body[body.find('id="connectors"') :]
                row = re.search(r'<tr><td><a href="/groups/orders-sink">orders-sink</a>.*?</tr>', connectors, re.S)
                return (
                    body
                    if row and "postgres" in row.group(0) and re.search(r"[1-9][0-9.]*k?/s", row.group(0))
                    else None
                )

            # Then the overview lists it as a connector with a write rate, and names the dead URL
            body = wait_for(shown, what="the connector's write rate")
            assert dead_url in body
    finally:
        assert proc.terminate() == 0


# -- the guard on its own ------------------------------------------------------------------------


def test_same_origin_compares_scheme_host_and_port() -> None:
    assert same_origin({"origin": "http://127.0.0.1:8080"}, "http", "127.0.0.1:8080")
    assert not same_origin({"origin": "http://127.0.0.1:8081"}, "http", "127.0.0.1:8080")
    assert not same_origin({"origin": "https://127.0.0.1:8080"}, "http", "127.0.0.1:8080")
    assert not same_origin({"origin": "null"}, "http", "127.0.0.1:8080")
    assert same_origin({"referer": "http://127.0.0.1:8080/groups/g"}, "http", "127.0.0.1:8080")
    assert not same_origin({}, "http", "127.0.0.1:8080")


def test_the_guard_checks_origin_then_csrf_then_token(tokens_file: Path) -> None:
    guard = Guard(str(tokens_file), read_only=False)
    sessions = Sessions()
    session = sessions.new()
    ok = {"origin": "http://h:1"}
    with pytest.raises(PermissionDenied, match="Origin"):
        guard.check_post(session, {"origin": "http://x:1"}, "http", "h:1", session.csrf_token)
    with pytest.raises(PermissionDenied, match="CSRF"):
        guard.check_post(session, ok, "http", "h:1", "wrong")
    with pytest.raises(Unauthenticated):
        guard.check_post(session, ok, "http", "h:1", session.csrf_token)
    with pytest.raises(Unauthenticated):
        guard.sign_in(session, "wrong-token-wrong-token")
    assert guard.sign_in(session, CONSOLE_TOKEN) == "User:operator"
    assert guard.check_post(session, ok, "http", "h:1", session.csrf_token) == "User:operator"


def test_without_tokens_or_read_only_the_guard_refuses_before_anything_else(tokens_file: Path) -> None:
    session = Sessions().new()
    for guard, why in ((Guard("", read_only=False), NO_TOKENS), (Guard(str(tokens_file), read_only=True), READ_ONLY)):
        assert guard.refusal() == why
        with pytest.raises(PermissionDenied) as refused:
            guard.check_post(session, {"origin": "http://h:1"}, "http", "h:1", session.csrf_token)
        assert refused.value.message == why


def test_a_malformed_tokens_file_is_refused_naming_its_line(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("just-one-word\n")
    with pytest.raises(InvalidConfig, match="line 1"):
        Guard(str(path), read_only=False)


def test_sessions_forget_the_least_recently_used_beyond_their_limit() -> None:
    sessions = Sessions(max_sessions=2)
    a, b = sessions.new(), sessions.new()
    assert sessions.get(a.id) is a  # a used again: b is now the oldest
    sessions.new()
    assert sessions.get(b.id) is None and sessions.get(a.id) is a
