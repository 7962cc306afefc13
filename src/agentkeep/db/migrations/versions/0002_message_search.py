"""full-text search over messages.content

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 10:00:00.000000

PostgreSQL: a GIN index on ``to_tsvector('simple', content)`` (the 'simple' configuration: no
stemming or stop words, so every language is searchable). It indexes the existing rows as it is
built, and blocks writes to ``messages`` while it is.

SQLite: an FTS5 external-content table ``messages_fts`` over ``messages.content`` keyed by the
table's implicit rowid, kept in sync by triggers, and filled from the existing rows ('rebuild').
A later migration that rebuilds ``messages`` on SQLite (batch mode's copy-and-rename, which drops
the triggers and may renumber rowids), or a ``VACUUM`` (which may renumber the rowids of a table
without an INTEGER PRIMARY KEY), must be followed by ``INSERT INTO messages_fts(messages_fts)
VALUES('rebuild')`` and, for a rebuild, by recreating the triggers below.

Neither object is in the SQLAlchemy metadata; ``env.py`` tells autogenerate to ignore them.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PG_INDEX = "ix_messages_content_fts"

SQLITE_UPGRADE = [
    "CREATE VIRTUAL TABLE messages_fts USING fts5("
    "content, content='messages', content_rowid='rowid', "
    "tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN "
    "INSERT INTO messages_fts(rowid, content) VALUES (new.rowid, new.content); END",
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, content) "
    "VALUES ('delete', old.rowid, old.content); END",
    "CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, content) "
    "VALUES ('delete', old.rowid, old.content); "
    "INSERT INTO messages_fts(rowid, content) VALUES (new.rowid, new.content); END",
    "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')",
]

SQLITE_DOWNGRADE = [
    "DROP TRIGGER IF EXISTS messages_fts_update",
    "DROP TRIGGER IF EXISTS messages_fts_delete",
    "DROP TRIGGER IF EXISTS messages_fts_insert",
    "DROP TABLE IF EXISTS messages_fts",
]


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            f"CREATE INDEX {PG_INDEX} ON messages USING gin (to_tsvector('simple', content))"
        )
        return
    for statement in SQLITE_UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {PG_INDEX}")
        return
    for statement in SQLITE_DOWNGRADE:
        op.execute(statement)
