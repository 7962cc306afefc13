"""Personas: the character an agent or conversation speaks as."""

from __future__ import annotations

from typing import Any

from agentkeep.db.tables import personas
from agentkeep.models.common import Page
from agentkeep.models.config import Persona, PersonaCreate, PersonaUpdate
from agentkeep.repositories.base import ModeT, operation
from agentkeep.repositories.named import NamedRepository


class PersonaRepository(NamedRepository[ModeT, Persona, PersonaCreate, PersonaUpdate]):
    """SQL for the ``personas`` table.

    Deleting a persona leaves its agents and conversations without one (``persona_id`` becomes
    ``None``) and removes the conversation state kept for it.
    """

    _table = personas
    _item = Persona
    _create = PersonaCreate
    _update = PersonaUpdate
    _noun = "persona"
    _texts = ("description", "template", "first_message")

    @operation("read", single=True)
    def list(
        self, *, active: bool | None = None, limit: int = 50, cursor: str | None = None
    ) -> Page[Persona]:
        """Personas ordered by name, optionally only active (or inactive) ones; keyset pages."""
        conditions: list[Any] = []
        if active is not None:
            conditions.append(personas.c.is_active == active)
        return self._page(limit, cursor, conditions)
