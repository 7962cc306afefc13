"""Personas, Modules and Workflows: what agents are configured with, beside Agents and Tools.

Each has a list page with a form to add one (``/personas``) and a page to edit or delete one
(``/personas/{id}``), built as the Agents pages are: the loaders read through the store facade,
and every change is made by the page's script through the JSON API (``/api/v1/personas`` …), so
the API's rules and errors apply unchanged. The form fields of each are one macro in
``templates/partials/config.html``, shared by its create and edit forms.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from typing import Annotated, Any

from fastapi import Query, Request

from agentkeep.models.config import Agent
from agentkeep.models.enums import ExecutionContext
from agentkeep.web.site import Context, page, store

PAGE_SIZE = 100

CONTEXTS: list[tuple[str, str]] = [
    (ExecutionContext.IMMEDIATE.value, "Immediate: adds to the prompt before the reply"),
    (ExecutionContext.POST_RESPONSE.value, "Post-response: runs after the reply is stored"),
    (ExecutionContext.ON_DEMAND.value, "On demand: not run by a chat turn; for your application"),
]
"""A module's execution contexts, with what each means, for its form."""


@page("/personas", "personas.html", nav="Personas", order=50)
async def personas_page(request: Request, cursor: Annotated[str | None, Query()] = None) -> Context:
    db = store(request)
    personas = await db.personas.list(limit=PAGE_SIZE, cursor=cursor)
    agents = (await db.agents.list(limit=db.settings.max_page_size)).items
    speaking: defaultdict[uuid.UUID, list[Agent]] = defaultdict(list)
    for agent in agents:
        if agent.persona_id is not None:
            speaking[agent.persona_id].append(agent)
    return {
        "title": "Personas",
        "personas": [(p, speaking[p.id]) for p in personas.items],
        "next_cursor": personas.next_cursor,
    }


@page("/personas/{persona_id}", "persona.html", section="Personas")
async def persona_page(request: Request, persona_id: uuid.UUID) -> Context:
    db = store(request)
    persona = await db.personas.get(persona_id)
    agents = await db.agents.list(persona_id=persona.id, limit=db.settings.max_page_size)
    return {"title": persona.name, "persona": persona, "agents": agents.items}


@page("/modules", "modules.html", nav="Modules", order=60)
async def modules_page(request: Request, cursor: Annotated[str | None, Query()] = None) -> Context:
    modules = await store(request).modules.list(limit=PAGE_SIZE, cursor=cursor)
    return {
        "title": "Modules",
        "modules": modules.items,
        "next_cursor": modules.next_cursor,
        "contexts": CONTEXTS,
    }


@page("/modules/{module_id}", "module.html", section="Modules")
async def module_page(request: Request, module_id: uuid.UUID) -> Context:
    module = await store(request).modules.get(module_id)
    return {"title": module.name, "module": module, "contexts": CONTEXTS}


@page("/workflows", "workflows.html", nav="Workflows", order=70)
async def workflows_page(
    request: Request, cursor: Annotated[str | None, Query()] = None
) -> Context:
    workflows = await store(request).workflows.list(limit=PAGE_SIZE, cursor=cursor)
    return {
        "title": "Workflows",
        "workflows": [(w, [step_label(s) for s in w.steps]) for w in workflows.items],
        "next_cursor": workflows.next_cursor,
    }


@page("/workflows/{workflow_id}", "workflow.html", section="Workflows")
async def workflow_page(request: Request, workflow_id: uuid.UUID) -> Context:
    db = store(request)
    workflow = await db.workflows.get(workflow_id)
    steps: list[tuple[str, Agent | None]] = []
    for step in workflow.steps:
        label = step_label(step)
        steps.append((label, await db.agents.find_by_name(label)))
    return {"title": workflow.name, "workflow": workflow, "steps": steps}


def step_label(step: Any) -> str:
    """A workflow step in a few words: an agent's name as it is, a step object by the agent or
    name it gives, anything else as compact JSON."""
    if isinstance(step, str):
        return step
    if isinstance(step, dict):
        for key in ("agent", "name"):
            if isinstance(step.get(key), str):
                return str(step[key])
    return json.dumps(step, ensure_ascii=False, separators=(", ", ": "))
