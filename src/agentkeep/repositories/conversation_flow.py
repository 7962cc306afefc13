"""Chat-bot conversation workflows across domains: resume a conversation with its full context,
find it from a reply, complete it, list a user's active ones, and purge old ones.

Each is a plain function over a unit of work; the store and every unit offer them as operations
(``db.find_conversation_by_reply(...)``, see ``repositories.facade``).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Delete, delete, select

from agentkeep.db.tables import conversations, messages
from agentkeep.db.types import utcnow
from agentkeep.errors import ValidationError
from agentkeep.models.common import IdLike, JSONObject, to_enum, to_uuid, validate_input
from agentkeep.models.conversation import Conversation, ConversationUpdate
from agentkeep.models.conversation_flow import AgentQuestion, ConversationContext
from agentkeep.models.enums import ConversationStatus, DataType, Role

if TYPE_CHECKING:
    from agentkeep.repositories.facade import Unit


def get_conversation_context(
    uow: Unit, conversation_id: IdLike, *, history_limit: int = 50
) -> ConversationContext:
    """Everything an agent needs to resume a conversation, read from one snapshot.

    Args:
        conversation_id: The conversation.
        history_limit: How many of the latest messages and questions to include.

    Raises:
        NotFoundError: There is no such conversation.
    """
    cid = to_uuid(conversation_id, "conversation_id")
    conversation = uow.conversations.get(cid)
    latest = uow.conversation_data.latest_of_each(cid)
    history = uow.messages.last(cid, history_limit)
    asked = uow.questions.list(cid, limit=history_limit)
    last_bot = _last_bot_message_id(uow.connection, cid)
    questions = list(reversed(asked.items))
    partial, complete, missing = (
        latest.get(kind) for kind in (DataType.PARTIAL, DataType.COMPLETE, DataType.MISSING_FIELDS)
    )
    return ConversationContext.model_validate(
        {
            **dict(conversation),
            "partial_data": None if partial is None else partial.content,
            "complete_data": None if complete is None else complete.content,
            "missing_fields": _missing_fields(
                None if missing is None else missing.content, questions
            ),
            "message_history": history,
            "agent_questions": questions,
            "last_bot_message_id": last_bot,
        }
    )


def _last_bot_message_id(conn: Connection, cid: uuid.UUID) -> str | None:
    query = (
        select(messages.c.message_id)
        .where(
            messages.c.conversation_id == cid,
            messages.c.role == Role.ASSISTANT,
            messages.c.message_id.is_not(None),
        )
        .order_by(messages.c.seq.desc())
        .limit(1)
    )
    found: str | None = conn.execute(query).scalar()
    return found


def find_conversation_by_reply(
    uow: Unit, reply_to_message_id: str | int, chat_id: str | int | None = None
) -> uuid.UUID | None:
    """The conversation holding the message a chat user replied to, or ``None``.

    Args:
        reply_to_message_id: The chat platform's id of the message replied to.
        chat_id: The chat; pass it where platform message ids are unique only per chat.
    """
    found = uow.messages.find_by_platform_id(
        str(reply_to_message_id), chat_id=None if chat_id is None else str(chat_id)
    )
    return None if found is None else found.conversation_id


def mark_conversation_complete(
    uow: Unit, conversation_id: IdLike, external_ref: str | int, complete_data: JSONObject
) -> Conversation:
    """Complete a conversation: status ``completed``, the external reference (such as the
    spreadsheet row the finished record went to) and the ``complete`` data snapshot, together.

    Raises:
        NotFoundError: There is no such conversation.
        ValidationError: ``complete_data`` is not a storable JSON object.
    """
    cid = to_uuid(conversation_id, "conversation_id")
    changes = validate_input(
        ConversationUpdate,
        {"status": ConversationStatus.COMPLETED, "external_ref": str(external_ref)},
    )
    conversation = uow.conversations.update(cid, changes)
    uow.conversation_data.add(cid, DataType.COMPLETE, complete_data)
    return conversation


def get_user_active_conversations(uow: Unit, user_id: str, chat_id: str) -> list[Conversation]:
    """Every active conversation of ``user_id`` in ``chat_id``, most recently active first."""
    found: list[Conversation] = []
    cursor: str | None = None
    while True:
        page = uow.conversations.list(
            user_id=user_id,
            chat_id=chat_id,
            status=ConversationStatus.ACTIVE,
            limit=uow.settings.max_page_size,
            cursor=cursor,
        )
        found.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return found


def purge_statement(
    status: ConversationStatus | str, older_than: timedelta, batch_size: int
) -> Delete:
    """The DELETE of one batch of a purge (see ``DatabaseManager.purge_conversations``)."""
    chosen = to_enum(ConversationStatus, status, "status")
    if older_than < timedelta(0):
        raise ValidationError("older_than must not be negative", field="older_than")
    if batch_size < 1:
        raise ValidationError("batch_size must be at least 1", field="batch_size")
    cutoff = utcnow() - older_than
    stale = (conversations.c.status == chosen, conversations.c.updated_at < cutoff)
    batch = select(conversations.c.id).where(*stale).order_by(conversations.c.updated_at)
    # the conditions again on the outer DELETE: a conversation revived meanwhile is kept
    return delete(conversations).where(
        conversations.c.id.in_(batch.limit(batch_size).scalar_subquery()), *stale
    )


def purge_batch(conn: Connection, statement: Delete) -> int:
    """Delete one batch; how many conversations went."""
    return int(conn.execute(statement).rowcount)


def _missing_fields(latest: Any, questions: list[AgentQuestion]) -> list[str]:
    if isinstance(latest, list):
        return [str(name) for name in latest]
    for question in reversed(questions):
        if question.answered_at is None:
            return list(question.missing_fields)
    return []
