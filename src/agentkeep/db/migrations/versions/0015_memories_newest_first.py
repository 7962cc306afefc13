"""Every user's memories, newest first, from an index: memories.created_at

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 23:40:00.000000

Listing memories with no user given read and sorted every live memory (14 ms for a page of 50
out of 10,000, on either backend); from this index it reads the page (1.5-1.8 ms). Additive:
the table is not rebuilt.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_memories_created_at"), "memories", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_memories_created_at"), table_name="memories")
