"""Operations: SQL written once, run on a unit of work, called three ways.

A repository holds the SQL of one domain and nothing else. Its methods run on an open unit of
work (``self.conn`` is the unit's connection) and declare what they need with ``@operation``:
``"read"`` or ``"write"``, and ``single=True`` when the method is atomic by itself (one
statement, or reads that need no common snapshot). They never open connections, take locks or
choose isolation: the unit of work does (``db.service``).

The same method is reached three ways:

- on an open unit (``uow.messages.append(...)``, inside ``db.run(work)`` or ``with
  db.unit("write") as uow``): a plain call on the unit's connection;
- on the sync store (``connect_sync()``): the one-call shorthand, which opens a unit of the
  declared intent for the call;
- on the async store (``connect()``): the same, in one worker-thread hop (measured faster on
  this workload than an async driver's hop per statement). This is the only place the async API
  meets threads. Two exceptions, where the hop would cost more than it spares the event loop:
  on a SQLite file, an operation declared ``bounded`` (a read of one page through an index)
  runs on the event loop's own thread (it waits for no writer under WAL and costs less than the
  hop's two thread wake-ups); on PostgreSQL, a ``bounded`` read or a ``single`` write runs on
  the event loop too, its waits for the server awaited (``db.bridge``): the same code, no thread,
  and many callers' statements in flight at once. A read that may scan (a search, a count, an
  export) and a unit of several statements still hop.

Both stores are fully typed: ``db.messages.append`` has the method's parameters and docstring
either way, awaitable on the async store.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import types
import uuid
from collections.abc import Callable, Coroutine, Sequence
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Generic,
    ParamSpec,
    Self,
    TypeVar,
    cast,
    final,
    overload,
)

import anyio.to_thread
from pydantic import BaseModel
from sqlalchemy import Connection, Row, Select, Table, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite

from agentkeep.db import bridge, hop
from agentkeep.db.prepared import prepared
from agentkeep.errors import NotFoundError, ValidationError

if TYPE_CHECKING:
    from agentkeep.config import Settings
    from agentkeep.db.service import DatabaseService, Intent
    from agentkeep.repositories.facade import Unit


@final
class Sync:
    """Mode marker: operations run in the caller's thread and return their result."""


@final
class Async:
    """Mode marker: operations run in a worker thread and are awaited."""


ModeT = TypeVar("ModeT", Sync, Async)
P = ParamSpec("P")
R = TypeVar("R")


class Binding(Generic[ModeT]):
    """What operations are bound to: a store (each call opens its own unit of work) or an open
    unit (calls run on its connection)."""

    service: DatabaseService
    mode: type[ModeT]

    @property
    def current_unit(self) -> Unit | None:
        """The open unit of work, when this is one."""
        return None

    def open_unit(self, connection: Connection, intent: Intent, single: bool) -> Unit:
        """A unit of work over ``connection`` (for a store's one-call shorthand)."""
        raise NotImplementedError

    def run_unit(
        self,
        intent: Intent,
        work: Callable[[Unit], R],
        *,
        single: bool = False,
        grouped: bool = False,
    ) -> R:
        """``work`` in a unit of work of its own, in this thread; what it returns, once
        committed. What the unit changed is then published to the store's listeners (only the
        run that committed: with ``grouped``, a shared commit may run ``work`` again). Every
        unit it opened is ended, whatever happened: one that ``work`` kept cannot be used past
        its commit. ``single`` and ``grouped``: see :meth:`DatabaseService.run`."""
        ran: list[Unit] = []

        def in_unit(connection: Connection) -> R:
            uow = self.open_unit(connection, intent, single)
            ran.append(uow)
            result = work(uow)
            uow.log_changes()
            return result

        try:
            result = self.service.run(intent, in_unit, single=single, grouped=grouped)
        finally:
            for uow in ran:
                uow.end()
        ran[-1].publish()
        return result


class Bound(Generic[ModeT]):
    """Something whose operations run on a binding."""

    _bound: Binding[ModeT]

    @property
    def _binding(self) -> Binding[ModeT]:
        """What the operations run on."""
        return self._bound

    def on(self, unit: Unit) -> Self:
        """The same thing on an open unit of work."""
        raise NotImplementedError

    @property
    def is_async(self) -> bool:
        return self._binding.mode is Async


class Repository(Bound[ModeT]):
    """The SQL of one domain; methods run on ``self.conn``, the current unit's connection."""

    def __init__(self, binding: Binding[ModeT]) -> None:
        self._bound = binding

    def on(self, unit: Unit) -> Self:
        return type(self)(cast("Binding[Any]", unit))

    @property
    def uow(self) -> Unit:
        """The unit of work this repository runs on."""
        unit = self._binding.current_unit
        if unit is None:  # only operations run, and they run on a unit
            raise RuntimeError("repository SQL runs inside an operation")
        return unit

    @property
    def conn(self) -> Connection:
        return self.uow.connection

    @property
    def service(self) -> DatabaseService:
        return self._binding.service

    @property
    def settings(self) -> Settings:
        return self._binding.service.settings

    @property
    def dialect(self) -> str:
        return self._binding.service.dialect


def operation(
    intent: Intent, *, single: bool = False, bounded: bool = False
) -> Callable[[Callable[Concatenate[Any, P], R]], Operation[P, R]]:
    """Declare a method (or a function whose first parameter is a unit of work) as an operation
    of ``intent``; ``single``: it is atomic by itself; ``bounded``: a read of at most one page of
    rows through an index (a key, the last messages, a user's conversations), whatever the size
    of the store. See the module's documentation."""

    def declare(fn: Callable[Concatenate[Any, P], R]) -> Operation[P, R]:
        return Operation(fn, intent, single, bounded=bounded)

    return declare


class Operation(Generic[P, R]):
    """An operation: a plain call on an open unit, a unit of its own on a store."""

    def __init__(
        self,
        fn: Callable[Concatenate[Any, P], R],
        intent: Intent,
        single: bool,
        *,
        bounded: bool = False,
    ) -> None:
        self.function = fn
        self.intent: Intent = intent
        self.single = single
        self.bounded = bounded and intent == "read" and single
        self._name = fn.__name__
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def __set_name__(self, owner: type[Any], name: str) -> None:
        self._name = name

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, obj: Bound[Sync], owner: type[Any]) -> Callable[P, R]: ...
    @overload
    def __get__(
        self, obj: Bound[Async], owner: type[Any]
    ) -> Callable[P, Coroutine[Any, Any, R]]: ...
    def __get__(
        self, obj: Bound[Any] | None, owner: type[Any]
    ) -> Self | Callable[P, R] | Callable[P, Coroutine[Any, Any, R]]:
        if obj is None:
            return self
        unit = obj._binding.current_unit
        if unit is not None:
            if self.intent == "write" and unit.intent == "read":
                raise RuntimeError(f"{self._name} writes: it cannot run in a read unit of work")
            return cast("Callable[P, R]", types.MethodType(self.function, obj))
        call = self._shorthand(obj)
        # cached on the instance, which a non-data descriptor gives way to: bound once per store
        obj.__dict__[self._name] = call
        return call

    def _shorthand(self, obj: Bound[Any]) -> Callable[P, R] | Callable[P, Coroutine[Any, Any, R]]:
        """The call that opens a unit of work for one operation."""
        fn, intent, single = self.function, self.intent, self.single
        run_unit = obj._binding.run_unit

        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            return run_unit(
                intent, lambda uow: fn(obj.on(uow), *args, **kwargs), single=single, grouped=True
            )

        service = obj._binding.service
        inline = self.bounded and service.reads_in_process
        short = self.bounded or (self.intent == "write" and self.single)
        on_loop = service if short and not inline else None
        return _in_mode(obj._binding.mode, call, fn, inline=inline, on_loop=on_loop)


def blocking(fn: Callable[Concatenate[Any, P], R]) -> Blocking[P, R]:
    """Declare a method that does blocking work of its own (computing embeddings, then units of
    work): called as it is on the sync store, awaited in one worker-thread hop on the async."""
    return Blocking(fn)


class Blocking(Generic[P, R]):
    """A blocking method of something :class:`Bound`: see :func:`blocking`."""

    def __init__(self, fn: Callable[Concatenate[Any, P], R]) -> None:
        self.function = fn
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, obj: Bound[Sync], owner: type[Any]) -> Callable[P, R]: ...
    @overload
    def __get__(
        self, obj: Bound[Async], owner: type[Any]
    ) -> Callable[P, Coroutine[Any, Any, R]]: ...
    def __get__(
        self, obj: Bound[Any] | None, owner: type[Any]
    ) -> Self | Callable[P, R] | Callable[P, Coroutine[Any, Any, R]]:
        if obj is None:
            return self
        fn = self.function

        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            return fn(obj, *args, **kwargs)

        return _in_mode(obj._binding.mode, call, fn)


def _in_mode(
    mode: type[Sync] | type[Async],
    call: Callable[P, R],
    fn: Callable[..., Any],
    *,
    inline: bool = False,
    on_loop: DatabaseService | None = None,
) -> Callable[P, R] | Callable[P, Coroutine[Any, Any, R]]:
    """``call`` as the store's mode calls it, documented as ``fn``: itself on the sync store; on
    the async store a coroutine function running it in one worker-thread hop, or (``inline``: it
    never waits long) on the event loop itself, or (``on_loop``: a short unit of that store)
    on the event loop with its waits for the server awaited while the store allows it."""
    if mode is Sync:
        _document(call, fn)
        return call
    if inline:

        async def run(*args: P.args, **kwargs: P.kwargs) -> R:
            return call(*args, **kwargs)

    elif on_loop is not None:
        service = on_loop

        async def run(*args: P.args, **kwargs: P.kwargs) -> R:
            if service.loop_units and hop.current_async_library() == "asyncio":
                try:
                    return await bridge.run(functools.partial(call, *args, **kwargs))
                except bridge.NoIdleConnectionError:  # another thread took it first
                    pass
            return await in_worker_thread(call, *args, **kwargs)

    else:

        async def run(*args: P.args, **kwargs: P.kwargs) -> R:
            return await in_worker_thread(call, *args, **kwargs)

    _document(run, fn)
    return run


def _document(call: Callable[..., Any], fn: Callable[..., Any]) -> None:
    """Give ``call`` the name, docstring and signature of ``fn`` without its first parameter
    (the repository or unit it runs on), for ``help()`` and editors."""
    functools.update_wrapper(call, fn)
    signature = inspect.signature(fn)
    call.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=list(signature.parameters.values())[1:]
    )


async def in_worker_thread(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run blocking ``fn`` in a worker thread and await its result: the async API's one hop.

    On asyncio the hop goes through ``db.hop``'s threads (measured about half the cost of
    ``anyio.to_thread.run_sync``); on any other event loop through anyio. Either way, at most 40
    threads run at once; a caller cancelled before ``fn`` has started gets the cancellation at
    once and ``fn`` never runs; one cancelled while ``fn`` runs waits until ``fn`` has returned,
    then gets the cancellation: a unit of work is never left mid-commit.
    """
    call = functools.partial(fn, *args, **kwargs)
    if hop.current_async_library() != "asyncio":
        return await anyio.to_thread.run_sync(call)
    handed = hop.Call(asyncio.get_running_loop(), call)
    hop.POOL.submit(handed)
    try:
        return await handed.future
    except asyncio.CancelledError:
        if not handed.withdraw() and not handed.done:
            await handed.finished()
        raise


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


def find_by_id(conn: Connection, table: Table, model: type[M], key: uuid.UUID) -> M | None:
    """The row of ``table`` whose id is ``key``, as a ``model``; ``None`` if there is none."""
    row = conn.execute(select(table).where(table.c.id == key)).first()
    return None if row is None else load(model, row)


def changes_of(data: BaseModel, table: Table) -> dict[str, Any]:
    """The fields an update sets (each named as its column); ``None`` for a NOT NULL column is
    an error."""
    changes: dict[str, Any] = {}
    for field, value in data.model_dump(exclude_unset=True).items():
        if value is None and not table.c[field].nullable:
            raise ValidationError(f"{field} cannot be cleared", field=field)
        changes[field] = value
    return changes


def dialect_insert(dialect: str, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that takes ``ON CONFLICT`` clauses: the one place upserts pick their dialect."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def require(conn: Connection, table: Table, key: uuid.UUID, field: str) -> None:
    """Raise ``NotFoundError`` naming ``field`` unless ``table`` has a row with id ``key``."""
    statement = _EXISTS.get(table)
    if statement is None:  # built once per table: every write that refers to a row checks it
        statement = _EXISTS[table] = select(table.c.id).where(table.c.id == bindparam("key"))
    if prepared(statement, conn.dialect).first(conn, {"key": key}) is None:
        what = table.name.removesuffix("s")
        raise NotFoundError(f"{what} {key} not found", field=field)


_EXISTS: dict[Table, Select[Any]] = {}
