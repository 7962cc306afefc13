"""api keys stored hashed

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 15:40:00.000000

``api_keys`` holds the keys made with ``agentkeep keys create``: a name, the key's first
characters (``prefix``, shown in listings), the SHA-256 digest of the whole key (``key_hash``, a
unique index: the server looks keys up by it) and when the key was made, last used and revoked.
The key itself is never stored. A new, empty table: nothing to copy, no batch mode needed.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import agentkeep.db.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    timestamp = agentkeep.db.types.UTCDateTime(timezone=True)
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", timestamp, nullable=False),
        sa.Column("last_used_at", timestamp, nullable=True),
        sa.Column("revoked_at", timestamp, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
    )
    op.create_index(op.f("ix_api_keys_key_hash"), "api_keys", ["key_hash"], unique=True)


def downgrade() -> None:
    op.drop_index(op.f("ix_api_keys_key_hash"), table_name="api_keys")
    op.drop_table("api_keys")
