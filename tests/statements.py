"""The SQL statements a store's driver is given, whichever way they reach it.

SQLAlchemy's engine events see only what SQLAlchemy executes; the hot reads and the append run
straight on the driver's connection (``agentkeep.db.prepared``) and bypass them. So the watch is
put on each connection the pool hands out: on SQLite the library's own trace callback (every
statement SQLite runs), on PostgreSQL the driver connection's ``execute`` (the driver-level path)
and SQLAlchemy's cursor events (its own path, which runs on cursors).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from agentkeep.db.service import DatabaseService


@contextmanager
def watched(service: DatabaseService, record: Callable[[str], None]) -> Iterator[None]:
    """Call ``record`` with each statement sent to ``service``'s database while the block runs,
    in the thread that sends it (the connections the pool hands out, and the one a SQLite
    file's writes keep between units)."""
    engine = service.engine
    sqlite = engine.dialect.name == "sqlite"

    def on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if sqlite:
            dbapi_connection.set_trace_callback(record)
            return
        execute = type(dbapi_connection).execute

        def spied(query: Any, *args: Any, **kwargs: Any) -> Any:
            record(str(query))
            return execute(dbapi_connection, query, *args, **kwargs)

        dbapi_connection.execute = spied

    def on_checkin(dbapi_connection: Any, _record: Any) -> None:
        if sqlite:
            dbapi_connection.set_trace_callback(None)
        else:
            vars(dbapi_connection).pop("execute", None)

    def on_cursor(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        record(statement)

    event.listen(engine, "checkout", on_checkout)
    event.listen(engine, "checkin", on_checkin)
    if not sqlite:
        event.listen(engine, "before_cursor_execute", on_cursor)
    if sqlite and service.writer is not None:  # held, not checked out again
        on_checkout(service.writer.connection.driver_connection, None, None)
    try:
        yield
    finally:
        event.remove(engine, "checkout", on_checkout)
        event.remove(engine, "checkin", on_checkin)
        if not sqlite:
            event.remove(engine, "before_cursor_execute", on_cursor)
        if sqlite and service.writer is not None:
            on_checkin(service.writer.connection.driver_connection, None)
