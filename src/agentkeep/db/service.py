"""DatabaseService: engine, pool, connections, transactions, health and error translation.

Stateless beyond its engine and its locks. Repositories ask it for a connection of the kind that
says what they will do with it:

- ``"read"`` (the default): reads. PostgreSQL: autocommit, one round trip per statement, no
  ``BEGIN``/``COMMIT``; SQLite: no ``BEGIN``.
- ``"write"``: exactly one statement that writes (an ``INSERT``/``UPDATE``/``DELETE``, reads in
  it included). PostgreSQL: autocommit, so the statement is one round trip and commits on its
  own; SQLite: the statement commits on its own, under the service's writer lock.
- ``"transaction"``: several statements that commit together, or a check followed by the write
  it guards. PostgreSQL: ``BEGIN`` … ``COMMIT``; SQLite: the writer lock, then
  ``BEGIN IMMEDIATE`` (so a writer never fails half-way on a lock upgrade).
- ``"snapshot"``: several reads that must see one state of the store. PostgreSQL: a
  ``REPEATABLE READ`` transaction; SQLite: a deferred ``BEGIN``. No lock.

SQLite lets one connection write at a time, and a writer that finds the database locked waits in
SQLite's busy handler, which sleeps and polls: under contention from many threads the unlucky
ones wait hundreds of milliseconds. So on a SQLite file the writers of one process queue on the
service's writer lock instead (a ``threading.Lock``, which wakes the next writer as soon as the
last one is done); SQLite's busy timeout then only arbitrates between processes. Waiting for the
lock is bounded by the same ``sqlite_busy_timeout_ms``. Readers never take it (WAL lets them read
while one writes). The in-memory store is one connection, so there every operation takes its turn
on the service's turn lock instead.

Inside ``transaction()`` (or ``snapshot()``) every kind returns that transaction's connection and
takes no lock, so operations compose into one unit of work. Driver errors become domain errors
here and nowhere else.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from agentkeep.config import Settings, mask_url
from agentkeep.errors import (
    AgentkeepError,
    ConflictError,
    NotFoundError,
    StorageError,
    UnavailableError,
    ValidationError,
)

log = logging.getLogger("agentkeep.db")

Kind = Literal["read", "write", "transaction", "snapshot"]
"""What a connection is for; see the module's documentation."""

_KIND_OPTION = "agentkeep_kind"
_LOCKED_KINDS = frozenset({"write", "transaction"})


@dataclass(frozen=True, slots=True)
class _Current:
    """The transaction (or snapshot) a context is in. Tasks started inside one inherit it, so
    its operations take turns on the connection (re-entrant: an operation may call another)."""

    service: DatabaseService
    connection: Connection
    turn: threading.RLock = field(default_factory=threading.RLock)


_current: ContextVar[_Current | None] = ContextVar("agentkeep_transaction", default=None)


class DatabaseService:
    """Owns the engine for one database; hands out connections and translates errors."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        url = settings.url
        self.is_memory = url is None or (
            url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")
        )
        self.url: URL = URL.create("sqlite+pysqlite", database=":memory:") if url is None else url
        self.engine: Engine = _build_engine(self.url, settings)
        self.dialect: str = self.engine.dialect.name
        # One in-memory database is one connection: operations take turns on it.
        self._turns: threading.Lock | None = threading.Lock() if self.is_memory else None
        # A SQLite file has one writer at a time: this process's writers queue here, woken as
        # soon as the last one is done, instead of sleep-polling in SQLite's busy handler.
        self.writer_lock: threading.Lock | None = (
            threading.Lock() if self.dialect == "sqlite" and not self.is_memory else None
        )
        self._writer_wait = settings.sqlite_busy_timeout_ms / 1000

    @property
    def masked_url(self) -> str:
        return "memory" if self.is_memory else mask_url(self.url)

    def __repr__(self) -> str:
        return f"DatabaseService({self.masked_url})"

    @contextmanager
    def connect(self, kind: Kind = "read") -> Iterator[Connection]:
        """A connection for one operation of ``kind``; the current one inside ``transaction()``
        or ``snapshot()`` (which takes no lock again)."""
        current = _current.get()
        if current is not None and current.service is self:
            with current.turn, translate_errors():
                yield current.connection
            return
        lock = self._lock_for(kind)
        if lock is not None:
            self._acquire(lock)
        try:
            with translate_errors(), self._open(kind) as conn:
                yield conn
        finally:
            if lock is not None:
                lock.release()

    def _lock_for(self, kind: Kind) -> threading.Lock | None:
        if self._turns is not None:
            return self._turns
        return self.writer_lock if kind in _LOCKED_KINDS else None

    def _acquire(self, lock: threading.Lock) -> None:
        # Bounded, so an open transaction cannot starve the threads that would finish it.
        if lock.acquire(timeout=self._writer_wait):
            return
        holder = "operation or transaction" if lock is self._turns else "writer in this process"
        # what SQLite itself says when its busy timeout runs out
        raise StorageError(
            f"database error: database is locked (another {holder} held it "
            f"for more than {self.settings.sqlite_busy_timeout_ms} ms)"
        )

    @contextmanager
    def _open(self, kind: Kind) -> Iterator[Connection]:
        conn = self.engine.connect()
        try:
            if self.dialect == "postgresql":
                if kind in {"read", "write"}:
                    conn.execution_options(isolation_level="AUTOCOMMIT")
                elif kind == "snapshot":
                    # READ COMMITTED takes a new snapshot per statement; "snapshot" promises one
                    conn.execution_options(isolation_level="REPEATABLE READ")
            conn.execution_options(**{_KIND_OPTION: kind})
            if kind in {"read", "write"}:
                yield conn
                conn.commit()  # a no-op for autocommit; ends SQLite's implicit statement state
                return
            with conn.begin():
                yield conn
        finally:
            conn.close()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One unit of work: every operation inside commits together or not at all.

        On SQLite the writer lock is held until it ends. Inside another ``transaction()`` it is
        a savepoint of that one.
        """
        current = _current.get()
        if current is not None and current.service is self:
            with current.turn, translate_errors(), current.connection.begin_nested():
                yield current.connection
            return
        with self.connect("transaction") as conn:
            token = _current.set(_Current(self, conn))
            try:
                yield conn
            finally:
                _current.reset(token)

    @property
    def in_transaction(self) -> bool:
        """Whether this context is inside ``transaction()`` or ``snapshot()`` of this service."""
        current = _current.get()
        return current is not None and current.service is self

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """Reads inside see one state of the store (one read transaction; REPEATABLE READ on
        PostgreSQL). Inside ``transaction()`` it is that transaction. For reads only: a write
        inside is not serialised with this process's other writers."""
        with self.connect("snapshot") as conn:
            token = _current.set(_Current(self, conn))
            try:
                yield conn
            finally:
                _current.reset(token)

    def begin_detached(self) -> tuple[Connection, Any]:
        """Open a ``"transaction"`` to be finished later by :meth:`end_detached` (for the async
        ``transaction()``). The lock it takes on SQLite is held until then, whichever thread
        finishes it."""
        lock = self._lock_for("transaction")
        if lock is not None:
            self._acquire(lock)
        try:
            with translate_errors():
                conn = self.engine.connect()
                try:
                    conn.execution_options(**{_KIND_OPTION: "transaction"})
                    trans = conn.begin()
                except BaseException:
                    conn.close()
                    raise
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        return conn, trans

    def end_detached(self, conn: Connection, trans: Any, *, commit: bool) -> None:
        """Commit or roll back what :meth:`begin_detached` opened; always releases its lock."""
        lock = self._lock_for("transaction")
        try:
            with translate_errors():
                if commit:
                    trans.commit()
                else:
                    trans.rollback()
        finally:
            try:
                conn.close()
            finally:
                if lock is not None:
                    lock.release()

    @staticmethod
    def bind(service: DatabaseService, connection: Connection) -> Any:
        """Make ``connection`` the current transaction of ``service`` in this context."""
        return _current.set(_Current(service, connection))

    @staticmethod
    def unbind(token: Any) -> None:
        _current.reset(token)

    def health(self) -> dict[str, Any]:
        """Seed 004's connection test: status, message, database, version, host, port, latency."""
        started = time.perf_counter()
        info: dict[str, Any] = {
            "database": self.url.database if not self.is_memory else "memory",
            "backend": self.dialect,
            "host": self.url.host or _socket_dir(self.url),
            "port": self.url.port,
            "url": self.masked_url,
        }
        try:
            with self.connect("read") as conn:
                if self.dialect == "postgresql":
                    version = conn.scalar(text("SELECT version()"))
                else:
                    version = "SQLite " + str(conn.scalar(text("SELECT sqlite_version()")))
        except AgentkeepError as exc:
            return {
                **info,
                "status": "error",
                "message": f"Database connection failed: {exc.message}",
                "version": None,
                "latency_ms": round((time.perf_counter() - started) * 1000, 3),
            }
        return {
            **info,
            "status": "success",
            "message": "Database connection successful",
            "version": version,
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
        }

    def dispose(self) -> None:
        self.engine.dispose()


def _socket_dir(url: URL) -> str | None:
    """The unix-socket directory of a PostgreSQL URL (``?host=/path``), if it names one."""
    host = url.query.get("host")
    return host if isinstance(host, str) else (host[0] if host else None)


def _build_engine(url: URL, settings: Settings) -> Engine:
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, settings)
    if url.get_backend_name() != "postgresql":
        raise ValidationError(
            f"unsupported database {url.get_backend_name()!r}: use sqlite or postgresql",
            field="database_url",
        )
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    idle_ping = settings.pool_pre_ping and settings.pool_pre_ping_idle > 0
    engine = create_engine(
        url,
        pool_size=settings.pool_size,
        max_overflow=settings.pool_max_overflow,
        pool_pre_ping=settings.pool_pre_ping and not idle_ping,
        pool_recycle=settings.pool_recycle,
        pool_timeout=settings.pool_timeout,
        echo=settings.echo_sql,
        hide_parameters=not settings.echo_sql,
        json_serializer=dumps_jsonb,
    )
    if idle_ping:
        _ping_when_idle(engine, settings.pool_pre_ping_idle)
    return engine


def dumps_jsonb(value: Any) -> str:
    """JSON text that PostgreSQL's JSONB gives back as it was given.

    JSONB keeps numbers as ``numeric``, which has no exponent: ``6.153697404032787e+16`` would come
    back as the integer ``61536974040327870``, another type and another value. A float that Python
    writes with a positive exponent is integral, so it is written out in full with ``.0`` instead,
    which ``numeric`` keeps exactly and which reads back as the same float.
    """
    text = json.dumps(value)
    return text if "e+" not in text else _dumps_exact(value)  # "e+" in a string: merely slower


def _dumps_exact(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1e16:
        return f"{int(value)}.0"
    if isinstance(value, dict):
        # keys as json.dumps makes them: strings stay, other scalars become their JSON text
        items = (
            json.dumps(k if isinstance(k, str) else json.dumps(k)) + ":" + _dumps_exact(v)
            for k, v in value.items()
        )
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_dumps_exact(v) for v in value) + "]"
    return json.dumps(value)


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Pre-ping a pooled connection before use if it sat idle for more than ``idle_seconds``.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout: one extra round trip per operation,
    which on the append path costs about a third of the throughput. A connection handed back a
    moment ago has just proven itself; one that sat idle is checked, and a dead one is replaced
    (the pool retries the checkout on ``DisconnectionError``).
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since <= idle_seconds:
            return
        try:
            cursor = dbapi_conn.cursor()
            cursor.execute("SELECT 1")
            cursor.close()
            if not dbapi_conn.autocommit:
                dbapi_conn.rollback()
        except Exception as exc:
            raise DisconnectionError(f"stale pooled connection: {exc}") from exc


def _sqlite_engine(url: URL, settings: Settings) -> Engine:
    memory = url.database in (None, "", ":memory:")
    if memory:
        engine = create_engine(
            url,
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
            echo=settings.echo_sql,
        )
    else:
        Path(url.database or "").expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            pool_size=settings.pool_size,
            max_overflow=settings.pool_max_overflow,
            pool_timeout=settings.pool_timeout,
            connect_args={"check_same_thread": False},
            echo=settings.echo_sql,
        )
    synchronous = settings.sqlite_synchronous.value
    busy_ms = settings.sqlite_busy_timeout_ms

    @event.listens_for(engine, "connect")
    def _configure(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from the driver: agentkeep issues BEGIN itself (see below).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # a connection agentkeep did not hand out (raw engine use) is treated as a transaction
        kind = conn.get_execution_options().get(_KIND_OPTION, "transaction")
        if kind in {"transaction", "snapshot"}:  # otherwise each statement commits on its own
            # straight to the driver: this runs on every transaction of the hot path
            conn.connection.driver_connection.execute(  # type: ignore[union-attr]
                "BEGIN IMMEDIATE" if kind == "transaction" else "BEGIN"
            )

    return engine


_UNIQUE = re.compile(r"unique|duplicate key", re.IGNORECASE)
_FOREIGN = re.compile(r"foreign key", re.IGNORECASE)
_COLUMN = re.compile(r"(?:\.|Key \(|column \")(\w+)")


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn driver errors into domain errors, chaining the original."""
    try:
        yield
    except AgentkeepError:
        raise
    except IntegrityError as exc:
        detail = str(exc.orig)
        field = _field_of(detail)
        if _UNIQUE.search(detail):
            raise ConflictError(f"already exists: {_first_line(detail)}", field=field) from exc
        if _FOREIGN.search(detail):
            raise NotFoundError(
                f"refers to something that does not exist: {_first_line(detail)}", field=field
            ) from exc
        raise ValidationError(f"rejected by the database: {_first_line(detail)}") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated or _is_unreachable(exc):
            raise UnavailableError(f"database unavailable: {_first_line(str(exc.orig))}") from exc
        if type(exc).__name__ == "DataError":
            raise ValidationError(f"invalid value: {_first_line(str(exc.orig))}") from exc
        raise StorageError(f"database error: {_first_line(str(exc.orig))}") from exc
    except SQLAlchemyError as exc:
        raise StorageError(f"database error: {_first_line(str(exc))}") from exc


def _is_unreachable(exc: DBAPIError) -> bool:
    name = type(exc).__name__
    message = str(exc.orig).lower()
    return name in {"OperationalError", "InterfaceError"} and any(
        phrase in message
        for phrase in ("connect", "connection", "unable to open", "server closed", "timeout")
    )


def _field_of(detail: str) -> str | None:
    match = _COLUMN.search(detail)
    return match.group(1) if match else None


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else message
