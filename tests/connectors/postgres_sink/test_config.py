"""The PostgreSQL sink's configuration: a bad key or value is refused naming the key, type aliases
and strings from the environment are accepted, and a table that does not fit the configuration is a
configuration error, not a retry."""

from __future__ import annotations

import itertools
import os
from typing import Any

import psycopg
import pytest
from psycopg import sql

from logsvc_client.errors import InvalidConfig
from logsvc_client.records import TopicPartition
from logsvc_connect.postgres import PostgresSink
from logsvc_connect.postgres.config import PostgresConfig
from tests.connectors.postgres_sink.conftest import TOPIC, MakeSink, query, record, tables, write

# -- configuration -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"dsn": "host=x", "tabel": "t"}, "tabel"),  # and the message names it: "unknown … option 'tabel'"
        ({}, "dsn"),
        ({"dsn": "host=x", "mode": "columns"}, "columns"),
        ({"dsn": "host=x", "mode": "columns", "columns": {"a": "text; DROP TABLE x"}}, "columns"),
        ({"dsn": "host=x", "mode": "columns", "columns": {"offset": "int"}}, "columns"),
        ({"dsn": "host=x", "key_mode": "fields"}, "key_fields"),
        ({"dsn": "host=x", "exactly_once": True}, "connector"),
        ({"dsn": "host=x", "insert_mode": "merge"}, "insert_mode"),
        ({"dsn": "host=x", "table": "{topic}_{partition}"}, "table"),
        ({"dsn": "host=x", "schema": "s" * 64}, "schema"),
    ],
)
def test_bad_configuration_is_rejected_naming_the_key(settings: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidConfig) as raised:
        PostgresConfig.from_mapping(settings)
    assert raised.value.details["key"] == named


def test_configuration_accepts_type_aliases_and_strings_from_the_environment() -> None:
    config = PostgresConfig.from_mapping(
        {"dsn": "host=x", "mode": "columns", "columns": '{"p": "DECIMAL(10, 2)", "n": "int8", "t": "varchar(5)"}',
         "key_mode": "fields", "key_fields": "p, n", "exactly_once": "true", "connector": "c"}
    )  # fmt: skip
    assert config.columns == (("p", "numeric(10,2)"), ("n", "bigint"), ("t", "varchar(5)"))
    assert config.key_fields == ("p", "n")
    assert config.exactly_once is True
    assert config.table_name("a" * 100) != config.table_name("a" * 99 + "b")
    assert len(config.table_name("a" * 100)) == 63


# -- tables that do not fit the configuration ------------------------------------------------------


def test_a_table_keyed_another_way_is_a_configuration_error(make_sink: MakeSink) -> None:
    # Given a table written with offset ids
    assert write(make_sink(), [record(0, {"n": 0}, "k")]) == {}

    # When a sink keyed by record key writes to it, Then it is told to fix its configuration
    with pytest.raises(InvalidConfig, match=r"primary key \(topic, partition, offset\)") as raised:
        write(make_sink(key_mode="key"), [record(1, {"n": 1}, "k")])
    assert raised.value.details["key"] == "key_mode"


def test_opening_creates_the_tables_of_the_connectors_topics(dsn: str) -> None:
    # Given a sink told the topics its connector reads
    sink = PostgresSink(PostgresConfig.from_mapping({"dsn": dsn, "table": "t_{topic}"}), ["orders", "orders.eu"])

    # When it opens, before any record, Then their tables are there
    sink.open()
    try:
        assert {"t_orders", "t_orders_eu"} <= tables(dsn)
        # and a first write goes into them
        assert write(sink, [record(0, {"n": 0})]) == {}
        assert query(dsn, "SELECT count(*) FROM t_orders") == [(1,)]
    finally:
        sink.close()


def test_a_table_keyed_another_way_fails_the_sink_when_it_opens(make_sink: MakeSink, dsn: str) -> None:
    # Given a table written with offset ids
    assert write(make_sink(), [record(0, {"n": 0}, "k")]) == {}

    # When a sink keyed by record key opens for that table's topic, Then it is told to fix its
    # configuration at once, not when the first record comes
    sink = PostgresSink(PostgresConfig.from_mapping({"dsn": dsn, "key_mode": "key"}), [TOPIC])
    try:
        with pytest.raises(InvalidConfig, match=r"primary key \(topic, partition, offset\)"):
            sink.open()
    finally:
        sink.close()


def test_a_table_without_the_sinks_columns_is_a_configuration_error(make_sink: MakeSink, dsn: str) -> None:
    # Given an existing table "orders" keyed right but lacking the sink's other columns
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            'CREATE TABLE orders (topic text, partition int, "offset" bigint, PRIMARY KEY (topic, partition, "offset"))'
        )

    # When the sink writes to it, Then it is told to fix its configuration, not to retry
    with pytest.raises(InvalidConfig, match='column "key" of relation "orders" does not exist'):
        write(make_sink(), [record(0, {"n": 0})])


_roles = itertools.count()


def limited_role(dsn: str, *grants: str) -> str:
    """A login role of this test's database holding only ``grants`` (e.g. "SELECT ON orders");
    in PostgreSQL 15 no role but the owner may create in schema public."""
    role = f"limited_{os.getpid()}_{next(_roles)}"  # roles are cluster-wide: a new one per call
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        for grant in grants:
            conn.execute(sql.SQL(f"GRANT {grant} TO {{}}").format(sql.Identifier(role)))
    return f"{dsn} user={role}"


def test_a_user_granted_only_what_writing_needs_sinks_into_tables_created_for_it(make_sink: MakeSink, dsn: str) -> None:
    # Given the tables (data, offsets, key index) created by the owner, and a role that may only
    # read and write them: no CREATE on the schema
    make_sink(key_mode="fields", key_fields=["id"], exactly_once=True, connector="c").write(
        [record(0, {"id": 1}), record(1, None, "k")], {}
    )
    limited = limited_role(dsn, "SELECT, INSERT, UPDATE, DELETE ON orders, logsvc_offsets")

    # When a sink connecting as that role writes rows and a tombstone with exactly-once offsets
    sink = make_sink(dsn=limited, key_mode="fields", key_fields=["id"], exactly_once=True, connector="c")
    result = sink.write([record(2, {"id": 2}), record(3, None, "k")], {TopicPartition(TOPIC, 0): 4})

    # Then it writes them, creating nothing
    assert result.failed == {}
    assert [row for (row,) in query(dsn, "SELECT value->>'id' FROM orders ORDER BY 1")] == ["1", "2"]
    assert query(dsn, "SELECT next_offset FROM logsvc_offsets") == [(4,)]


def test_a_user_without_the_insert_privilege_is_a_configuration_error(make_sink: MakeSink, dsn: str) -> None:
    # Given the sink's table, and a role that may read it but not write it
    assert write(make_sink(), [record(0, {"n": 0})]) == {}
    reader = limited_role(dsn, "SELECT ON orders")

    # When a sink connecting as that role writes, Then it is told to fix its configuration, not to retry
    with pytest.raises(InvalidConfig, match="permission denied for table orders"):
        write(make_sink(dsn=reader), [record(1, {"n": 1})])
