"""The change log other processes follow: what changed that caches keep

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 14:20:00.000000

Each process keeps agents (with their persona, tools and modules) and each conversation's agent
in memory. A change made in one process used to reach the others only when their copies
expired (a minute), so with ``agentkeep serve --workers 2`` or several instances a turn could
run an agent as it was before an edit. ``store_changes`` logs each such change in the
transaction that makes it; a process reads the entries it has not seen before it trusts its
copies (``repositories.store_changes``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from agentkeep.db.types import UTCDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "store_changes",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("key", sa.Uuid(), nullable=False),
        sa.Column("origin", sa.String(32), nullable=False),
        sa.Column("changed_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_store_changes")),
    )


def downgrade() -> None:
    op.drop_table("store_changes")
