"""Workflows: named sequences of steps, declared in a project file or registered."""

from __future__ import annotations

from agentkeep.db.tables import workflows
from agentkeep.models.common import Page
from agentkeep.models.config import Workflow, WorkflowCreate, WorkflowUpdate
from agentkeep.repositories.base import ModeT, operation
from agentkeep.repositories.named import NamedRepository


class WorkflowRepository(NamedRepository[ModeT, Workflow, WorkflowCreate, WorkflowUpdate]):
    """SQL for the ``workflows`` table."""

    _table = workflows
    _item = Workflow
    _create = WorkflowCreate
    _update = WorkflowUpdate
    _noun = "workflow"
    _documents = ("steps", "config")
    _texts = ("description",)

    @operation("read", single=True)
    def list(self, *, limit: int = 50, cursor: str | None = None) -> Page[Workflow]:
        """Workflows ordered by name; keyset pages."""
        return self._page(limit, cursor, [])
