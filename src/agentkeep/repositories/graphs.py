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
(:func:`put_checkpoint`), a task's pending writes in one multi-row statement.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    and_,
    delete,
    func,
    literal,
    or_,
    select,
    tuple_,
    union_all,
    update,
)

from agentkeep.db.prepared import param, prepared
from agentkeep.db.tables import (
    conversations,
    graph_blobs,
    graph_checkpoints,
    graph_writes,
    messages,
)
from agentkeep.db.types import utcnow
from agentkeep.repositories.base import dialect_insert

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

PLATFORM = "langchain"
"""The ``user_id`` of the conversations of LangChain sessions and LangGraph threads, whose
``chat_id`` is the session or thread id (the indexed (user_id, chat_id) lookup)."""

_BLOB_NAMES = [column.name for column in BLOBS.c]


def put_checkpoint(
    conn: Connection, checkpoint: dict[str, Any], blobs: Sequence[dict[str, Any]]
) -> int:
    """Store a checkpoint row, replacing one with the same id (its ``created_at`` kept), and
    its channel versions as :func:`put_blobs` stores them; how many versions were stored.

    On PostgreSQL one statement for both (up to :data:`ROWS_PER_STATEMENT` versions), so a
    put is atomic by itself and one round trip (:func:`one_statement`); elsewhere two.
    Compiled once per dialect and count, run on the driver.
    """
    params = {**checkpoint, "created_at": utcnow()}
    dialect = conn.dialect
    if not one_statement(dialect.name, len(blobs)):
        stored = put_blobs(conn, blobs)
        prepared(_upsert_checkpoint(dialect.name, 0), dialect).run(conn, params)
        return stored
    params.update(_blob_params(blobs))
    row = prepared(_upsert_checkpoint(dialect.name, len(blobs)), dialect).run(conn, params)
    return int(row.fetchone()[0])


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


ROWS_PER_STATEMENT = 16
"""At most this many channel versions or pending writes are stored by one statement (a compiled
statement is kept for each count up to it)."""

_CHECKPOINT_UPSERTS: dict[tuple[str, int], Any] = {}
_BLOB_INSERTS: dict[tuple[str, int], Any] = {}


def _upsert_checkpoint(dialect: str, blobs: int) -> Any:
    """The checkpoint upsert; with ``blobs`` versions (PostgreSQL) stored in a CTE of the same
    statement, which returns how many of them were stored."""
    statement = _CHECKPOINT_UPSERTS.get((dialect, blobs))
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
            stored = _insert_blobs(dialect, blobs).returning(literal(1)).cte("stored")
            count = select(func.count()).select_from(stored).scalar_subquery()
            statement = statement.add_cte(stored).returning(count)
        _CHECKPOINT_UPSERTS[(dialect, blobs)] = statement
    return statement


def _insert_blobs(dialect: str, count: int) -> Any:
    """``INSERT INTO graph_blobs SELECT`` of ``count`` rows of parameters (``thread_id_0``, …),
    each stored whole or, if it extends a version, only while that version is stored."""
    statement = _BLOB_INSERTS.get((dialect, count))
    if statement is None:
        rows = [
            select(*(param(f"{name}_{i}", BLOBS.c[name].type).label(name) for name in _BLOB_NAMES))
            for i in range(count)
        ]
        given = (union_all(*rows) if count > 1 else rows[0]).subquery("given")
        base = BLOBS.alias("base")
        extended = (
            select(base.c.version)
            .where(
                base.c.thread_id == given.c.thread_id,
                base.c.checkpoint_ns == given.c.checkpoint_ns,
                base.c.channel == given.c.channel,
                base.c.version == given.c.base_version,
            )
            .exists()
        )
        source = select(*(given.c[name] for name in _BLOB_NAMES)).where(
            or_(given.c.base_version.is_(None), extended)
        )
        insert = dialect_insert(dialect, BLOBS).from_select(_BLOB_NAMES, source)
        statement = _BLOB_INSERTS[(dialect, count)] = insert.on_conflict_do_nothing()
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


def conversation_for(conn: Connection, reference: str) -> uuid.UUID | None:
    """The conversation a session or thread ``reference`` names: the conversation with that id
    (a UUID) or, failing that, the oldest of :data:`PLATFORM` whose chat id it is."""
    try:
        key: uuid.UUID | None = uuid.UUID(reference)
    except ValueError:
        key = None
    known = select(conversations.c.id).where(conversations.c.id == key)
    if key is not None and conn.execute(known).first() is not None:
        return key
    found = conn.execute(
        select(conversations.c.id)
        .where(conversations.c.user_id == PLATFORM, conversations.c.chat_id == reference)
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
