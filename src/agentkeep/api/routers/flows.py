"""``/api/v1/conversations/…``: a chat bot's conversation workflow over HTTP, its lifecycle.

Find a conversation from a platform message or a reply to one, complete, resume and abandon
conversations, read the context an agent resumes from, and purge old ones. The structured data
an agent collects and the questions it asks are in ``flow_data``. Every write here is one unit of
work: it is stored whole or, refused, not at all.

These routes are registered before ``conversations``' own, so ``/conversations/by-reply`` is not
read as a conversation id.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query

from agentkeep.api.auth import require_admin
from agentkeep.api.deps import API_PREFIX, Db, example
from agentkeep.api.errors import responses
from agentkeep.api.flow_schemas import (
    Abandoned,
    AbandonIdle,
    ContextPage,
    ConversationComplete,
    Purge,
    Purged,
)
from agentkeep.errors import NotFoundError, ValidationError
from agentkeep.models.common import INT32_MAX
from agentkeep.models.conversation import Conversation
from agentkeep.models.conversation_flow import ConversationContext
from agentkeep.repositories.facade import Unit


def router_for() -> APIRouter:
    """A router for the conversation workflow's routes (here and in ``flow_data``)."""
    return APIRouter(prefix=f"{API_PREFIX}/conversations", tags=["conversation workflows"])


router = router_for()

ConversationId = Annotated[uuid.UUID, Path(description="the conversation's id")]
PlatformQuery = Annotated[str, Query(min_length=1, max_length=255)]
ChatQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=255,
        description="the chat (platform message ids are unique only per chat)",
    ),
]


def _findable(*values: str | None) -> bool:
    """Whether text can be stored, and so found: a NUL never is."""
    return not any(value is not None and "\x00" in value for value in values)


# -- finding a conversation ---------------------------------------------------------------------


@router.get(
    "/by-reply",
    response_model=Conversation,
    summary="The conversation holding the message a chat user replied to",
    responses=responses(404, 422),
)
async def find_by_reply(
    db: Db, reply_to_message_id: PlatformQuery, chat_id: ChatQuery = None
) -> Conversation:
    return await _by_platform_message(db, reply_to_message_id, chat_id, "reply_to_message_id")


@router.get(
    "/by-message",
    response_model=Conversation,
    summary="The conversation holding a chat platform's message",
    responses=responses(404, 422),
)
async def find_by_message(
    db: Db, message_id: PlatformQuery, chat_id: ChatQuery = None
) -> Conversation:
    return await _by_platform_message(db, message_id, chat_id, "message_id")


async def _by_platform_message(
    db: Db, message_id: str, chat_id: str | None, field: str
) -> Conversation:
    def find(uow: Unit) -> Conversation | None:
        if not _findable(message_id, chat_id):
            return None
        found = uow.messages.find_by_platform_id(message_id, chat_id=chat_id)
        return None if found is None else uow.conversations.get(found.conversation_id)

    conversation = await db.run(find, "read")
    if conversation is None:
        where = "" if chat_id is None else f" in chat {chat_id!r}"
        raise NotFoundError(f"no conversation has message {message_id!r}{where}", field=field)
    return conversation


# -- lifecycle across conversations -------------------------------------------------------------


@router.post(
    "/abandon-idle",
    response_model=Abandoned,
    summary="Mark abandoned every active conversation idle for at least idle_seconds",
    responses=responses(400, 422),
)
async def abandon_idle(
    db: Db,
    data: Annotated[AbandonIdle, Body(openapi_examples=example("a day", {"idle_seconds": 86400}))],
) -> Abandoned:
    ids = await db.abandon_idle_conversations(timedelta(seconds=data.idle_seconds))
    return Abandoned(abandoned=len(ids), conversation_ids=ids)


@router.post(
    "/purge",
    response_model=Purged,
    summary="Delete the conversations of a status not updated for a while, with all they own "
    "(an admin key, when keys are on)",
    responses=responses(400, 403, 422),
    dependencies=[Depends(require_admin)],
)
async def purge(
    db: Db,
    data: Annotated[
        Purge,
        Body(
            openapi_examples=example(
                "count completed conversations older than 30 days",
                {"status": "completed", "older_than_seconds": 2_592_000, "dry_run": True},
            )
        ),
    ],
) -> Purged:
    older_than = timedelta(seconds=data.older_than_seconds)
    if data.dry_run:
        count = await db.count_purgeable(data.status, older_than)
    else:
        count = await db.purge_conversations(data.status, older_than)
    return Purged(purged=count, dry_run=data.dry_run)


# -- one conversation's lifecycle ---------------------------------------------------------------


@router.post(
    "/{conversation_id}/complete",
    response_model=Conversation,
    summary="Complete a conversation with its external reference and, optionally, final data",
    responses=responses(400, 404, 409, 413, 422),
)
async def complete(
    db: Db,
    conversation_id: ConversationId,
    data: Annotated[
        ConversationComplete,
        Body(
            openapi_examples=example(
                "the spreadsheet row it went to",
                {"external_ref": 7, "complete_data": {"amount": 300, "account": "cash"}},
            )
        ),
    ],
) -> Conversation:
    return await db.run(
        lambda uow: uow.mark_conversation_complete(
            conversation_id, data.external_ref, data.complete_data
        )
    )


HistoryLimit = Annotated[int, Query(ge=1, description="how many messages of the thread")]
HistoryAfter = Annotated[
    int,
    Query(
        ge=0, le=INT32_MAX, description="the thread after this sequence number (0: from the first)"
    ),
]


@router.post(
    "/{conversation_id}/resume",
    response_model=ContextPage,
    summary="Make an abandoned conversation active again and return its context",
    responses=responses(404, 409, 422),
)
async def resume(
    db: Db, conversation_id: ConversationId, history_limit: HistoryLimit = 50
) -> ContextPage:
    def work(uow: Unit) -> ContextPage:
        _check_history_limit(uow, history_limit)
        found = uow.resume_conversation(
            conversation_id, history_limit=history_limit, history_after=0
        )
        return _page_of(found, history_limit)

    return await db.run(work)


@router.get(
    "/{conversation_id}/context",
    response_model=ContextPage,
    summary="What an agent resumes from: latest data, missing fields, thread, questions",
    responses=responses(404, 422),
)
async def context(
    db: Db,
    conversation_id: ConversationId,
    history_limit: HistoryLimit = 50,
    history_after: HistoryAfter = 0,
) -> ContextPage:
    return await db.run(
        lambda uow: _context(uow, conversation_id, history_limit, history_after), "read"
    )


def _check_history_limit(uow: Unit, limit: int) -> None:
    if limit > uow.settings.max_page_size:
        raise ValidationError(
            f"history_limit must be at most {uow.settings.max_page_size}", field="history_limit"
        )


def _context(uow: Unit, cid: uuid.UUID, limit: int, after: int) -> ContextPage:
    _check_history_limit(uow, limit)
    found = uow.get_conversation_context(cid, history_limit=limit, history_after=after)
    return _page_of(found, limit)


def _page_of(found: ConversationContext, limit: int) -> ContextPage:
    history = found.message_history
    more = len(history) == limit
    return ContextPage(**dict(found), history_next_after=history[-1].seq if more else None)
