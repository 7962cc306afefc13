"""Memories may expire: memories.expires_at

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 14:10:00.000000

A memory with ``expires_at`` is no longer recalled, searched or listed from then on, and a
sweep deletes it. The memories that index LangGraph store items take their items' expiry, so
those stored so far are given it here (the recall used to look the items up instead).

Additive and in place on both backends: on SQLite batch mode is told never to rebuild the
table, so the rows keep their rowids, which the full-text table (migration 0007) and the vector
change log (migration 0011) refer to, and their triggers stay. Downgrading drops the column
(``ALTER TABLE … DROP COLUMN``, SQLite 3.35+).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import agentkeep.db.types

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("memories", recreate="never") as batch:
        batch.add_column(
            sa.Column("expires_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=True)
        )
    op.create_index(op.f("ix_memories_expires_at"), "memories", ["expires_at"])
    op.execute(
        "UPDATE memories SET expires_at = (SELECT store_items.expires_at FROM store_items "
        "WHERE store_items.memory_id = memories.id) "
        "WHERE id IN (SELECT memory_id FROM store_items WHERE expires_at IS NOT NULL)"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_memories_expires_at"), table_name="memories")
    with op.batch_alter_table("memories", recreate="never") as batch:
        batch.drop_column("expires_at")
