"""The README runs top to bottom: its marked blocks, in order, in one bash session.

A block is run when the line before its fence is ``<!-- readme: run -->`` (prose blocks, the
configuration samples and the loops that never end are not); a shell block of the quickstart or the
connector sections that is not run says why, ``<!-- readme: skip (REASON) -->``, so a new command
block there cannot be left out by accident. Shell blocks are run as they are;
Python blocks through ``python - <<'EOF'``. The session is what a reader's terminal would be:
``set -euo pipefail``, a temporary working directory (the broker's ``./data`` is there too), the
venv's ``bin`` first on the PATH, no LOGSVC_* variables of the developer's. The broker is a real
``logsvc serve`` with the default settings (its groups wait the 3 s of
``initial_rebalance_delay_ms`` as a reader's would) on a free port; PostgreSQL and MongoDB are the
suite's. The README names 127.0.0.1:50051, its PostgreSQL DSN and its MongoDB URI; the harness
replaces exactly those strings, so the README stays as a reader needs it.

A command that fails, a topic created twice, an offset that is not there, a connector that exits
before it is stopped: the session stops and the test fails with its output.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.conftest import BrokerProcess, cli_env
from tests.fixtures.mongo import MongoServer, mongo  # noqa: F401
from tests.fixtures.postgres import PostgresCluster, postgres  # noqa: F401

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = "<!-- readme: run -->"
SKIP_MARKER = re.compile(r"^<!-- readme: skip \(.+\) -->$")  # with the reason in brackets
FENCE = re.compile(r"^```(\w+)\s*$")
#: what the README names, replaced by the harness's own
README_SERVER = "127.0.0.1:50051"
README_PG_DSN = "host=127.0.0.1 dbname=shop user=shop"
README_MONGO_URI = "mongodb://127.0.0.1:27017"
#: the sections whose blocks must be run (the issue's "quickstart and connector sections")
RUN_SECTIONS = ("## CLI quickstart", "## A client in 15 lines", "## Sink connectors")


class Block(NamedTuple):
    section: str  # the "## ..." heading it is under
    language: str  # sh | python
    text: str
    line: int  # of the opening fence, 1-based


def marked_blocks(markdown: str) -> list[Block]:
    """The fenced blocks right after a :data:`MARKER` line, in order. A marker not followed by a
    fence, or on a block of another language, is an error (a README edit that lost a block)."""
    lines = markdown.splitlines()
    blocks: list[Block] = []
    section = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            section = line.strip()
        if line.strip() == MARKER:
            fence = FENCE.match(lines[i + 1]) if i + 1 < len(lines) else None
            assert fence, f"README.md:{i + 1}: {MARKER} is not followed by a fenced block"
            language = {"sh": "sh", "bash": "sh", "python": "python"}.get(fence.group(1))
            assert language, f"README.md:{i + 2}: a marked block must be sh or python, not {fence.group(1)}"
            end = lines.index("```", i + 2)
            blocks.append(Block(section, language, "\n".join(lines[i + 2 : end]) + "\n", i + 2))
            i = end
        i += 1
    return blocks


def unmarked_shell_blocks(markdown: str, sections: tuple[str, ...]) -> list[int]:
    """Lines of the shell blocks in ``sections`` with neither :data:`MARKER` nor a skip marker
    before them: a command block added there must say whether the README test runs it."""
    lines = markdown.splitlines()
    section, inside, found = "", False, []
    for i, line in enumerate(lines):
        if line.startswith("## ") and not inside:
            section = line.strip()
        if line.startswith("```"):
            opening = not inside
            inside = not inside
            if opening and line.strip() in ("```sh", "```bash") and section in sections:
                before = lines[i - 1].strip() if i else ""
                if before != MARKER and not SKIP_MARKER.match(before):
                    found.append(i + 1)
    return found


def session_script(blocks: list[Block], replacements: dict[str, str]) -> str:
    """One bash script of every block, with the README's addresses replaced."""
    parts = ["set -euo pipefail"]
    for block in blocks:
        text = block.text
        for old, new in replacements.items():
            text = text.replace(old, new)
        parts.append(f"# -- README.md:{block.line} ({block.section})")
        if block.language == "python":
            assert "LOGSVC_README_PY" not in text
            parts.append(f"python - <<'LOGSVC_README_PY'\n{text}LOGSVC_README_PY")
        else:
            parts.append(text.rstrip("\n"))
    return "\n".join(parts) + "\n"


def test_the_marked_blocks_cover_the_quickstart_the_client_and_the_connectors() -> None:
    # Given the README
    blocks = marked_blocks(README.read_text())
    text = "".join(b.text for b in blocks)

    # Then each section the issue names has run blocks, and every string the harness replaces is there
    assert {b.section for b in blocks} >= set(RUN_SECTIONS)
    for name in (README_SERVER, README_PG_DSN, README_MONGO_URI):
        assert name in text, f"{name!r} is in no run block: the harness would not replace it"
    # ... every shell block there says whether it runs
    assert unmarked_shell_blocks(README.read_text(), RUN_SECTIONS) == []
    assert unmarked_shell_blocks("## A\n```sh\nls\n```\n", ("## A",)) == [2]
    # ... and the parser refuses a marker that lost its block
    with pytest.raises(AssertionError, match="not followed by a fenced block"):
        marked_blocks(f"## x\n{MARKER}\ntext\n")


class Session(NamedTuple):
    returncode: int
    output: str


@pytest.fixture
def readme_broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    """``logsvc serve`` with the default settings, its data in ``./data`` of the session's directory."""
    env = cli_env(LOGSVC_INITIAL_REBALANCE_DELAY_MS="3000")  # the default, which the tests' brokers lower
    proc = BrokerProcess(tmp_path / "data", base_env=env).start()
    try:
        yield proc
    finally:
        proc.kill()


def run_session(script: str, cwd: Path, timeout_s: float) -> Session:
    """Run ``script`` in bash in ``cwd``; whatever it left in the background is killed at the end."""
    (cwd / "readme.sh").write_text(script)
    venv_bin = str(Path(sys.executable).parent)
    env = cli_env(PATH=f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("PYTHONWARNINGS")  # a reader's terminal: the CLI's own warnings are not errors there
    proc = subprocess.Popen(
        ["bash", "readme.sh"], cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return Session(-1, out.decode(errors="replace") + f"\n[timed out after {timeout_s} s]")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # connectors a failed session left running
    return Session(proc.returncode, out.decode(errors="replace"))


def test_the_readme_runs_top_to_bottom_against_a_fresh_broker_and_postgresql_and_mongodb(
    tmp_path: Path,
    readme_broker: BrokerProcess,
    postgres: PostgresCluster,  # noqa: F811
    mongo: MongoServer,  # noqa: F811
) -> None:
    # Given the README's run blocks, pointed at this test's broker, a fresh database and MongoDB
    markdown = README.read_text()
    blocks = marked_blocks(markdown)
    replacements = {
        README_SERVER: readme_broker.address,
        README_PG_DSN: postgres.fresh_database("readme"),
        README_MONGO_URI: mongo.uri,
    }

    # When they run in order in one bash session
    session = run_session(session_script(blocks, replacements), tmp_path, timeout_s=150)

    # Then every command succeeded
    assert session.returncode == 0, f"{session.output[-6000:]}\n--- broker:\n{readme_broker.stderr_text()[-3000:]}"
    # ... and what the README says the client example prints, it printed
    for claim in re.findall(r"print\(.*\)\s+# (RecordPosition\(.*?\))", markdown):
        assert claim in session.output
