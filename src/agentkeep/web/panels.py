"""The Conversation page and its panels.

The page shows a conversation's header and then each panel of :data:`PANELS` in order. A panel
is a template under ``templates/panels/`` and a loader that reads what it shows; a later feature
(long-term memory, a chat bot's data snapshots and questions) adds its panel with one
:func:`conversation_panel` function, and nothing else changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request

from agentkeep.models.common import INT32_MAX
from agentkeep.models.conversation import Conversation
from agentkeep.models.enums import ConversationStatus
from agentkeep.web.site import UNTITLED, Context, page, store

PanelLoader = Callable[[Request, Conversation], Awaitable[Context]]

MESSAGES_PER_PAGE = 100


@dataclass(frozen=True, slots=True)
class Panel:
    key: str
    """The section's id on the page (``#key``)."""
    title: str
    template: str
    load: PanelLoader
    side: bool = False
    """Shown in the narrow column beside the main one (on wide screens)."""


PANELS: list[Panel] = []
"""The Conversation page's panels, in the order they are shown."""


def conversation_panel(
    key: str, title: str, template: str, *, side: bool = False
) -> Callable[[PanelLoader], PanelLoader]:
    """Add a panel to the Conversation page: ``template`` rendered with the loader's context
    (as ``data``), in the main column or, with ``side``, beside it."""

    def register(load: PanelLoader) -> PanelLoader:
        PANELS.append(Panel(key, title, template, load, side))
        return load

    return register


@page("/conversations/{conversation_id}", "conversation.html", section="Conversations")
async def conversation_page(request: Request, conversation_id: uuid.UUID) -> Context:
    db = store(request)
    conversation = await db.conversations.get(conversation_id)
    agent = None
    if conversation.agent_id is not None:
        agent = await db.agents.find(conversation.agent_id)
    shown = [(panel, await panel.load(request, conversation)) for panel in PANELS]
    return {
        "title": conversation.title or UNTITLED,
        "conversation": conversation,
        "agent": agent,
        "panels": shown,
    }


@conversation_panel("messages", "Messages", "panels/messages.html")
async def messages_panel(request: Request, conversation: Conversation) -> Context:
    before = _sequence(request.query_params.get("before"))
    page = await store(request).messages.list(
        conversation.id, limit=MESSAGES_PER_PAGE, before=before
    )
    first = page.items[0].seq if page.items else None
    return {
        "messages": page.items,
        "older": first if first is not None and first > 1 else None,
        "paged": before is not None,
    }


@conversation_panel("status", "Status", "panels/status.html", side=True)
async def status_panel(request: Request, conversation: Conversation) -> Context:
    return {"statuses": [status.value for status in ConversationStatus]}


@conversation_panel("state", "State", "panels/state.html", side=True)
async def state_panel(request: Request, conversation: Conversation) -> Context:
    """The conversation's state, each entry under the module or persona that keeps it (by name,
    linked to its page)."""
    db = store(request)
    states = (await db.states.list(conversation.id)).items
    modules = {m: await db.modules.find(m) for m in {s.module_id for s in states if s.module_id}}
    personas = {
        p: await db.personas.find(p) for p in {s.persona_id for s in states if s.persona_id}
    }
    return {
        "states": states,
        "modules": {key: m.name for key, m in modules.items() if m is not None},
        "personas": {key: p.name for key, p in personas.items() if p is not None},
    }


def _sequence(raw: str | None) -> int | None:
    """``?before=`` as a sequence number; anything else is ignored (the newest page)."""
    if raw is None or not raw.isdigit() or int(raw) > INT32_MAX:
        return None
    return int(raw)
