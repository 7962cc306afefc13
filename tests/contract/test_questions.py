"""Contract: agent questions behave the same on every backend."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from agentkeep import (
    ConflictError,
    ConversationCreate,
    DatabaseManager,
    NotFoundError,
    Sync,
    TooLargeError,
    ValidationError,
)


def _conversation(db: DatabaseManager[Sync]) -> uuid.UUID:
    return db.conversations.create(ConversationCreate(user_id="u1", chat_id="c1")).id


class TestAgentQuestions:
    def test_ask_round_trips(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        asked = db.questions.ask(
            cid,
            "ExpenseAgent",
            "С какого счёта?",  # noqa: RUF001 - Cyrillic on purpose
            missing_fields=["account", "category"],
            message_id=102,
        )
        loaded = db.questions.get(asked.id)
        assert loaded == asked
        assert loaded.missing_fields == ["account", "category"]
        assert loaded.message_id == "102"
        assert loaded.answer is None
        assert loaded.answered_at is None

    def test_answer_sets_answer_and_time_once(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        asked = db.questions.ask(cid, "ExpenseAgent", "Which account?")
        when = datetime(2025, 7, 27, 15, 30, 15, tzinfo=UTC)
        answered = db.questions.answer(asked.id, "наличные", answered_at=when)
        assert answered.answer == "наличные"
        assert answered.answered_at == when
        with pytest.raises(ConflictError) as conflict:
            db.questions.answer(asked.id, "card")
        assert conflict.value.field == "question_id"
        assert db.questions.get(asked.id).answer == "наличные"

    def test_answer_defaults_to_now(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        asked = db.questions.ask(cid, "ExpenseAgent", "Which account?")
        answered = db.questions.answer(asked.id, "cash")
        assert answered.answered_at is not None
        assert abs(answered.answered_at - datetime.now(UTC)) < timedelta(minutes=1)

    def test_pending_lists_only_unanswered_newest_first(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        first = db.questions.ask(cid, "ExpenseAgent", "Amount?")
        second = db.questions.ask(cid, "ExpenseAgent", "Account?")
        third = db.questions.ask(cid, "ExpenseAgent", "Category?")
        db.questions.answer(second.id, "cash")
        assert [q.id for q in db.questions.pending(cid)] == [third.id, first.id]
        page = db.questions.list(cid, limit=2)
        assert [q.id for q in page.items] == [third.id, second.id]
        rest = db.questions.list(cid, limit=2, cursor=page.next_cursor)
        assert [q.id for q in rest.items] == [first.id]
        assert rest.next_cursor is None

    def test_unknown_ids_are_not_found(self, db: DatabaseManager[Sync]) -> None:
        with pytest.raises(NotFoundError) as missing:
            db.questions.ask(uuid.uuid4(), "ExpenseAgent", "?")
        assert missing.value.field == "conversation_id"
        with pytest.raises(NotFoundError) as missing:
            db.questions.answer(uuid.uuid4(), "x")
        assert missing.value.field == "question_id"
        with pytest.raises(NotFoundError) as missing:
            db.questions.get(str(uuid.uuid4()))
        assert missing.value.field == "question_id"

    def test_bad_input_is_rejected_and_nothing_is_written(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        with pytest.raises(ValidationError) as caught:
            db.questions.ask(cid, "", "?")
        assert caught.value.field == "agent_name"
        with pytest.raises(ValidationError) as caught:
            db.questions.ask(cid, "ExpenseAgent", "nul \x00")
        assert caught.value.field == "question"
        with pytest.raises(ValidationError) as caught:
            db.questions.ask(cid, "ExpenseAgent", "?", missing_fields=["ok", ""])
        assert caught.value.field is not None
        assert caught.value.field.startswith("missing_fields")
        with pytest.raises(ValidationError) as caught:
            db.questions.ask("nope", "ExpenseAgent", "?")
        assert caught.value.field == "conversation_id"
        with pytest.raises(TooLargeError) as too_big:
            db.questions.ask(cid, "ExpenseAgent", "x" * (db.settings.max_content_bytes + 1))
        assert too_big.value.field == "question"
        assert db.questions.list(cid).items == []

    def test_naive_answer_time_is_rejected(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        asked = db.questions.ask(cid, "ExpenseAgent", "?")
        with pytest.raises(ValidationError) as caught:
            db.questions.answer(asked.id, "x", answered_at=datetime(2025, 1, 1))
        assert caught.value.field == "answered_at"
        assert db.questions.get(asked.id).answered_at is None
