"""One definition per operation, two ways to call it: awaited (async API) or direct (sync API).

Each repository method is written once, as plain synchronous SQLAlchemy Core code, and decorated
with ``@operation``. On a component bound to ``Async`` the method becomes a coroutine function that
runs the whole operation in a worker thread (one thread hop per operation, measured faster on
this workload than an async driver's hop per statement); on a component bound to ``Sync`` it is
called directly. Both are fully typed: ``db.messages.append`` has the same parameters either way.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Generic,
    ParamSpec,
    Self,
    TypeVar,
    final,
    overload,
)

import anyio.to_thread
from pydantic import BaseModel
from sqlalchemy import Connection, Row, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from agentkeep.errors import NotFoundError, ValidationError

if TYPE_CHECKING:
    from agentkeep.config import Settings
    from agentkeep.db.service import DatabaseService


@final
class Sync:
    """Mode marker: operations run in the caller's thread and return their result."""


@final
class Async:
    """Mode marker: operations run in a worker thread and are awaited."""


ModeT = TypeVar("ModeT", Sync, Async)
P = ParamSpec("P")
R = TypeVar("R")


class Component(Generic[ModeT]):
    """Something bound to a database service and to a calling mode."""

    def __init__(self, service: DatabaseService, mode: type[ModeT]) -> None:
        self._service = service
        self._mode: type[ModeT] = mode

    @property
    def service(self) -> DatabaseService:
        return self._service

    @property
    def settings(self) -> Settings:
        return self._service.settings

    @property
    def is_async(self) -> bool:
        return self._mode is Async


class operation(Generic[P, R]):  # noqa: N801 - used as a decorator, reads like one
    """Decorate a synchronous method so async components await it in a worker thread."""

    def __init__(self, fn: Callable[Concatenate[Any, P], R]) -> None:
        self._fn = fn
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def direct(self, obj: Component[Any], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the operation in this thread, whatever ``obj``'s mode (for use inside another)."""
        return self._fn(obj, *args, **kwargs)

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, obj: Component[Sync], owner: type[Any]) -> Callable[P, R]: ...
    @overload
    def __get__(
        self, obj: Component[Async], owner: type[Any]
    ) -> Callable[P, Coroutine[Any, Any, R]]: ...
    def __get__(
        self, obj: Component[Any] | None, owner: type[Any]
    ) -> Self | Callable[P, R] | Callable[P, Coroutine[Any, Any, R]]:
        if obj is None:
            return self
        bound: Callable[P, R] = functools.partial(self._fn, obj)
        if not obj.is_async:
            return bound

        @functools.wraps(self._fn)
        async def run(*args: P.args, **kwargs: P.kwargs) -> R:
            return await anyio.to_thread.run_sync(functools.partial(bound, *args, **kwargs))

        return run


M = TypeVar("M", bound=BaseModel)


def load(model: type[M], row: Row[Any]) -> M:
    """A domain model from one result row (columns by name)."""
    return model.model_validate(dict(zip(row._fields, row, strict=True)))


def load_all(model: type[M], rows: Sequence[Row[Any]]) -> list[M]:
    """Domain models from result rows; a plain dict per row validates ~3x faster than a mapping."""
    if not rows:
        return []
    keys = rows[0]._fields
    validate = model.model_validate
    return [validate(dict(zip(keys, row, strict=True))) for row in rows]


def find_by_id(service: DatabaseService, table: Table, model: type[M], key: uuid.UUID) -> M | None:
    """The row of ``table`` whose id is ``key``, as a ``model``; ``None`` if there is none."""
    with service.connect() as conn:
        row = conn.execute(select(table).where(table.c.id == key)).first()
    return None if row is None else load(model, row)


def changes_of(
    data: BaseModel, table: Table, renamed: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The fields an update sets, keyed by column; ``None`` for a NOT NULL column is an error.

    ``renamed`` maps a model field to its column where the two differ.
    """
    renamed = renamed or {}
    changes: dict[str, Any] = {}
    for field, value in data.model_dump(exclude_unset=True).items():
        column = renamed.get(field, field)
        if value is None and not table.c[column].nullable:
            raise ValidationError(f"{field} cannot be cleared", field=field)
        changes[column] = value
    return changes


def dialect_insert(dialect: str, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that takes ``ON CONFLICT`` clauses: the one place upserts pick their dialect."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def require(conn: Connection, table: Table, key: uuid.UUID, field: str) -> None:
    """Raise ``NotFoundError`` naming ``field`` unless ``table`` has a row with id ``key``."""
    if conn.execute(select(table.c.id).where(table.c.id == key)).first() is None:
        what = table.name.removesuffix("s")
        raise NotFoundError(f"{what} {key} not found", field=field)
