"""``/api/v1/personas``: who an agent is: a prompt template and a first message."""

from __future__ import annotations

from fastapi import APIRouter, Query

from agentkeep.api.deps import API_PREFIX, Cursor, Db, Limit
from agentkeep.api.errors import responses
from agentkeep.api.routers.named import Resource, add_crud_routes
from agentkeep.models.common import Page
from agentkeep.models.config import Persona, PersonaCreate, PersonaUpdate

router = APIRouter(prefix=f"{API_PREFIX}/personas", tags=["personas"])


@router.get("", response_model=Page[Persona], summary="List personas", responses=responses(422))
async def list_personas(
    db: Db,
    active: bool | None = Query(None, description="only active (true) or inactive (false) ones"),
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[Persona]:
    return await db.personas.list(active=active, limit=limit, cursor=cursor)


add_crud_routes(
    router,
    Resource(
        noun="persona",
        repository=lambda db: db.personas,
        item=Persona,
        create=PersonaCreate,
        update=PersonaUpdate,
        example={
            "name": "support",
            "description": "A patient support agent",
            "template": "You are a patient support agent for {product}.",
            "first_message": "Hi! How can I help?",
        },
    ),
)
