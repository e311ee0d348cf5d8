"""Each topic a database sink consumes is written to a table or collection of its own: two topics
whose names map to one (``orders.eu`` and ``orders-eu`` → table ``orders_eu``) are a
configuration error at start, before anything is written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from logsvc_client.errors import InvalidConfig
from logsvc_connect import app
from tests.conftest import cli_env

ADAPTERS = {
    "postgres": '[postgres]\ndsn = "host=127.0.0.1 dbname=shop"\n',
    "mongo": '[mongo]\nuri = "mongodb://127.0.0.1:1"\ndatabase = "shop"\n',
}


def write_config(tmp_path: Path, kind: str, topics: list[str], template: str | None = None) -> Path:
    adapter = ADAPTERS[kind]
    if template is not None:
        adapter += f'{"table" if kind == "postgres" else "collection"} = "{template}"\n'
    path = tmp_path / f"{kind}.toml"
    quoted = ", ".join(f'"{t}"' for t in topics)
    path.write_text(f'name = "names"\nserver = "127.0.0.1:1"\ntopics = [{quoted}]\n{adapter}')
    return path


@pytest.mark.parametrize("topics", [["orders.eu", "orders-eu"], ["orders_eu", "orders.eu"], ["orders-eu", "orders_eu"]])
def test_postgres_refuses_two_topics_that_map_to_one_table_naming_both(tmp_path: Path, topics: list[str]) -> None:
    # Given a PostgreSQL connector consuming two topics that both become table orders_eu
    config = write_config(tmp_path, "postgres", ["orders", *topics])

    # When it starts
    done = subprocess.run(
        [sys.executable, "-m", "logsvc.cli", "connect", "postgres", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        env=cli_env(),
    )

    # Then it stops at once with one error line naming both topics and the table
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert f"topics {topics[0]} and {topics[1]} both map to table orders_eu" in lines[0]


@pytest.mark.parametrize(
    ("kind", "template", "topics", "target"),
    [
        ("postgres", "{topic}", ["orders.eu", "orders-eu"], "table orders_eu"),
        ("postgres", "sink_{topic}", ["a.b", "a_b"], "table sink_a_b"),
        ("postgres", "all_orders", ["orders", "returns"], "table all_orders"),
        ("mongo", "all_orders", ["orders", "returns"], "collection all_orders"),
        ("mongo", "{topic}", ["orders", "orders"], None),  # one topic listed twice is one topic
        ("mongo", "{topic}", ["orders.eu", "orders-eu", "orders_eu"], None),  # three collections
        ("postgres", "{topic}", ["orders.eu", "orders.us"], None),
    ],
)
def test_a_sink_config_is_refused_exactly_when_two_topics_share_a_target(
    tmp_path: Path, kind: str, template: str, topics: list[str], target: str | None
) -> None:
    # Given a connector config with a table/collection template and topics
    config = write_config(tmp_path, kind, topics, template)

    # When it is loaded
    if target is None:
        connector = app.load(kind, str(config), environ={})

        # Then it loads when every topic has its own target
        assert connector.runtime.topics == tuple(topics)
        return
    with pytest.raises(InvalidConfig) as raised:
        app.load(kind, str(config), environ={})

    # Or it is refused, naming both topics and the target
    assert f"topics {topics[0]} and {topics[1]} both map to {target}" in raised.value.message
