"""SQL for LangGraph's persistence (``integrations.langgraph``): checkpoints, channel blobs and
pending writes, and the conversation a LangChain session or LangGraph thread is shown in.

Functions over an open connection, called inside one unit of work by the integration (which
owns serialisation): nothing here knows LangGraph's types, only rows of bytes and strings.

A channel's value is stored once per version in ``graph_blobs``. A list that grew by appending
is stored as the appended items (``value``) and the version it extends (``base_version``, whose
first ``base_length`` items it keeps): :func:`blob_chains` reads a version with every version it
builds on in one recursive query, so a long conversation costs one row per turn to store and one
query to read.

The writes of a checkpoint are the hot path of a running graph (several a turn, each durable),
so they are compiled once per dialect (and row count) and run on the driver
(``db.prepared``): the versions of a checkpoint in one statement, with it on PostgreSQL
(:func:`put_checkpoint`), a task's pending writes in one multi-row statement. The messages a
thread shows (:class:`Shown`) are appended as ``messages.append`` appends one (next sequence
numbers, the conversation's and its agent's counters, the full-text index through the table's
own trigger or index), with one counter update and one multi-row insert for all of a put's
(:func:`show_messages`); on PostgreSQL inside the checkpoint's statement. There a put whose
conversation is known is one statement sent without ``BEGIN``/``COMMIT``
(:func:`put_checkpoint_at_once`), which stores all of it or, when something it builds on is gone,
nothing but versions, and short enough (text and parameters) for psycopg to keep its parsed
form.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    Row,
    Table,
    and_,
    bindparam,
    cast,
    delete,
    func,
    literal,
    literal_column,
    or_,
    select,
    tuple_,
    union_all,
    update,
)

from agentkeep.db.prepared import param, prepared
from agentkeep.db.tables import (
    agents,
    conversations,
    graph_blobs,
    graph_checkpoints,
    graph_writes,
    messages,
)
from agentkeep.db.types import utcnow
from agentkeep.models.enums import MessageStatus
from agentkeep.repositories.base import dialect_insert
from agentkeep.repositories.keyed import changed

CHECKPOINTS = graph_checkpoints
BLOBS = graph_blobs
WRITES = graph_writes

AnyRow = Row[*tuple[Any, ...]]
"""A result row of any shape (read by column name)."""

CHECKPOINT_COLUMNS = (
    CHECKPOINTS.c.thread_id,
    CHECKPOINTS.c.checkpoint_ns,
    CHECKPOINTS.c.checkpoint_id,
    CHECKPOINTS.c.parent_checkpoint_id,
    CHECKPOINTS.c.type,
    CHECKPOINTS.c.checkpoint,
    CHECKPOINTS.c.metadata_type,
    CHECKPOINTS.c.metadata,
)

WriteKey = tuple[str, str, str]
"""(thread, namespace, checkpoint) whose pending writes are read together."""

SESSIONS = "langchain"
"""The ``user_id`` of LangChain chat histories' conversations, whose ``chat_id`` is the session
id (the indexed (user_id, chat_id) lookup)."""
THREADS = "langgraph"
"""The ``user_id`` of LangGraph threads' conversations, whose ``chat_id`` is the thread id: apart
from the histories', so a history and a thread with the same id never share messages."""

_BLOB_NAMES = [column.name for column in BLOBS.c]


@dataclass(slots=True)
class Shown:
    """Messages to append to a conversation (a thread's new messages, in order): each a dict of
    the values of the columns :data:`_SHOWN_NAMES` names, checked by the caller as an append
    checks them."""

    conversation_id: uuid.UUID
    rows: list[dict[str, Any]]


def put_checkpoint(
    conn: Connection,
    checkpoint: dict[str, Any],
    blobs: Sequence[dict[str, Any]],
    shown: Shown | None = None,
) -> tuple[int, int]:
    """Store a checkpoint row, replacing one with the same id (its ``created_at`` kept), its
    channel versions as :func:`put_blobs` stores them and the messages ``shown`` as
    :func:`show_messages` appends them; how many versions and messages were stored.

    On PostgreSQL one statement for all (up to :data:`ROWS_PER_STATEMENT` versions and as many
    messages), so a put is one round trip, atomic by itself without messages
    (:func:`one_statement`); elsewhere two, and the messages' own. Compiled once per dialect and
    counts, run on the driver.
    """
    params = {**checkpoint, "created_at": utcnow()}
    dialect = conn.dialect
    messages_given = 0 if shown is None else len(shown.rows)
    if not one_statement(dialect.name, len(blobs)) or messages_given > ROWS_PER_STATEMENT:
        stored = put_blobs(conn, blobs)
        prepared(_upsert_checkpoint(dialect.name, 0, 0), dialect).run(conn, params)
        return stored, 0 if shown is None else show_messages(conn, shown)
    params.update(_blob_params(blobs))
    if shown is not None:
        params.update(_message_params(shown))
    statement = _upsert_checkpoint(dialect.name, len(blobs), messages_given)
    counts = prepared(statement, dialect).first(conn, params)
    return int(counts[0]), int(counts[1]) if shown is not None else 0


def one_statement(dialect: str, blobs: int) -> bool:
    """Whether :func:`put_checkpoint` stores a checkpoint with this many versions in one
    statement."""
    return dialect == "postgresql" and 0 < blobs <= ROWS_PER_STATEMENT


def put_blobs(conn: Connection, blobs: Sequence[dict[str, Any]]) -> int:
    """Store channel versions in one statement (a few at a time for many): a whole value
    (``base_version`` ``None``) always, items appended to ``base_version`` only while that
    version is stored; a version already stored is kept (a version names one value). How many
    rows were stored: fewer than given when a version was already stored or the version an
    appended one extends is gone (deleted by another process, say)."""
    stored = 0
    for start in range(0, len(blobs), ROWS_PER_STATEMENT):
        chunk = blobs[start : start + ROWS_PER_STATEMENT]
        statement = _insert_blobs(conn.dialect.name, len(chunk))
        stored += prepared(statement, conn.dialect).run(conn, _blob_params(chunk)).rowcount
    return stored


def _blob_params(blobs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {f"{name}_{i}": row[name] for i, row in enumerate(blobs) for name in _BLOB_NAMES}


_ONE = literal_column("1", Integer)
"""A constant written into the statement (not a parameter)."""

ROWS_PER_STATEMENT = 16
"""At most this many channel versions or pending writes are stored by one statement (a compiled
statement is kept for each count up to it)."""

_CHECKPOINT_UPSERTS: dict[tuple[str, int, int], Any] = {}
_BLOB_INSERTS: dict[tuple[str, int], Any] = {}


def _upsert_checkpoint(dialect: str, blobs: int, shown: int) -> Any:
    """The checkpoint upsert; with ``blobs`` versions (PostgreSQL) stored in a CTE of the same
    statement, and ``shown`` messages appended in others, which returns how many of each were
    stored."""
    statement = _CHECKPOINT_UPSERTS.get((dialect, blobs, shown))
    if statement is None:
        insert = dialect_insert(dialect, CHECKPOINTS).values(
            {column.name: param(column.name, column.type) for column in CHECKPOINTS.c}
        )
        kept = ("thread_id", "checkpoint_ns", "checkpoint_id", "created_at")
        statement = insert.on_conflict_do_update(
            index_elements=["thread_id", "checkpoint_ns", "checkpoint_id"],
            set_={
                column.name: insert.excluded[column.name]
                for column in CHECKPOINTS.c
                if column.name not in kept
            },
        )
        if blobs:
            stored = _insert_blobs(dialect, blobs).returning(_ONE).cte("stored")
            counts = [select(func.count()).select_from(stored).scalar_subquery()]
            statement = statement.add_cte(stored)
            if shown:
                appended, agent_use, _ = _pg_show(shown)
                statement = statement.add_cte(appended, agent_use)
                counts.append(select(func.count()).select_from(appended).scalar_subquery())
            statement = statement.returning(*counts)
        _CHECKPOINT_UPSERTS[(dialect, blobs, shown)] = statement
    return statement


def _insert_blobs(dialect: str, count: int) -> Any:
    """``INSERT INTO graph_blobs SELECT`` of ``count`` rows of parameters (``thread_id_0``, …),
    each stored whole or, if it extends a version, only while that version is stored."""
    statement = _BLOB_INSERTS.get((dialect, count))
    if statement is None:
        given = _given_blobs(count).subquery("v")
        statement = _BLOB_INSERTS[(dialect, count)] = _blobs_from(dialect, given)
    return statement


def _given_blobs(count: int, *, shared: bool = False) -> Any:
    """The rows of ``count`` channel versions given as parameters (``thread_id_0``, …);
    ``shared``: all of the checkpoint's thread and namespace (``thread_id``, ``checkpoint_ns``)."""
    rows = []
    for i in range(count):
        names = {name: f"{name}_{i}" for name in _BLOB_NAMES}
        if shared:
            names.update(thread_id="thread_id", checkpoint_ns="checkpoint_ns")
        rows.append(
            select(*(_given_param(names[name], name, i).label(name) for name in _BLOB_NAMES))
        )
    return union_all(*rows) if count > 1 else rows[0]


def _given_param(key: str, name: str, i: int) -> Any:
    """The parameter ``key`` of column ``name`` of the ``i``-th version given: as the driver
    types it (:func:`_plain`), but typed in the first row where it may be NULL and is not text,
    as a UNION then gives its other rows' NULLs that type (all NULL: of no type, text)."""
    if i == 0 and name in _COUNTS:
        return param(key, Integer)
    if i == 0 and name == "value":
        return cast(_plain(key), BLOBS.c.value.type)
    return _plain(key)


_COUNTS = ("base_length", "depth")
_TOKENS = ("input_tokens", "output_tokens")


def _plain(name: str) -> Any:
    """A parameter sent as the driver types it: text, integers, bytes and timestamps need no
    cast in the statement's text (which keeps the statements that store a checkpoint short
    enough for the driver to keep their parsed form)."""
    return bindparam(name, None, required=False)


def _base_stored(given: Any) -> Any:
    """Whether the version a ``given`` row extends is stored."""
    base = BLOBS.alias("base")
    return (
        select(base.c.version)
        .where(
            base.c.thread_id == given.c.thread_id,
            base.c.checkpoint_ns == given.c.checkpoint_ns,
            base.c.channel == given.c.channel,
            base.c.version == given.c.base_version,
        )
        .exists()
    )


def _blobs_from(dialect: str, given: Any) -> Any:
    """Store the ``given`` versions: whole ones always, appended ones while their base is."""
    source = select(*(given.c[name] for name in _BLOB_NAMES)).where(
        or_(given.c.base_version.is_(None), _base_stored(given))
    )
    insert = dialect_insert(dialect, BLOBS).from_select(_BLOB_NAMES, source)
    return insert.on_conflict_do_nothing()


def put_checkpoint_at_once(
    conn: Connection,
    checkpoint: dict[str, Any],
    blobs: Sequence[dict[str, Any]],
    shown: Shown | None = None,
) -> bool:
    """PostgreSQL: store a checkpoint, its channel versions and the messages ``shown`` as
    :func:`put_checkpoint` does, in one statement that is atomic by itself (sent without
    ``BEGIN``/``COMMIT``: one round trip), or nothing but some versions.

    The checkpoint and the messages are stored only if everything is: every version that extends
    another finds it stored, and the conversation exists. Otherwise (another process deleted the
    thread or its conversation) ``False``, and the versions stored are whole ones or appended to
    a stored base, which a version names once: :func:`put_checkpoint` in a transaction then
    stores the rest. At most :data:`ROWS_PER_STATEMENT` versions and as many messages.
    """
    if conn.dialect.name != "postgresql":
        raise RuntimeError("a checkpoint put in one statement is PostgreSQL's")
    params = {**checkpoint, "created_at": utcnow(), **_blob_params(blobs)}
    if shown is not None:
        params.update(_message_params(shown))
    statement = _upsert_at_once(len(blobs), 0 if shown is None else len(shown.rows))
    return prepared(statement, conn.dialect).first(conn, params) is not None


_AT_ONCE: dict[tuple[int, int], Any] = {}


def _upsert_at_once(blobs: int, shown: int) -> Any:
    """The statement of :func:`put_checkpoint_at_once`: the versions in a CTE, the checkpoint
    and the messages' CTEs only if every appended version's base is stored (and the
    conversation's counters moved: it exists); a row back if the checkpoint was stored."""
    statement = _AT_ONCE.get((blobs, shown))
    if statement is None:
        given = _given_blobs(blobs, shared=True).cte("v")  # short: it is named often
        stored = _blobs_from("postgresql", given).returning(_ONE).cte("stored")
        missing = (
            select(given.c.version)
            .where(given.c.base_version.is_not(None), ~_base_stored(given))
            .cte("missing")
        )
        complete = ~select(missing).exists()
        source = select(*(_plain(column.name) for column in CHECKPOINTS.c)).where(complete)
        ctes: list[Any] = [stored, missing]
        if shown:
            appended, agent_use, bumped = _pg_show(shown, complete)
            source = source.where(select(bumped.c.last_sequence).exists())
            ctes += [appended, agent_use]
        insert = dialect_insert("postgresql", CHECKPOINTS).from_select(
            [column.name for column in CHECKPOINTS.c], source
        )
        kept = ("thread_id", "checkpoint_ns", "checkpoint_id", "created_at")
        statement = (
            insert.on_conflict_do_update(
                index_elements=["thread_id", "checkpoint_ns", "checkpoint_id"],
                set_={
                    column.name: insert.excluded[column.name]
                    for column in CHECKPOINTS.c
                    if column.name not in kept
                },
            )
            .add_cte(*ctes)
            .returning(_ONE)
        )
        _AT_ONCE[(blobs, shown)] = statement
    return statement


# -- the messages a thread shows ---------------------------------------------------------------

_SHOWN_NAMES = [
    "id",
    "role",
    "content",
    "tool_calls",
    "metadata",
    "input_tokens",
    "output_tokens",
    "created_at",
]
"""What a shown message's row gives; its ``updated_at`` is its ``created_at``, its status
``complete``, the rest (thinking, platform ids, client id) empty."""
_COMPLETE = literal_column(f"'{MessageStatus.COMPLETE.value}'", messages.c.status.type)
_SHOWN_COLUMNS = [*_SHOWN_NAMES, "updated_at", "status", "conversation_id", "seq"]
_CID = param("m_cid", conversations.c.id.type)
_COUNT = param("m_count", Integer)
_NOW = param("m_now", conversations.c.last_message_at.type)


def _counters(table: Table) -> dict[str, Any]:
    """The appended messages counted into ``table``'s counters and token totals."""
    return {
        "message_count": table.c.message_count + _COUNT,
        "input_tokens": table.c.input_tokens + param("m_input_tokens", Integer),
        "output_tokens": table.c.output_tokens + param("m_output_tokens", Integer),
    }


_BUMP = (
    update(conversations)
    .where(conversations.c.id == _CID)
    .values(
        changed(
            {
                **_counters(conversations),
                "last_sequence": conversations.c.last_sequence + _COUNT,
                "last_message_at": _NOW,
            },
            at=_NOW,
        )
    )
    .returning(conversations.c.last_sequence, conversations.c.agent_id)
)
"""The conversation's counters moved by all the messages of a put at once; its new last
sequence number (the last message's) and its agent."""
_AGENT_USE = (
    update(agents)
    .where(agents.c.id == param("m_agent_id", agents.c.id.type))
    .values(**_counters(agents), last_used_at=_NOW)
)
"""Usage of the conversation's agent (not a change of its configuration: ``updated_at`` stays)."""


def show_messages(conn: Connection, shown: Shown) -> int:
    """Append messages to a conversation, as ``messages.append`` appends each (the next
    sequence numbers, the conversation's and its agent's counters and token totals, its
    ``updated_at``), with one counter update for all and one multi-row insert (a few for many);
    on PostgreSQL one statement. How many were stored: none when the conversation does not
    exist."""
    stored = 0
    dialect = conn.dialect
    for start in range(0, len(shown.rows), ROWS_PER_STATEMENT):
        part = Shown(shown.conversation_id, shown.rows[start : start + ROWS_PER_STATEMENT])
        params = _message_params(part)
        count = len(part.rows)
        if dialect.name == "postgresql":
            row = prepared(_pg_show_statement(count), dialect).first(conn, params)
            stored += int(row[0])
            continue
        bumped = prepared(_BUMP, dialect).first(conn, params)
        if bumped is None:
            return stored
        last, agent_id = bumped
        if agent_id is not None:  # as the driver returned it: straight into the next statement
            use = prepared(_AGENT_USE, dialect, raw=("m_agent_id",))
            use.run(conn, {**params, "m_agent_id": agent_id})
        params.update({f"m_seq_{i}": last - count + 1 + i for i in range(count)})
        prepared(_insert_messages(count), dialect).run(conn, params)
        stored += count
    return stored


def _message_params(shown: Shown) -> dict[str, Any]:
    rows = shown.rows
    params = {f"m_{name}_{i}": row[name] for i, row in enumerate(rows) for name in _SHOWN_NAMES}
    params.update(
        m_cid=shown.conversation_id,
        m_count=len(rows),
        m_now=rows[-1]["created_at"],
        m_input_tokens=sum(row["input_tokens"] or 0 for row in rows),
        m_output_tokens=sum(row["output_tokens"] or 0 for row in rows),
    )
    return params


_MESSAGE_INSERTS: dict[int, Any] = {}
_PG_SHOWS: dict[int, Any] = {}


def _insert_messages(count: int) -> Any:
    """SQLite: ``count`` messages in one ``INSERT … VALUES``, at the sequence numbers given."""
    statement = _MESSAGE_INSERTS.get(count)
    if statement is None:
        rows = [
            {
                **{name: param(f"m_{name}_{i}", messages.c[name].type) for name in _SHOWN_NAMES},
                "updated_at": param(f"m_created_at_{i}", messages.c.created_at.type),
                "status": _COMPLETE,
                "conversation_id": _CID,
                "seq": param(f"m_seq_{i}", Integer),
            }
            for i in range(count)
        ]
        statement = _MESSAGE_INSERTS[count] = messages.insert().values(rows)
    return statement


def _pg_show(count: int, when: Any = None) -> tuple[Any, Any, Any]:
    """PostgreSQL: the CTEs that append ``count`` messages (``shown``, returning a row per
    message stored) and count their conversation's agent's use (``agent_use``), after the
    conversation's counters (``bump``, which numbers them; moved only ``when`` given)."""
    bumped = (_BUMP if when is None else _BUMP.where(when)).cte("bump")
    agent_use = (
        update(agents)
        .where(agents.c.id == bumped.c.agent_id)
        .values(**_counters(agents), last_used_at=_NOW)
        .cte("agent_use")
    )
    rows = [
        select(
            *(_pg_shown_param(name, i) for name in _SHOWN_NAMES),
            _plain(f"m_created_at_{i}"),
            _COMPLETE,
            _plain("m_cid"),
            bumped.c.last_sequence - literal_column(str(count - 1 - i), Integer)
            if i < count - 1
            else bumped.c.last_sequence,
        ).select_from(bumped)
        for i in range(count)
    ]
    source = union_all(*rows) if count > 1 else rows[0]
    appended = messages.insert().from_select(_SHOWN_COLUMNS, source).returning(_ONE).cte("shown")
    return appended, agent_use, bumped


def _pg_shown_param(name: str, i: int) -> Any:
    """The parameter of column ``name`` of shown message ``i`` (PostgreSQL): as the driver
    types it where that is the column's type (see :func:`_plain`), else converted and cast."""
    # converted (the enum, JSON), or typed in the first row: a UNION gives its other rows'
    # NULL token counts that type
    if name in ("role", "tool_calls", "metadata") or (i == 0 and name in _TOKENS):
        return param(f"m_{name}_{i}", messages.c[name].type)
    return _plain(f"m_{name}_{i}")


def _pg_show_statement(count: int) -> Any:
    """PostgreSQL: :func:`show_messages` of ``count`` messages as one statement."""
    statement = _PG_SHOWS.get(count)
    if statement is None:
        appended, agent_use, _ = _pg_show(count)
        statement = _PG_SHOWS[count] = select(func.count()).select_from(appended).add_cte(agent_use)
    return statement


def blob_chains(
    conn: Connection, thread_id: str, ns: str, wanted: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], AnyRow]:
    """The rows of the (channel, version) pairs ``wanted`` and of every version they extend,
    by (channel, version): one recursive query."""
    pairs = sorted(set(wanted))
    if not pairs:
        return {}
    here = and_(BLOBS.c.thread_id == thread_id, BLOBS.c.checkpoint_ns == ns)
    chain = (
        select(BLOBS.c.channel, BLOBS.c.version, BLOBS.c.base_version)
        .where(here, tuple_(BLOBS.c.channel, BLOBS.c.version).in_(pairs))
        .cte("chain", recursive=True)
    )
    chain = chain.union(
        select(BLOBS.c.channel, BLOBS.c.version, BLOBS.c.base_version)
        .join(
            chain,
            and_(BLOBS.c.channel == chain.c.channel, BLOBS.c.version == chain.c.base_version),
        )
        .where(here)
    )
    rows = conn.execute(
        select(
            BLOBS.c.channel,
            BLOBS.c.version,
            BLOBS.c.type,
            BLOBS.c.value,
            BLOBS.c.base_version,
            BLOBS.c.base_length,
            BLOBS.c.depth,
        )
        .join(chain, and_(BLOBS.c.channel == chain.c.channel, BLOBS.c.version == chain.c.version))
        .where(here)
    ).all()
    return {(row.channel, row.version): row for row in rows}


def get_checkpoint(
    conn: Connection, thread_id: str, ns: str, checkpoint_id: str | None
) -> AnyRow | None:
    """The checkpoint ``checkpoint_id`` of a thread's namespace, or its newest one."""
    query = select(*CHECKPOINT_COLUMNS).where(
        CHECKPOINTS.c.thread_id == thread_id, CHECKPOINTS.c.checkpoint_ns == ns
    )
    if checkpoint_id is not None:
        query = query.where(CHECKPOINTS.c.checkpoint_id == checkpoint_id)
    else:
        query = query.order_by(CHECKPOINTS.c.checkpoint_id.desc()).limit(1)
    return conn.execute(query).first()


def list_checkpoints(
    conn: Connection,
    *,
    thread_id: str | None,
    ns: str | None,
    checkpoint_id: str | None,
    before: str | None,
    limit: int | None,
    offset: int = 0,
) -> Sequence[AnyRow]:
    """Checkpoints newest first (by id, as LangGraph orders them), narrowed as given."""
    query = select(*CHECKPOINT_COLUMNS)
    if thread_id is not None:
        query = query.where(CHECKPOINTS.c.thread_id == thread_id)
    if ns is not None:
        query = query.where(CHECKPOINTS.c.checkpoint_ns == ns)
    if checkpoint_id is not None:
        query = query.where(CHECKPOINTS.c.checkpoint_id == checkpoint_id)
    if before is not None:
        query = query.where(CHECKPOINTS.c.checkpoint_id < before)
    query = query.order_by(
        CHECKPOINTS.c.checkpoint_id.desc(), CHECKPOINTS.c.thread_id, CHECKPOINTS.c.checkpoint_ns
    )
    if limit is not None:
        query = query.limit(limit).offset(offset)
    return conn.execute(query).all()


def pending_writes(conn: Connection, keys: Sequence[WriteKey]) -> dict[WriteKey, list[AnyRow]]:
    """The pending writes of each checkpoint in ``keys``, in LangGraph's order (task path, task,
    index)."""
    found: dict[WriteKey, list[AnyRow]] = {key: [] for key in keys}
    if not keys:
        return found
    rows = conn.execute(
        select(
            WRITES.c.thread_id,
            WRITES.c.checkpoint_ns,
            WRITES.c.checkpoint_id,
            WRITES.c.task_id,
            WRITES.c.task_path,
            WRITES.c.idx,
            WRITES.c.channel,
            WRITES.c.type,
            WRITES.c.value,
        )
        .where(
            tuple_(WRITES.c.thread_id, WRITES.c.checkpoint_ns, WRITES.c.checkpoint_id).in_(
                sorted(set(keys))
            )
        )
        .order_by(WRITES.c.task_path, WRITES.c.task_id, WRITES.c.idx)
    ).all()
    for row in rows:
        found[(row.thread_id, row.checkpoint_ns, row.checkpoint_id)].append(row)
    return found


def put_writes(conn: Connection, rows: Sequence[dict[str, Any]], *, replace: bool) -> None:
    """Store pending writes in one statement (a few at a time for many); ``replace``: a write
    with the same key replaces the stored one (special writes: errors, interrupts), otherwise
    the first one stored stays."""
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start : start + ROWS_PER_STATEMENT]
        params = {f"{name}_{i}": row[name] for i, row in enumerate(chunk) for name in _WRITE_NAMES}
        statement = _insert_writes(conn.dialect.name, len(chunk), replace)
        prepared(statement, conn.dialect).run(conn, params)


_WRITE_NAMES = [column.name for column in WRITES.c]
_WRITE_INSERTS: dict[tuple[str, int, bool], Any] = {}


def _insert_writes(dialect: str, count: int, replace: bool) -> Any:
    statement = _WRITE_INSERTS.get((dialect, count, replace))
    if statement is None:
        insert = dialect_insert(dialect, WRITES).values(
            [
                {name: param(f"{name}_{i}", WRITES.c[name].type) for name in _WRITE_NAMES}
                for i in range(count)
            ]
        )
        keys = ["thread_id", "checkpoint_ns", "checkpoint_id", "task_id", "idx"]
        if replace:
            changed = ("channel", "type", "value", "task_path")
            statement = insert.on_conflict_do_update(
                index_elements=keys, set_={name: insert.excluded[name] for name in changed}
            )
        else:
            statement = insert.on_conflict_do_nothing(index_elements=keys)
        _WRITE_INSERTS[(dialect, count, replace)] = statement
    return statement


def delete_thread(conn: Connection, thread_id: str) -> None:
    """Delete every checkpoint, blob and pending write of a thread."""
    for table in (WRITES, BLOBS, CHECKPOINTS):
        conn.execute(delete(table).where(table.c.thread_id == thread_id))


def delete_runs(conn: Connection, run_ids: Sequence[str]) -> None:
    """Delete the checkpoints that runs made, with their pending writes."""
    if not run_ids:
        return
    made = select(
        CHECKPOINTS.c.thread_id, CHECKPOINTS.c.checkpoint_ns, CHECKPOINTS.c.checkpoint_id
    ).where(CHECKPOINTS.c.run_id.in_(list(run_ids)))
    conn.execute(
        delete(WRITES).where(
            tuple_(WRITES.c.thread_id, WRITES.c.checkpoint_ns, WRITES.c.checkpoint_id).in_(made)
        )
    )
    conn.execute(delete(CHECKPOINTS).where(CHECKPOINTS.c.run_id.in_(list(run_ids))))


def copy_thread(conn: Connection, source: str, target: str) -> None:
    """Copy every checkpoint, blob and pending write of thread ``source`` to ``target``."""
    for table in (CHECKPOINTS, BLOBS, WRITES):
        columns = [column for column in table.c if column.name != "thread_id"]
        names = ["thread_id", *(column.name for column in columns)]
        insert = dialect_insert(conn.dialect.name, table).from_select(
            names,
            select(literal(target, table.c.thread_id.type), *columns).where(
                table.c.thread_id == source
            ),
        )
        conn.execute(insert.on_conflict_do_nothing())


def keep_latest(conn: Connection, thread_id: str) -> None:
    """Delete all but the newest checkpoint of each namespace of a thread (with the pending
    writes of those deleted; blobs stay, as kept checkpoints may build on them)."""
    namespaces = conn.execute(
        select(CHECKPOINTS.c.checkpoint_ns, func.max(CHECKPOINTS.c.checkpoint_id))
        .where(CHECKPOINTS.c.thread_id == thread_id)
        .group_by(CHECKPOINTS.c.checkpoint_ns)
    ).all()
    for ns, newest in namespaces:
        for table in (WRITES, CHECKPOINTS):
            conn.execute(
                delete(table).where(
                    table.c.thread_id == thread_id,
                    table.c.checkpoint_ns == ns,
                    table.c.checkpoint_id != newest,
                )
            )


def conversation_for(conn: Connection, reference: str, platform: str) -> uuid.UUID | None:
    """The conversation a session or thread ``reference`` names: the conversation with that id
    (a UUID) or, failing that, the oldest of ``platform`` (:data:`SESSIONS` or :data:`THREADS`)
    whose chat id it is."""
    try:
        key: uuid.UUID | None = uuid.UUID(reference)
    except ValueError:
        key = None
    known = select(conversations.c.id).where(conversations.c.id == key)
    if key is not None and conn.execute(known).first() is not None:
        return key
    found = conn.execute(
        select(conversations.c.id)
        .where(conversations.c.user_id == platform, conversations.c.chat_id == reference)
        .order_by(conversations.c.created_at)
        .limit(1)
    ).scalar()
    return None if found is None else uuid.UUID(str(found))


def langchain_ids(conn: Connection, conversation_id: uuid.UUID, key: str) -> set[str]:
    """The LangChain message ids the messages of a conversation hold (in ``metadata[key]``)."""
    found: set[str] = set()
    for (metadata,) in conn.execute(
        select(messages.c.metadata).where(messages.c.conversation_id == conversation_id)
    ):
        stored = metadata.get(key) if isinstance(metadata, dict) else None
        data = stored.get("data") if isinstance(stored, dict) else None
        if isinstance(data, dict) and isinstance(data.get("id"), str):
            found.add(data["id"])
    return found


def clear_messages(conn: Connection, conversation_id: uuid.UUID) -> None:
    """Delete a conversation's messages; its counts and token totals restart from zero (its
    sequence numbers go on, so a cursor taken before never points at a new message)."""
    conn.execute(delete(messages).where(messages.c.conversation_id == conversation_id))
    conn.execute(
        update(conversations)
        .where(conversations.c.id == conversation_id)
        .values(message_count=0, last_message_at=None, input_tokens=0, output_tokens=0)
    )
