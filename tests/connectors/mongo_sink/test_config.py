"""The MongoDB sink's configuration: a bad key or value is refused naming the key; values from
the environment may be strings."""

from __future__ import annotations

from typing import Any

import pytest

from logsvc_client.errors import InvalidConfig
from logsvc_connect.mongo import MongoConfig


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
