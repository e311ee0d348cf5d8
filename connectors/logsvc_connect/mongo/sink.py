"""The MongoDB sink: each record becomes one document; a batch is one unordered bulk write per collection.

Documents
    A record whose value is an object (JSON object, msgpack map) becomes that object plus
    ``_id`` and ``_logsvc: {topic, partition, offset, timestamp, key}`` (``timestamp`` a BSON
    date, ``key`` as below); a raw value becomes ``{"value": <Binary>, "key": <key>}`` plus the
    same two fields. A value's own ``_id``/``_logsvc`` fields are overwritten by these.

Ids (``id_mode``)
    ``"offset"`` (default): ``"<topic>-<partition>-<offset>"``. ``"key"``: the record key, as a
    string when it is valid UTF-8, else as binary (a key is only ever an equality value, never
    a query: ``{"$ne": null}`` is stored as that 13-character string). ``"field"``: the value of
    ``id_field`` (a dotted path into the value), which must be a scalar; an object, array, null
    or missing field is a :class:`~logsvc_connect.sink.DataError` for that record.

Writes (``write_model``)
    ``"replace"`` (default): ReplaceOne upsert, the document is the last value written. (In
    "offset" mode an id is new unless a batch is delivered again, so the batch is sent as inserts
    and only the ids already there are then replaced: the same result, at the speed of inserts.)
    ``"insert"``: ``insert_many``; a duplicate ``_id`` means the document is already there
    (written, not a failure), so the first value written stays. ``"update"``: UpdateOne upsert of
    ``$set`` with the value's top-level fields, so fields of earlier values survive.

Tombstones
    Delete in every id mode: ``DeleteOne({_id})`` in "key" mode; in "offset" and "field" modes
    ``DeleteMany({"_logsvc.key": key})`` (an index on ``_logsvc.key`` is created for it). A
    tombstone without a key has nothing to delete. Deletes run before the batch's other writes,
    and a document the tombstone would have deleted (same target, earlier in the batch) is not
    written, so the batch ends as if applied in order.

Field names MongoDB rejects (``field_names``)
    ``"escape"`` (default): in every field name, at any depth (inside arrays too), a leading
    ``$`` becomes ``＄`` (U+FF04 FULLWIDTH DOLLAR SIGN) and every ``.`` becomes ``．`` (U+FF0E
    FULLWIDTH FULL STOP): ``{"$where": 1, "a.b": {"$ne": 2}}`` is stored as
    ``{"＄where": 1, "a．b": {"＄ne": 2}}``. Values are never changed. Names that collide after
    escaping (``"a.b"`` next to ``"a．b"``) are a DataError. ``"reject"``: any such name is a
    DataError naming its path.

Errors
    Unreachable server, timeouts, failover, write-concern errors and errors that name no record
    raise :class:`~logsvc_connect.sink.TransientSinkError`; a write the connector's user is not
    allowed to make stops the connector (InvalidConfig). A write error for one record (other
    than a duplicate ``_id`` on insert), a document over MongoDB's 16 MiB limit, or a value BSON
    cannot encode (integer over 64 bits, NUL in a name, non-string map key) is a DataError for
    that record; the others are written. Writes use write concern ``{"w": 1, "j": True}``
    (journaled before ``write`` returns) unless ``write_concern`` says otherwise.
"""  # noqa: RUF002 (the fullwidth characters are the point)

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import bson
from pymongo import DeleteMany, DeleteOne, MongoClient, ReplaceOne, UpdateOne
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, ConfigurationError, InvalidName, OperationFailure, PyMongoError
from pymongo.write_concern import WriteConcern

from logsvc_client.errors import InvalidConfig
from logsvc_client.records import TopicPartition
from logsvc_connect.config import RuntimeConfig, check_one_target_per_topic
from logsvc_connect.mongo.config import MongoConfig
from logsvc_connect.mongo.errors import (
    ENCODE_ERRORS,
    MAX_DOCUMENT_BYTES,
    check_encodable,
    record_failures,
    transient,
    translate,
    unencodable,
)
from logsvc_connect.mongo.names import check_names, escape_names
from logsvc_connect.registry import Adapter
from logsvc_connect.sink import DataError, Sink, SinkRecord, WriteResult
from logsvc_connect.values import decode_value

# A value this long may encode to more than MAX_DOCUMENT_BYTES (BSON is at most ~14x msgpack):
# only such records are encoded once more, to check their size before the write.
_SIZE_CHECK_BYTES = MAX_DOCUMENT_BYTES // 16
_INDEX_EXISTS_CODES = frozenset({85, 86})  # IndexOptionsConflict, IndexKeySpecsConflict


class _Batch:
    """One collection's share of a batch: parallel lists, in record order, with record indexes."""

    __slots__ = (
        "collection", "delete_index", "delete_queries", "last_delete",
        "put_docs", "put_ids", "put_index", "put_targets",
    )  # fmt: skip

    def __init__(self, collection: Collection[dict[str, Any]]) -> None:
        self.collection = collection
        self.delete_queries: list[dict[str, Any]] = []
        self.delete_index: list[int] = []
        self.last_delete: dict[Hashable, int] = {}  # tombstone target -> its record index
        self.put_ids: list[Any] = []
        self.put_docs: list[dict[str, Any]] = []  # the document (or the $set fields, for "update")
        self.put_index: list[int] = []
        self.put_targets: list[Hashable] = []  # what a tombstone would match: the id, or the key

    def drop_deleted_puts(self) -> None:
        """Leave out puts that a later tombstone of the batch deletes (the deletes run first)."""
        last = self.last_delete
        keep = [n for n, (t, i) in enumerate(zip(self.put_targets, self.put_index, strict=True)) if last.get(t, -1) < i]
        if len(keep) < len(self.put_index):
            self.put_ids = [self.put_ids[n] for n in keep]
            self.put_docs = [self.put_docs[n] for n in keep]
            self.put_index = [self.put_index[n] for n in keep]


def configure(values: dict[str, Any], runtime: RuntimeConfig) -> Adapter:
    """The ``[mongo]`` table as a :class:`MongoConfig` and a factory of its sink. What the sink
    decodes itself (a value the runtime left undecoded) follows the runtime's ``value_format``."""
    config = MongoConfig.from_mapping({"value_format": runtime.value_format, **values})
    check_one_target_per_topic(runtime.topics, config.collection_name, "collection", "collection")
    for topic in runtime.topics:
        name = config.collection_name(topic)
        problem = config.collection_problem(name)
        if problem is not None:
            raise InvalidConfig(
                f"topic {topic!r} maps to collection {name!r}, which MongoDB refuses: {problem}; "
                "change the collection template (the collection key)",
                key="collection",
            )
    return Adapter(config, lambda: MongoSink(config))


class MongoSink(Sink):
    """Writes each record as one document of the collection named after its topic (see module doc)."""

    kind = "mongo"

    def __init__(self, config: MongoConfig) -> None:
        self.config = config
        self._client: MongoClient[dict[str, Any]] | None = None
        self._db: Database[dict[str, Any]] | None = None
        self._collections: dict[str, Collection[dict[str, Any]]] = {}  # by topic
        self._indexed: set[str] = set()
        self._by_key = config.id_mode == "key"
        self._id_path = tuple(config.id_field.split(".")) if config.id_field else ()
        self._escape = config.field_names == "escape"
        # How puts are sent: "insert" (insert_many), "replace" or "update" (bulk_write). In offset
        # mode an id is new unless the batch comes again: insert, then replace the ids already there.
        self._replace_duplicates = config.id_mode == "offset" and config.write_model == "replace"
        self._put_kind = "insert" if self._replace_duplicates else config.write_model

    # -- lifecycle ---------------------------------------------------------------------------------

    def open(self) -> None:
        if self._client is not None:
            return
        cfg = self.config
        try:
            client: MongoClient[dict[str, Any]] = MongoClient(
                cfg.uri,
                serverSelectionTimeoutMS=cfg.server_selection_timeout_ms,
                connectTimeoutMS=cfg.connect_timeout_ms,
                socketTimeoutMS=cfg.socket_timeout_ms,
                appname="logsvc-connect",
            )
        except ConfigurationError as e:
            raise InvalidConfig(f"uri: {e}", key="uri") from None
        try:
            concern = WriteConcern(
                w=cfg.write_concern.get("w", 1),
                j=cfg.write_concern.get("j", True),
                wtimeout=cfg.write_concern.get("wtimeout_ms"),
            )
            db = client.get_database(cfg.database, write_concern=concern)
        except (ConfigurationError, InvalidName, TypeError, ValueError) as e:
            client.close()
            raise InvalidConfig(f"database/write_concern: {e}") from None
        try:
            client.admin.command("ping")
        except PyMongoError as e:
            client.close()
            raise transient(e) from None
        self._client, self._db = client, db

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client, self._db = None, None
        self._collections.clear()
        self._indexed.clear()

    # -- ids ---------------------------------------------------------------------------------------

    def identity(self, record: SinkRecord) -> Hashable:
        collection = self.config.collection_name(record.topic)
        key = _key_value(record.key)
        if record.value is None:
            # "key" mode: the put's own id, so a tombstone compacts with the puts before it.
            return (collection, key) if self._by_key else (collection, "_logsvc.key", key)
        try:
            return (collection, self._id(record, self._doc(record), key))
        except DataError:  # unique, so it compacts with nothing; write() reports the error
            return (collection, "failed", record.topic, record.partition, record.offset)

    def _id(self, record: SinkRecord, doc: dict[str, Any] | bytes | None, key: str | bytes | None) -> Any:
        mode = self.config.id_mode
        if mode == "offset":
            return f"{record.topic}-{record.partition}-{record.offset}"
        if mode == "key":
            if key is None:
                raise DataError("id_mode 'key' needs a record key, and this record has none", "MissingId")
            return key
        if doc.__class__ is not dict:
            raise DataError(f"id_mode 'field' needs an object value to read {self.config.id_field!r} from", "MissingId")
        value: Any = doc
        for part in self._id_path:
            if value.__class__ is not dict or part not in value:
                raise DataError(f"the value has no id field {self.config.id_field!r}", "MissingId")
            value = value[part]
        if value is None or isinstance(value, dict | list):
            kind = "null" if value is None else type(value).__name__
            raise DataError(f"id field {self.config.id_field!r} must be a scalar, not {kind}", "InvalidId")
        return value

    def _doc(self, record: SinkRecord) -> dict[str, Any] | bytes | None:
        doc = record.doc
        if doc is None and record.value is not None:
            doc = decode_value(record.value, self.config.value_format)
        return doc

    # -- write -------------------------------------------------------------------------------------

    def write(self, records: Sequence[SinkRecord], offsets: Mapping[TopicPartition, int]) -> WriteResult:
        if self._db is None:
            self.open()
        failed: dict[int, DataError] = {}
        batches: dict[str, _Batch] = {}
        for i, record in enumerate(records):
            try:
                self._add(i, record, batches)
            except DataError as e:
                failed[i] = e
        for name, batch in batches.items():
            if not self._by_key and name not in self._indexed:
                self._ensure_key_index(batch.collection)
            if batch.delete_index:
                kind, queries = "delete_one" if self._by_key else "delete_many", batch.delete_queries
                self._send(batch.collection, kind, queries, queries, batch.delete_index, failed)
                batch.drop_deleted_puts()
            if batch.put_index:
                self._send(batch.collection, self._put_kind, batch.put_ids, batch.put_docs, batch.put_index, failed)
        return WriteResult(failed)

    def _add(self, i: int, record: SinkRecord, batches: dict[str, _Batch]) -> None:
        """Add the record to its collection's batch (a DataError is the record's own)."""
        collection = self._collection(record.topic)
        batch = batches.get(collection.name)
        if batch is None:
            batch = batches[collection.name] = _Batch(collection)
        key = _key_value(record.key)
        if record.value is None:
            if key is not None:
                batch.delete_queries.append({"_id": key} if self._by_key else {"_logsvc.key": key})
                batch.delete_index.append(i)
                batch.last_delete[key] = i
            return
        doc = self._doc(record)
        _id = self._id(record, doc, key)
        if doc.__class__ is dict:
            body = escape_names(doc) if self._escape else check_names(doc)
        else:
            body = {"value": doc, "key": key}
        meta = {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "timestamp": bson.DatetimeMS(record.timestamp_ms),
            "key": key,
        }
        if self._put_kind == "update":
            document = {**body, "_logsvc": meta}
            document.pop("_id", None)  # immutable: the upsert takes it from the filter
        else:
            document = {**body, "_id": _id, "_logsvc": meta}
        if len(record.value) + len(record.key or b"") > _SIZE_CHECK_BYTES:
            check_encodable({"q": _id, "u": document})
        batch.put_ids.append(_id)
        batch.put_docs.append(document)
        batch.put_index.append(i)
        batch.put_targets.append(_id if self._by_key else key)

    def _send(
        self,
        collection: Collection[dict[str, Any]],
        kind: str,
        ids: list[Any],
        docs: list[dict[str, Any]],
        index: list[int],
        failed: dict[int, DataError],
    ) -> None:
        """One unordered write of ``docs`` (with ``ids``) as ``kind``; failures of single records go to
        ``failed`` (by record index), failures of the database raise TransientSinkError."""
        try:
            if kind == "insert":
                collection.insert_many(docs, ordered=False)
            else:
                collection.bulk_write(_models(kind, ids, docs), ordered=False)
        except BulkWriteError as e:
            errors, duplicates = record_failures(e.details, collection.name, len(docs), kind == "insert")
            for n, error in errors.items():
                failed[index[n]] = error
            if duplicates and self._replace_duplicates:  # those ids are there already: replace them
                pick = duplicates
                self._send(collection, "replace", _take(ids, pick), _take(docs, pick), _take(index, pick), failed)
        except ENCODE_ERRORS as e:  # the driver cannot encode some document: find it, write the others
            bad = unencodable(ids, docs)
            if not bad:
                raise transient(e) from None
            for n, error in bad.items():
                failed[index[n]] = error
            keep = [n for n in range(len(docs)) if n not in bad]
            if keep:
                self._send(collection, kind, _take(ids, keep), _take(docs, keep), _take(index, keep), failed)
        except PyMongoError as e:
            raise translate(e, collection.name) from None

    # -- collections -------------------------------------------------------------------------------

    def _collection(self, topic: str) -> Collection[dict[str, Any]]:
        """The topic's collection; DataError when the template gives a name MongoDB refuses."""
        collection = self._collections.get(topic)
        if collection is None:
            assert self._db is not None
            name = self.config.collection_name(topic)
            try:
                problem = self.config.collection_problem(name)
                if problem is not None:
                    raise InvalidName(problem)
                collection = self._db[name]
            except InvalidName as e:
                raise DataError(f"topic {topic!r} maps to collection {name!r}, which MongoDB refuses: {e}") from None
            self._collections[topic] = collection
        return collection

    def _ensure_key_index(self, collection: Collection[dict[str, Any]]) -> None:
        """Tombstones in "offset"/"field" mode delete by ``_logsvc.key``: index it, once."""
        try:
            collection.create_index("_logsvc.key", name="logsvc_key")
        except OperationFailure as e:
            if e.code not in _INDEX_EXISTS_CODES:
                raise translate(e, collection.name) from None
        except PyMongoError as e:
            raise translate(e, collection.name) from None
        self._indexed.add(collection.name)


def _models(kind: str, ids: list[Any], docs: list[dict[str, Any]]) -> list[Any]:
    if kind == "replace":
        return [ReplaceOne({"_id": i}, d, upsert=True) for i, d in zip(ids, docs, strict=True)]
    if kind == "update":
        return [UpdateOne({"_id": i}, {"$set": d}, upsert=True) for i, d in zip(ids, docs, strict=True)]
    if kind == "delete_one":
        return [DeleteOne(q) for q in docs]
    return [DeleteMany(q) for q in docs]


def _take(values: list[Any], positions: list[int]) -> list[Any]:
    return [values[n] for n in positions]


def _key_value(key: bytes | None) -> str | bytes | None:
    """The key as stored: text when it is UTF-8, else the bytes (BSON binary)."""
    if key is None:
        return None
    try:
        return key.decode()
    except UnicodeDecodeError:
        return key
