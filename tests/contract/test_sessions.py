"""Contract: user sessions, one per (user, chat), behave the same on every backend."""

from __future__ import annotations

import uuid

import pytest

from agentkeep import (
    ConversationCreate,
    DatabaseManager,
    NotFoundError,
    Sync,
    TooLargeError,
    ValidationError,
)


class TestUserSessions:
    def test_touch_creates_then_updates_one_row(self, db: DatabaseManager[Sync]) -> None:
        cid = db.conversations.create(ConversationCreate(user_id="u1", chat_id="c1")).id
        created = db.user_sessions.touch("u1", "c1")
        assert (created.timezone, created.last_conversation_id, created.metadata) == (
            "UTC",
            None,
            {},
        )
        again = db.user_sessions.touch(
            "u1", "c1", last_conversation_id=cid, timezone="Europe/Moscow", metadata={"lang": "ru"}
        )
        assert again.id == created.id
        assert again.created_at == created.created_at
        assert again.last_activity_at >= created.last_activity_at
        assert (again.last_conversation_id, again.timezone) == (cid, "Europe/Moscow")
        kept = db.user_sessions.touch("u1", "c1")
        assert (kept.last_conversation_id, kept.timezone, kept.metadata) == (
            cid,
            "Europe/Moscow",
            {"lang": "ru"},
        )
        assert db.user_sessions.get("u1", "c1") == kept

    def test_sessions_are_per_user_and_chat(self, db: DatabaseManager[Sync]) -> None:
        a = db.user_sessions.touch("u1", "c1")
        b = db.user_sessions.touch("u1", "c2")
        c = db.user_sessions.touch("u2", "c1")
        assert len({a.id, b.id, c.id}) == 3
        assert db.user_sessions.find("u2", "c2") is None
        with pytest.raises(NotFoundError):
            db.user_sessions.get("u2", "c2")

    def test_deleting_the_last_conversation_clears_the_reference(
        self, db: DatabaseManager[Sync]
    ) -> None:
        cid = db.conversations.create(ConversationCreate(user_id="u1", chat_id="c1")).id
        db.user_sessions.touch("u1", "c1", last_conversation_id=cid)
        assert db.delete_conversation(conversation_id=cid) is True
        session = db.user_sessions.get("u1", "c1")
        assert session.last_conversation_id is None

    def test_bad_input_is_rejected_and_nothing_is_written(self, db: DatabaseManager[Sync]) -> None:
        with pytest.raises(NotFoundError) as missing:
            db.user_sessions.touch("u1", "c1", last_conversation_id=uuid.uuid4())
        assert missing.value.field == "last_conversation_id"
        with pytest.raises(ValidationError) as caught:
            db.user_sessions.touch("u1", "c1", last_conversation_id="nope")
        assert caught.value.field == "last_conversation_id"
        with pytest.raises(ValidationError) as caught:
            db.user_sessions.touch("u1", "c1", timezone="Mars/Olympus_Mons")
        assert caught.value.field == "timezone"
        with pytest.raises(ValidationError) as caught:
            db.user_sessions.touch("u\x001", "c1")
        assert caught.value.field == "user_id"
        with pytest.raises(ValidationError) as caught:
            db.user_sessions.touch("u1", "")
        assert caught.value.field == "chat_id"
        with pytest.raises(TooLargeError) as too_big:
            db.user_sessions.touch("u1", "c1", metadata={"x": "y" * db.settings.max_metadata_bytes})
        assert too_big.value.field == "metadata"
        assert db.user_sessions.find("u1", "c1") is None
        assert db.user_sessions.find("u\x001", "c1") is None
