"""Agent questions: what an agent asked a chat user to fill in missing fields, and the answers.

A question is answered once: answering is a single conditional ``UPDATE … WHERE answered_at IS
NULL``, so two concurrent answers cannot both win.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, insert, select, update

from agentkeep.db.tables import agent_questions as questions
from agentkeep.db.tables import conversations
from agentkeep.db.types import new_id, utcnow
from agentkeep.errors import ConflictError
from agentkeep.models.common import (
    IdLike,
    Page,
    check_json,
    check_limit,
    check_text_size,
    to_uuid,
    validate_input,
)
from agentkeep.models.conversation_flow import AgentAnswer, AgentQuestion, AgentQuestionCreate
from agentkeep.repositories.base import ModeT, load, operation, require
from agentkeep.repositories.keyed import IdRepository
from agentkeep.repositories.keyset import newest_first, to_page


class AgentQuestionRepository(IdRepository[ModeT, AgentQuestion]):
    """SQL for the ``agent_questions`` table."""

    _table = questions
    _item = AgentQuestion
    _noun = "question"

    @operation("write")
    def ask(
        self,
        conversation_id: IdLike,
        agent_name: str,
        question: str,
        *,
        missing_fields: list[str] | None = None,
        message_id: str | int | None = None,
    ) -> AgentQuestion:
        """Record a question an agent asked.

        Args:
            conversation_id: The conversation it was asked in.
            agent_name: Who asked (such as ``ExpenseAgent``).
            question: The question's text.
            missing_fields: The fields the answer should provide.
            message_id: The chat platform's id of the message that carried the question.

        Raises:
            NotFoundError: The conversation does not exist.
            ValidationError: Malformed input (an empty agent name, a NUL character, …).
            TooLargeError: The question or the field list exceed the configured limits.
        """
        cid = to_uuid(conversation_id, "conversation_id")
        data = validate_input(
            AgentQuestionCreate,
            {
                "agent_name": agent_name,
                "question": question,
                "missing_fields": missing_fields or [],
                "message_id": None if message_id is None else str(message_id),
            },
        )
        check_text_size(data.question, self.settings.max_content_bytes, "question")
        check_json(data.missing_fields, self.settings.max_metadata_bytes, "missing_fields")
        values: dict[str, Any] = {
            **data.model_dump(),
            "id": new_id(),
            "conversation_id": cid,
            "asked_at": utcnow(),
            "answered_at": None,
            "answer": None,
        }
        conn = self.conn
        require(conn, conversations, cid, "conversation_id")
        conn.execute(insert(questions).values(values))
        return AgentQuestion.model_validate(values)

    @operation("write")
    def answer(
        self, question_id: IdLike, answer: str, *, answered_at: datetime | None = None
    ) -> AgentQuestion:
        """Record the answer to a question (``answered_at`` defaults to now).

        Raises:
            NotFoundError: There is no such question.
            ConflictError: The question was already answered.
        """
        qid = self._key(question_id)
        data = validate_input(AgentAnswer, {"answer": answer, "answered_at": answered_at})
        check_text_size(data.answer, self.settings.max_content_bytes, "answer")
        conn = self.conn
        row = conn.execute(
            update(questions)
            .where(questions.c.id == qid, questions.c.answered_at.is_(None))
            .values(answer=data.answer, answered_at=data.answered_at or utcnow())
            .returning(*questions.c)
        ).first()
        if row is not None:
            return _question(row)
        # not answered now: either there is no such question or it was answered before (both
        # final), so which one it is can be read afterwards, outside the write
        conn = self.conn
        known = conn.execute(_exists(qid)).first() is not None
        if not known:
            raise self._not_found(question_id)
        raise ConflictError(f"question {question_id} is already answered", field="question_id")

    @operation("read", single=True)
    def get(self, question_id: IdLike) -> AgentQuestion:
        """The question; ``NotFoundError`` if there is none."""
        return self._get(question_id)

    @operation("read", single=True)
    def pending(self, conversation_id: IdLike, *, limit: int = 50) -> list[AgentQuestion]:
        """The conversation's unanswered questions, newest first."""
        return self._page(conversation_id, limit, None, unanswered=True).items

    @operation("read", single=True)
    def list(
        self,
        conversation_id: IdLike,
        *,
        pending: bool = False,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[AgentQuestion]:
        """The conversation's questions (``pending``: only the unanswered ones), newest first;
        keyset pages."""
        return self._page(conversation_id, limit, cursor, unanswered=pending)

    def _page(
        self, conversation_id: IdLike, limit: int, cursor: str | None, *, unanswered: bool
    ) -> Page[AgentQuestion]:
        check_limit(limit, self.settings.max_page_size)
        cid: uuid.UUID = to_uuid(conversation_id, "conversation_id")
        query = select(questions).where(questions.c.conversation_id == cid)
        if unanswered:
            query = query.where(questions.c.answered_at.is_(None))
        query = newest_first(query, questions.c.asked_at, questions.c.id, cursor)
        conn = self.conn
        rows = conn.execute(query.limit(limit + 1)).all()
        return to_page(rows, limit, _question, "asked_at")


def _exists(qid: uuid.UUID) -> Select[Any]:
    return select(questions.c.id).where(questions.c.id == qid)


def _question(row: Row[Any]) -> AgentQuestion:
    return load(AgentQuestion, row)
