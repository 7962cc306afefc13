"""LangGraph persistence: checkpoints, channel blobs, pending writes, and the key/value store

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 10:00:00.000000

``graph_checkpoints`` keeps each checkpoint without its channel values; ``graph_blobs`` keeps each
channel's value once per version (a list that grew by appending as the appended items and the
version it extends); ``graph_writes`` keeps the tasks' pending writes. ``store_items`` is the
namespaced key/value store with optional expiry.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import agentkeep.db.types

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "graph_checkpoints",
        sa.Column("thread_id", sa.String(length=255), nullable=False),
        sa.Column("checkpoint_ns", sa.Text(), nullable=False),
        sa.Column("checkpoint_id", sa.String(length=64), nullable=False),
        sa.Column("parent_checkpoint_id", sa.String(length=64), nullable=True),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("checkpoint", sa.LargeBinary(), nullable=False),
        sa.Column("metadata_type", sa.String(length=32), nullable=False),
        sa.Column("metadata", sa.LargeBinary(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "thread_id", "checkpoint_ns", "checkpoint_id", name=op.f("pk_graph_checkpoints")
        ),
    )
    op.create_index(op.f("ix_graph_checkpoints_run_id"), "graph_checkpoints", ["run_id"])
    op.create_table(
        "graph_blobs",
        sa.Column("thread_id", sa.String(length=255), nullable=False),
        sa.Column("checkpoint_ns", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(length=255), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=True),
        sa.Column("base_version", sa.String(length=64), nullable=True),
        sa.Column("base_length", sa.Integer(), nullable=True),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "thread_id", "checkpoint_ns", "channel", "version", name=op.f("pk_graph_blobs")
        ),
    )
    op.create_table(
        "graph_writes",
        sa.Column("thread_id", sa.String(length=255), nullable=False),
        sa.Column("checkpoint_ns", sa.Text(), nullable=False),
        sa.Column("checkpoint_id", sa.String(length=64), nullable=False),
        sa.Column("task_id", sa.String(length=255), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=True),
        sa.Column("task_path", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint(
            "thread_id",
            "checkpoint_ns",
            "checkpoint_id",
            "task_id",
            "idx",
            name=op.f("pk_graph_writes"),
        ),
    )
    op.create_table(
        "store_items",
        sa.Column("namespace", sa.Text(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", agentkeep.db.types.JSONDocument, nullable=False),
        sa.Column("memory_id", sa.Uuid(), nullable=True),
        sa.Column("ttl_minutes", sa.Float(), nullable=True),
        sa.Column("expires_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["memory_id"],
            ["memories.id"],
            name=op.f("fk_store_items_memory_id_memories"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("namespace", "key", name=op.f("pk_store_items")),
    )
    op.create_index(op.f("ix_store_items_memory_id"), "store_items", ["memory_id"])
    op.create_index(op.f("ix_store_items_expires_at"), "store_items", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_store_items_expires_at"), table_name="store_items")
    op.drop_index(op.f("ix_store_items_memory_id"), table_name="store_items")
    op.drop_table("store_items")
    op.drop_table("graph_writes")
    op.drop_table("graph_blobs")
    op.drop_index(op.f("ix_graph_checkpoints_run_id"), table_name="graph_checkpoints")
    op.drop_table("graph_checkpoints")
