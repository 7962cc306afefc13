"""conversations count their messages' tokens; replies being streamed are indexed

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 00:40:00.000000

Token totals come from one source: the message writes. Appending a message with token counts,
or changing them on a stored message (a streamed reply being finalised), adds the difference to
its conversation's totals and to its agent's, in the same unit of work; the store's totals sum
the conversations (as its message count does), never the messages. Existing conversations get
their messages' sums here.

The sweep that marks replies left ``streaming`` by a stopped server as ``error`` looks for
``streaming`` replies not touched for a while: a partial index holds just those (few) rows.
Both additive: an earlier release keeps working against this schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("input_tokens", "output_tokens")
STREAMING = sa.text("status = 'streaming'")


def upgrade() -> None:
    for name in COLUMNS:
        op.add_column(
            "conversations",
            sa.Column(name, sa.BigInteger(), nullable=False, server_default="0"),
        )
    for name in COLUMNS:
        op.execute(
            f"UPDATE conversations SET {name} = (SELECT coalesce(sum(m.{name}), 0) "
            "FROM messages m WHERE m.conversation_id = conversations.id)"
        )
    op.create_index(
        "ix_messages_streaming",
        "messages",
        ["updated_at"],
        sqlite_where=STREAMING,
        postgresql_where=STREAMING,
    )


def downgrade() -> None:
    op.drop_index("ix_messages_streaming", table_name="messages")
    with op.batch_alter_table("conversations") as batch:  # SQLite drops columns by a rebuild
        for name in COLUMNS:
            batch.drop_column(name)
