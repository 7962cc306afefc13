"""Agents: model configuration, persona, tools and usage statistics.

Usage statistics (``conversation_count``, ``message_count``, ``last_used_at``, the token totals)
are bumped by the conversation and message repositories as they write (a message's tokens count
for its conversation's agent); they are not part of an agent's declaration
and an upsert keeps them. The tools an agent may call are rows of ``agent_tools``; the modules it
runs, in order, rows of ``agent_modules`` (an agent with none runs every active module).
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Table, delete, insert, select

from agentkeep.db.tables import agent_modules, agent_tools, agents, modules, personas, tools
from agentkeep.db.types import utcnow
from agentkeep.errors import NotFoundError, ValidationError
from agentkeep.models.common import IdLike, Model, Page, optional_uuid, to_uuid
from agentkeep.models.config import Agent, AgentCreate, AgentUpdate, Module, Tool
from agentkeep.repositories.base import (
    ModeT,
    Repository,
    dialect_insert,
    load_all,
    operation,
    require,
)
from agentkeep.repositories.keyset import in_order
from agentkeep.repositories.named import NamedRepository

Modules = list[Module]
Names = dict[uuid.UUID, list[str]]


class AgentRepository(NamedRepository[ModeT, Agent, AgentCreate, AgentUpdate]):
    """SQL for the ``agents``, ``agent_tools`` and ``agent_modules`` tables."""

    _table = agents
    _item = Agent
    _create = AgentCreate
    _update = AgentUpdate
    _noun = "agent"
    _references = (("persona_id", personas),)
    _documents = ("model_settings", "metadata")
    _texts = ("description",)

    @operation("read", single=True)
    def list(
        self,
        *,
        persona_id: IdLike | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Agent]:
        """Agents ordered by name, optionally only those of one persona; keyset pages."""
        conditions: builtins.list[Any] = []
        pid = optional_uuid(persona_id, "persona_id")
        if pid is not None:
            conditions.append(agents.c.persona_id == pid)
        return self._page(limit, cursor, conditions)

    @operation("write")
    def attach_tool(self, agent_id: IdLike, tool_id: IdLike) -> bool:
        """Let the agent use the tool. ``False`` if it already could (attaching is idempotent).

        Raises:
            NotFoundError: the agent or the tool does not exist (``field`` names which).
        """
        aid = to_uuid(agent_id, "agent_id")
        tid = to_uuid(tool_id, "tool_id")
        link = dialect_insert(self.dialect, agent_tools).values(
            agent_id=aid, tool_id=tid, created_at=utcnow()
        )
        conn = self.conn
        require(conn, agents, aid, "agent_id")
        require(conn, tools, tid, "tool_id")
        # RETURNING, not rowcount: SQLAlchemy does not keep an INSERT's rowcount on psycopg
        added = conn.execute(link.on_conflict_do_nothing().returning(agent_tools.c.tool_id))
        if added.first() is None:
            return False
        self.uow.changed("agent_tools", aid)
        return True

    @operation("write")  # with the change log's entry: a transaction
    def detach_tool(self, agent_id: IdLike, tool_id: IdLike) -> bool:
        """Stop the agent using the tool. ``False`` if it was not attached."""
        aid = to_uuid(agent_id, "agent_id")
        tid = to_uuid(tool_id, "tool_id")
        conn = self.conn
        result = conn.execute(
            delete(agent_tools).where(agent_tools.c.agent_id == aid, agent_tools.c.tool_id == tid)
        )
        if result.rowcount == 0:
            return False
        self.uow.changed("agent_tools", aid)
        return True

    @operation("read", single=True)
    def list_tools(
        self, agent_id: IdLike, *, limit: int | None = None, cursor: str | None = None
    ) -> Page[Tool]:
        """The tools the agent may use, ordered by name: a page of ``limit`` (all when
        ``None``); pass ``next_cursor`` back as ``cursor`` for the next one.

        Raises:
            NotFoundError: there is no such agent.
        """
        key = to_uuid(agent_id, "agent_id")
        return linked(self, tools, Tool, agents, key, limit=limit, cursor=cursor)

    @operation("write")
    def set_modules(self, agent_id: IdLike, module_ids: Sequence[IdLike]) -> Modules:
        """Make ``module_ids``, in this order, the modules the agent runs (none: every active
        module); returns them.

        Raises:
            NotFoundError: the agent or a module does not exist (``field`` names which).
            ValidationError: a module is listed twice, or an id is malformed.
        """
        aid = to_uuid(agent_id, "agent_id")
        keys = [to_uuid(module_id, "module_ids") for module_id in module_ids]
        if len(set(keys)) != len(keys):
            raise ValidationError("a module is listed twice", field="module_ids")
        conn = self.conn
        require(conn, agents, aid, "agent_id")
        if keys:  # one query for all of them, not one per module
            known = set(conn.scalars(select(modules.c.id).where(modules.c.id.in_(keys))))
            missing = next((key for key in keys if key not in known), None)
            if missing is not None:
                raise NotFoundError(f"module {missing} not found", field="module_ids")
        conn.execute(delete(agent_modules).where(agent_modules.c.agent_id == aid))
        if keys:
            now = utcnow()
            conn.execute(
                insert(agent_modules),
                [
                    {"agent_id": aid, "module_id": key, "position": i, "created_at": now}
                    for i, key in enumerate(keys)
                ],
            )
        self.uow.changed("agent_modules", aid)
        return self._modules(aid)

    @operation("read", single=True)
    def list_modules(self, agent_id: IdLike) -> Modules:
        """The modules the agent runs, in the order set (empty: it runs every active module).

        Raises:
            NotFoundError: there is no such agent.
        """
        aid = to_uuid(agent_id, "agent_id")
        found = self._modules(aid)
        if not found:
            require(self.conn, agents, aid, "agent_id")
        return found

    @operation("read", single=True)
    def modules_of_each(self, agent_ids: Sequence[IdLike]) -> Names:
        """For each agent, the names of the modules it runs, in order (one query)."""
        keys = [to_uuid(agent_id, "agent_ids") for agent_id in agent_ids]
        named: Names = {key: [] for key in keys}
        if not keys:
            return named
        rows = self.conn.execute(
            select(agent_modules.c.agent_id, modules.c.name)
            .join(modules, modules.c.id == agent_modules.c.module_id)
            .where(agent_modules.c.agent_id.in_(keys))
            .order_by(agent_modules.c.agent_id, agent_modules.c.position)
        ).all()
        for agent_id, name in rows:
            named[agent_id].append(name)
        return named

    def _modules(self, aid: uuid.UUID) -> Modules:
        rows = self.conn.execute(
            select(modules)
            .join(agent_modules, agent_modules.c.module_id == modules.c.id)
            .where(agent_modules.c.agent_id == aid)
            .order_by(agent_modules.c.position)
        ).all()
        return load_all(Module, rows)


M = TypeVar("M", bound=Model)


def linked(
    repository: Repository[Any],
    items: Table,
    model: type[M],
    owner: Table,
    owner_id: uuid.UUID,
    *,
    limit: int | None,
    cursor: str | None,
) -> Page[M]:
    """A page of the ``items`` (tools or agents) linked to one ``owner`` row through
    ``agent_tools``, by name; ``NotFoundError`` if the owner does not exist."""
    item_key, owner_key = (agent_tools.c[_link_column(t)] for t in (items, owner))
    query = select(items).join(agent_tools, item_key == items.c.id).where(owner_key == owner_id)
    conn = repository.conn
    page = in_order(
        conn,
        query,
        [items.c.name],
        lambda rows: load_all(model, rows),
        limit=limit,
        cursor=cursor,
        max_page_size=repository.settings.max_page_size,
    )
    if not page.items:
        require(conn, owner, owner_id, _link_column(owner))
    return page


def _link_column(table: Table) -> str:
    return f"{table.name.removesuffix('s')}_id"  # agents -> agent_id, tools -> tool_id
