"""Keyset pagination: over ``(timestamp, id)``, newest first, for the log-like tables; over
unique text columns in ascending order (a name; a state's scope and key) for the rest.

Ids are time-ordered UUIDs, so ``id`` breaks ties between rows stored in the same microsecond in
the order they were stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Row, Select, and_, or_, tuple_

from agentkeep.errors import ValidationError
from agentkeep.models.common import Page, check_limit, decode_cursor, encode_cursor

T = TypeVar("T")


def newest_first(
    query: Select[Any],
    when: ColumnElement[datetime],
    key: ColumnElement[uuid.UUID],
    cursor: str | None,
) -> Select[Any]:
    """Order ``query`` newest first and, given a cursor, start just after the row it names."""
    if cursor is not None:
        after_time, after_id = cursor_position(cursor)
        query = query.where(after(when, key, after_time, after_id))
    return query.order_by(when.desc(), key.desc())


def cursor_position(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The ``(timestamp, id)`` a newest-first cursor names; a ``ValidationError`` if it is not
    one."""
    when_text, key_text = decode_cursor(cursor, 2)
    try:
        after_time, after_id = datetime.fromisoformat(when_text), uuid.UUID(key_text)
        if after_time.tzinfo is None:
            raise ValueError(when_text)
        # as UTC, the store's time: an edge year with an offset cannot be, so no cursor named it
        return after_time.astimezone(UTC), after_id
    except (ValueError, OverflowError):
        raise ValidationError("cursor is not valid", field="cursor") from None


def after(
    when: ColumnElement[datetime], key: ColumnElement[uuid.UUID], after_time: Any, after_id: Any
) -> ColumnElement[bool]:
    """The rows just older than ``(after_time, after_id)`` (values or bound parameters)."""
    return or_(when < after_time, and_(when == after_time, key < after_id))


def to_page(
    rows: Sequence[Row[Any]], limit: int, build: Callable[[Row[Any]], T], when: str
) -> Page[T]:
    """A page from ``limit + 1`` fetched rows: the extra row only says there is more."""
    kept = rows[:limit]
    items = [build(row) for row in kept]
    if len(rows) <= limit:
        return Page(items=items)
    last = kept[-1]._mapping
    return Page(items=items, next_cursor=encode_cursor(last[when], last["id"]))


def in_order(
    conn: Connection,
    query: Select[Any],
    columns: Sequence[ColumnElement[str]],
    build: Callable[[Sequence[Row[Any]]], list[T]],
    *,
    limit: int | None,
    cursor: str | None,
    max_page_size: int,
) -> Page[T]:
    """A page of ``query`` ordered by ``columns`` (text that is unique together), after the row
    ``cursor`` names; every row when ``limit`` is ``None`` (then ``next_cursor`` is ``None``)."""
    if cursor is not None:
        after = decode_cursor(cursor, len(columns))
        query = query.where(tuple_(*columns) > tuple_(*after))
    query = query.order_by(*columns)
    if limit is None:
        return Page(items=build(conn.execute(query).all()))
    check_limit(limit, max_page_size)
    rows = conn.execute(query.limit(limit + 1)).all()
    if len(rows) <= limit:
        return Page(items=build(rows))
    last = rows[limit - 1]._mapping
    return Page(
        items=build(rows[:limit]),
        next_cursor=encode_cursor(*(last[column] for column in columns)),
    )
