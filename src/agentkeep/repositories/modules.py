"""Modules: units of persona behaviour run at a stage of a turn.

A module runs in one execution context (``IMMEDIATE``, ``POST_RESPONSE`` or ``ON_DEMAND``); within
a context, modules run in ``stage_priority`` order (lower first). ``trigger_pattern`` is a regular
expression in Python's ``re`` syntax, compiled by the ``regex`` engine when the module is declared
(one it cannot compile is refused, naming ``trigger_pattern``). Stored as text: at a turn it is
searched for off the event loop with a time limit, and a module whose trigger times out is left
out of that turn and named in the reply's ``metadata.warnings`` (see ``managers.prompt``).
"""

from __future__ import annotations

import builtins
from typing import Any

from sqlalchemy import select

from agentkeep.db.tables import modules
from agentkeep.models.common import Page, to_enum
from agentkeep.models.config import Module, ModuleCreate, ModuleUpdate
from agentkeep.models.enums import ExecutionContext
from agentkeep.repositories.base import ModeT, load_all, operation
from agentkeep.repositories.named import NamedRepository


class ModuleRepository(NamedRepository[ModeT, Module, ModuleCreate, ModuleUpdate]):
    """SQL for the ``modules`` table."""

    _table = modules
    _item = Module
    _create = ModuleCreate
    _update = ModuleUpdate
    _noun = "module"
    _texts = ("description", "content", "script")

    @operation("read", single=True)
    def list(
        self,
        *,
        execution_context: ExecutionContext | str | None = None,
        type: str | None = None,
        active: bool | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[Module]:
        """Modules ordered by name, filtered; keyset pages."""
        conditions: builtins.list[Any] = []
        if execution_context is not None:
            conditions.append(
                modules.c.execution_context
                == to_enum(ExecutionContext, execution_context, "execution_context")
            )
        if type is not None:
            conditions.append(modules.c.type == type)
        if active is not None:
            conditions.append(modules.c.is_active == active)
        return self._page(limit, cursor, conditions)

    @operation("read", single=True)
    def for_context(self, execution_context: ExecutionContext | str) -> builtins.list[Module]:
        """The active modules of one execution context, in the order they run.

        Ordered by ``stage_priority`` (lower first), then by name.
        """
        query = (
            select(modules)
            .where(
                modules.c.execution_context
                == to_enum(ExecutionContext, execution_context, "execution_context"),
                modules.c.is_active.is_(True),
            )
            .order_by(modules.c.stage_priority, modules.c.name)
        )
        conn = self.conn
        rows = conn.execute(query).all()
        return load_all(Module, rows)
