"""The schema's rows: what the ORM declarations promise the repositories."""

from __future__ import annotations

from agentkeep.db.rows import Base


def test_no_column_changes_itself_on_update() -> None:
    # updated_at is written by the repositories' one helper (keyed.changed), so a counter bump
    # leaves it alone without having to undo a column default
    assert [
        f"{table.name}.{column.name}"
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if column.onupdate is not None or column.server_onupdate is not None
    ] == []
