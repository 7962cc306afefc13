"""Home, Agents and Tools, and the sign-in form.

Each page reads through the store facade, as the API's routers do; every change a page offers is
made by its script through the JSON API (see ``static/app.js``), so the API's rules and errors
apply unchanged.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import Query, Request, Response
from fastapi.responses import RedirectResponse

from agentkeep.models.config import Agent, Tool
from agentkeep.models.enums import ExecutionContext
from agentkeep.web.access import (
    SignInRequiredError,
    check_key,
    forget,
    from_this_site,
    page_token,
    remember,
    safe_next,
)
from agentkeep.web.memory import embedder_line
from agentkeep.web.site import Context, error_page, page, render, router, store

RECENT_CONVERSATIONS = 10
PAGE_SIZE = 100
HISTORY_SETTINGS = ("history_messages", "history_tokens", "history_scope")
"""``model_settings`` keys the agent form edits as fields of their own."""
FOREIGN_FORM = "This form was sent from another site; use this server's own page."


@page("/", "home.html", nav="Home", order=10)
async def home(request: Request) -> Context:
    db = store(request)
    stats = await db.stats()
    health = await db.health()
    recent = (await db.conversations.list(limit=RECENT_CONVERSATIONS)).items
    names = await _agent_names(request, {c.agent_id for c in recent if c.agent_id})
    settings = db.settings
    return {
        "title": "Home",
        "stats": stats,
        "health": health,
        "recent": recent,
        "agent_names": names,
        "provider": settings.provider,
        "openai_model": settings.openai_model,
        "openai_base_url": settings.openai_base_url,
        "memory_notice": settings.memory_notice,
        "embedder": embedder_line(db),
    }


@page("/agents", "agents.html", nav="Agents", order=20)
async def agents_page(request: Request, cursor: Annotated[str | None, Query()] = None) -> Context:
    db = store(request)
    agents = await db.agents.list(limit=PAGE_SIZE, cursor=cursor)
    return {
        "title": "Agents",
        "agents": agents.items,
        "next_cursor": agents.next_cursor,
        "default_provider": db.settings.provider,
        "openai_model": db.settings.openai_model,
    }


@page("/agents/{agent_id}", "agent.html", section="Agents")
async def agent_page(request: Request, agent_id: uuid.UUID) -> Context:
    db = store(request)
    agent = await db.agents.get(agent_id)
    attached = (await db.agents.list_tools(agent.id)).items
    tools = (await db.tools.list(limit=db.settings.max_page_size)).items
    personas = (await db.personas.list(limit=db.settings.max_page_size)).items
    modules = {
        context.value: await db.modules.for_context(context)
        for context in (ExecutionContext.IMMEDIATE, ExecutionContext.POST_RESPONSE)
    }
    settings = agent.model_settings
    return {
        "title": agent.name,
        "agent": agent,
        "attached": attached,
        "attachable": [t for t in tools if t.id not in {a.id for a in attached}],
        "personas": personas,
        "modules": modules,
        "history": {key: settings.get(key) for key in HISTORY_SETTINGS},
        "other_settings": {k: v for k, v in settings.items() if k not in HISTORY_SETTINGS},
        "default_provider": db.settings.provider,
    }


@page("/tools", "tools.html", nav="Tools", order=40)
async def tools_page(request: Request, cursor: Annotated[str | None, Query()] = None) -> Context:
    db = store(request)
    tools = await db.tools.list(limit=PAGE_SIZE, cursor=cursor)
    agents = (await db.agents.list(limit=db.settings.max_page_size)).items
    using = await db.tools.agents_using_each([tool.id for tool in tools.items])
    users: list[tuple[Tool, list[Agent], list[Agent]]] = []
    for tool in tools.items:
        ids = {a.id for a in using[tool.id]}
        users.append((tool, using[tool.id], [a for a in agents if a.id not in ids]))
    return {"title": "Tools", "tools": users, "next_cursor": tools.next_cursor}


@page("/login", "login.html", public=True)
async def login_form(request: Request, next: str | None = None) -> Context | Response:
    try:
        await page_token(request)
    except SignInRequiredError:  # not signed in, or the key stopped working
        return {"title": "Sign in", "next": safe_next(next), "error": None}
    return RedirectResponse(safe_next(next), status_code=303)


@router.post("/login")
async def login(request: Request) -> Response:
    if not from_this_site(request):  # no other site signs a visitor in with its own key
        return error_page(request, 403, FOREIGN_FORM)
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    key = (form.get("api_key") or [""])[0].strip()
    target = safe_next((form.get("next") or ["/"])[0])
    if not await check_key(request, key):
        error = "Enter an API key." if not key else "This API key is not valid."
        context = {"title": "Sign in", "next": target, "error": error}
        return render(request, "login.html", context, status_code=401)
    response = RedirectResponse(target, status_code=303)
    remember(response, request, key)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    if not from_this_site(request):
        return error_page(request, 403, FOREIGN_FORM)
    response = RedirectResponse("/login", status_code=303)
    forget(response)
    return response


async def _agent_names(request: Request, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    db = store(request)
    found: dict[uuid.UUID, Any] = {i: await db.agents.find(i) for i in ids}
    return {i: agent.name for i, agent in found.items() if agent is not None}
