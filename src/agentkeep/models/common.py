"""Shared pieces of the domain models: ids, validated text, JSON documents, pages and cursors."""

from __future__ import annotations

import base64
import json
import math
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic import ValidationError as PydanticValidationError

from agentkeep.errors import TooLargeError, ValidationError

IdLike = uuid.UUID | str
"""An id as callers may pass it: a ``uuid.UUID`` or its string form."""

T = TypeVar("T")


def to_uuid(value: object, field: str = "id") -> uuid.UUID:
    """Normalise an id given as a UUID or a string; anything else is a ``ValidationError``."""
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value.strip())
        except ValueError:
            raise ValidationError(
                f"{field} is not a valid UUID: {value[:80]!r}", field=field
            ) from None
    raise ValidationError(
        f"{field} must be a UUID or a string, not {type(value).__name__}", field=field
    )


def optional_uuid(value: object, field: str) -> uuid.UUID | None:
    return None if value is None else to_uuid(value, field)


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain a NUL (\\x00) character")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
"""Text that any backend can store (PostgreSQL rejects NUL characters)."""

Name = Annotated[str, StringConstraints(min_length=1, max_length=255), AfterValidator(_no_nul)]
"""A short identifier-like string: a name, a user id, a chat id."""
Name100 = Annotated[str, StringConstraints(min_length=1, max_length=100), AfterValidator(_no_nul)]
Name64 = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_no_nul)]
Name50 = Annotated[str, StringConstraints(min_length=1, max_length=50), AfterValidator(_no_nul)]
Text500 = Annotated[str, StringConstraints(max_length=500), AfterValidator(_no_nul)]
"""Text of at most 500 characters (a title, a path, a pattern)."""

JSONObject = dict[str, Any]

INT32_MAX = 2**31 - 1
"""The largest value an INTEGER column holds on PostgreSQL (SQLite's are wider)."""
Int32 = Annotated[int, Field(ge=-INT32_MAX - 1, le=INT32_MAX)]
Count = Annotated[int, Field(ge=0, le=INT32_MAX)]
"""A non-negative count that fits an INTEGER column (token counts)."""


class Model(BaseModel):
    """Base of domain models: immutable, built from rows by attribute."""

    model_config = ConfigDict(frozen=True, from_attributes=True, populate_by_name=True)


class Input(BaseModel):
    """Base of create/update inputs: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=False)


class Page(Model, Generic[T]):
    """One page of a keyset-paginated list; pass ``next_cursor`` back for the next page."""

    items: list[T]
    next_cursor: str | None = None


def encode_cursor(*parts: object) -> str:
    """An opaque cursor from sort-key parts (datetimes, UUIDs, ints, strings)."""
    raw = json.dumps(
        [p.isoformat() if isinstance(p, datetime) else str(p) for p in parts],
        separators=(",", ":"),
    )
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


_MAX_CURSOR = 16_384
"""Longer than any cursor ``encode_cursor`` makes (a 255-character name escapes to ~4 KB)."""


def decode_cursor(cursor: str, count: int) -> list[str]:
    """The parts of a cursor made by ``encode_cursor``; a ``ValidationError`` if it is not one."""
    if not isinstance(cursor, str) or len(cursor) > _MAX_CURSOR:
        raise ValidationError("cursor is not valid", field="cursor")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeError, RecursionError):  # RecursionError: "[[[[…" from a client
        raise ValidationError("cursor is not valid", field="cursor") from None
    if (
        not isinstance(parts, list)
        or len(parts) != count
        or not all(isinstance(p, str) for p in parts)
    ):
        raise ValidationError("cursor is not valid", field="cursor")
    return parts


def check_json_size(value: Any, limit: int, field: str) -> None:
    """Reject a JSON document larger than ``limit`` bytes once serialised."""
    if value is None:
        return
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > limit:
        raise TooLargeError(
            f"{field} is {size} bytes as JSON; the limit is {limit} bytes", field=field
        )


def check_text_size(value: str | None, limit: int, field: str) -> None:
    """Reject text longer than ``limit`` bytes in UTF-8."""
    if value is None or len(value) * 4 <= limit:  # fast path: cannot exceed the limit
        return
    size = len(value.encode())
    if size > limit:
        raise TooLargeError(f"{field} is {size} bytes; the limit is {limit} bytes", field=field)


def check_json(value: Any, limit: int, field: str) -> None:
    """Reject a value that is not portable JSON, or is larger than ``limit`` bytes as JSON.

    Portable means what both backends store unchanged: dicts with string keys, lists, strings
    without NUL characters (PostgreSQL's JSONB refuses ``\\u0000``), finite numbers (JSON has no
    NaN or infinity), booleans and ``None``.
    """
    if value is None or (isinstance(value, dict | list) and not value):
        return  # the common case on the append path: nothing to check
    try:  # first: it also rejects NaN, infinity, reference cycles and non-JSON types
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (ValueError, TypeError, RecursionError) as exc:
        raise ValidationError(f"{field} is not storable JSON: {exc}", field=field) from None
    problem = _unportable(value)
    if problem is not None:
        raise ValidationError(f"{field} is not storable JSON: {problem}", field=field)
    size = len(text.encode())
    if size > limit:
        raise TooLargeError(
            f"{field} is {size} bytes as JSON; the limit is {limit} bytes", field=field
        )


def _unportable(value: Any) -> str | None:
    """What ``json.dumps`` lets through but a backend would change or refuse."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "a string contains a NUL (\\x00) character"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return "numbers must be finite (no NaN or infinity)"
        elif isinstance(item, dict):
            if not all(isinstance(key, str) for key in item):
                return "object keys must be strings"
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
        elif item is not None and not isinstance(item, bool | int):
            return f"{type(item).__name__} is not a JSON type"
    return None


E = TypeVar("E", bound=StrEnum)


def to_enum(kind: type[E], value: E | str, field: str) -> E:
    """``value`` as a member of ``kind``; a ``ValidationError`` naming the choices otherwise."""
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise ValidationError(f"{field} must be one of {allowed}", field=field) from None


def check_limit(limit: int, maximum: int) -> int:
    if limit < 1 or limit > maximum:
        raise ValidationError(f"limit must be between 1 and {maximum}", field="limit")
    return limit


M = TypeVar("M", bound=BaseModel)


def validate_input(model: type[M], data: Any) -> M:
    """Build ``model`` from ``data``, turning pydantic's error into a domain ``ValidationError``."""
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        raise from_pydantic(exc) from exc


def from_pydantic(exc: PydanticValidationError) -> ValidationError:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or None
    message = f"{field}: {first['msg']}" if field else first["msg"]
    return ValidationError(message, field=field)
