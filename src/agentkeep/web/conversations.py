"""The Conversations page, and the chat-bot workflow's panels on the Conversation page.

``/conversations`` lists every conversation, with an agent or without (a chat bot's), most
recently active first, filtered by user, chat and status; with words to look for it lists the
conversations whose messages contain them all (the store's full-text message search), each with
the messages that matched.

The panels show what a chat bot keeps beside the messages: its data snapshots in the order they
were stored, the questions its agents asked with when each was asked and answered, the user's
session in the chat, and the controls that complete, resume or abandon the conversation. Those
controls call the JSON API (``/complete``, ``/resume``, a status ``PATCH``), so a refused change
of status comes back as the API's 409 and is shown next to the control that asked for it.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Query, Request

from agentkeep.models.common import to_enum
from agentkeep.models.conversation import Conversation, Message
from agentkeep.models.enums import ConversationStatus
from agentkeep.repositories.facade import Unit
from agentkeep.web.panels import conversation_panel
from agentkeep.web.site import Context, page, store

PAGE_SIZE = 50
MATCHES_SHOWN = 3
"""Matching messages shown under each conversation found by a search."""

Filter = Annotated[str | None, Query(max_length=200)]


@page("/conversations", "conversations.html", nav="Conversations", order=35)
async def conversations_page(
    request: Request,
    user_id: Filter = None,
    chat_id: Filter = None,
    status: Filter = None,
    q: Annotated[str | None, Query(max_length=500)] = None,
    cursor: Filter = None,
) -> Context:
    db = store(request)
    user_id, chat_id, q, chosen = (_given(value) for value in (user_id, chat_id, q, status))
    wanted = None if chosen is None else to_enum(ConversationStatus, chosen, "status")
    matches: dict[uuid.UUID, list[Message]] = {}
    next_cursor = None
    if q is None:
        found = await db.conversations.list(
            user_id=user_id, chat_id=chat_id, status=wanted, limit=PAGE_SIZE, cursor=cursor
        )
        listed, next_cursor = found.items, found.next_cursor
    else:
        listed, matches = await _search(request, q, user_id, chat_id, wanted)
    ids = {c.agent_id for c in listed if c.agent_id is not None}
    agents = {i: await db.agents.find(i) for i in ids}
    return {
        "title": "Conversations",
        "conversations": listed,
        "matches": matches,
        "agent_names": {i: a.name for i, a in agents.items() if a is not None},
        "filters": {"user_id": user_id, "chat_id": chat_id, "status": wanted, "q": q},
        "statuses": [s.value for s in ConversationStatus],
        "next_page": None if next_cursor is None else _next_page(request, next_cursor),
    }


def _next_page(request: Request, cursor: str) -> str:
    """This page's address with its filters and the next page's cursor."""
    kept = {k: v for k, v in request.query_params.items() if k != "cursor" and v.strip()}
    return f"/conversations?{urlencode({**kept, 'cursor': cursor})}"


async def _search(
    request: Request,
    text: str,
    user_id: str | None,
    chat_id: str | None,
    status: ConversationStatus | None,
) -> tuple[list[Conversation], dict[uuid.UUID, list[Message]]]:
    """The conversations whose messages contain every word of ``text``, best match first, with
    the messages that matched (from the store's most relevant page of messages), read in one
    unit of work."""

    def search(uow: Unit) -> tuple[list[Conversation], dict[uuid.UUID, list[Message]]]:
        found = uow.messages.search(
            text, user_id=user_id, chat_id=chat_id, limit=uow.settings.max_page_size
        )
        matches: defaultdict[uuid.UUID, list[Message]] = defaultdict(list)
        for message in found:
            if len(matches[message.conversation_id]) < MATCHES_SHOWN:
                matches[message.conversation_id].append(message)
        listed: list[Conversation] = []
        for cid in list(matches)[:PAGE_SIZE]:
            conversation = uow.conversations.find(cid)
            if conversation is not None and status in (None, conversation.status):
                listed.append(conversation)
        return listed, {c.id: matches[c.id] for c in listed}

    return await store(request).run(search, "read")


def _given(value: str | None) -> str | None:
    """A filter left empty in the form means no filter."""
    return value.strip() or None if value is not None else None


# -- the workflow panels of the Conversation page ----------------------------------------------


@conversation_panel("data", "Data", "panels/data.html")
async def data_panel(request: Request, conversation: Conversation) -> Context:
    """The data snapshots, oldest first (the newest page of them, when there are many)."""
    db = store(request)
    found = await db.conversation_data.list(conversation.id, limit=db.settings.max_page_size)
    return {"snapshots": list(reversed(found.items)), "more": found.next_cursor is not None}


@conversation_panel("questions", "Questions", "panels/questions.html")
async def questions_panel(request: Request, conversation: Conversation) -> Context:
    """The questions, in the order they were asked, with their answers."""
    db = store(request)
    found = await db.questions.list(conversation.id, limit=db.settings.max_page_size)
    return {"questions": list(reversed(found.items)), "more": found.next_cursor is not None}


@conversation_panel("workflow", "Workflow", "panels/workflow.html", side=True)
async def workflow_panel(request: Request, conversation: Conversation) -> Context:
    """The controls that complete, resume or abandon the conversation."""
    return {}


@conversation_panel("session", "User session", "panels/session.html", side=True)
async def session_panel(request: Request, conversation: Conversation) -> Context:
    """The user's session in the conversation's chat, when it has a user and a chat."""
    if conversation.user_id is None or conversation.chat_id is None:
        return {"session": None, "applies": False}
    found = await store(request).user_sessions.find(conversation.user_id, conversation.chat_id)
    return {"session": found, "applies": True}
