"""The console in a real browser (headless Chromium through Selenium) against a real broker with
real data. Each test saves a screenshot of the page it checked under its temporary directory."""

from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from logsvc.server.app import Broker
from logsvc_client import Admin, Producer, TopicPartition
from logsvc_client.records import Record
from logsvc_connect.dead_letters import DeadLetters
from logsvc_connect.sink import DataError, SinkRecord
from tests.console.conftest import CONSOLE_TOKEN, ConsoleProcess, wait_for

_names = itertools.count()
TIMESTAMP_MS = 1_767_323_045_000  # 2026-01-02T03:04:05Z


def new_name(prefix: str) -> str:
    return f"{prefix}{next(_names)}-{os.getpid()}"


def produce(address: str, topic: str, values: list[bytes], partition: int = 0, key: bytes | None = None) -> list[int]:
    with Producer(address, linger_ms=0) as producer:
        futures = [producer.send(topic, v, key, partition=partition) for v in values]
        return [f.result().offset for f in futures]


def new_topic(address: str, partitions: int = 1) -> str:
    name = new_name("t")
    with Admin(address) as admin:
        admin.create_topic(name, partitions)
    return name


def shot(browser: Any, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    browser.save_screenshot(str(path))
    assert path.stat().st_size > 0


def sign_in(browser: Any, console: ConsoleProcess) -> None:
    browser.get(f"{console.url}/sign-in")
    browser.find_element(By.ID, "token").send_keys(CONSOLE_TOKEN)
    browser.find_element(By.CSS_SELECTOR, "#sign-in-form button").click()
    wait_for(lambda: "User:operator" in browser.find_element(By.CSS_SELECTOR, "header .who").text, what="signed in")


def canvas_drew(browser: Any, chart_id: str) -> bool:
    """Whether the chart's canvas has a pixel that is not transparent."""
    return bool(
        browser.execute_script(
            """
            const c = document.querySelector('#' + arguments[0] + ' canvas');
            if (!c || !c.width || !c.height) return false;
            const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) return true;
            return false;
            """,
            chart_id,
        )
    )


def committed(address: str, group: str, topic: str) -> dict[int, int]:
    with Admin(address) as admin:
        return {tp.partition: c.offset for tp, c in admin.committed_offsets(group).items() if tp.topic == topic}


def test_the_overview_lists_the_topics(
    browser: Any, console: ConsoleProcess, console_broker: Broker, tmp_path: Path
) -> None:
    # Given two topics with records
    first, second = new_topic(console_broker.address, 2), new_topic(console_broker.address)
    produce(console_broker.address, first, [b"a", b"b"])
    # When the overview is opened
    browser.get(console.url + "/")
    # Then both topics are listed with their partition counts
    table = browser.find_element(By.ID, "topics")
    rows = {r.find_elements(By.TAG_NAME, "td")[0].text: r for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")}
    assert first in rows and second in rows
    assert rows[first].find_elements(By.TAG_NAME, "td")[1].text == "2"
    shot(browser, tmp_path, "overview")
    # And in a dark system theme the page turns dark
    browser.execute_cdp_cmd(
        "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]}
    )
    try:
        background = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(20, 23, 29)"
        shot(browser, tmp_path, "overview-dark")
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})


def test_the_message_browser_pages_to_a_record_and_shows_its_json(
    browser: Any, console: ConsoleProcess, console_broker: Broker, tmp_path: Path
) -> None:
    # Given 30 JSON records on partition 0 (a page holds 20)
    topic = new_topic(console_broker.address)
    produce(console_broker.address, topic, [json.dumps({"n": i, "name": f"order-{i}"}).encode() for i in range(30)])
    # When the browser opens the partition, goes to the next page and opens record 25
    browser.get(f"{console.url}/topics/{topic}/messages?partition=0")
    assert browser.find_elements(By.ID, "record-19") and not browser.find_elements(By.ID, "record-20")
    browser.find_element(By.ID, "next-page").click()
    record = wait_for(lambda: browser.find_element(By.ID, "record-25"), what="record 25 on the second page")
    shot(browser, tmp_path, "messages")
    record.find_element(By.CSS_SELECTOR, "a.offset").click()
    # Then the record's own page (a URL to share) shows its value as pretty JSON
    wait_for(lambda: browser.current_url.endswith(f"/topics/{topic}/partitions/0/offsets/25"), what="record URL")
    shown = browser.find_element(By.CSS_SELECTOR, "#record pre").text
    assert json.loads(shown) == {"n": 25, "name": "order-25"}
    assert '\n  "n": 25' in shown
    assert "json" in browser.find_element(By.CSS_SELECTOR, "#record .kind").text
    shot(browser, tmp_path, "record")


def test_the_message_browser_filters_by_key_and_starts_at_a_time_or_the_latest(
    browser: Any, console: ConsoleProcess, console_broker: Broker
) -> None:
    # Given 10 records a second apart from 2026-01-02T03:04:05Z, and one more with key k1
    topic = new_topic(console_broker.address)
    with Producer(console_broker.address, linger_ms=0) as producer:
        for i in range(10):
            producer.send(topic, b"x%d" % i, b"other", partition=0, timestamp_ms=TIMESTAMP_MS + i * 1000)
        producer.send(topic, b"mine", b"k1", partition=0, timestamp_ms=TIMESTAMP_MS + 10_000).result()

    def shown() -> list[str]:
        return [e.get_attribute("id") for e in browser.find_elements(By.CSS_SELECTOR, "article.record")]

    # Then a key filter shows only k1's record
    browser.get(f"{console.url}/topics/{topic}/messages?partition=0&key=k1")
    assert shown() == ["record-10"]
    # And the latest 3 are the last three
    browser.get(f"{console.url}/topics/{topic}/messages?partition=0&start=latest&n=3")
    assert shown() == ["record-8", "record-9", "record-10"]
    # And a start time finds the first record at or after it
    browser.get(f"{console.url}/topics/{topic}/messages?partition=0&start=time&time=2026-01-02T03:04:12Z&n=2")
    assert shown() == ["record-7", "record-8"]


def test_a_script_value_renders_as_text_and_runs_nothing(
    browser: Any, console: ConsoleProcess, console_broker: Broker, tmp_path: Path
) -> None:
    # Given a record whose key and value are markup
    topic = new_topic(console_broker.address)
    (offset,) = produce(console_broker.address, topic, [b"<script>alert(1)</script>"], key=b"<b>k</b>")
    # When its page and the browser page show it
    for url in (
        f"{console.url}/topics/{topic}/partitions/0/offsets/{offset}",
        f"{console.url}/topics/{topic}/messages?partition=0",
    ):
        browser.get(url)
        # Then it is text on the page, no script element holds it and no alert fired
        assert browser.find_element(By.CSS_SELECTOR, "pre").text == "<script>alert(1)</script>"
        assert "<b>k</b>" in browser.find_element(By.TAG_NAME, "main").text
        assert not browser.find_elements(By.XPATH, "//script[contains(., 'alert(1)')]")
        assert not browser.find_elements(By.XPATH, "//main//b[text()='k']")
        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert.text  # noqa: B018
    shot(browser, tmp_path, "escaped")


def test_the_topic_page_charts_the_produce_rate(
    browser: Any, console: ConsoleProcess, console_broker: Broker, tmp_path: Path
) -> None:
    topic = new_topic(console_broker.address, 3)
    # Given a topic's page whose chart has started (two samples of the new topic: one rate)
    browser.get(f"{console.url}/topics/{topic}")
    chart = browser.find_element(By.ID, "rate-chart")
    wait_for(lambda: int(chart.get_attribute("data-points") or 0) >= 1, what="the chart's first rate")
    # When records are produced, Then the chart shows a rate above 0, drawn on its canvas
    produce(console_broker.address, topic, [b"v"] * 50)
    wait_for(lambda: float(browser.find_element(By.ID, "rate-chart").get_attribute("data-max") or 0) > 0,
             what="a produce rate above 0")  # fmt: skip
    assert len(browser.find_elements(By.CSS_SELECTOR, "#partitions tbody tr")) == 3
    assert wait_for(lambda: canvas_drew(browser, "rate-chart"), what="the rate chart drawn")
    shot(browser, tmp_path, "topic")


def test_a_groups_lag_chart_updates_after_more_records_are_produced(
    browser: Any, console: ConsoleProcess, console_broker: Broker, tmp_path: Path
) -> None:
    # Given a group that committed offset 5 of a topic holding 10 records
    address = console_broker.address
    topic, group = new_topic(address), new_name("g")
    produce(address, topic, [b"r"] * 10)
    with Admin(address) as admin:
        admin.commit_offsets(group, {TopicPartition(topic, 0): 5})
    browser.get(f"{console.url}/groups/{group}")
    chart = browser.find_element(By.ID, "lag-chart")
    wait_for(lambda: chart.get_attribute("data-last") == "5", what="the chart showing a lag of 5")
    # When 7 more records are produced
    produce(address, topic, [b"r"] * 7)
    # Then, without a reload, the chart's line and the table reach a lag of 12
    wait_for(lambda: chart.get_attribute("data-last") == "12", what="the chart showing a lag of 12")
    wait_for(lambda: browser.find_element(By.ID, "total-lag").text == "12", what="the table's total lag")
    assert int(chart.get_attribute("data-points")) >= 2
    assert wait_for(lambda: canvas_drew(browser, "lag-chart"), what="the lag chart drawn")
    shot(browser, tmp_path, "group")


def test_a_dry_run_reset_shows_the_plan_and_changes_nothing_until_confirmed(
    browser: Any, console: ConsoleProcess, console_broker: Broker, tmp_path: Path
) -> None:
    # Given a group at offset 8 of 10 records, and a signed-in operator
    address = console_broker.address
    topic, group = new_topic(address), new_name("g")
    produce(address, topic, [b"r"] * 10)
    with Admin(address) as admin:
        admin.commit_offsets(group, {TopicPartition(topic, 0): 8})
    sign_in(browser, console)
    # When a reset to the earliest offset is dry-run
    browser.get(f"{console.url}/groups/{group}")
    Select(browser.find_element(By.NAME, "spec")).select_by_visible_text("earliest")
    browser.find_element(By.ID, "dry-run").click()
    # Then the plan shows 8 -> 0 and nothing changed
    note = wait_for(lambda: browser.find_element(By.ID, "reset-plan-note"), what="the plan")
    assert "nothing has changed" in note.text
    cells = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#reset-plan tbody td")]
    assert cells == [topic, "0", "8", "0"]
    assert committed(address, group, topic) == {0: 8}
    shot(browser, tmp_path, "reset-plan")
    # When the plan is confirmed with the second click
    browser.find_element(By.ID, "confirm-reset").click()
    wait_for(lambda: browser.find_element(By.ID, "reset-done"), what="the reset done")
    # Then the offset moved
    assert committed(address, group, topic) == {0: 0}
    shot(browser, tmp_path, "reset-done")


def test_a_reset_is_refused_while_the_group_has_live_members(
    browser: Any, console: ConsoleProcess, console_broker: Broker
) -> None:
    from logsvc_client import Consumer

    address = console_broker.address
    topic, group = new_topic(address), new_name("g")
    produce(address, topic, [b"r"] * 3)
    sign_in(browser, console)
    with Consumer(address, group_id=group, enable_auto_commit=False) as consumer:
        consumer.subscribe([topic])
        wait_for(lambda: consumer.poll(timeout_ms=200) or consumer.assignment(), what="the member joined")
        browser.get(f"{console.url}/groups/{group}")
        assert "refuses a reset" in browser.find_element(By.ID, "members-active").text
        browser.find_element(By.ID, "dry-run").click()
        message = wait_for(lambda: browser.find_element(By.ID, "error-message"), what="the refusal")
        assert "GroupNotEmpty" in message.text


def dead_letter(address: str, connector: str, records: list[Record]) -> None:
    """Dead-letter ``records`` as the connector runtime does, and commit its group past them."""
    letters = DeadLetters(address, f"{connector}.dlq", connector)
    try:
        letters.send([(SinkRecord(*r, doc=None), DataError(f"bad value at {r.offset}", "ValueError")) for r in records],
                     attempts=3)  # fmt: skip
    finally:
        letters.close()
    with Admin(address) as admin:
        admin.commit_offsets(connector, {TopicPartition(records[0].topic, 0): records[-1].offset + 1})


def test_replaying_a_dead_letter_puts_exactly_one_copy_back(
    browser: Any, console: ConsoleProcess, console_broker: Broker, tmp_path: Path
) -> None:
    # Given two dead-lettered records of a source topic
    address = console_broker.address
    topic, connector = new_topic(address), new_name("sink")
    offsets = produce(address, topic, [b'{"bad": 1}', b'{"bad": 2}'], key=b"k")
    records = [
        Record(topic, 0, o, 0, b"k", v, ()) for o, v in zip(offsets, [b'{"bad": 1}', b'{"bad": 2}'], strict=True)
    ]
    dead_letter(address, connector, records)
    sign_in(browser, console)
    browser.get(f"{console.url}/dead-letters/{connector}")
    letter = browser.find_element(By.ID, "letter-1")
    assert f"{topic}/0@1" in letter.text and "ValueError" in letter.text and "bad value at 1" in letter.text
    shot(browser, tmp_path, "dead-letters")
    # When dead letter 1 is replayed
    letter.find_element(By.CSS_SELECTOR, "button.replay").click()
    done = wait_for(lambda: browser.find_element(By.ID, "replayed"), what="the replay")
    assert f"{topic}/0@2" in done.text
    # Then one copy is back on the source partition, and the list says so and offers no second replay
    with Admin(address) as admin:
        assert admin.describe_topic(topic).partition(0).next_offset == 3
    browser.get(f"{console.url}/dead-letters/{connector}")
    letter = browser.find_element(By.ID, "letter-1")
    assert "Replayed to" in letter.text and not letter.find_elements(By.CSS_SELECTOR, "button.replay")
    assert browser.find_elements(By.CSS_SELECTOR, "#letter-0 button.replay")
    # When the replay is posted again from a page loaded before it (a second tab, the back button)
    browser.execute_script(
        """
        const form = document.createElement('form');
        form.method = 'post';
        form.action = arguments[0];
        for (const [name, value] of [['csrf_token', arguments[1]], ['offset', '1']]) {
            const input = document.createElement('input');
            input.type = 'hidden'; input.name = name; input.value = value;
            form.appendChild(input);
        }
        document.body.appendChild(form);
        form.submit();
        """,
        f"/dead-letters/{connector}/replay",
        browser.find_element(By.CSS_SELECTOR, "#letter-0 input[name=csrf_token]").get_attribute("value"),
    )
    # Then it is refused, and there is still exactly one copy
    message = wait_for(lambda: browser.find_element(By.ID, "error-message"), what="the refusal")
    assert "already replayed" in message.text
    with Admin(address) as admin:
        assert admin.describe_topic(topic).partition(0).next_offset == 3
    shot(browser, tmp_path, "replayed")


def test_an_action_without_the_token_is_refused(
    browser: Any, console: ConsoleProcess, console_broker: Broker, tmp_path: Path
) -> None:
    # Given a group, and a browser that has not signed in
    address = console_broker.address
    topic, group = new_topic(address), new_name("g")
    produce(address, topic, [b"r"] * 4)
    with Admin(address) as admin:
        admin.commit_offsets(group, {TopicPartition(topic, 0): 4})
    browser.get(f"{console.url}/groups/{group}")
    assert "sign in" in browser.find_element(By.ID, "actions-sign-in").text
    # When it submits a reset
    browser.find_element(By.ID, "dry-run").click()
    # Then it is refused and nothing changed
    message = wait_for(lambda: browser.find_element(By.ID, "error-message"), what="the refusal")
    assert "Unauthenticated" in message.text and "console token" in message.text
    assert committed(address, group, topic) == {0: 4}
    shot(browser, tmp_path, "refused")


def test_no_page_breaks_the_content_security_policy_or_logs_an_error(
    browser: Any, console: ConsoleProcess, console_broker: Broker
) -> None:
    # Given a topic with a record and a group (every page then has something to show)
    address = console_broker.address
    topic, group = new_topic(address), new_name("g")
    produce(address, topic, [b'{"a": 1}'])
    with Admin(address) as admin:
        admin.commit_offsets(group, {TopicPartition(topic, 0): 0})
    browser.get_log("browser")  # what earlier tests left
    # When each page is opened and lets its scripts run (polling, charts)
    for path in ("/", f"/topics/{topic}", f"/topics/{topic}/messages", f"/groups/{group}", "/dead-letters"):
        browser.get(console.url + path)
        wait_for(lambda: browser.execute_script("return window.htmx !== undefined && window.uPlot !== undefined"),
                 what=f"htmx and uPlot loaded on {path}")  # fmt: skip
    time.sleep(1)
    # Then the browser logged no CSP violation and no script error
    problems = [e["message"] for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert not problems
