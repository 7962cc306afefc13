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

Writes that can share a commit go through :meth:`DatabaseService.grouped`: on a SQLite file, the
ones that wait at the same time are committed together, one fsync for all (``db.group_commit``).

Inside ``transaction()`` (or ``snapshot()``) every kind returns that transaction's connection and
takes no lock, so operations compose into one unit of work. Driver errors become domain errors
here and nowhere else
(``db.translate``); the engine itself is built in ``db.engine``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import URL

from agentkeep.config import Settings, mask_url
from agentkeep.db.engine import KIND_OPTION, build_engine
from agentkeep.db.group_commit import GroupCommit
from agentkeep.db.translate import translate_errors
from agentkeep.errors import (
    AgentkeepError,
    StorageError,
)

Kind = Literal["read", "write", "transaction", "snapshot"]
"""What a connection is for; see the module's documentation."""

_LOCKED_KINDS = frozenset({"write", "transaction"})

T = TypeVar("T")


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
        self.engine: Engine = build_engine(self.url, settings)
        self.dialect: str = self.engine.dialect.name
        # One in-memory database is one connection: operations take turns on it.
        self._turns: threading.Lock | None = threading.Lock() if self.is_memory else None
        # A SQLite file has one writer at a time: this process's writers queue here, woken as
        # soon as the last one is done, instead of sleep-polling in SQLite's busy handler.
        self.writer_lock: threading.Lock | None = (
            threading.Lock() if self.dialect == "sqlite" and not self.is_memory else None
        )
        self._writer_wait = settings.sqlite_busy_timeout_ms / 1000
        # Each SQLite commit is an fsync: writes waiting for the writer lock share one instead.
        self.group_commit: GroupCommit | None = None
        if self.writer_lock is not None:
            self.group_commit = GroupCommit(
                lambda wait: self.connect("transaction", wait=wait), wait=self._writer_wait
            )

    @property
    def masked_url(self) -> str:
        return "memory" if self.is_memory else mask_url(self.url)

    def __repr__(self) -> str:
        return f"DatabaseService({self.masked_url})"

    @contextmanager
    def connect(self, kind: Kind = "read", *, wait: float | None = None) -> Iterator[Connection]:
        """A connection for one operation of ``kind``; the current one inside ``transaction()``
        or ``snapshot()`` (which takes no lock again). ``wait``: at most how long to wait for the
        writer lock, in seconds (default: the busy timeout)."""
        current = _current.get()
        if current is not None and current.service is self:
            with current.turn, translate_errors():
                yield current.connection
            return
        lock = self._lock_for(kind)
        if lock is not None:
            self._acquire(lock, self._writer_wait if wait is None else wait)
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

    def _acquire(self, lock: threading.Lock, wait: float) -> None:
        # Bounded, so an open transaction cannot starve the threads that would finish it.
        if lock.acquire(timeout=wait):
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
            conn.execution_options(**{KIND_OPTION: kind})
            if kind in {"read", "write"}:
                yield conn
                conn.commit()  # a no-op for autocommit; ends SQLite's implicit statement state
                return
            with conn.begin():
                yield conn
        finally:
            conn.close()

    def grouped(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in a ``"transaction"`` and return its result once committed; on a SQLite
        file, together with other threads' grouped work waiting at the same time, in one commit
        (``db.group_commit``). ``work`` gets the connection and must only use that one; it may be
        run again if another write of its batch fails. Inside ``transaction()`` it is part of
        that transaction, as any operation is."""
        if self.group_commit is None or self.in_transaction:
            with self.connect("transaction") as conn:
                return work(conn)
        return self.group_commit.run(work)

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
        with self.connect("transaction") as conn, self.bound(conn):
            yield conn

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
        with self.connect("snapshot") as conn, self.bound(conn):
            yield conn

    def begin_detached(self) -> tuple[Connection, Any]:
        """Open a ``"transaction"`` to be finished later by :meth:`end_detached` (for the async
        ``transaction()``). The lock it takes on SQLite is held until then, whichever thread
        finishes it."""
        lock = self._lock_for("transaction")
        if lock is not None:
            self._acquire(lock, self._writer_wait)
        try:
            with translate_errors():
                conn = self.engine.connect()
                try:
                    conn.execution_options(**{KIND_OPTION: "transaction"})
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

    @contextmanager
    def bound(self, connection: Connection) -> Iterator[None]:
        """Inside, ``connection`` is this context's current transaction: operations use it."""
        token = _current.set(_Current(self, connection))
        try:
            yield
        finally:
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
