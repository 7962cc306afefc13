"""LangGraph's long-term store in agentkeep: :class:`AgentkeepStore`.

Items live in ``store_items`` (``repositories.graph_store``): namespace, key, JSON value, when
created and updated, and an optional time to live. All operations of one ``batch`` run in one
unit of work (one worker-thread hop on the async side), in order, so a batch sees its own puts.

Input: a value is a storable JSON object (finite numbers, JSON types only, at most
``max_content_bytes`` as JSON); keys and namespace labels are valid text; a time to live is a
finite number of minutes from 0 to :data:`MAX_TTL_MINUTES`, or ``None``. Anything else is a
``ValidationError`` naming ``value``, ``key``, ``namespace`` or ``ttl``, before anything is
written.

Time to live: an item put with ``ttl`` (minutes; ``ttl_config["default_ttl"]`` when left out)
expires that long after it was last written or, with ``refresh_ttl`` (the default, or
``ttl_config["refresh_on_read"]``), read. Reads never return an expired item; a batch that writes
deletes the expired items first (the sweep on write), and :meth:`AgentkeepStore.sweep_ttl` does it
on demand.

Semantic search: with ``index`` configured, a put item's text (its ``fields``, as LangGraph's
``IndexConfig`` names them, default the whole value) is kept as an agentkeep memory embedded by the
store's embedder (``db.memory``), user ``"langgraph-store"``, metadata holding the item's
namespace and key, and linked from the item (``memory_id``); replacing or deleting the item
replaces or deletes its memory, and the memory expires with the item (its ``expires_at``,
restarted when the item's time to live is), so no recall returns an expired item's memory.
``search(query=...)`` ranks memories as ``db.memory.recall`` does (vector and full-text
candidates), then keeps the live items under the namespace that pass the filter. The embedding
function of an ``IndexConfig`` is not used: the store's embedder is (so the API, the CLI and
memory recall see the same vectors).
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypedDict

from langgraph.store.base import (
    BaseStore,
    GetOp,
    Item,
    ListNamespacesOp,
    MatchCondition,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
)
from langgraph.store.base.embed import get_text_at_path

from agentkeep.config import Settings
from agentkeep.db.types import utcnow
from agentkeep.errors import ValidationError
from agentkeep.integrations.langchain import async_store, sync_store
from agentkeep.memory import manager as memory
from agentkeep.models.common import blank, check_json, check_text
from agentkeep.models.memory import MemoryCreate
from agentkeep.repositories import graph_store as sql
from agentkeep.repositories.base import in_worker_thread
from agentkeep.repositories.conversation_flow import MAX_AGE_SECONDS
from agentkeep.repositories.facade import DatabaseManager, Unit, connect_sync

STORE_USER = "langgraph-store"
"""The ``user_id`` of the memories that index store items (semantic search looks among them)."""

METADATA_KEY = sql.ITEM_METADATA_KEY
"""The memory metadata key holding the item's namespace and key."""

Embedded = tuple[str, list[float]]
"""A text to index or a query, with its vector."""

SCAN_PAGE = 200
"""Items read at a time while a filtered search looks for matches."""

MAX_TTL_MINUTES = MAX_AGE_SECONDS // 60
"""The longest time to live: a century, the longest age the store takes anywhere."""


class StoreIndex(TypedDict, total=False):
    """What a store indexes for semantic search: the value's ``fields`` (LangGraph's paths,
    e.g. ``"text"``, ``"notes[*].body"``; default ``["$"]``, the whole value)."""

    fields: list[str]


class AgentkeepStore(BaseStore):
    """A LangGraph ``BaseStore`` over an agentkeep store (sync and async).

    Example:
        >>> store = AgentkeepStore(agentkeep.connect_sync("app.db"), index={"fields": ["text"]})
        >>> store.put(("users", "u1"), "coffee", {"text": "bought coffee for 300 roubles"})
        >>> store.search(("users",), query="what did I drink?")[0].key
        'coffee'

    Args:
        db: A store from ``agentkeep.connect`` or ``agentkeep.connect_sync``.
        index: Index items for semantic search (``True``: the whole value; or ``{"fields":
            [...]}``); ``None``: no semantic search (``query`` then matches nothing).
        ttl: Time-to-live defaults (LangGraph's ``TTLConfig``).
    """

    supports_ttl = True

    def __init__(
        self,
        db: DatabaseManager[Any],
        *,
        index: StoreIndex | bool | None = None,
        ttl: TTLConfig | None = None,
    ) -> None:
        self._sync = sync_store(db)
        self._async = async_store(db)
        if isinstance(index, dict):
            unknown = set(index) - {"fields"}
            if unknown:
                raise ValidationError(
                    f"index takes only 'fields' (the store's embedder makes the vectors); "
                    f"got {sorted(unknown)}",
                    field="index",
                )
            self.index_fields: list[str] | None = list(index.get("fields") or ["$"])
        else:
            self.index_fields = ["$"] if index else None
        self.ttl_config = ttl

    @classmethod
    def from_url(cls, url: Settings | str | os.PathLike[str], **options: Any) -> AgentkeepStore:
        """A store on the database at ``url`` (as ``agentkeep.connect_sync`` takes it)."""
        return cls(connect_sync(url), **options)

    # -- BaseStore ------------------------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run the operations in order in one unit of work; their results."""
        return self._batch(list(ops))

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """As :meth:`batch` (one worker-thread hop)."""
        listed = list(ops)
        return await in_worker_thread(self._batch, listed)

    def sweep_ttl(self) -> int:
        """Delete the expired items now; how many."""
        return self._sync.run(lambda uow: sql.sweep(uow.connection, utcnow()))

    async def asweep_ttl(self) -> int:
        """As :meth:`sweep_ttl` (one worker-thread hop)."""
        return await in_worker_thread(self.sweep_ttl)

    # -- one batch ------------------------------------------------------------------------------

    def _batch(self, ops: list[Op]) -> list[Result]:
        limit = self._sync.settings.max_content_bytes
        for op in ops:
            _check(op, limit)
        vectors = self._embed(ops)
        writes = any(isinstance(op, PutOp) for op in ops)
        refreshed: list[tuple[str, str, float]] = []

        def work(uow: Unit) -> list[Result]:
            now = utcnow()
            if writes:
                sql.sweep(uow.connection, now)
            return [
                self._run(uow, op, vectors.get(position), now, refreshed)
                for position, op in enumerate(ops)
            ]

        results = self._sync.run(work, "write" if writes else "read")
        if refreshed:  # reads that restart items' time to live: a (rare) write of their own
            self._sync.run(lambda uow: sql.refresh(uow.connection, refreshed, utcnow()))
        return results

    def _embed(self, ops: list[Op]) -> dict[int, Embedded]:
        """The text and vector of each put to index and each query, by the op's position
        (computed before the unit of work opens)."""
        if self.index_fields is None:
            return {}
        texts: dict[int, str] = {}
        for position, op in enumerate(ops):
            if isinstance(op, PutOp) and op.value is not None and op.index is not False:
                fields = self.index_fields if op.index is None else list(op.index)
                text = "\n".join(t for f in fields for t in get_text_at_path(op.value, f) if t)
                if not blank(text):  # nothing to find it by: not indexed
                    texts[position] = text
            elif isinstance(op, SearchOp) and op.query:
                texts[position] = op.query
        if not texts:
            return {}
        embedder = self._sync.memory.embedder
        positions = list(texts)
        embedded = embedder.embed([texts[p] for p in positions])
        return {p: (texts[p], list(v)) for p, v in zip(positions, embedded, strict=True)}

    def _run(
        self,
        uow: Unit,
        op: Op,
        embedded: Embedded | None,
        now: datetime,
        refreshed: list[tuple[str, str, float]],
    ) -> Result:
        """One operation; ``embedded``: its text and vector (a put to index, a query)."""
        if isinstance(op, GetOp):
            ns = sql.joined(op.namespace)
            row = sql.get_many(uow.connection, [(ns, op.key)], now).get((ns, op.key))
            if row is None:
                return None
            _note_refresh(row, op.refresh_ttl, refreshed)
            return Item(
                namespace=sql.split(row.namespace),
                key=row.key,
                value=row.value,
                created_at=row.created_at,
                updated_at=row.updated_at,
            )
        if isinstance(op, PutOp):
            self._put(uow, op, now, embedded)
            return None
        if isinstance(op, SearchOp):
            return self._search(uow, op, now, embedded, refreshed)
        if isinstance(op, ListNamespacesOp):
            return _list_namespaces(uow, op, now)
        raise ValidationError(f"unknown store operation {type(op).__name__}", field="op")

    def _put(self, uow: Unit, op: PutOp, now: datetime, indexed: Embedded | None) -> None:
        conn = uow.connection
        ns = sql.joined(op.namespace)
        if op.value is None:
            sql.delete_item(conn, ns, op.key)
            return
        memory_id: uuid.UUID | None = None
        if indexed is not None:
            text, vector = indexed
            created = uow.memories.add(
                MemoryCreate(
                    content=text,
                    embedding=vector,
                    embedding_model=self._sync.memory.embedder.name,
                    user_id=STORE_USER,
                    metadata={METADATA_KEY: {"namespace": list(op.namespace), "key": op.key}},
                )
            )
            memory_id = created.id
        ttl = op.ttl
        replaced = sql.put(
            conn,
            {
                "namespace": ns,
                "key": op.key,
                "value": op.value,
                "memory_id": memory_id,
                "ttl_minutes": ttl,
                "expires_at": None if ttl is None else now + timedelta(minutes=ttl),
                "created_at": now,
                "updated_at": now,
            },
        )
        if replaced is not None and replaced != memory_id:
            uow.memories.delete_many([replaced])

    def _search(
        self,
        uow: Unit,
        op: SearchOp,
        now: datetime,
        embedded: Embedded | None,
        refreshed: list[tuple[str, str, float]],
    ) -> list[SearchItem]:
        wanted = op.offset + op.limit
        if op.query:
            if embedded is None:  # no index: nothing is searchable by meaning
                return []
            found = self._ranked(uow, op, now, embedded, wanted)
        else:
            found = []
            offset = 0
            while len(found) < wanted:
                rows = sql.page(
                    uow.connection, op.namespace_prefix, now, limit=SCAN_PAGE, offset=offset
                )
                found.extend((row, None) for row in rows if _matches(row.value, op.filter))
                if len(rows) < SCAN_PAGE:
                    break
                offset += SCAN_PAGE
        chosen = found[op.offset : wanted]
        for row, _ in chosen:
            _note_refresh(row, op.refresh_ttl, refreshed)
        return [_item(row, score) for row, score in chosen]

    def _ranked(
        self,
        uow: Unit,
        op: SearchOp,
        now: datetime,
        query: Embedded,
        wanted: int,
    ) -> list[tuple[sql.StoreRow, float | None]]:
        text, vector = query
        k = uow.settings.max_page_size
        model = self._sync.memory.embedder.name
        try:
            hits = memory.search(
                uow, embedding=vector, embedding_model=model, text=text, k=k, user_id=STORE_USER
            )
        except ValidationError as exc:  # nothing embedded by this model yet: words only
            if exc.field != "embedding":
                raise
            hits = memory.search(
                uow, embedding=None, embedding_model=None, text=text, k=k, user_id=STORE_USER
            )
        score = {hit.memory.id: hit.score for hit in hits}
        rows = sql.by_memory(uow.connection, list(score), now)
        kept = [
            row
            for row in rows
            if _is_under(sql.split(row.namespace), op.namespace_prefix)
            and _matches(row.value, op.filter)
        ]
        kept.sort(key=lambda row: -score[row.memory_id])
        return [(row, score[row.memory_id]) for row in kept[:wanted]]


# -- helpers ------------------------------------------------------------------------------------


def _check(op: Op, limit: int) -> None:
    """Refuse an operation the store cannot run as asked, naming what is wrong (see the
    module's documentation), before anything is embedded or written."""
    if isinstance(op, SearchOp | ListNamespacesOp) and (op.limit < 0 or op.offset < 0):
        raise ValidationError("limit and offset must not be negative", field="limit")
    if isinstance(op, SearchOp):
        _check_namespace(op.namespace_prefix)
        check_text(op.query, "query")
        return
    if not isinstance(op, PutOp | GetOp):
        return
    _check_namespace(op.namespace)
    if not isinstance(op.key, str):
        raise ValidationError("a store item's key must be text", field="key")
    check_text(op.key, "key")
    if not isinstance(op, PutOp) or op.value is None:
        return
    if not isinstance(op.value, dict):
        raise ValidationError("a store item's value must be a JSON object", field="value")
    check_json(op.value, limit, "value")
    _check_ttl(op.ttl)


def _check_namespace(namespace: Sequence[str]) -> None:
    for label in namespace:
        if not isinstance(label, str):
            raise ValidationError("a namespace's labels must be text", field="namespace")
        check_text(label, "namespace")


def _check_ttl(ttl: object) -> None:
    if ttl is None:
        return
    if (
        isinstance(ttl, bool)
        or not isinstance(ttl, int | float)
        or not math.isfinite(ttl)
        or not 0 <= ttl <= MAX_TTL_MINUTES
    ):
        raise ValidationError(
            f"ttl must be a number of minutes from 0 to {MAX_TTL_MINUTES} (about a hundred "
            "years), or None for no expiry",
            field="ttl",
        )


def _note_refresh(row: sql.StoreRow, refresh: bool, into: list[tuple[str, str, float]]) -> None:
    if refresh and row.ttl_minutes is not None:
        into.append((row.namespace, row.key, float(row.ttl_minutes)))


def _item(row: sql.StoreRow, score: float | None = None) -> SearchItem:
    """An item as LangGraph returns it (a ``SearchItem`` is an ``Item`` with a score)."""
    return SearchItem(
        namespace=sql.split(row.namespace),
        key=row.key,
        value=row.value,
        created_at=row.created_at,
        updated_at=row.updated_at,
        score=score,
    )


def _is_under(namespace: tuple[str, ...], prefix: Sequence[str]) -> bool:
    return namespace[: len(prefix)] == tuple(prefix)


def _matches(value: Any, filter: dict[str, Any] | None) -> bool:
    """Whether a value has what ``filter`` asks: equal items (nested dicts compared item by
    item), or the operators ``$eq``, ``$ne``, ``$gt``, ``$gte``, ``$lt``, ``$lte``."""
    if not filter:
        return True
    return isinstance(value, dict) and all(_compare(value.get(k), v) for k, v in filter.items())


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "$eq": lambda a, b: bool(a == b),
    "$ne": lambda a, b: bool(a != b),
    "$gt": lambda a, b: a is not None and float(a) > float(b),
    "$gte": lambda a, b: a is not None and float(a) >= float(b),
    "$lt": lambda a, b: a is not None and float(a) < float(b),
    "$lte": lambda a, b: a is not None and float(a) <= float(b),
}


def _compare(value: Any, wanted: Any) -> bool:
    if isinstance(wanted, dict):
        if any(key.startswith("$") for key in wanted):
            for name, operand in wanted.items():
                if name not in _OPERATORS:
                    raise ValidationError(f"unknown filter operator {name!r}", field="filter")
                if not _OPERATORS[name](value, operand):
                    return False
            return True
        return isinstance(value, dict) and all(_compare(value.get(k), v) for k, v in wanted.items())
    if isinstance(wanted, list | tuple):
        return (
            isinstance(value, list | tuple)
            and len(value) == len(wanted)
            and all(_compare(a, b) for a, b in zip(value, wanted, strict=True))
        )
    return bool(value == wanted)


def _list_namespaces(uow: Unit, op: ListNamespacesOp, now: datetime) -> list[tuple[str, ...]]:
    conditions = op.match_conditions or ()
    prefix: Sequence[str] = ()
    for condition in conditions:  # narrow in SQL by a literal leading prefix
        if condition.match_type == "prefix" and "*" not in condition.path:
            prefix = condition.path
            break
    found: set[tuple[str, ...]] = set()
    for stored in sql.namespaces(uow.connection, prefix, now):
        namespace = sql.split(stored)
        if all(_namespace_matches(c, namespace) for c in conditions):
            found.add(namespace if op.max_depth is None else namespace[: op.max_depth])
    return sorted(found)[op.offset : op.offset + op.limit]


def _namespace_matches(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    part = namespace[: len(path)] if condition.match_type == "prefix" else namespace[-len(path) :]
    if not path:
        return True
    return all(p in ("*", n) for p, n in zip(path, part, strict=True))
