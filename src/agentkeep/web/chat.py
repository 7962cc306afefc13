"""The Chat pages: pick an agent, then talk to it.

``/chat/{agent_id}`` lists the agent's conversations and shows the chosen one's newest messages,
rendered here; the page's script streams new turns from ``POST /api/v1/streaming/start|send``
and, when the reader scrolls up, fetches older messages from ``/conversations/{id}/history``
(keyset by sequence number, the same rendering as the first page).

A reply and the ``tool`` messages that answer its tool calls are stored as separate messages;
they are shown as one bubble, the results under the calls, as they appeared while streaming. A
reply that was given memories shows them under it ("Remembered"), from its metadata here and from
``message_end`` while it streams.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Query, Request, Response
from fastapi.responses import RedirectResponse

from agentkeep.models.common import INT32_MAX
from agentkeep.models.conversation import Message, ToolCallRecord
from agentkeep.models.enums import Role
from agentkeep.web.site import Context, page, store

HISTORY_PAGE = 30
CONVERSATIONS_SHOWN = 50


@dataclass
class Bubble:
    """A message as the chat shows it; a reply carries the results of its tool calls."""

    message: Message
    results: dict[str, Message] = field(default_factory=dict)

    @property
    def calls(self) -> list[ToolCallRecord]:
        """The calls to show (one an older release stored in another shape is left out)."""
        return [c for c in self.message.tool_calls or [] if isinstance(c, ToolCallRecord)]

    @property
    def remembered(self) -> list[tuple[str, str]]:
        """The memories the reply was given (text, score to two places), from its metadata;
        an entry of another shape (metadata is anyone's to write) is left out."""
        listed = self.message.metadata.get("memories")
        shown: list[tuple[str, str]] = []
        for item in listed if isinstance(listed, list) else []:
            if not isinstance(item, dict):
                continue
            content, score = item.get("content"), item.get("score")
            if isinstance(content, str) and isinstance(score, int | float):
                shown.append((content, f"{score:.2f}"))
        return shown


def bubbles(messages: list[Message]) -> list[Bubble]:
    """Messages (oldest first) as bubbles: each tool result joins the reply that asked for it."""
    shown: list[Bubble] = []
    asked: dict[str, Bubble] = {}
    for message in messages:
        call_id = message.metadata.get("tool_call_id")
        if message.role == Role.TOOL and isinstance(call_id, str) and call_id in asked:
            asked[call_id].results[call_id] = message
            continue
        bubble = Bubble(message)
        shown.append(bubble)
        asked.update({str(call.id): bubble for call in bubble.calls})
    return shown


def history(messages: list[Message]) -> Context:
    first = messages[0].seq if messages else None
    return {
        "bubbles": bubbles(messages),
        "before": first,
        "more": first is not None and first > 1,
    }


@page("/chat", "chat_index.html", nav="Chat", order=30)
async def chat_index(request: Request) -> Context:
    agents = await store(request).agents.list(limit=store(request).settings.max_page_size)
    return {"title": "Chat", "agents": agents.items}


@page("/chat/{agent_id}", "chat.html", section="Chat")
async def chat_page(
    request: Request,
    agent_id: uuid.UUID,
    conversation: uuid.UUID | None = None,
) -> Context | Response:
    db = store(request)
    agent = await db.agents.get(agent_id)
    chosen, messages = None, []
    if conversation is not None:
        chosen = await db.conversations.get(conversation)
        if chosen.agent_id != agent.id:  # it belongs to another agent: show it there
            if chosen.agent_id is None:
                return RedirectResponse(f"/conversations/{chosen.id}", status_code=303)
            target = f"/chat/{chosen.agent_id}?conversation={chosen.id}"
            return RedirectResponse(target, status_code=303)
        messages = (await db.messages.list(chosen.id, limit=HISTORY_PAGE)).items
    conversations = await db.conversations.list(agent_id=agent.id, limit=CONVERSATIONS_SHOWN)
    return {
        "title": f"Chat with {agent.name}",
        "agent": agent,
        "conversation": chosen,
        "conversations": conversations.items,
        **history(messages),
    }


@page("/conversations/{conversation_id}/history", "partials/history.html", section="Chat")
async def older_messages(
    request: Request,
    conversation_id: uuid.UUID,
    before: Annotated[int, Query(ge=1, le=INT32_MAX)],
) -> Context:
    """The page of messages before sequence number ``before`` (an HTML fragment)."""
    db = store(request)
    page_ = await db.messages.list(conversation_id, limit=HISTORY_PAGE, before=before)
    if not page_.items:  # only an empty page can hide a conversation that does not exist
        await db.conversations.get(conversation_id)
    return history(page_.items)
