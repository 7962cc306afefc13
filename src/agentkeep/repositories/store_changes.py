"""The change log: what changed that caches keep, for every other process on the database.

Each process keeps agents (with their persona, tools and modules) and each conversation's agent
in memory (``managers.agents``, ``managers.chat``). A unit of work that changes one records it
(``Unit.changed``); the process's own listeners hear of it once the unit commits
(``db.changes``), and :func:`record` logs it in the unit's own transaction, with the process's
``origin``, for the others. :func:`follow` is how a process hears of theirs: it reads the
entries after the last it saw, leaves out its own, and tells its listeners, as if the change had
been made here but without the row (they read it again when they need it). A chat turn follows
before it trusts its copies, so an edit made through any process or instance holds for the next
turn on every other.

Entries must become visible in the order of their numbers, or a follower could read a later one,
move past it and never see an earlier one that commits after. SQLite has one writer at a time; on
PostgreSQL the writers of the log take a transaction-level advisory lock before they write to it,
which they hold until they commit. Only units that change what caches keep write the log (an
agent's edit, a conversation's agent or status), never a message.

The log keeps about the last :data:`KEEP` entries. A follower that fell further behind (its last
entry trimmed away) is told that everything may have changed (:data:`EVERYTHING`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, text

from agentkeep.db.changes import EVERYTHING, Change, Changes
from agentkeep.db.prepared import prepared
from agentkeep.db.tables import store_changes as _log
from agentkeep.db.types import utcnow

KEEP = 10_000
"""Entries the log keeps, at least."""
TRIM_EVERY = 500
"""Every this many entries, those more than :data:`KEEP` older are deleted."""
READ_AT_MOST = 1_000
"""Entries one :func:`follow` reads; more behind than that, the follower starts afresh."""

LOCK_KEY = 0x6167_6B65_6570_0001
"""PostgreSQL: the advisory lock the log's writers take (``agkeep`` and 1)."""

_AFTER = (
    select(_log.c.seq, _log.c.kind, _log.c.key, _log.c.origin)
    .where(_log.c.seq > bindparam("after"))
    .order_by(_log.c.seq)
    .limit(READ_AT_MOST)
)
_BOUNDS = select(
    select(func.max(_log.c.seq)).scalar_subquery(), select(func.min(_log.c.seq)).scalar_subquery()
)
_TRIM = delete(_log).where(_log.c.seq <= bindparam("through"))
_LOCK = text(f"SELECT pg_advisory_xact_lock({LOCK_KEY})")


def record(conn: Connection, changes: Sequence[Change], origin: str) -> None:
    """Log ``changes``, made by the process ``origin``, in ``conn``'s open transaction (call it
    last before the commit: on PostgreSQL it holds the log's lock until then)."""
    if conn.dialect.name == "postgresql":
        conn.execute(_LOCK)
    now = utcnow()
    rows = [{"kind": c.kind, "key": c.key, "origin": origin, "changed_at": now} for c in changes]
    seqs = conn.execute(insert(_log).returning(_log.c.seq), rows).scalars().all()
    due = [seq for seq in seqs if seq % TRIM_EVERY == 0]
    if due:
        conn.execute(_TRIM, {"through": max(due) - KEEP})


def follow(conn: Connection, changes: Changes) -> list[Change]:
    """The changes other processes logged since ``changes`` last followed, and ``changes`` moved
    past them (its listeners are not told here). The first call only notes where the log
    stands; a follower whose next entries were trimmed away gets one :data:`EVERYTHING`."""
    after = changes.followed
    bounds: tuple[int | None, int | None] | None = None  # the log's last and first entries
    if after is not None:
        rows: list[Any] = prepared(_AFTER, conn.dialect).rows(conn, {"after": after})
        behind = len(rows) == READ_AT_MOST
        if not behind and rows and rows[0][0] > after + 1:  # a gap: numbers unused, or trimmed?
            bounds = prepared(_BOUNDS, conn.dialect).first(conn, {})
            behind = bounds[1] is not None and bounds[1] > after + 1
        if not behind:
            origin = changes.origin
            found = [
                Change(kind, key if isinstance(key, uuid.UUID) else uuid.UUID(key))
                for _seq, kind, key, by in rows
                if by != origin
            ]
            if rows:
                changes.follow_from(rows[-1][0])
            return found
    last, _first = bounds or prepared(_BOUNDS, conn.dialect).first(conn, {})
    changes.follow_from(last or 0)
    return [] if after is None else [Change(EVERYTHING, uuid.UUID(int=0))]
