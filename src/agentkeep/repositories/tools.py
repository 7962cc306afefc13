"""Tools: what agents may call, with a JSON Schema for the arguments and usage counts.

``record_use`` counts a call in one statement; it is usage, not a configuration change, so it
leaves ``updated_at`` alone.
"""

from __future__ import annotations

import builtins
import uuid

from sqlalchemy import select, update

from agentkeep.db.tables import agent_tools, agents, tools
from agentkeep.db.types import utcnow
from agentkeep.models.common import IdLike, Page, to_uuid
from agentkeep.models.config import Agent, Tool, ToolCreate, ToolUpdate
from agentkeep.repositories.agents import linked
from agentkeep.repositories.base import ModeT, load, operation
from agentkeep.repositories.named import NamedRepository


class ToolRepository(NamedRepository[ModeT, Tool, ToolCreate, ToolUpdate]):
    """SQL for the ``tools`` table. Deleting a tool detaches it from every agent."""

    _table = tools
    _item = Tool
    _create = ToolCreate
    _update = ToolUpdate
    _noun = "tool"
    _documents = ("parameters", "config")
    _texts = ("description",)

    @operation("read", single=True)
    def list(self, *, limit: int = 50, cursor: str | None = None) -> Page[Tool]:
        """Tools ordered by name; keyset pages."""
        return self._page(limit, cursor, [])

    @operation("write", single=True)
    def record_use(self, tool_id: IdLike) -> Tool:
        """Count one call of the tool: ``usage_count`` + 1 and ``last_used_at`` now.

        Raises:
            NotFoundError: there is no such tool.
        """
        tid = to_uuid(tool_id, "tool_id")
        conn = self.conn
        row = conn.execute(
            update(tools)
            .where(tools.c.id == tid)
            .values(usage_count=tools.c.usage_count + 1, last_used_at=utcnow())
            .returning(*tools.c)
        ).first()
        if row is None:
            raise self._not_found(tool_id)
        return load(Tool, row)

    @operation("read", single=True)
    def agents_using_each(
        self, tool_ids: builtins.list[IdLike]
    ) -> dict[uuid.UUID, builtins.list[Agent]]:
        """The agents each of ``tool_ids`` is attached to, by name, in one query (a page of
        tools shows them all); a tool no agent uses maps to ``[]``."""
        keys = [to_uuid(tool_id, "tool_id") for tool_id in tool_ids]
        found: dict[uuid.UUID, builtins.list[Agent]] = {key: [] for key in keys}
        if not keys:
            return found
        query = (
            select(agent_tools.c.tool_id, agents)
            .join(agents, agents.c.id == agent_tools.c.agent_id)
            .where(agent_tools.c.tool_id.in_(keys))
            .order_by(agents.c.name)
        )
        conn = self.conn
        rows = conn.execute(query).all()
        columns = rows[0]._fields[1:] if rows else ()
        for tool_id, *values in rows:
            found[tool_id].append(Agent.model_validate(dict(zip(columns, values, strict=True))))
        return found

    @operation("read", single=True)
    def list_agents_using(
        self, tool_id: IdLike, *, limit: int | None = None, cursor: str | None = None
    ) -> Page[Agent]:
        """The agents the tool is attached to, ordered by name: a page of ``limit`` (all when
        ``None``); pass ``next_cursor`` back as ``cursor`` for the next one.

        Raises:
            NotFoundError: there is no such tool.
        """
        key = to_uuid(tool_id, "tool_id")
        return linked(self, agents, Agent, tools, key, limit=limit, cursor=cursor)
