"""The read path of the hot reads: rows decoded per backend, models built in a batch.

A read through SQLAlchemy Core pays, per call, for building the statement and its cache key,
and per value for the column types' result processors (a ``uuid.UUID`` parsed twice a message,
timestamps by regular expression, JSON), then per row for pydantic's validation of data the
store itself validated when it was written. On the reads that run on every turn (a
conversation's last messages, a page of history, a user's conversations) that was ~90% of
the time. Here:

- the statement is compiled once per dialect and run on the driver's connection
  (:class:`agentkeep.db.prepared.Prepared`, as the append's writes are): its parameters
  converted by the column types' bind processors, its rows returned as the driver gives them;
- :class:`Decoder` turns the driver's values into the model's, per backend, from the table's
  column types: on SQLite UUIDs from hex text (a foreign key repeated on every row parsed once
  per batch), timestamps from their canonical text, JSON from text; on PostgreSQL psycopg has
  decoded UUIDs, timestamps and JSON already, so only time zones are normalised to UTC;
- the models are built without re-validating: each field that reads back through a validator
  (a JSON document cut at the depth limit, tool-call records) still runs it, everything else is
  set as decoded. The result is equal (``==``, field by field, the same types) to
  ``Model.model_validate`` of the same row, which the tests check on every backend.

Text a timestamp column holds in another form than the one agentkeep writes (data written by
hand, say) is read by SQLAlchemy's own processor, so it reads back as it always did.
"""

from __future__ import annotations

import json
import json.scanner
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Generic, TypeVar, cast

from pydantic import AfterValidator, BaseModel, TypeAdapter
from sqlalchemy import JSON, Dialect, Table, Uuid
from sqlalchemy import Enum as SQLEnum

from agentkeep.db.types import UTCDateTime
from agentkeep.models.common import MAX_JSON_DEPTH, stored

M = TypeVar("M", bound=BaseModel)

Convert = Callable[[Any], Any]


class Decoder(Generic[M]):
    """Builds ``model``s from rows of ``columns`` (the driver's values) on one backend."""

    def __init__(self, model: type[M], columns: Sequence[Any], dialect: Dialect) -> None:
        self.model = model
        fields = model.__pydantic_fields__
        self._names = [column.name for column in columns]
        position = {name: i for i, name in enumerate(self._names)}
        missing = fields.keys() - position.keys()
        if missing:
            raise ValueError(f"{model.__name__} has fields no column holds: {sorted(missing)}")
        # the model's field order, as model_validate fills __dict__
        self._kept = [position[name] for name in fields]
        self._fields_set = frozenset(self._names[i] for i in self._kept)
        self._steps: list[tuple[int, str, Convert, str | None]] = []
        for i in self._kept:
            column = columns[i]
            convert = converter(column, dialect)
            # values that repeat in a batch (a foreign key; a message's created and updated
            # time) are converted once per batch, the columns of a kind sharing one memo
            repeated: str | None = None
            if isinstance(column.type, Uuid) and not column.primary_key:
                repeated = "id"
            elif isinstance(column.type, UTCDateTime):
                repeated = "time"
            check = _field_check(model, column.name)
            if check is _stored and convert is _json_from_text:
                convert = _stored_json_from_text
            elif check is not None:
                convert = _then(convert, check)
            if convert is not _same or repeated is not None:
                self._steps.append((i, column.name, convert, repeated))

        self._decode = self._compile(len(columns))

    def all(self, rows: Sequence[Sequence[Any]]) -> list[M]:
        """The models of ``rows``, in order."""
        return self._decode(rows) if rows else []

    def _compile(self, width: int) -> Callable[[Sequence[Sequence[Any]]], list[M]]:
        """One loop over the rows written out for these columns (as ``dataclasses`` writes
        ``__init__``): unpacking each row, converting what needs it and building the model
        with no call per value more than the conversions. About twice as fast as a generic
        loop over columns."""
        names = self._names
        steps = {i: (convert, repeated) for i, _name, convert, repeated in self._steps}
        scope: dict[str, Any] = {
            "new": object.__new__,
            "set_": object.__setattr__,
            "model": self.model,
            "fields_set": self._fields_set,
            "missing": _MISSING,
        }
        body: list[str] = []
        values: list[str] = []
        for i in self._kept:
            value = f"v{i}"
            if i in steps:
                convert, repeated = steps[i]
                scope[f"c{i}"] = convert
                if repeated is None:  # every conversion reads NULL as None: no call for it
                    value = f"(None if v{i} is None else c{i}(v{i}))"
                else:  # converted once per batch
                    memo = f"memo_{repeated}"
                    body += [
                        f"x{i} = {memo}.get(v{i}, missing)",
                        f"if x{i} is missing:",
                        f"    x{i} = {memo}[v{i}] = c{i}(v{i})",
                    ]
                    value = f"x{i}"
            values.append(f"{names[i]!r}: {value}")
        row = ", ".join(f"v{i}" for i in range(width))
        lines = [
            "def decode(rows):",
            "    memo_id = {}",
            "    memo_time = {}",
            "    out = []",
            "    append = out.append",
            f"    for ({row},) in rows:",
            *(f"        {line}" for line in body),
            "        item = new(model)",
            f"        set_(item, '__dict__', {{{', '.join(values)}}})",
            "        set_(item, '__pydantic_fields_set__', set(fields_set))",
            "        set_(item, '__pydantic_extra__', None)",
            "        set_(item, '__pydantic_private__', None)",
            "        append(item)",
            "    return out",
        ]
        exec("\n".join(lines), scope)
        return cast("Callable[[Sequence[Sequence[Any]]], list[M]]", scope["decode"])


_MISSING = object()


def _same(value: Any) -> Any:
    return value


def _then(first: Convert, second: Convert) -> Convert:
    if first is _same:
        return second
    return lambda value: second(first(value))


def _field_check(model: type[BaseModel], name: str) -> Convert | None:
    """What validating field ``name`` of ``model`` does beyond checking a value's type: the
    depth cut of a stored JSON document, or the field's whole validation when it has other
    validators (tool-call records)."""
    field = model.__pydantic_fields__[name]
    if not field.metadata:
        return None
    if all(isinstance(m, AfterValidator) and m.func is stored for m in field.metadata):
        return _stored
    adapter: TypeAdapter[Any] = TypeAdapter(field.rebuild_annotation())
    validate = adapter.validate_python
    return lambda value: value if value is None else validate(value)


def converter(column: Any, dialect: Dialect) -> Convert:
    """The driver's value of ``column`` as the model's field takes it, on ``dialect``."""
    kind = column.type
    sqlite = dialect.name == "sqlite"
    if isinstance(kind, Uuid):
        return _uuid_from_text if sqlite else _same
    if isinstance(kind, UTCDateTime):
        return _sqlite_time(kind, dialect) if sqlite else _aware_utc
    if isinstance(kind, SQLEnum) and kind.enum_class is not None:
        return _enum(kind.enum_class)
    if isinstance(kind, JSON):
        return _json_from_text if sqlite else _same
    return _same


_new = object.__new__
_set = object.__setattr__
_UNKNOWN = uuid.SafeUUID.unknown


def _uuid_from_text(value: Any) -> uuid.UUID | None:
    if value is None:
        return None
    if isinstance(value, str) and len(value) == 32:  # the hex the column stores
        # what uuid.UUID(hex=value) builds, without its checks of other forms (~3x faster)
        made = _new(uuid.UUID)
        _set(made, "int", int(value, 16))
        _set(made, "is_safe", _UNKNOWN)
        return made
    return uuid.UUID(value)


def _sqlite_time(kind: UTCDateTime, dialect: Dialect) -> Convert:
    fallback = kind.dialect_impl(dialect).result_processor(dialect, None)
    parse = datetime.fromisoformat

    def convert(value: Any) -> datetime | None:
        if value is None:
            return None
        # the text the column writes: "YYYY-MM-DD HH:MM:SS.ffffff", UTC without an offset
        if isinstance(value, str) and len(value) == 26 and value[10] == " " and value[19] == ".":
            return parse(value + "+00:00")  # aware in datetime.UTC, 6x faster than .replace
        return fallback(value) if fallback is not None else value

    return convert


def _aware_utc(value: Any) -> Any:
    """As :class:`UTCDateTime` reads it: aware, in UTC."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def _enum(kind: type[Enum]) -> Convert:
    members = kind._value2member_map_

    def convert(value: Any) -> Any:
        if value is None:
            return None
        found = members.get(value)
        return found if found is not None else kind(value)

    return convert


_scan: Any = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]


def _json_from_text(value: Any) -> Any:
    """``json.loads`` of the column's text: the decoder's scanner straight away when the text
    is one JSON value from its first to its last character (as stored), else ``json.loads``."""
    if isinstance(value, str):
        try:
            found, end = _scan(value, 0)
        except StopIteration:
            return json.loads(value)  # raises what json.loads raises
        return found if end == len(value) else json.loads(value)
    return json.loads(value) if isinstance(value, bytes) else value


def _stored(value: Any) -> Any:
    return value if value is None else stored(value)


def _stored_json_from_text(value: Any) -> Any:
    """A stored JSON document from its text, cut at the depth limit if it is deeper: which it
    cannot be when the text has no more brackets than the limit has levels."""
    found = _json_from_text(value)
    if isinstance(value, str) and value.count("{") + value.count("[") <= MAX_JSON_DEPTH:
        return found
    return _stored(found)


_DECODERS: dict[tuple[type[BaseModel], Table, str], Decoder[Any]] = {}


def decoder(model: type[M], table: Table, dialect: Dialect) -> Decoder[M]:
    """The decoder of ``table``'s rows (all its columns, in order) into ``model``s."""
    key = (model, table, dialect.name)
    found = _DECODERS.get(key)
    if found is None:
        found = _DECODERS[key] = Decoder(model, list(table.columns), dialect)
    return cast("Decoder[M]", found)
