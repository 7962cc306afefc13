"""agents name the modules they run (agent_modules)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 22:45:00.000000

An agent's modules were kept as names in its ``metadata["modules"]``, which the runtime did not
read: every agent ran every active module. They become rows of ``agent_modules`` (agent, module,
position), moved here from the metadata (names that match no module are dropped, as they ran
nothing); an agent with no rows still runs every active module.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import agentkeep.db.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = "modules"


def _document(value: Any) -> dict[str, Any]:
    if isinstance(value, str | bytes):
        value = json.loads(value)
    return value if isinstance(value, dict) else {}


def upgrade() -> None:
    op.create_table(
        "agent_modules",
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("module_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", agentkeep.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_agent_modules_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["module_id"],
            ["modules.id"],
            name=op.f("fk_agent_modules_module_id_modules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("agent_id", "module_id", name=op.f("pk_agent_modules")),
    )
    op.create_index(op.f("ix_agent_modules_module_id"), "agent_modules", ["module_id"])
    bind = op.get_bind()
    modules_table = sa.table("modules", sa.column("name", sa.String()), sa.column("id", sa.Uuid()))
    found_modules = bind.execute(sa.select(modules_table.c.name, modules_table.c.id)).all()
    modules: dict[str, Any] = dict(found_modules)
    links: list[dict[str, Any]] = []
    now = agentkeep.db.types.utcnow()
    agents = sa.table("agents", sa.column("id", sa.Uuid()), sa.column("metadata", sa.JSON()))
    for agent_id, raw in bind.execute(sa.select(agents.c.id, agents.c.metadata)).all():
        metadata = _document(raw)
        if KEY not in metadata:
            continue
        names = metadata.pop(KEY)
        if isinstance(names, list):
            found = [
                modules[n] for n in dict.fromkeys(names) if isinstance(n, str) and n in modules
            ]
            links += [
                {"agent_id": agent_id, "module_id": module_id, "position": position,
                 "created_at": now}
                for position, module_id in enumerate(found)
            ]  # fmt: skip
        bind.execute(agents.update().where(agents.c.id == agent_id).values(metadata=metadata))
    if links:
        op.bulk_insert(
            sa.table(
                "agent_modules",
                sa.column("agent_id", sa.Uuid()),
                sa.column("module_id", sa.Uuid()),
                sa.column("position", sa.Integer()),
                sa.column("created_at", agentkeep.db.types.UTCDateTime(timezone=True)),
            ),
            links,
        )


def downgrade() -> None:
    bind = op.get_bind()
    links = sa.table(
        "agent_modules",
        sa.column("agent_id", sa.Uuid()),
        sa.column("module_id", sa.Uuid()),
        sa.column("position", sa.Integer()),
    )
    modules = sa.table("modules", sa.column("name", sa.String()), sa.column("id", sa.Uuid()))
    rows = bind.execute(
        sa.select(links.c.agent_id, modules.c.name)
        .join(modules, modules.c.id == links.c.module_id)
        .order_by(links.c.agent_id, links.c.position)
    ).all()
    named: dict[Any, list[str]] = {}
    for agent_id, name in rows:
        named.setdefault(agent_id, []).append(name)
    agents = sa.table("agents", sa.column("id", sa.Uuid()), sa.column("metadata", sa.JSON()))
    for agent_id, names in named.items():
        raw = bind.execute(sa.select(agents.c.metadata).where(agents.c.id == agent_id)).scalar()
        metadata = {**_document(raw), KEY: names}
        bind.execute(agents.update().where(agents.c.id == agent_id).values(metadata=metadata))
    op.drop_index(op.f("ix_agent_modules_module_id"), table_name="agent_modules")
    op.drop_table("agent_modules")
