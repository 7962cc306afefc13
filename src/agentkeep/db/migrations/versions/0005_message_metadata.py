"""messages.extra_data is called metadata, like every other table's

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 12:00:00.000000

One name for free-form metadata in the schema, the models and the API. A rename in place on both
backends: PostgreSQL's ``RENAME COLUMN`` changes only the catalog; on SQLite batch mode is told
never to rebuild the table, so Alembic issues ``ALTER TABLE … RENAME COLUMN`` (SQLite 3.25+) and
the rows, their rowids and the full-text search table and triggers of migration 0002 (which use
``content`` and ``rowid`` only) stay as they are.

Not additive: a process of an earlier release selects ``extra_data`` and fails once this has run,
so stop the earlier instances before upgrading (or upgrade them all together).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rename(old: str, new: str) -> None:
    with op.batch_alter_table("messages", recreate="never") as batch:
        batch.alter_column(old, new_column_name=new)


def upgrade() -> None:
    _rename("extra_data", "metadata")


def downgrade() -> None:
    _rename("metadata", "extra_data")
