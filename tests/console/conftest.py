"""The console under test is the real thing: ``logsvc console`` as a subprocess against a real
broker with real data, driven by the system's Chromium through Selenium (one browser and one
console per module; each test uses its own topics and groups)."""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from logsvc.server.app import Broker, create_server
from tests.conftest import ChildProcess, broker_settings, cli_env

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CONSOLE_TOKEN = "console-test-token-0123456789"
LISTENING = re.compile(rb"console listening on (http://\S+)")
SAMPLE_INTERVAL_MS = 200


class ConsoleProcess(ChildProcess):
    """``logsvc console`` as a child; :attr:`url` is read from its "console listening on" line."""

    def __init__(self) -> None:
        super().__init__()
        self.url = ""
        self._ready = threading.Event()

    def start(self, server: str, *flags: str, timeout_s: float = 30) -> ConsoleProcess:
        cmd = [
            sys.executable, "-m", "logsvc.cli", "console", "--server", server, "--listen", "127.0.0.1:0",
            "--sample-interval-ms", str(SAMPLE_INTERVAL_MS), *flags,
        ]  # fmt: skip
        self.spawn(cmd, cli_env())
        if not self._ready.wait(timeout_s):
            self.kill()
            raise RuntimeError("console did not start: " + self.stderr_text())
        return self

    def on_stderr_line(self, line: bytes) -> None:
        m = LISTENING.search(line)
        if m and not self._ready.is_set():
            self.url = m.group(1).decode()
            self._ready.set()


@pytest.fixture(scope="module")
def console_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A broker in this process for the module's tests."""
    broker = create_server(broker_settings(tmp_path_factory.mktemp("console-broker") / "data"))
    try:
        yield broker
    finally:
        broker.stop(grace_s=1)


@pytest.fixture(scope="module")
def tokens_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("console-tokens") / "tokens"
    path.write_text(f"# console operators\noperator {CONSOLE_TOKEN}\n")
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def console(console_broker: Broker, tokens_file: Path) -> Iterator[ConsoleProcess]:
    """The console for :func:`console_broker`, with ``--auth-tokens``."""
    proc = ConsoleProcess().start(console_broker.address, "--auth-tokens", str(tokens_file))
    try:
        yield proc
    finally:
        code = proc.terminate()
        assert code == 0, proc.stderr_text()
        assert "Traceback" not in proc.stderr_text()


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    """Headless Chromium from the system's packages (skipped when they are not installed:
    ``.ci/run`` installs them)."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.skip("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="logsvc-console-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--window-size=1280,900",
    ):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # for the CSP check
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    browser.set_page_load_timeout(30)
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser(driver: Any, console: ConsoleProcess) -> Any:
    """The module's browser with no session yet (signed out, a new CSRF token)."""
    driver.get(f"{console.url}/static/console.css")  # cookies are deleted for the page's site
    driver.delete_all_cookies()
    return driver


def wait_for(check: Callable[[], Any], timeout_s: float = 15, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; its value."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = check()
        except Exception:  # the page is between two renders: look again
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def http(
    url: str, data: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, str, dict[str, str]]:
    """GET (or POST ``data`` as a form) without following redirects: status, body, headers."""
    from urllib.parse import urlencode

    body = None if data is None else urlencode(data).encode()
    request = urllib.request.Request(url, data=body, headers=headers or {}, method="GET" if data is None else "POST")

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)
