"""agents count the tokens of their turns

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 16:10:00.000000

The chat runtime adds each turn's input and output tokens to its agent's totals, beside the
conversation and message counts the store already keeps. Two NOT NULL columns that start at 0
for existing agents (a server default fills them; no table rebuild on SQLite).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("input_tokens", "output_tokens")


def upgrade() -> None:
    for name in COLUMNS:
        op.add_column(
            "agents", sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:  # SQLite drops columns by rebuilding the table
        for name in COLUMNS:
            batch.drop_column(name)
