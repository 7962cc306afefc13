"""Shared pieces of the domain models: ids, validated text, JSON documents, pages and cursors.

Storable input: text (``Text``, ``Name``…) must be valid Unicode (no lone surrogates) without NUL
characters, which the input models' types check; JSON documents must hold only JSON types,
finite numbers and string keys, with storable strings, nested at most :data:`MAX_JSON_DEPTH`
levels, which the store checks at its edge (:func:`check_json`, called by every write of a JSON
column) and reports as a ``ValidationError`` naming the field. Text reaching the store without a
model is checked there too (:func:`check_text_size`).

What the domain models read back uses the ``Stored…`` JSON types: a document an older release
stored deeper than the limit reads back cut at the limit, each part below it replaced by
:data:`TOO_DEEP`, so every read that includes it still answers (and its JSON can be encoded).
"""

from __future__ import annotations

import base64
import json
import math
import re
import unicodedata
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, Literal, Self, TypeVar, cast

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError

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


def _text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or ``None``. Never echoes the text itself (an
    error message with a lone surrogate in it could not be sent either)."""
    if "\x00" in value:
        return "must not contain a NUL (\\x00) character"
    if not value.isascii():  # O(1) in CPython: ASCII text skips the encoding check
        try:
            value.encode()
        except UnicodeEncodeError as exc:
            code = ord(value[exc.start])
            return (
                f"must be valid Unicode: it has a lone surrogate (U+{code:04X}) "
                f"at position {exc.start}"
            )
    return None


_INVISIBLE = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})
"""Unicode categories that show nothing: controls, format characters (zero-width space, joiners,
byte-order mark), spaces and separators."""


_UNSPACED = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f]"
)


def unspaced(word: str) -> bool:
    """Whether ``word`` is written in a script without spaces between words (Thai, Lao, Myanmar,
    Khmer, Japanese kana, Chinese characters, Korean syllables, whose particles join the word
    before): full-text tokenisers take a whole run of such text as one word, so a search finds
    such a word as a substring instead."""
    return _UNSPACED.search(word) is not None


def blank(text: str) -> bool:
    """Whether ``text`` shows nothing: it is empty, or only whitespace and invisible characters
    (``"  "``, ``"\\t\\n"``, ``"\\u200b"``). Stops at the first visible character."""
    return all(c.isspace() or unicodedata.category(c) in _INVISIBLE for c in text)


def _storable_text(value: str) -> str:
    problem = _text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


Text = Annotated[str, AfterValidator(_storable_text)]
"""Text that any backend can store: valid Unicode (no lone surrogates) without NUL characters
(PostgreSQL rejects them)."""

Name = Annotated[
    str, StringConstraints(min_length=1, max_length=255), AfterValidator(_storable_text)
]
"""A short identifier-like string: a name, a user id, a chat id."""
Name100 = Annotated[
    str, StringConstraints(min_length=1, max_length=100), AfterValidator(_storable_text)
]
Name64 = Annotated[
    str, StringConstraints(min_length=1, max_length=64), AfterValidator(_storable_text)
]
Name50 = Annotated[
    str, StringConstraints(min_length=1, max_length=50), AfterValidator(_storable_text)
]


def _integer_as_text(value: object) -> object:
    """A chat platform's integer id as the text it is stored as (``102`` is ``"102"``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


PlatformId = Annotated[
    Name,
    BeforeValidator(_integer_as_text),
    WithJsonSchema(
        {"anyOf": [{"type": "string", "minLength": 1, "maxLength": 255}, {"type": "integer"}]}
    ),
]
"""A chat platform's id (a message, a chat, a user): text or an integer (Telegram sends
integers), stored as text."""


def platform_id(value: object, field: str) -> str:
    """A chat platform's id given to a lookup, as the text it is stored as (see
    :data:`PlatformId`): text or an integer, else a ``ValidationError`` naming ``field``
    (``None`` would match every message stored without one; ``True`` would look for "True")."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value:
        shown = "empty text" if value == "" else type(value).__name__
        raise ValidationError(
            f"{field} must be a chat platform's id (text or an integer), not {shown}",
            field=field,
        )
    check_text(value, field)
    return value


Text500 = Annotated[str, StringConstraints(max_length=500), AfterValidator(_storable_text)]
"""Text of at most 500 characters (a title, a path, a pattern)."""


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+14:00 is a day before the first a datetime holds
        raise PydanticCustomError("datetime_range", OUT_OF_RANGE) from None


OUT_OF_RANGE = "is out of range: in UTC it falls before year 1 or after year 9999"

UTCDatetime = Annotated[AwareDatetime, AfterValidator(_in_utc)]
"""A time with a time zone, as UTC (the store keeps every time in UTC): a time that UTC cannot
hold (year 1 or 9999 with an offset that crosses the edge) is refused naming its field."""

MAX_JSON_DEPTH = 64
"""How many levels of objects and lists one JSON document may nest (``{"a": {"b": []}}`` is 3).

Deeper documents are refused on input. The limit leaves room below the depth at which JSON
encoders give up (a response nests the document inside a few levels of its own)."""

TOO_DEEP = f"[nested more than {MAX_JSON_DEPTH} levels deep]"
"""What a stored document reads back with in place of each part nested beyond the limit."""


def json_problem(value: Any) -> str | None:
    """Why ``value`` is not a storable JSON document, or ``None``.

    Storable means what both backends keep unchanged: dicts with string keys, lists, valid
    Unicode strings without NUL characters (PostgreSQL's JSONB refuses ``\\u0000``), finite
    numbers (JSON has no NaN or infinity), booleans and ``None``, nested at most
    :data:`MAX_JSON_DEPTH` levels. The walk is iterative and stops at the limit, so no document
    can exhaust the stack, nor a reference cycle loop it.
    """
    if not isinstance(value, dict | list | tuple):
        return _scalar_problem(value)
    pending: list[tuple[Any, int]] = [(value, 1)]  # (container, levels of containers to it)
    while pending:
        item, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            return f"it nests more than {MAX_JSON_DEPTH} levels deep"
        if isinstance(item, dict):
            for key in item:
                if not isinstance(key, str):
                    return "object keys must be strings"
                problem = _text_problem(key)
                if problem is not None:
                    return f"a string {problem}"
            item = item.values()
        for child in item:  # scalars checked here, not queued: most documents are flat
            if isinstance(child, dict | list | tuple):
                pending.append((child, depth + 1))
            elif not (child is None or child is True or child is False or type(child) is int):
                problem = _scalar_problem(child)
                if problem is not None:
                    return problem
    return None


def _scalar_problem(item: Any) -> str | None:
    if isinstance(item, str):
        problem = _text_problem(item)
        return None if problem is None else f"a string {problem}"
    if isinstance(item, float):
        return None if math.isfinite(item) else "numbers must be finite (no NaN or infinity)"
    if item is None or isinstance(item, bool | int):
        return None
    return f"{type(item).__name__} is not a JSON type"


def _within_depth(value: T) -> T:
    """``value`` itself when it nests at most :data:`MAX_JSON_DEPTH` levels (the walk stops
    there); otherwise a copy cut at the limit."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, dict | list):
                if depth == MAX_JSON_DEPTH:
                    return cast("T", _cut(value, 1))
                pending.append((child, depth + 1))
    return value


def _cut(item: Any, depth: int) -> Any:
    """A copy of ``item`` with each container below the limit replaced by :data:`TOO_DEEP`.
    The recursion is bounded by the limit."""
    if not isinstance(item, dict | list):
        return item
    if depth > MAX_JSON_DEPTH:
        return TOO_DEEP
    if isinstance(item, dict):
        return {key: _cut(child, depth + 1) for key, child in item.items()}
    return [_cut(child, depth + 1) for child in item]


def stored(value: T) -> T:
    """``value`` as read back: a container cut at :data:`MAX_JSON_DEPTH` if it is deeper."""
    return _within_depth(value) if isinstance(value, dict | list) else value


JSONObject = dict[str, Any]
"""A JSON object to store (metadata, settings, snapshots). The store checks it, with any other
JSON document, at its edge (:func:`check_json`), so the Python API and HTTP refuse the same
documents with the same error naming the field."""

StoredJSONObject = Annotated[dict[str, Any], AfterValidator(stored)]
"""A JSON object as read back: cut at :data:`MAX_JSON_DEPTH` if it was stored deeper."""
StoredJSONList = Annotated[list[Any], AfterValidator(stored)]
StoredJSON = Annotated[Any, AfterValidator(stored)]
"""Any JSON value as read back."""

INT32_MAX = 2**31 - 1
"""The largest value an INTEGER column holds on PostgreSQL (SQLite's are wider)."""
Int32 = Annotated[int, Field(ge=-INT32_MAX - 1, le=INT32_MAX)]
Count = Annotated[int, Field(ge=0, le=INT32_MAX)]
"""A non-negative count that fits an INTEGER column (token counts)."""


class Model(BaseModel):
    """Base of domain models: immutable, built from rows by attribute."""

    model_config = ConfigDict(frozen=True, from_attributes=True, populate_by_name=True)


class Input(BaseModel):
    """Base of create/update inputs: unknown fields are an error, not silently dropped.

    Building one with bad values raises :class:`agentkeep.ValidationError` naming the field (the
    one error family agentkeep raises for bad input), not pydantic's: ``MessageCreate(role="x")``
    and ``MessageCreate.model_validate({...})`` alike. (The HTTP API validates request bodies
    itself and answers 422 with the same field.)
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=False)

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except PydanticValidationError as exc:
            raise from_pydantic(exc) from exc

    # validating an input nested in another (a conversation's first message) is pydantic's own
    # work, as for RootModel: so the outer model's error names the whole path
    # (``message.role``), and pydantic does not call this __init__ for every nested input
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    @classmethod
    def model_validate(
        cls,
        obj: Any,
        *,
        strict: bool | None = None,
        extra: Literal["allow", "ignore", "forbid"] | None = None,
        from_attributes: bool | None = None,
        context: Any | None = None,
        by_alias: bool | None = None,
        by_name: bool | None = None,
    ) -> Self:
        try:
            return super().model_validate(
                obj,
                strict=strict,
                extra=extra,
                from_attributes=from_attributes,
                context=context,
                by_alias=by_alias,
                by_name=by_name,
            )
        except PydanticValidationError as exc:
            raise from_pydantic(exc) from exc


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
        or not all(isinstance(p, str) and _text_problem(p) is None for p in parts)
    ):  # text no cursor was made of (a NUL, a lone surrogate) would reach the database
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


def check_text(value: object, field: str) -> None:
    """Reject text that is not storable (see :data:`Text`), naming ``field``: what a lookup
    checks of the text it is given (a user id, a session id, search words). Anything other than
    text passes: its type is checked where it is used."""
    if isinstance(value, str):
        problem = _text_problem(value)
        if problem is not None:
            raise ValidationError(f"{field} {problem}", field=field)


def check_text_size(value: str | None, limit: int, field: str) -> None:
    """Reject text that is not storable (see :data:`Text`) or longer than ``limit`` bytes in
    UTF-8."""
    if value is None:
        return
    problem = _text_problem(value)
    if problem is not None:
        raise ValidationError(f"{field} {problem}", field=field)
    if len(value) * 4 <= limit:  # fast path: cannot exceed the limit
        return
    size = len(value.encode())
    if size > limit:
        raise TooLargeError(f"{field} is {size} bytes; the limit is {limit} bytes", field=field)


_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
"""``json.dumps`` with these options builds an encoder per call: one, made once."""


def check_json(value: Any, limit: int, field: str) -> str | None:
    """Reject a value that is not storable JSON (see :func:`json_problem`), or is larger than
    ``limit`` bytes as JSON; return its JSON text as measured (compact, non-ASCII characters as
    they are), which a writer may store instead of encoding the value again (``None`` for
    ``None``)."""
    if value is None:
        return None
    if isinstance(value, dict | list) and not value:
        return "{}" if isinstance(value, dict) else "[]"  # nothing to check
    try:  # first: it also refuses reference cycles, non-JSON types and ints beyond 4300 digits
        text = _COMPACT.encode(value)
    except (ValueError, TypeError, RecursionError) as exc:
        raise ValidationError(f"{field} is not storable JSON: {exc}", field=field) from None
    problem = json_problem(value)
    if problem is not None:
        raise ValidationError(f"{field} is not storable JSON: {problem}", field=field)
    size = len(text.encode())
    if size > limit:
        raise TooLargeError(
            f"{field} is {size} bytes as JSON; the limit is {limit} bytes", field=field
        )
    return text


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


def as_input(model: type[M], data: M | Mapping[str, Any]) -> M:
    """``data`` as ``model``: itself, or built from a mapping of its fields (``{"name": "a"}``
    for ``AgentCreate(name="a")``), a bad one raising ``ValidationError`` as the model would;
    anything else is a ``TypeError`` saying what was expected."""
    if isinstance(data, model):
        return data
    if isinstance(data, Mapping):
        return validate_input(model, data)
    raise TypeError(f"expected {model.__name__} or a dict of its fields, not {type(data).__name__}")


def validate_input(model: type[M], data: Any) -> M:
    """Build ``model`` from ``data``, turning pydantic's error into a domain ``ValidationError``."""
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        raise from_pydantic(exc) from exc


def from_pydantic(exc: PydanticValidationError) -> ValidationError:
    first = exc.errors()[0]
    field = printable(".".join(str(p) for p in first["loc"])) or None
    message = printable(f"{field}: {reason(first)}" if field else reason(first))
    return ValidationError(message, field=field)


_RAISED_PREFIXES = {"value_error": "Value error, ", "assertion_error": "Assertion failed, "}
"""What pydantic puts before the message of a validator's ``ValueError`` or ``assert``."""


def reason(error: Mapping[str, Any]) -> str:
    """The message of one of pydantic's errors (an item of ``exc.errors()``) as agentkeep says
    it: a validator's own words, without pydantic's "Value error, " or "Assertion failed, "
    before them. Every error message built from pydantic's goes through here."""
    message = str(error.get("msg", "invalid"))
    prefix = _RAISED_PREFIXES.get(str(error.get("type")))
    return message.removeprefix(prefix) if prefix else message


def printable(text: str) -> str:
    """``text`` as it can be sent in UTF-8: a lone surrogate (in an unknown field's name, say,
    or quoted by a parser's message) becomes its ``\\udxxx`` escape."""
    if text.isascii() or _text_problem(text) is None:
        return text
    return text.encode("utf-8", "backslashreplace").decode()
