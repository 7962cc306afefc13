"""SQL for LangGraph's long-term store (``integrations.langgraph.AgentkeepStore``): the rows of
``store_items``.

A namespace (a tuple of labels, none holding a ".", as LangGraph requires) is stored as its labels
joined by "."; a namespace prefix is then a string prefix ending at a label boundary, matched with
``substr`` (portable, no ``LIKE`` escaping). An item with a time to live has ``expires_at``; reads
never return an expired item, and :func:`sweep` deletes them (with their memories). The memory
that indexes an item expires with it (its own ``expires_at``, set by :func:`put` and moved by
:func:`refresh`), so no recall returns it either until the sweep.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, delete, func, or_, select, tuple_, update

from agentkeep.db.tables import memories, store_items
from agentkeep.repositories.base import dialect_insert

ITEMS = store_items

StoreRow = Row[*tuple[Any, ...]]
"""A row of ``store_items`` (read by column name)."""

SEPARATOR = "."

ITEM_METADATA_KEY = "langgraph_store"
"""The key of a memory's metadata that says it indexes a store item (holding the item's namespace
and key)."""


def joined(namespace: Sequence[str]) -> str:
    """A namespace as stored."""
    return SEPARATOR.join(namespace)


def split(namespace: str) -> tuple[str, ...]:
    """A stored namespace as LangGraph names it."""
    return tuple(namespace.split(SEPARATOR))


def live(now: datetime) -> ColumnElement[bool]:
    """Items not expired at ``now``."""
    return or_(ITEMS.c.expires_at.is_(None), ITEMS.c.expires_at > now)


def under(prefix: Sequence[str]) -> ColumnElement[bool]:
    """Items of the namespace ``prefix`` or of a namespace below it."""
    if not prefix:
        return ITEMS.c.namespace.is_not(None)
    text = joined(prefix)
    return or_(
        ITEMS.c.namespace == text,
        func.substr(ITEMS.c.namespace, 1, len(text) + 1) == text + SEPARATOR,
    )


def get_many(
    conn: Connection, keys: Sequence[tuple[str, str]], now: datetime
) -> dict[tuple[str, str], StoreRow]:
    """The live items of (namespace, key) pairs, by pair."""
    if not keys:
        return {}
    rows = conn.execute(
        select(ITEMS).where(
            tuple_(ITEMS.c.namespace, ITEMS.c.key).in_(sorted(set(keys))), live(now)
        )
    ).all()
    return {(row.namespace, row.key): row for row in rows}


def page(
    conn: Connection, prefix: Sequence[str], now: datetime, *, limit: int, offset: int
) -> Sequence[StoreRow]:
    """A page of the live items under ``prefix``, most recently updated first."""
    return conn.execute(
        select(ITEMS)
        .where(under(prefix), live(now))
        .order_by(ITEMS.c.updated_at.desc(), ITEMS.c.namespace, ITEMS.c.key)
        .limit(limit)
        .offset(offset)
    ).all()


def by_memory(conn: Connection, memory_ids: Sequence[uuid.UUID], now: datetime) -> list[StoreRow]:
    """The live items indexed by these memories."""
    if not memory_ids:
        return []
    return list(
        conn.execute(select(ITEMS).where(ITEMS.c.memory_id.in_(memory_ids), live(now))).all()
    )


def namespaces(conn: Connection, prefix: Sequence[str], now: datetime) -> list[str]:
    """The distinct namespaces of live items under ``prefix``, sorted."""
    return list(
        conn.execute(select(ITEMS.c.namespace).where(under(prefix), live(now)).distinct()).scalars()
    )


def put(conn: Connection, item: dict[str, Any]) -> uuid.UUID | None:
    """Store an item (replacing its value, time to live and memory, keeping when it was
    created); the memory that indexed the replaced value, if any (the caller deletes it)."""
    key = (ITEMS.c.namespace == item["namespace"]) & (ITEMS.c.key == item["key"])
    replaced = conn.execute(select(ITEMS.c.memory_id).where(key)).scalar()
    insert = dialect_insert(conn.dialect.name, ITEMS)
    changed = ("value", "memory_id", "ttl_minutes", "expires_at", "updated_at")
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=["namespace", "key"],
            set_={name: insert.excluded[name] for name in changed},
        ),
        item,
    )
    if item["memory_id"] is not None and item["expires_at"] is not None:
        # the item's expiry, which may be any moment (a time to live of 0 is already past)
        conn.execute(
            update(memories)
            .where(memories.c.id == item["memory_id"])
            .values(expires_at=item["expires_at"])
        )
    return None if replaced is None else uuid.UUID(str(replaced))


def delete_item(conn: Connection, namespace: str, key: str) -> None:
    """Delete an item with its memory."""
    where = (ITEMS.c.namespace == namespace) & (ITEMS.c.key == key)
    conn.execute(delete(memories).where(memories.c.id.in_(select(ITEMS.c.memory_id).where(where))))
    conn.execute(delete(ITEMS).where(where))


def refresh(conn: Connection, keys: Sequence[tuple[str, str, float]], now: datetime) -> None:
    """Restart the time to live of items read, and of their memories: (namespace, key,
    minutes) each."""
    for namespace, key, minutes in keys:
        expires_at = now + timedelta(minutes=minutes)
        where = (ITEMS.c.namespace == namespace, ITEMS.c.key == key, live(now))
        conn.execute(update(ITEMS).where(*where).values(expires_at=expires_at))
        conn.execute(
            update(memories)
            .where(memories.c.id.in_(select(ITEMS.c.memory_id).where(*where)))
            .values(expires_at=expires_at)
        )


def sweep(conn: Connection, now: datetime) -> int:
    """Delete the expired items and every expired memory (their items' among them); how many
    items."""
    expired = ITEMS.c.expires_at <= now
    of_items = select(ITEMS.c.memory_id).where(expired, ITEMS.c.memory_id.is_not(None))
    conn.execute(
        delete(memories).where(or_(memories.c.expires_at <= now, memories.c.id.in_(of_items)))
    )
    return conn.execute(delete(ITEMS).where(expired)).rowcount
