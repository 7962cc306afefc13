"""Seed 003's operations across domains: resume a conversation with its full context, find it
from a reply, complete it, list a user's active ones, and purge old ones.

They are methods of the :class:`~agentkeep.repositories.facade.DatabaseManager` facade (which
inherits them from :class:`ConversationFlowOperations`); they live here to keep the facade short.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select

from agentkeep.db.tables import conversations, messages
from agentkeep.db.types import utcnow
from agentkeep.errors import ValidationError
from agentkeep.models.common import IdLike, JSONObject, to_enum, to_uuid, validate_input
from agentkeep.models.conversation import Conversation, ConversationUpdate
from agentkeep.models.conversation_flow import AgentQuestion, ConversationContext
from agentkeep.models.enums import ConversationStatus, DataType, Role
from agentkeep.repositories.base import Component, ModeT, operation
from agentkeep.repositories.conversation_data import ConversationDataRepository
from agentkeep.repositories.conversations import ConversationRepository
from agentkeep.repositories.messages import MessageRepository
from agentkeep.repositories.questions import AgentQuestionRepository


class ConversationFlowOperations(Component[ModeT]):
    """The seed 003 operations of the facade (``ConversationManager``'s methods in the seed)."""

    conversations: ConversationRepository[ModeT]
    messages: MessageRepository[ModeT]
    conversation_data: ConversationDataRepository[ModeT]
    questions: AgentQuestionRepository[ModeT]

    @operation
    def get_conversation_context(
        self, conversation_id: IdLike, *, history_limit: int = 50
    ) -> ConversationContext:
        """Everything an agent needs to resume a conversation, read from one snapshot.

        Args:
            conversation_id: The conversation.
            history_limit: How many of the latest messages and questions to include.

        Raises:
            NotFoundError: There is no such conversation.
        """
        cid = to_uuid(conversation_id, "conversation_id")
        data = self.conversation_data
        with self.service.snapshot():
            conversation = ConversationRepository.get.direct(self.conversations, cid)
            latest = ConversationDataRepository.latest_of_each.direct(data, cid)
            history = MessageRepository.last.direct(self.messages, cid, history_limit)
            asked = AgentQuestionRepository.list.direct(self.questions, cid, limit=history_limit)
            last_bot = self._last_bot_message_id(cid)
        questions = list(reversed(asked.items))
        partial, complete, missing = (
            latest.get(kind)
            for kind in (DataType.PARTIAL, DataType.COMPLETE, DataType.MISSING_FIELDS)
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

    def _last_bot_message_id(self, cid: uuid.UUID) -> str | None:
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
        with self.service.connect() as conn:
            found: str | None = conn.execute(query).scalar()
        return found

    @operation
    def find_conversation_by_reply(
        self, reply_to_message_id: str | int, chat_id: str | int | None = None
    ) -> uuid.UUID | None:
        """The conversation holding the message a chat user replied to, or ``None``.

        Args:
            reply_to_message_id: The chat platform's id of the message replied to.
            chat_id: The chat; pass it where platform message ids are unique only per chat.
        """
        found = MessageRepository.find_by_platform_id.direct(
            self.messages,
            str(reply_to_message_id),
            chat_id=None if chat_id is None else str(chat_id),
        )
        return None if found is None else found.conversation_id

    @operation
    def mark_conversation_complete(
        self, conversation_id: IdLike, external_ref: str | int, complete_data: JSONObject
    ) -> Conversation:
        """Complete a conversation: status ``completed``, the external reference (seed 003's
        Google Sheets row) and the ``complete`` data snapshot, in one transaction.

        Raises:
            NotFoundError: There is no such conversation.
            ValidationError: ``complete_data`` is not a storable JSON object.
        """
        cid = to_uuid(conversation_id, "conversation_id")
        changes = validate_input(
            ConversationUpdate,
            {"status": ConversationStatus.COMPLETED, "external_ref": str(external_ref)},
        )
        with self.service.transaction():
            conversation = ConversationRepository.update.direct(self.conversations, cid, changes)
            ConversationDataRepository.add.direct(
                self.conversation_data, cid, DataType.COMPLETE, complete_data
            )
        return conversation

    @operation
    def get_user_active_conversations(self, user_id: str, chat_id: str) -> list[Conversation]:
        """Every active conversation of ``user_id`` in ``chat_id``, most recently active first."""
        found: list[Conversation] = []
        cursor: str | None = None
        with self.service.snapshot():
            while True:
                page = ConversationRepository.list.direct(
                    self.conversations,
                    user_id=user_id,
                    chat_id=chat_id,
                    status=ConversationStatus.ACTIVE,
                    limit=self.settings.max_page_size,
                    cursor=cursor,
                )
                found.extend(page.items)
                cursor = page.next_cursor
                if cursor is None:
                    return found

    @operation
    def purge_conversations(
        self,
        status: ConversationStatus | str,
        older_than: timedelta,
        *,
        batch_size: int = 500,
    ) -> int:
        """Delete the conversations in ``status`` not updated for ``older_than``, with everything
        they own (messages, data, questions, states, memories), and return how many.

        Each batch of ``batch_size`` conversations is one statement that commits on its own, so
        a large purge never holds locks for long (inside ``transaction()`` they all join it).
        """
        chosen = to_enum(ConversationStatus, status, "status")
        if older_than < timedelta(0):
            raise ValidationError("older_than must not be negative", field="older_than")
        if batch_size < 1:
            raise ValidationError("batch_size must be at least 1", field="batch_size")
        cutoff = utcnow() - older_than
        stale = (conversations.c.status == chosen, conversations.c.updated_at < cutoff)
        batch = select(conversations.c.id).where(*stale).order_by(conversations.c.updated_at)
        # the conditions again on the outer DELETE: a conversation revived meanwhile is kept
        statement = delete(conversations).where(
            conversations.c.id.in_(batch.limit(batch_size).scalar_subquery()), *stale
        )
        total = 0
        while True:
            with self.service.connect("write") as conn:
                deleted = conn.execute(statement).rowcount
            total += deleted
            if deleted < batch_size:
                return total


def _missing_fields(latest: Any, questions: list[AgentQuestion]) -> list[str]:
    if isinstance(latest, list):
        return [str(name) for name in latest]
    for question in reversed(questions):
        if question.answered_at is None:
            return list(question.missing_fields)
    return []
