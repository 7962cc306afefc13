"""The engine for a database URL: pool settings, SQLite pragmas and transaction control,
PostgreSQL's JSONB serialiser and the idle-connection ping. Everything backend-specific about
opening connections lives here."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import orjson
import psycopg
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, ExceptionContext
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import StaticPool

from agentkeep.config import Settings
from agentkeep.db import bridge
from agentkeep.db.translate import translate
from agentkeep.errors import ValidationError

KIND_OPTION = "agentkeep_intent"
"""The execution option that tells SQLite's ``begin`` handler what a unit of work is for:
``"read"``, ``"write"`` or ``"single"`` (no ``BEGIN``: the statement commits on its own)."""


def build_engine(url: URL, settings: Settings) -> Engine:
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
        pool_reset_on_return=None,  # see _end_stray_transactions
        poolclass=bridge.Pool,  # a unit on the event loop never waits for a connection
        pool_size=settings.pool_size,
        max_overflow=settings.pool_max_overflow,
        pool_pre_ping=settings.pool_pre_ping and not idle_ping,
        pool_recycle=settings.pool_recycle,
        pool_timeout=settings.pool_timeout,
        echo=settings.echo_sql,
        hide_parameters=not settings.echo_sql,
        json_serializer=dumps_jsonb,
        json_deserializer=loads_json,
    )
    if idle_ping:
        _ping_when_idle(engine, settings.pool_pre_ping_idle)

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        # psycopg's connection, whose waits a unit run on the event loop hands to the loop
        return bridge.Connection.connect(*cargs, **cparams)

    _end_stray_transactions(engine)
    _translate_errors(engine)
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


_LONG_NUMBER = re.compile(rb"\d{19}")
"""19 digits in a row: maybe an integer beyond 64 bits, which orjson would read as a float."""


def loads_json(data: bytes) -> Any:
    """A JSON or JSONB value as psycopg hands it over (its text as bytes), as ``json.loads``
    reads it: by orjson, about five times as fast (a page of messages reads one metadata
    document per row), unless the text may hold an integer orjson would round to a float (19
    digits in a row, even inside a string) or orjson refuses it (a number beyond a double's
    range, nesting deeper than it goes), which the standard library reads."""
    if _LONG_NUMBER.search(data) is None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return json.loads(data)


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
            pool_reset_on_return=None,  # see _end_stray_transactions
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
            echo=settings.echo_sql,
            hide_parameters=not settings.echo_sql,  # errors and logs never show users' data
        )
    else:
        Path(url.database or "").expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            pool_reset_on_return=None,  # see _end_stray_transactions
            pool_size=settings.pool_size,
            max_overflow=settings.pool_max_overflow,
            pool_timeout=settings.pool_timeout,
            connect_args={"check_same_thread": False},
            echo=settings.echo_sql,
            hide_parameters=not settings.echo_sql,  # errors and logs never show users' data
        )
    synchronous = settings.sqlite_synchronous.value
    busy_ms = settings.sqlite_busy_timeout_ms

    @event.listens_for(engine, "connect")
    def _configure(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control from the driver: agentkeep issues BEGIN itself (see below).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        # the wait first: switching a new file to WAL needs its lock, which another process
        # opening it at the same moment (or migrating it) may hold
        cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        if not memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # a connection agentkeep did not hand out (raw engine use) is treated as a write
        intent = conn.get_execution_options().get(KIND_OPTION, "write")
        # straight to the driver: this runs on every unit of work of the hot path
        driver: Any = conn.connection.driver_connection
        # a single statement commits on its own; the writer connection's unit began its
        # transaction on the driver already (``DatabaseService``), before SQLAlchemy's
        if intent != "single" and not driver.in_transaction:
            driver.execute("BEGIN IMMEDIATE" if intent == "write" else "BEGIN")

    _end_stray_transactions(engine)
    _translate_errors(engine)
    return engine


def _translate_errors(engine: Engine) -> None:
    """Driver errors become domain errors as they are raised, so a repository can catch a
    ``ConflictError`` where a retry is the answer (``db.translate``)."""

    @event.listens_for(engine, "handle_error")
    def _translated(context: ExceptionContext) -> BaseException | None:
        if context.sqlalchemy_exception is None:
            return None
        return translate(context.sqlalchemy_exception)


def _end_stray_transactions(engine: Engine) -> None:
    """Roll back a connection handed back inside a transaction, and only then.

    SQLAlchemy's default resets every connection it gets back with a rollback: on the append
    path that bookkeeping is about a fifth of agentkeep's own cost. Every connection agentkeep
    hands out ends its transaction itself (``DatabaseService.unit``), so the pool only needs to
    catch the exception: one that failed mid-commit, or raw use of the engine.
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_conn: Any, record: Any) -> None:
        if dbapi_conn is None:
            return
        if _mid_statement(dbapi_conn):
            # a unit on the event loop abandoned mid-statement (its loop closed under it, the
            # collector handing its connection back): the connection is not usable, and
            # rolling it back would wait for its lock forever. It is closed; the pool connects
            # anew when it is next handed out
            record.invalidate()
            return
        if _in_transaction(dbapi_conn):
            dbapi_conn.rollback()


def _mid_statement(dbapi_conn: Any) -> bool:
    """Whether a psycopg connection is still held by a statement (its lock taken): only a unit
    abandoned while it waited for the server hands one back so."""
    lock = getattr(dbapi_conn, "lock", None)
    return lock is not None and bool(lock.locked())


def _in_transaction(dbapi_conn: Any) -> bool:
    if isinstance(dbapi_conn, sqlite3.Connection):
        return dbapi_conn.in_transaction
    status = dbapi_conn.info.transaction_status  # psycopg
    return bool(status != psycopg.pq.TransactionStatus.IDLE)
