"""Statements compiled once per dialect and run straight on the driver's connection.

The hot paths run the same few statements thousands of times a second: an append's writes, and
the reads of every turn (a conversation's last messages, a page of history, an agent's history
with a user, a user's conversations). Through a SQLAlchemy ``Connection`` each execution still
pays for the cache-key lookup of the compiled form, an execution context, events, and a result
object wrapped around the cursor (and, for a read, a ``Row`` per row): measured on SQLite,
about three times the driver's own work for an append's two statements, and 0.03-0.07 ms of a
last-50 or list-20 read on either backend (``exec_driver_sql`` against this).

A :class:`Prepared` statement is compiled once for the engine's dialect; running it converts the
parameters with the same bind processors SQLAlchemy would use (so values are stored and compared
exactly as through SQLAlchemy: UUID text, timestamp text, JSON, enum values) and hands the SQL to
the DBAPI connection. The driver's errors, raised running the statement (or, through
:meth:`Prepared.rows`, fetching its rows), become domain errors here, as those of statements
run through an engine do (``db.translate``); so does text the driver cannot encode (a lone
surrogate), a ``ValidationError``. Rows come back as the driver gives them;
``repositories.decode`` turns them into models.

A statement is refused when it is built (``ValueError``) if running its compiled text as it is
would bind values wrongly: an expanding ``IN`` (``col.in_([...])`` of plain values, whose
parameters SQLAlchemy renders only at execution), a literal-execute parameter, or a bind name
the dialect would escape in the text. Write an ``IN`` list with one named parameter per value
(:func:`one_of`).

What is given up: statements run this way are not seen by the engine's events or its SQL echo
(the tests that count statements watch the driver's connection instead).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast
from weakref import WeakKeyDictionary

from sqlalchemy import BindParameter, ColumnElement, Connection, bindparam
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

from agentkeep.db.translate import translate, unencodable
from agentkeep.errors import AgentkeepError

Processor = Callable[[Any], Any]


class Prepared:
    """One statement compiled for one dialect, run on the DBAPI connection of a unit of work.

    Args:
        statement: A Core statement whose named parameters (``bindparam``) are given at each run;
            constants in it (``x + 1``) keep the values they were built with.
        dialect: The engine's dialect (it carries the JSON serialiser and the parameter style).
        raw: Names of parameters passed as the driver gave them (a value read back from a
            ``RETURNING`` of an earlier prepared statement), without conversion.

    Raises:
        ValueError: the statement has parameters rendered only at execution (an expanding
            ``IN`` list, a literal-execute value), or bind names the dialect must escape.
    """

    __slots__ = ("_args", "_dialect", "_error", "sql")

    def __init__(
        self, statement: ClauseElement, dialect: Dialect, *, raw: Iterable[str] = ()
    ) -> None:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)  # a DML or SELECT statement
        _check_runnable(compiled)
        self.sql: str = compiled.string
        self._dialect = dialect
        self._error: type[Exception] = dialect.loaded_dbapi.Error
        self._args: Callable[[dict[str, Any]], Any] = _arguments(compiled, dialect, set(raw))

    def run(self, conn: Connection, params: dict[str, Any]) -> Any:
        """Execute with ``params`` (by bind name) on ``conn``'s driver connection; the driver's
        cursor, holding any rows the statement returns."""
        return self._execute(conn, params, None)

    def rows(self, conn: Connection, params: dict[str, Any]) -> list[Any]:
        """The rows of a query run with ``params``, as the driver returns them (tuples). An error
        the driver raises while fetching them (SQLite computes rows as they are fetched) is
        translated as one raised by the statement."""
        rows: list[Any] = self._execute(conn, params, "fetchall")
        return rows

    def first(self, conn: Connection, params: dict[str, Any]) -> Any:
        """The first row of a statement run with ``params`` (a query, or a write's
        ``RETURNING``), as the driver returns it, or ``None``; errors as :meth:`rows`."""
        return self._execute(conn, params, "fetchone")

    def _execute(self, conn: Connection, params: dict[str, Any], fetch: str | None) -> Any:
        """The statement run, and ``fetch`` (a cursor method's name) called on its cursor if
        given; the driver's errors, and text it cannot encode, as domain errors."""
        driver: Any = conn.connection.driver_connection
        try:
            cursor = driver.execute(self.sql, self._args(params))
            return cursor if fetch is None else getattr(cursor, fetch)()
        except self._error as exc:
            raise self._failed(conn, driver, exc) from exc
        except UnicodeEncodeError as exc:  # a parameter's text: a lone surrogate
            raise unencodable(exc) from exc

    def _failed(self, conn: Connection, driver: Any, exc: Exception) -> AgentkeepError:
        return driver_error(conn, driver, exc, self.sql)


def driver_error(conn: Connection, driver: Any, exc: Exception, sql: str) -> AgentkeepError:
    """The domain error for ``exc``, raised by ``conn``'s driver connection running ``sql``
    outside SQLAlchemy's execution, as SQLAlchemy would have raised it: a lost connection is
    invalidated, so the pool drops it instead of handing it out (or resetting it) again."""
    dialect = conn.dialect
    lost = dialect.is_disconnect(exc, driver, None)  # type: ignore[arg-type]
    if lost:
        conn.invalidate(exc)
    error = DBAPIError.instance(
        sql,
        None,
        exc,
        dialect.loaded_dbapi.Error,
        hide_parameters=True,
        connection_invalidated=lost,
        dialect=dialect,
    )
    return translate(error)


def _arguments(
    compiled: SQLCompiler, dialect: Dialect, raw: set[str]
) -> Callable[[dict[str, Any]], Any]:
    """The function that turns a run's parameters into the driver's arguments.

    Written out for the statement (as ``dataclasses`` writes ``__init__``): one expression per
    bind, in the driver's order (a tuple for a positional parameter style, a dict for a named
    one), each value looked up once and converted by its type's bind processor, a parameter
    not given taking the value the statement was built with (a required one not given is a
    ``KeyError``). About three times as fast as a loop over the binds and a merged dict.
    """
    scope: dict[str, Any] = {}
    values: dict[str, str] = {}
    for i, (name, bind) in enumerate(compiled.binds.items()):
        value = f"p[{name!r}]"
        if not bind.required:
            scope[f"d{i}"] = bind.effective_value
            value = f"p.get({name!r}, d{i})"
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None and name not in raw:
            scope[f"c{i}"] = processor
            value = f"c{i}({value})"
        values[name] = value
    lines = ["def arguments(p):"]
    positions = compiled.positiontup
    if positions is None:
        body = "{" + ", ".join(f"{name!r}: {value}" for name, value in values.items()) + "}"
    else:
        for i, name in enumerate(values):  # a bind used twice is converted once
            if positions.count(name) > 1:
                lines.append(f"    v{i} = {values[name]}")
                values[name] = f"v{i}"
        body = "(" + "".join(f"{values[name]}, " for name in positions) + ")"
    lines.append(f"    return {body}")
    exec("\n".join(lines), scope)
    return cast("Callable[[dict[str, Any]], Any]", scope["arguments"])


def _check_runnable(compiled: SQLCompiler) -> None:
    """Refuse what :meth:`Prepared.run` would bind wrongly (see the module's documentation)."""
    late = sorted(
        bind.key for bind in compiled.post_compile_params | compiled.literal_execute_params
    )
    if late:
        raise ValueError(
            "a prepared statement cannot have parameters rendered at execution (an expanding "
            f"IN list or a literal-execute value): {late}; write an IN list with one_of()"
        )
    if compiled.escaped_bind_names:
        raise ValueError(
            "a prepared statement cannot have bind names the dialect escapes: "
            f"{sorted(compiled.escaped_bind_names)}"
        )


def param(name: str, type_: Any = None) -> BindParameter[Any]:
    """A parameter given at each run by ``name`` (``None`` if not given); compared with a
    column, it takes the column's type, whose bind processor then converts it."""
    return bindparam(name, None, type_=type_, required=False)


def one_of(column: ColumnElement[Any], values: Sequence[Any], *, name: str) -> ColumnElement[bool]:
    """``column IN (values)`` with one named constant parameter per value (``name_0``, …), of the
    column's type: rendered in the compiled text, so a :class:`Prepared` statement can hold it
    (a plain ``column.in_(values)`` is an expanding parameter, rendered only at execution)."""
    if not values:
        raise ValueError("one_of needs at least one value")
    return column.in_(
        [bindparam(f"{name}_{i}", value, type_=column.type) for i, value in enumerate(values)]
    )


_compiled: WeakKeyDictionary[Dialect, dict[ClauseElement, Prepared]] = WeakKeyDictionary()


def prepared(statement: ClauseElement, dialect: Dialect, *, raw: Iterable[str] = ()) -> Prepared:
    """``statement`` compiled once for ``dialect``, kept for the dialect's lifetime (meant for
    statements built once, as module constants)."""
    by_statement = _compiled.get(dialect)
    if by_statement is None:
        by_statement = _compiled.setdefault(dialect, {})
    found = by_statement.get(statement)
    if found is None:
        found = by_statement[statement] = Prepared(statement, dialect, raw=raw)
    return found
