"""Contract: conversation data snapshots behave the same on every backend."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from agentkeep import (
    ConversationCreate,
    DatabaseManager,
    DataType,
    NotFoundError,
    Sync,
    TooLargeError,
    ValidationError,
)

EVERY_KIND_OF_JSON: dict[str, Any] = {
    "amount": 300,
    "negative": -12,
    "big": 2**53,
    "price": 299.99,
    "item": "кофе ☕ «латте»",
    "emoji": "💸",
    "paid": True,
    "refunded": False,
    "note": None,
    "tags": ["a", 1, 2.5, None, True, {"deep": [[]]}],
    "empty_object": {},
    "empty_list": [],
    "nested": {"account": {"name": "cash", "currency": "RUB"}},
}


def _conversation(db: DatabaseManager[Sync]) -> uuid.UUID:
    return db.conversations.create(ConversationCreate(user_id="u1", chat_id="c1")).id


class TestConversationData:
    def test_snapshot_round_trips_every_kind_of_json(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        stored = db.conversation_data.add(cid, "partial", EVERY_KIND_OF_JSON)
        latest = db.conversation_data.latest(cid, DataType.PARTIAL)
        assert latest == stored
        assert latest is not None
        assert latest.content == EVERY_KIND_OF_JSON
        assert latest.data_type is DataType.PARTIAL
        assert latest.created_at.tzinfo is not None

    def test_latest_is_the_newest_of_its_type(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        db.conversation_data.add(cid, "partial", {"amount": 300})
        db.conversation_data.add(cid, "missing_fields", ["account", "category"])
        db.conversation_data.add(cid, "partial", {"amount": 300, "account": "cash"})
        partial = db.conversation_data.latest(cid)
        missing = db.conversation_data.latest(cid, "missing_fields")
        assert partial is not None
        assert partial.content == {"amount": 300, "account": "cash"}
        assert missing is not None
        assert missing.content == ["account", "category"]
        assert db.conversation_data.latest(cid, "complete") is None

    def test_latest_of_each_type_in_one_call(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        db.conversation_data.add(cid, "partial", {"amount": 300})
        db.conversation_data.add(cid, "missing_fields", ["account"])
        newest = db.conversation_data.add(cid, "partial", {"amount": 300, "account": "cash"})
        latest = db.conversation_data.latest_of_each(cid)
        assert set(latest) == {DataType.PARTIAL, DataType.MISSING_FIELDS}
        assert latest[DataType.PARTIAL] == newest
        assert latest[DataType.MISSING_FIELDS].content == ["account"]
        assert db.conversation_data.latest_of_each(_conversation(db)) == {}

    def test_list_pages_newest_first_and_filters_by_type(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        for i in range(5):
            db.conversation_data.add(cid, "partial", {"step": i})
        db.conversation_data.add(cid, "complete", {"step": 5})
        first = db.conversation_data.list(cid, data_type="partial", limit=2)
        assert [d.content for d in first.items] == [{"step": 4}, {"step": 3}]
        second = db.conversation_data.list(
            cid, data_type="partial", limit=2, cursor=first.next_cursor
        )
        third = db.conversation_data.list(
            cid, data_type="partial", limit=2, cursor=second.next_cursor
        )
        assert [d.content for d in second.items] == [{"step": 2}, {"step": 1}]
        assert [d.content for d in third.items] == [{"step": 0}]
        assert third.next_cursor is None
        everything = db.conversation_data.list(cid)
        assert [d.data_type for d in everything.items][:2] == ["complete", "partial"]
        assert len(everything.items) == 6

    def test_unknown_conversation_is_not_found_and_nothing_is_written(
        self, db: DatabaseManager[Sync]
    ) -> None:
        with pytest.raises(NotFoundError) as missing:
            db.conversation_data.add(uuid.uuid4(), "partial", {"a": 1})
        assert missing.value.field == "conversation_id"

    def test_malformed_input_is_a_validation_error_naming_the_field(
        self, db: DatabaseManager[Sync]
    ) -> None:
        cid = _conversation(db)
        cases: list[tuple[Any, Any, Any, str]] = [
            ("not-a-uuid", "partial", {}, "conversation_id"),
            (cid, "draft", {}, "data_type"),
            (cid, "partial", ["not", "an", "object"], "content"),
            (cid, "missing_fields", {"not": "a list"}, "content"),
            (cid, "missing_fields", [1, 2], "content"),
            (cid, "partial", {"nul": "a\x00b"}, "content"),
            (cid, "partial", {"nan": float("nan")}, "content"),
            (cid, "partial", {"set": {1, 2}}, "content"),
        ]
        for conversation_id, data_type, content, field in cases:
            with pytest.raises(ValidationError) as caught:
                db.conversation_data.add(conversation_id, data_type, content)
            assert caught.value.field == field, (data_type, content)
        with pytest.raises(ValidationError) as caught:
            db.conversation_data.latest(cid, "draft")
        assert caught.value.field == "data_type"
        assert db.conversation_data.list(cid).items == []

    def test_oversized_content_is_too_large(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        oversized = {"text": "x" * db.settings.max_metadata_bytes}
        with pytest.raises(TooLargeError) as too_big:
            db.conversation_data.add(cid, "partial", oversized)
        assert too_big.value.field == "content"
        assert db.conversation_data.list(cid).items == []

    def test_bad_cursor_is_a_validation_error(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        with pytest.raises(ValidationError) as caught:
            db.conversation_data.list(cid, cursor="garbage")
        assert caught.value.field == "cursor"
