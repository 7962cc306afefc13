"""DatabaseService: the engine, units of work, health and error translation.

Everything that reads or writes runs in a **unit of work**: one connection for any number of
statements, opened with a declared intent that chooses isolation and locking (repositories never
choose; they get the unit's connection):

- ``"read"``: reads that see one state of the store. PostgreSQL: a ``REPEATABLE READ``
  transaction; SQLite: a deferred ``BEGIN``. No lock.
- ``"write"``: statements that commit together, or not at all. PostgreSQL: ``BEGIN`` …
  ``COMMIT``; SQLite: this process's writer lock, then ``BEGIN IMMEDIATE`` (so a writer never
  fails half-way on a lock upgrade).

``single=True`` says the unit holds one operation that is atomic by itself (one statement, or
reads that need no common snapshot). It then skips ``BEGIN``/``COMMIT``: on PostgreSQL the
connection is in autocommit and the statement is one round trip instead of three (measured: an
append's throughput halves with the two extra round trips); on SQLite a read runs without
``BEGIN`` (:meth:`DatabaseService.run` keeps writes there in a transaction: their cost is the
fsync, not the statements). The one-call shorthand (``db.messages.append(...)``) opens such
units for operations declared single; everything else gets a full unit.

SQLite lets one connection write at a time, and a writer that finds the database locked waits in
SQLite's busy handler, which sleeps and polls: under contention from many threads the unlucky
ones wait hundreds of milliseconds. So on a SQLite file the writers of one process queue on the
service's writer lock instead (a ``threading.Lock``, which wakes the next writer as soon as the
last one is done); SQLite's busy timeout then only arbitrates between processes. Waiting for the
lock is bounded by the same ``sqlite_busy_timeout_ms``. Readers never take it (WAL lets them read
while one writes). As one writer runs at a time, the writers share one connection, kept between
write units instead of checked out of the pool and back for each (the checkout, the check-in,
their events and the connection's options measured 0.04 ms of an append's 0.28). Its
``BEGIN IMMEDIATE`` and ``COMMIT`` go straight to the driver, as the hot path's statements do
(``db.prepared``; SQLAlchemy's transaction object and events cost another 0.01 ms a write);
work that executes through SQLAlchemy joins that transaction, and the unit then commits through
SQLAlchemy. The connection stays checked out of the pool (which counts it as in use); a unit
that fails hands it back, and the pool rolls back whatever the failure left open. The in-memory
store is one connection, so there every unit takes its turn on the service's turn lock instead.

:meth:`DatabaseService.run` runs a function in a unit; with ``grouped=True`` (the shorthand's
writes, which touch only the database and may therefore be run again), writes that wait at the
same time on a SQLite file are committed together, one fsync for all (``db.group_commit``).

A unit is not re-entrant: opening a second one of the same service in the same context while one
is open is refused (on SQLite it would wait for the writer lock its own context holds). Driver
errors become domain errors here and nowhere else (``db.translate``); the engine itself is built
in ``db.engine``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Literal, TypeVar

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import URL

from agentkeep.config import Settings, mask_url
from agentkeep.db.changes import Changes, listeners_of
from agentkeep.db.engine import KIND_OPTION, build_engine
from agentkeep.db.group_commit import GroupCommit
from agentkeep.db.prepared import driver_error
from agentkeep.db.translate import translate_errors
from agentkeep.errors import AgentkeepError, StorageError

Intent = Literal["read", "write"]
"""What a unit of work will do; see the module's documentation."""

T = TypeVar("T")

_open_unit: ContextVar[DatabaseService | None] = ContextVar("agentkeep_unit", default=None)


class DatabaseService:
    """Owns the engine for one database; opens units of work and translates errors."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        url = settings.url
        self.is_memory = url is None or (
            url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")
        )
        self.url: URL = URL.create("sqlite+pysqlite", database=":memory:") if url is None else url
        self.engine: Engine = build_engine(self.url, settings)
        self.dialect: str = self.engine.dialect.name
        # who keeps a copy of this database's rows (the agent cache) hears of committed changes
        self.changes: Changes = (
            Changes() if self.is_memory else listeners_of(self.url.render_as_string())
        )
        # One in-memory database is one connection: units take turns on it.
        self._turns: threading.Lock | None = threading.Lock() if self.is_memory else None
        # A SQLite file has one writer at a time: this process's writers queue here, woken as
        # soon as the last one is done, instead of sleep-polling in SQLite's busy handler.
        self.writer_lock: threading.Lock | None = (
            threading.Lock() if self.dialect == "sqlite" and not self.is_memory else None
        )
        self._writer_wait = settings.sqlite_busy_timeout_ms / 1000
        # The one connection this process writes a SQLite file on, kept between writes (under
        # the writer lock): a pool checkout and check-in per write cost a seventh of an append.
        self._writer: Connection | None = None
        # A SQLite file's bounded reads run on the async caller's thread (``repositories.base``):
        # a WAL reader takes no lock and does no network round trip, so it is cheaper than the
        # worker-thread hop. Not the in-memory store, whose units take turns on one connection.
        self.reads_in_process = self.writer_lock is not None
        # PostgreSQL's short units run on the async caller's event loop, their waits for the
        # server awaited (``db.bridge``): while the pool has an idle connection for them.
        self._loop_units = self.dialect == "postgresql" and settings.pg_event_loop
        # Each SQLite commit is an fsync: writes waiting for the writer lock share one instead.
        self.group_commit: GroupCommit | None = None
        if self.writer_lock is not None:
            self.group_commit = GroupCommit(
                lambda wait: self.unit("write", wait=wait), wait=self._writer_wait
            )

    @property
    def loop_units(self) -> bool:
        """Whether a short unit of work may run on the event loop now (``db.bridge``): on
        PostgreSQL, while the pool holds an open connection it can hand out at once (not when
        it would have to connect, or wait for a worker thread to give one back) and no worker
        thread waits for one."""
        if not self._loop_units:
            return False
        pool: Any = self.engine.pool
        return bool(pool.checkedin() > 0 and not pool.waiting)

    @property
    def writer(self) -> Connection | None:
        """The connection a SQLite file's writes run on while one is held (see the module's
        documentation): to watch what the writes send, as the pool's checkout events show for
        every other connection. ``None`` before the first write, after a failed one, and on
        the other backends."""
        return self._writer

    @property
    def masked_url(self) -> str:
        return "memory" if self.is_memory else mask_url(self.url)

    def __repr__(self) -> str:
        return f"DatabaseService({self.masked_url})"

    @contextmanager
    def unit(
        self, intent: Intent = "read", *, single: bool = False, wait: float | None = None
    ) -> Iterator[Connection]:
        """A unit of work: a connection for ``intent``, committed when the block ends without an
        exception and rolled back otherwise. ``single``: see the module's documentation.
        ``wait``: at most how long to wait for the writer lock, in seconds (default: the busy
        timeout)."""
        if _open_unit.get() is self:
            raise RuntimeError(
                "a unit of work is already open here: call the operations of that unit "
                "(uow.messages.append(...)), not the store's"
            )
        lock = (
            self._turns
            if self._turns is not None
            else (self.writer_lock if intent == "write" else None)
        )
        if lock is not None:
            self._acquire(lock, self._writer_wait if wait is None else wait)
        token = _open_unit.set(self)
        try:
            with translate_errors():
                if intent == "write" and not single and self.writer_lock is not None:
                    with self._write_transaction() as conn:
                        yield conn
                else:
                    with self._open(intent, single) as conn:
                        yield conn
        finally:
            _open_unit.reset(token)
            if lock is not None:
                lock.release()

    def run(
        self,
        intent: Intent,
        work: Callable[[Connection], T],
        *,
        single: bool = False,
        grouped: bool = False,
    ) -> T:
        """``work`` in a unit of ``intent``; its result once committed. ``grouped``: ``work``
        touches only the database, so on a SQLite file it may share a commit with other threads'
        writes (and be run again if another write of its batch fails)."""
        if intent == "write" and self.dialect != "postgresql":
            # SQLite: a write's statements share one transaction whatever (its cost is the
            # fsync), so an operation need not be one statement to be atomic there
            if grouped and self.group_commit is not None:
                if _open_unit.get() is self:
                    raise RuntimeError("a unit of work is already open here")
                return self.group_commit.run(work)
            single = False
        with self.unit(intent, single=single) as conn:
            return work(conn)

    def _acquire(self, lock: threading.Lock, wait: float) -> None:
        # Bounded, so a unit left open cannot starve the threads that would finish it.
        if lock.acquire(timeout=wait):
            return
        holder = "unit of work" if lock is self._turns else "writer in this process"
        # what SQLite itself says when its busy timeout runs out
        raise StorageError(
            f"database error: database is locked (another {holder} held it "
            f"for more than {self.settings.sqlite_busy_timeout_ms} ms)"
        )

    @contextmanager
    def _open(self, intent: Intent, single: bool) -> Iterator[Connection]:
        conn = self.engine.connect()
        try:
            if self.dialect == "postgresql":
                if single:
                    conn.execution_options(isolation_level="AUTOCOMMIT")
                elif intent == "read":
                    # READ COMMITTED takes a new snapshot per statement; a read unit sees one
                    conn.execution_options(isolation_level="REPEATABLE READ")
            conn.execution_options(**{KIND_OPTION: "single" if single else intent})
            if single:
                yield conn
                conn.commit()  # a no-op for autocommit; ends SQLite's implicit statement state
                return
            with conn.begin():
                yield conn
        finally:
            conn.close()

    @contextmanager
    def _write_transaction(self) -> Iterator[Connection]:
        """A transaction on the writer connection (a SQLite file; the writer lock is held).

        A unit that fails hands the connection back to the pool, which rolls back whatever
        the failure left open (a failed ``COMMIT`` included); the next write checks one out."""
        conn = self._writer
        if conn is None or conn.closed or conn.invalidated:
            if conn is not None:
                conn.close()
            conn = self._writer = self._open_writer()
        driver: Any = conn.connection.driver_connection
        try:
            _on_driver(conn, driver, _BEGIN, lambda: driver.execute(_BEGIN))
            yield conn
            if conn.in_transaction():  # SQLAlchemy began one when the work executed through it
                conn.commit()
            else:
                _on_driver(conn, driver, "COMMIT", lambda: conn.dialect.do_commit(driver))
        except BaseException:
            self._writer = None
            conn.close()
            raise

    def _open_writer(self) -> Connection:
        """A connection from the pool, kept checked out as the writer's until :meth:`dispose`
        or a failure that leaves it unusable."""
        conn = self.engine.connect()
        conn.execution_options(**{KIND_OPTION: "write"})
        return conn

    def _close_writer(self) -> None:
        lock = self.writer_lock
        if lock is None or not lock.acquire(timeout=self._writer_wait):
            return  # a write still running keeps it; the pool's dispose then drops it
        try:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        finally:
            lock.release()

    def health(self) -> dict[str, Any]:
        """The connection test: status, message, database, version, host, port, latency."""
        started = time.perf_counter()
        info: dict[str, Any] = {
            "database": self.url.database if not self.is_memory else "memory",
            "backend": self.dialect,
            "host": self.url.host or _socket_dir(self.url),
            "port": self.url.port,
            "url": self.masked_url,
        }
        try:
            with self.unit("read", single=True) as conn:
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
        self._close_writer()
        self.engine.dispose()


_BEGIN = "BEGIN IMMEDIATE"


def _on_driver(conn: Connection, driver: Any, sql: str, call: Callable[[], object]) -> None:
    """``call()``, which runs ``sql`` on ``driver`` (``conn``'s), its error a domain error."""
    try:
        call()
    except conn.dialect.loaded_dbapi.Error as exc:
        raise driver_error(conn, driver, exc, sql) from exc


def _socket_dir(url: URL) -> str | None:
    """The unix-socket directory of a PostgreSQL URL (``?host=/path``), if it names one."""
    host = url.query.get("host")
    return host if isinstance(host, str) else (host[0] if host else None)
