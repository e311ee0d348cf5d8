"""The MongoDB sink's configuration: defaults in one table, validated once by :meth:`MongoConfig.from_mapping`.

Keys (unknown keys are an :class:`~logsvc_client.errors.InvalidConfig` naming the key; the rules
behind each choice are in :mod:`logsvc_connect.mongo`):

===============================  ======================  ============================================
key                              default                 meaning
===============================  ======================  ============================================
``uri``                          (required)              MongoDB connection string
``database``                     (required)              database name
``collection``                   ``"{topic}"``           collection name template (one per topic:
                                                         two topics giving one name: error at start)
``id_mode``                      ``"offset"``            ``"offset"``, ``"key"`` or ``"field"``
``id_field``                     —                       ``id_mode = "field"``: dotted path of the id
``write_model``                  ``"replace"``           ``"replace"``, ``"insert"`` or ``"update"``
``value_format``                 ``"auto"``              for records the runtime did not decode
``field_names``                  ``"escape"``            ``"escape"`` or ``"reject"``
``write_concern``                ``{w = 1, j = true}``   ``w`` (>= 1 or a tag), ``j``, ``wtimeout_ms``
``server_selection_timeout_ms``  10000                   how long a write waits for a server
``connect_timeout_ms``           10000
``socket_timeout_ms``            60000                   how long one bulk write may take
===============================  ======================  ============================================
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from logsvc_client.errors import InvalidConfig
from logsvc_connect.config import check_keys
from logsvc_connect.values import VALUE_FORMATS

ID_MODES = ("offset", "key", "field")
WRITE_MODELS = ("replace", "insert", "update")
FIELD_NAME_RULES = ("escape", "reject")
WRITE_CONCERN_KEYS = ("w", "j", "wtimeout_ms")

DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "collection": "{topic}",
        "id_mode": "offset",
        "id_field": None,
        "write_model": "replace",
        "value_format": "auto",
        "field_names": "escape",
        "write_concern": MappingProxyType({"w": 1, "j": True}),
        "server_selection_timeout_ms": 10_000,
        "connect_timeout_ms": 10_000,
        "socket_timeout_ms": 60_000,
    }
)
REQUIRED = ("uri", "database")


#: MongoDB's limit on a namespace, "database.collection" (4.4 and later)
MAX_NAMESPACE_BYTES = 255


@dataclass(frozen=True)
class MongoConfig:
    """Where and how the MongoDB sink writes (the module doc of :mod:`logsvc_connect.mongo` explains each).

    ``collection`` is a template with ``{topic}``; ``id_field`` (a dotted path) is required with
    ``id_mode="field"`` and refused otherwise; ``write_concern`` takes ``w`` (not 0: a write must
    be acknowledged), ``j`` and ``wtimeout_ms``. Values from the environment may be strings: the
    ``*_ms`` keys as digits, ``write_concern`` as a JSON object.
    """

    uri: str
    database: str
    collection: str = DEFAULTS["collection"]
    id_mode: str = DEFAULTS["id_mode"]
    id_field: str | None = DEFAULTS["id_field"]
    write_model: str = DEFAULTS["write_model"]
    value_format: str = DEFAULTS["value_format"]
    field_names: str = DEFAULTS["field_names"]
    write_concern: Mapping[str, Any] = field(default_factory=lambda: DEFAULTS["write_concern"])
    server_selection_timeout_ms: int = DEFAULTS["server_selection_timeout_ms"]
    connect_timeout_ms: int = DEFAULTS["connect_timeout_ms"]
    socket_timeout_ms: int = DEFAULTS["socket_timeout_ms"]

    def collection_name(self, topic: str) -> str:
        """The collection a topic's records go to."""
        return self.collection.format(topic=topic)

    def collection_problem(self, name: str) -> str | None:
        """Why MongoDB would refuse ``name`` as a collection of the database, or None: empty, a
        ``$`` or NUL, a leading or trailing ``.`` or two in a row, the reserved ``system.``
        prefix, or a namespace (``database.collection``) over MongoDB's 255 bytes. A server may
        refuse more (nx-27017 takes only letters, digits and ``_``): that is found at the first
        write and stops the connector with the server's reason."""
        if not name:
            return "it is empty"
        for bad in ("$", "\0"):
            if bad in name:
                return f"it contains {bad!r}"
        if name.startswith(".") or name.endswith(".") or ".." in name:
            return "it starts or ends with '.' or has '..'"
        if name.startswith("system."):
            return "the system. prefix is reserved"
        size = len(f"{self.database}.{name}".encode())
        if size > MAX_NAMESPACE_BYTES:
            return f"{self.database}.{name} is {size} bytes, over MongoDB's {MAX_NAMESPACE_BYTES}"
        return None

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> MongoConfig:
        """A validated config; InvalidConfig names the first unknown key or bad value."""
        check_keys(cls, values, "[mongo]")
        for key in REQUIRED:
            if key not in values:
                raise InvalidConfig(f"mongo sink config needs {key!r}", key=key)
        merged = {**DEFAULTS, **values}
        for key in ("uri", "database", "collection"):
            if not isinstance(merged[key], str) or not merged[key]:
                raise InvalidConfig(f"{key} must be a non-empty string, not {merged[key]!r}", key=key)
        _choice(merged, "id_mode", ID_MODES)
        _choice(merged, "write_model", WRITE_MODELS)
        _choice(merged, "value_format", VALUE_FORMATS)
        _choice(merged, "field_names", FIELD_NAME_RULES)
        for key in ("server_selection_timeout_ms", "connect_timeout_ms", "socket_timeout_ms"):
            value = merged[key]
            if isinstance(value, str) and value.strip().isdigit():  # from the environment
                value = merged[key] = int(value)
            if not _is_int(value) or value <= 0:
                raise InvalidConfig(f"{key} must be a positive integer, not {value!r}", key=key)
        _check_id_field(merged["id_mode"], merged["id_field"])
        _check_template(merged["collection"])
        merged["write_concern"] = _write_concern(merged["write_concern"])
        return cls(**merged)


def _choice(values: Mapping[str, Any], key: str, choices: tuple[str, ...]) -> None:
    if values[key] not in choices:
        raise InvalidConfig(f"{key} must be one of {', '.join(choices)}, not {values[key]!r}", key=key)


def _check_id_field(id_mode: str, id_field: Any) -> None:
    if id_mode == "field":
        if not isinstance(id_field, str) or not id_field or "" in id_field.split("."):
            raise InvalidConfig(
                f"id_mode 'field' needs id_field, a field name or dotted path, not {id_field!r}", key="id_field"
            )
    elif id_field is not None:
        raise InvalidConfig(f"id_field is only used with id_mode 'field' (id_mode is {id_mode!r})", key="id_field")


def _check_template(template: str) -> None:
    try:
        name = template.format(topic="t")
    except (KeyError, IndexError, ValueError) as e:
        raise InvalidConfig(
            f"collection template {template!r} is invalid: only {{topic}} may be used ({e})", key="collection"
        ) from None
    if "$" in name or "\0" in name or name.startswith((".", "system.")) or name.endswith("."):
        raise InvalidConfig(f"collection template {template!r} gives an invalid collection name", key="collection")


def _write_concern(value: Any) -> Mapping[str, Any]:
    if isinstance(value, str):  # from the environment: a JSON object
        try:
            value = json.loads(value)
        except ValueError:
            raise InvalidConfig(f"write_concern {value!r} is not a JSON object", key="write_concern") from None
    if not isinstance(value, Mapping):
        raise InvalidConfig(f"write_concern must be a mapping of {', '.join(WRITE_CONCERN_KEYS)}", key="write_concern")
    for key in value:
        if key not in WRITE_CONCERN_KEYS:
            raise InvalidConfig(
                f"unknown write_concern key {key!r} (known: {', '.join(WRITE_CONCERN_KEYS)})", key="write_concern"
            )
    w = value.get("w", 1)
    if isinstance(w, bool) or not ((isinstance(w, int) and w >= 1) or (isinstance(w, str) and w)):
        raise InvalidConfig(f"write_concern w must be >= 1 or a tag such as 'majority', not {w!r}", key="write_concern")
    j = value.get("j", True)
    if not isinstance(j, bool):
        raise InvalidConfig(f"write_concern j must be true or false, not {j!r}", key="write_concern")
    wtimeout_ms = value.get("wtimeout_ms")
    if wtimeout_ms is not None and (not _is_int(wtimeout_ms) or wtimeout_ms < 0):
        raise InvalidConfig(f"write_concern wtimeout_ms must be >= 0, not {wtimeout_ms!r}", key="write_concern")
    concern = {"w": w, "j": j}
    if wtimeout_ms is not None:
        concern["wtimeout_ms"] = wtimeout_ms
    return MappingProxyType(concern)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
