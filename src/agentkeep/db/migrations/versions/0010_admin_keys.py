"""API keys say whether they are admin keys

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 23:10:00.000000

An admin key may also change the whole store at once: sync or export the configuration, purge
conversations. Keys made before this revision could do that, so they become admin keys; new keys
are not unless made with ``agentkeep keys create NAME --admin``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("admin", sa.Boolean(), nullable=False, server_default=sa.true()))
    with op.batch_alter_table("api_keys") as batch:
        batch.alter_column("admin", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("admin")
