"""Alembic environment: runs on the connection agentkeep hands over (see ``agentkeep.db.migrate``),
or, when Alembic is invoked on its own, on the database that ``AGENTKEEP_*`` settings name."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection

from agentkeep.config import Settings
from agentkeep.db.migrate import migration_connection
from agentkeep.db.rows import Base, is_search_object
from agentkeep.db.service import DatabaseService

target_metadata = Base.metadata


def _include_name(name: str | None, type_: str, _parents: Any) -> bool:
    """Leave out of autogenerate what migration 0002 made by hand for full-text search."""
    return not (type_ in {"table", "index"} and is_search_object(name))


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        compare_server_default=False,
        include_name=_include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    given = context.config.attributes.get("connection")
    if given is not None:
        _run(given)
        return
    service = DatabaseService(Settings())
    try:
        with migration_connection(service) as connection:
            _run(connection)
    finally:
        service.dispose()


main()
