"""SQLite: a log of the memories whose embedding changed, for the in-process vector cache

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 22:40:00.000000

A search of memories by vector on SQLite compares the query with every vector of its model. Read
from the table each time, 100,000 vectors of 384 dimensions cost about a second per search; kept
in memory as one float32 matrix, a few milliseconds. The matrix must follow every writer, in this
process or another: triggers append the ``rowid`` of each memory whose embedding appeared,
changed or went away to ``memory_vector_log`` (``seq`` only grows: AUTOINCREMENT), and a cache
that last saw ``seq`` S re-reads just the memories logged after S (``repositories.vector_cache``).

The log keeps about the last 100,000 changes: every 1,000th entry deletes those 100,000 older
than itself. A cache that fell further behind (its S before the oldest entry left) reloads
everything. PostgreSQL searches in SQL through its HNSW indexes and has no such log.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEEP = 100_000
TRIM_EVERY = 1_000

SQLITE_UPGRADE = [
    "CREATE TABLE memory_vector_log ("
    "seq INTEGER PRIMARY KEY AUTOINCREMENT, memory_rowid INTEGER NOT NULL)",
    "CREATE TRIGGER memory_vector_log_insert AFTER INSERT ON memories "
    "WHEN new.embedding IS NOT NULL BEGIN "
    "INSERT INTO memory_vector_log(memory_rowid) VALUES (new.rowid); END",
    "CREATE TRIGGER memory_vector_log_update AFTER UPDATE OF embedding, embedding_model "
    "ON memories BEGIN "
    "INSERT INTO memory_vector_log(memory_rowid) VALUES (new.rowid); END",
    "CREATE TRIGGER memory_vector_log_delete AFTER DELETE ON memories "
    "WHEN old.embedding IS NOT NULL BEGIN "
    "INSERT INTO memory_vector_log(memory_rowid) VALUES (old.rowid); END",
    f"CREATE TRIGGER memory_vector_log_trim AFTER INSERT ON memory_vector_log "
    f"WHEN new.seq % {TRIM_EVERY} = 0 BEGIN "
    f"DELETE FROM memory_vector_log WHERE seq <= new.seq - {KEEP}; END",
]

SQLITE_DOWNGRADE = [
    "DROP TRIGGER IF EXISTS memory_vector_log_trim",
    "DROP TRIGGER IF EXISTS memory_vector_log_delete",
    "DROP TRIGGER IF EXISTS memory_vector_log_update",
    "DROP TRIGGER IF EXISTS memory_vector_log_insert",
    "DROP TABLE IF EXISTS memory_vector_log",
]


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        return
    for statement in SQLITE_UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        return
    for statement in SQLITE_DOWNGRADE:
        op.execute(statement)
