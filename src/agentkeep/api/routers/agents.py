"""``/api/v1/agents``: agents, the tools each may call and the modules each runs."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status
from pydantic import Field

from agentkeep.api.deps import API_PREFIX, Cursor, Db, Limit
from agentkeep.api.errors import responses
from agentkeep.api.routers.named import Resource, add_crud_routes
from agentkeep.errors import NotFoundError, ValidationError
from agentkeep.models.common import Input, Name, Page
from agentkeep.models.config import Agent, AgentCreate, AgentUpdate, Module, Tool
from agentkeep.repositories.facade import Unit

router = APIRouter(prefix=f"{API_PREFIX}/agents", tags=["agents"])


@router.get("", response_model=Page[Agent], summary="List agents", responses=responses(404, 422))
async def list_agents(
    db: Db, persona_id: uuid.UUID | None = None, limit: Limit = 50, cursor: Cursor = None
) -> Page[Agent]:
    return await db.agents.list(persona_id=persona_id, limit=limit, cursor=cursor)


add_crud_routes(
    router,
    Resource(
        noun="agent",
        repository=lambda db: db.agents,
        item=Agent,
        create=AgentCreate,
        update=AgentUpdate,
        example={
            "name": "support-bot",
            "description": "Answers customers' questions",
            "provider": "echo",
            "model": "echo-1",
            "model_settings": {"temperature": 0.2},
            "include_history": True,
        },
    ),
)


@router.get(
    "/{agent_id}/tools",
    response_model=Page[Tool],
    summary="The tools an agent may call, by name",
    responses=responses(404, 422),
)
async def list_agent_tools(
    db: Db, agent_id: uuid.UUID, limit: Limit = 50, cursor: Cursor = None
) -> Page[Tool]:
    return await db.agents.list_tools(agent_id, limit=limit, cursor=cursor)


@router.get(
    "/{agent_id}/tools/{tool_id}",
    response_model=Tool,
    summary="One tool the agent may call (404 if it is not attached)",
    responses=responses(404, 422),
)
async def get_agent_tool(db: Db, agent_id: uuid.UUID, tool_id: uuid.UUID) -> Tool:
    for tool in (await db.agents.list_tools(agent_id)).items:
        if tool.id == tool_id:
            return tool
    raise NotFoundError(f"tool {tool_id} is not attached to agent {agent_id}", field="tool_id")


@router.post(
    "/{agent_id}/tools/{tool_id}",
    response_model=Tool,
    summary="Let the agent call the tool (201; 200 if it already could)",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": Tool, "description": "Already attached"}, **responses(404, 422)},
)
async def attach_tool(db: Db, agent_id: uuid.UUID, tool_id: uuid.UUID, response: Response) -> Tool:
    attached = await db.agents.attach_tool(agent_id, tool_id)
    if not attached:
        response.status_code = status.HTTP_200_OK
    return await db.tools.get(tool_id)


@router.delete(
    "/{agent_id}/tools/{tool_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Stop the agent calling the tool",
    responses=responses(404, 422),
)
async def detach_tool(db: Db, agent_id: uuid.UUID, tool_id: uuid.UUID) -> Response:
    detached = await db.agents.detach_tool(agent_id, tool_id)
    if not detached:
        raise NotFoundError(f"tool {tool_id} is not attached to agent {agent_id}", field="tool_id")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


class AgentModules(Input):
    """The modules an agent runs, in order: ids or names (none: every active module)."""

    modules: list[Name] = Field(max_length=1000)


@router.get(
    "/{agent_id}/modules",
    response_model=list[Module],
    summary="The modules an agent runs, in order (none: it runs every active module)",
    responses=responses(404, 422),
)
async def list_agent_modules(db: Db, agent_id: uuid.UUID) -> list[Module]:
    return await db.agents.list_modules(agent_id)


@router.put(
    "/{agent_id}/modules",
    response_model=list[Module],
    summary="Set the modules an agent runs, in order, by id or name (empty: every active one)",
    responses=responses(400, 404, 422),
)
async def set_agent_modules(db: Db, agent_id: uuid.UUID, body: AgentModules) -> list[Module]:
    def set_them(uow: Unit) -> list[Module]:  # names resolved and links set in one unit
        ids: list[uuid.UUID] = []
        for position, ref in enumerate(body.modules):
            at = f"modules[{position}]"  # what the body sent, not the store's module_ids
            found = _module(uow, ref, at)
            if found in ids:
                raise ValidationError(f"{ref!r} is listed twice", field=at)
            ids.append(found)
        return uow.agents.set_modules(agent_id, ids)

    return await db.run(set_them)


def _module(uow: Unit, ref: str, at: str) -> uuid.UUID:
    """The id of the module ``ref`` names (its id or its name), else a 404 naming ``at``."""
    try:
        key = uuid.UUID(ref)
    except ValueError:  # a name
        found = uow.modules.find_by_name(ref)
        if found is None:
            raise NotFoundError(f"there is no module named {ref!r}", field=at) from None
        return found.id
    if uow.modules.find(key) is None:
        raise NotFoundError(f"there is no module with id {ref}", field=at)
    return key
