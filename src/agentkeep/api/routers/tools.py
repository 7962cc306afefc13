"""``/api/v1/tools``: what agents may call, with argument schemas and usage statistics."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from agentkeep.api.deps import API_PREFIX, Cursor, Db, Limit
from agentkeep.api.errors import responses
from agentkeep.api.routers.named import Resource, add_crud_routes
from agentkeep.models.common import Page
from agentkeep.models.config import Agent, Tool, ToolCreate, ToolUpdate

router = APIRouter(prefix=f"{API_PREFIX}/tools", tags=["tools"])


@router.get(
    "",
    response_model=Page[Tool],
    summary="List tools with their usage statistics",
    responses=responses(422),
)
async def list_tools(db: Db, limit: Limit = 50, cursor: Cursor = None) -> Page[Tool]:
    return await db.tools.list(limit=limit, cursor=cursor)


add_crud_routes(
    router,
    Resource(
        noun="tool",
        repository=lambda db: db.tools,
        item=Tool,
        create=ToolCreate,
        update=ToolUpdate,
        example={
            "name": "current_time",
            "description": "The current date and time in a time zone",
            "parameters": {
                "type": "object",
                "properties": {"timezone": {"type": "string", "example": "Europe/Paris"}},
            },
        },
    ),
)


@router.get(
    "/{tool_id}/agents",
    response_model=Page[Agent],
    summary="The agents that may call a tool, by name",
    responses=responses(404, 422),
)
async def list_tool_agents(
    db: Db, tool_id: uuid.UUID, limit: Limit = 50, cursor: Cursor = None
) -> Page[Agent]:
    return await db.tools.list_agents_using(tool_id, limit=limit, cursor=cursor)
