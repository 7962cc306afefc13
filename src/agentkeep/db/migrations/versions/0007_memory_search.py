"""memories: each embedding names its model; full-text search over memories

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 22:30:00.000000

``embedding_models`` lists the models whose embeddings the store holds, each with its one
dimension; every memory with an embedding names its model (``memories.embedding_model``), so a
search compares a query only with vectors of the model that made it. Embeddings stored before
this revision did not say which model made them: each gets a model named ``unnamed-<dimension>``.

Full-text search over ``memories.content`` is made as for messages (revision 0002): on PostgreSQL
a GIN index on ``to_tsvector('simple', content)``; on SQLite an FTS5 external-content table
``memories_fts`` kept in sync by triggers. Each model's HNSW index on PostgreSQL is made when the
model is registered (``repositories.memories``), as its dimension is known only then.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import agentkeep.db.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PG_INDEX = "ix_memories_content_fts"

SQLITE_UPGRADE = [
    "CREATE VIRTUAL TABLE memories_fts USING fts5("
    "content, content='memories', content_rowid='rowid', "
    "tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories BEGIN "
    "INSERT INTO memories_fts(rowid, content) VALUES (new.rowid, new.content); END",
    "CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories BEGIN "
    "INSERT INTO memories_fts(memories_fts, rowid, content) "
    "VALUES ('delete', old.rowid, old.content); END",
    "CREATE TRIGGER memories_fts_update AFTER UPDATE OF content ON memories BEGIN "
    "INSERT INTO memories_fts(memories_fts, rowid, content) "
    "VALUES ('delete', old.rowid, old.content); "
    "INSERT INTO memories_fts(rowid, content) VALUES (new.rowid, new.content); END",
    "INSERT INTO memories_fts(memories_fts) VALUES ('rebuild')",
]

SQLITE_DOWNGRADE = [
    "DROP TRIGGER IF EXISTS memories_fts_update",
    "DROP TRIGGER IF EXISTS memories_fts_delete",
    "DROP TRIGGER IF EXISTS memories_fts_insert",
    "DROP TABLE IF EXISTS memories_fts",
]


def upgrade() -> None:
    postgres = op.get_context().dialect.name == "postgresql"
    op.create_table(
        "embedding_models",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("dimension", sa.Integer(), nullable=False),
        sa.Column("created_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_embedding_models")),
        sa.UniqueConstraint("name", name=op.f("uq_embedding_models_name")),
    )
    with op.batch_alter_table("memories") as batch:
        batch.add_column(sa.Column("embedding_model", sa.String(length=200), nullable=True))
    dimension = "vector_dims(embedding)" if postgres else "(length(embedding) / 4)"
    found = op.get_bind().execute(
        sa.text(f"SELECT DISTINCT {dimension} FROM memories WHERE embedding IS NOT NULL")
    )
    models = sa.table(
        "embedding_models",
        sa.column("id", sa.Uuid()),
        sa.column("name", sa.String()),
        sa.column("dimension", sa.Integer()),
        sa.column("created_at", agentkeep.db.types.UTCDateTime(timezone=True)),
    )
    now = agentkeep.db.types.utcnow()
    rows = [
        {
            "id": agentkeep.db.types.new_id(),
            "name": f"unnamed-{size}",
            "dimension": size,
            "created_at": now,
        }
        for (size,) in found
    ]
    if rows:
        op.bulk_insert(models, rows)
    op.execute(
        f"UPDATE memories SET embedding_model = 'unnamed-' || {dimension} "
        "WHERE embedding IS NOT NULL"
    )
    with op.batch_alter_table("memories") as batch:
        batch.create_foreign_key(
            op.f("fk_memories_embedding_model_embedding_models"),
            "embedding_models",
            ["embedding_model"],
            ["name"],
        )
        batch.create_index(
            op.f("ix_memories_embedding_model_user_id"), ["embedding_model", "user_id"]
        )
    if postgres:
        op.execute(
            f"CREATE INDEX {PG_INDEX} ON memories USING gin (to_tsvector('simple', content))"
        )
        return
    for statement in SQLITE_UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {PG_INDEX}")
        op.execute(
            "DO $$ DECLARE name text; BEGIN FOR name IN SELECT indexname FROM pg_indexes "
            "WHERE tablename = 'memories' AND indexname LIKE 'ix_memories_hnsw_%' LOOP "
            "EXECUTE format('DROP INDEX IF EXISTS %I', name); END LOOP; END $$"
        )
    else:
        for statement in SQLITE_DOWNGRADE:
            op.execute(statement)
    with op.batch_alter_table("memories") as batch:
        batch.drop_index(op.f("ix_memories_embedding_model_user_id"))
        batch.drop_constraint(
            op.f("fk_memories_embedding_model_embedding_models"), type_="foreignkey"
        )
        batch.drop_column("embedding_model")
    op.drop_table("embedding_models")
