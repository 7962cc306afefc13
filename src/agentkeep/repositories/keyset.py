"""Keyset pagination over ``(timestamp, id)``, newest first, shared by the log-like tables.

Ids are time-ordered UUIDs, so ``id`` breaks ties between rows stored in the same microsecond in
the order they were stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Row, Select, and_, or_

from agentkeep.errors import ValidationError
from agentkeep.models.common import Page, decode_cursor, encode_cursor

T = TypeVar("T")


def newest_first(
    query: Select[Any],
    when: ColumnElement[datetime],
    key: ColumnElement[uuid.UUID],
    cursor: str | None,
) -> Select[Any]:
    """Order ``query`` newest first and, given a cursor, start just after the row it names."""
    if cursor is not None:
        when_text, key_text = decode_cursor(cursor, 2)
        try:
            after_time, after_id = datetime.fromisoformat(when_text), uuid.UUID(key_text)
        except ValueError:
            raise ValidationError("cursor is not valid", field="cursor") from None
        if after_time.tzinfo is None:
            raise ValidationError("cursor is not valid", field="cursor")
        query = query.where(or_(when < after_time, and_(when == after_time, key < after_id)))
    return query.order_by(when.desc(), key.desc())


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
