"""Column types that are portable across SQLite and PostgreSQL, chosen at SQL-compile time.

- ``JSONDocument``: JSONB on PostgreSQL, JSON (text) on SQLite.
- ``UTCDateTime``: timezone-aware in and out on both; stored as UTC.
- ``Embedding``: pgvector's ``vector`` on PostgreSQL; little-endian float32 bytes elsewhere.
"""

from __future__ import annotations

import uuid
from array import array
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import uuid_utils.compat
from pgvector.sqlalchemy import VECTOR
from sqlalchemy import JSON, DateTime, Dialect, LargeBinary
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine

from agentkeep.errors import ValidationError

JSONDocument = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
"""JSON (JSONB on PostgreSQL); Python ``None`` is stored as SQL NULL, not as JSON ``null``."""

JSONValue = JSON().with_variant(JSONB(), "postgresql")
"""Any JSON value, ``null`` included (stored as JSON ``null``): for values users give us."""


def new_id() -> uuid.UUID:
    """A new time-ordered (UUIDv7) primary key."""
    return uuid_utils.compat.uuid7()


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC, whatever the backend stores."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: agentkeep stores timezone-aware timestamps only")
        try:
            value = value.astimezone(UTC)
        except OverflowError:  # an edge year with an offset: the input's fault, not the store's
            raise ValidationError(
                f"the time {value.isoformat()} is out of range: in UTC it falls before year 1"
                " or after year 9999"
            ) from None
        # SQLite keeps the text form; store it without an offset so it sorts as text.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """On SQLite, a time in UTC (as ``utcnow`` makes every time the store sets) is written
        straight as the text SQLAlchemy's own processing makes of it, in a third of the time:
        an append binds four. Any other value takes the general path."""
        general = super().bind_processor(dialect)
        impl = self.impl_instance.dialect_impl(dialect)
        if general is None or getattr(impl, "_storage_format", None) != _SQLITE_TEXT:
            return general

        def process(value: Any) -> Any:
            if value is not None and value.tzinfo is UTC and type(value) is datetime:
                return _SQLITE_FORMAT % (
                    value.year,
                    value.month,
                    value.day,
                    value.hour,
                    value.minute,
                    value.second,
                    value.microsecond,
                )
            return general(value)

        return process


_SQLITE_TEXT = (
    "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06d"
)
"""How SQLAlchemy writes a timestamp on SQLite (its default storage format)."""
_SQLITE_FORMAT = "%04d-%02d-%02d %02d:%02d:%02d.%06d"


class Embedding(TypeDecorator[list[float]]):
    """A vector of floats: pgvector ``vector`` on PostgreSQL, packed float32 bytes on SQLite.

    The dimension is not fixed by the column, so stores may hold embeddings of different models;
    indexes are built per dimension where a backend needs one.
    """

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(VECTOR())
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value: Sequence[float] | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "postgresql":
            return [float(x) for x in value]  # VECTOR's own processor renders it
        return array("f", value).tobytes()

    def process_result_value(self, value: Any, dialect: Dialect) -> list[float] | None:
        if value is None:
            return None
        if dialect.name == "postgresql":
            return [float(x) for x in value]  # VECTOR's processor parsed it already
        return array("f", bytes(value)).tolist()
