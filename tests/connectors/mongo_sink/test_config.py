"""The MongoDB sink's configuration: a bad key or value is refused naming the key; values from
the environment may be strings."""

from __future__ import annotations

from typing import Any

import pytest

from logsvc_client.errors import InvalidConfig
from logsvc_connect.config import RuntimeConfig
from logsvc_connect.mongo import MongoConfig, configure
from tests.connectors.mongo_sink.conftest import MakeSink, record
from tests.fixtures.mongo import MongoServer


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"colection": "x"}, "colection"),
        ({"id_mode": "field"}, "id_field"),
        ({"id_field": "id"}, "id_field"),
        ({"write_model": "upsert"}, "write_model"),
        ({"field_names": "drop"}, "field_names"),
        ({"value_format": "xml"}, "value_format"),
        ({"collection": "{partition}"}, "collection"),
        ({"write_concern": {"w": 0}}, "write_concern"),
        ({"write_concern": {"fsync": True}}, "write_concern"),
        ({"server_selection_timeout_ms": 0}, "server_selection_timeout_ms"),
        ({"socket_timeout_ms": "soon"}, "socket_timeout_ms"),
    ],
)
def test_bad_configuration_is_rejected_naming_the_key(settings: dict[str, Any], named: str) -> None:
    # Given settings with one bad key or value; When they are loaded; Then InvalidConfig names the key
    with pytest.raises(InvalidConfig, match=named) as caught:
        MongoConfig.from_mapping({"uri": "mongodb://127.0.0.1/", "database": "d", **settings})
    assert caught.value.details.get("key") == named


def test_configuration_from_the_environment_may_use_strings() -> None:
    # Given values as environment variables carry them: digits and a JSON object
    settings = {"socket_timeout_ms": "1500", "write_concern": '{"w": "majority", "wtimeout_ms": 200}'}
    # When they are loaded
    config = MongoConfig.from_mapping({"uri": "mongodb://127.0.0.1/", "database": "d", **settings})
    # Then they are typed
    assert config.socket_timeout_ms == 1500
    assert dict(config.write_concern) == {"w": "majority", "j": True, "wtimeout_ms": 200}


@pytest.mark.parametrize(
    ("template", "topic", "reason"),
    [
        ("{topic}", "$orders", "topic '\\$orders' maps to collection .*contains '\\$'"),
        ("{topic}", "o" * 260, "topic 'o+' maps to collection .* bytes, over MongoDB's 255"),
        ("system.{topic}", "orders", "collection template 'system.{topic}' gives an invalid collection name"),
        ("{topic}.", "orders", "collection template '{topic}.' gives an invalid collection name"),
    ],
)
def test_a_collection_name_mongodb_refuses_stops_the_connector_at_start(template: str, topic: str, reason: str) -> None:
    # Given a template that makes a name MongoDB refuses for one of the connector's topics
    runtime = RuntimeConfig(name="c", topics=("fine", topic))
    # When the connector is configured; Then it is a configuration error naming the name and why
    with pytest.raises(InvalidConfig, match=reason):
        configure({"uri": "mongodb://127.0.0.1/", "database": "d", "collection": template}, runtime)


def test_a_collection_name_the_server_refuses_is_a_configuration_error_not_an_outage(
    mongo: MongoServer, make_sink: MakeSink
) -> None:
    # Given a name the server refuses though the connector's own check allows it (nx-27017 takes
    # only letters, digits and _ in a name)
    if mongo.external:
        pytest.skip("a real MongoDB takes every name the connector's own check lets through")
    name = "orders-eu"
    sink = make_sink(collection=name)
    # When a batch is written; Then the sink stops with InvalidConfig naming the collection, not
    # a TransientSinkError the runtime would retry forever
    with pytest.raises(InvalidConfig, match=rf"MongoDB refuses the collection name '{name}'"):
        sink.write([record(0, {"a": 1})], {})
