"""Contract: conversations and messages behave the same on every backend."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import update

from agentkeep import (
    Async,
    ConflictError,
    ConversationCreate,
    DatabaseManager,
    IdempotencyConflictError,
    Message,
    MessageCreate,
    MessageStatus,
    MessageUpdate,
    NotFoundError,
    Role,
    Sync,
    TooLargeError,
    Unit,
    ValidationError,
)
from agentkeep.db.tables import messages


def _conversation(db: DatabaseManager[Sync]) -> uuid.UUID:
    return db.conversations.create(ConversationCreate(user_id="u1", chat_id="c1")).id


class TestMessages:
    def test_append_assigns_increasing_sequence_numbers(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        stored = [
            db.messages.append(cid, MessageCreate(role=Role.USER, content=f"m{i}"))
            for i in range(3)
        ]
        assert [m.seq for m in stored] == [1, 2, 3]
        assert [m.content for m in db.messages.last(cid, 10)] == ["m0", "m1", "m2"]
        conversation = db.conversations.get(cid)
        assert conversation.message_count == 3
        assert conversation.last_message_at == stored[-1].created_at

    def test_append_round_trips_every_field(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        sent = MessageCreate(
            role="assistant",
            content="Куплю кофе за 300 рублей ☕",
            thinking="the user bought coffee",
            tool_calls=[{"name": "add_expense", "arguments": {"amount": 300}}],
            metadata={"timestamp": "2025-07-27T15:30:00", "nested": {"a": [1, 2.5, None]}},
            input_tokens=12,
            output_tokens=34,
            status="streaming",
            message_id="102",
            reply_to_message_id="101",
            client_id="retry-1",
        )
        appended = db.messages.append(cid, sent)
        loaded = db.messages.get(appended.id)
        assert loaded == appended
        assert loaded.metadata == sent.metadata
        assert loaded.tool_calls == sent.tool_calls
        assert loaded.status is MessageStatus.STREAMING
        assert loaded.created_at.tzinfo is not None

    @pytest.mark.parametrize(
        "sent",
        [
            MessageCreate(role="user", content="hi"),
            MessageCreate(
                role="assistant",
                content="Куплю кофе ☕",
                thinking="t",
                tool_calls=[
                    {"name": "f", "arguments": {"x": [1, {"y": None}]}},
                    {"id": "c1", "type": "function", "function": {"name": "g", "arguments": "{}"}},
                ],
                metadata={"nested": {"a": [1, 2.5, None, True]}, "é": "ü"},
                input_tokens=0,
                output_tokens=7,
                status="cancelled",
                message_id=102,
                reply_to_message_id="101",
                client_id="k",
            ),
        ],
        ids=["plain", "every-field"],
    )
    def test_an_appended_message_is_the_model_its_values_validate_to(
        self, db: DatabaseManager[Sync], sent: MessageCreate
    ) -> None:
        cid = _conversation(db)
        appended = db.messages.append(cid, sent)
        validated = Message.model_validate({**appended.__dict__, "tool_calls": sent.tool_calls})
        assert appended == validated
        assert appended.model_fields_set == validated.model_fields_set
        assert {k: type(v) for k, v in appended} == {k: type(v) for k, v in validated}
        assert appended.model_dump_json() == validated.model_dump_json()
        assert appended == db.messages.get(appended.id)
        # containers of its own, as validation makes them: the caller's may change afterwards
        assert appended.metadata is not sent.metadata
        assert appended.tool_calls is None or appended.tool_calls is not sent.tool_calls

    def test_append_is_idempotent_with_client_id(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        first = db.messages.append(cid, MessageCreate(role="user", content="hi", client_id="k"))
        again = db.messages.append(cid, MessageCreate(role="user", content="hi", client_id="k"))
        assert again.id == first.id
        assert db.messages.count(cid) == 1
        assert db.conversations.get(cid).message_count == 1

    @pytest.mark.parametrize(
        "other",
        [
            MessageCreate(role="user", content="bye", client_id="k"),
            MessageCreate(role="assistant", content="hi", client_id="k"),
        ],
        ids=["content", "role"],
    )
    def test_a_client_id_reused_for_another_message_is_a_conflict(
        self, db: DatabaseManager[Sync], other: MessageCreate
    ) -> None:
        cid = _conversation(db)
        first = db.messages.append(cid, MessageCreate(role="user", content="hi", client_id="k"))
        with pytest.raises(IdempotencyConflictError) as caught:
            db.messages.append(cid, other)
        assert caught.value.field == "client_id"
        assert isinstance(caught.value, ConflictError)
        assert db.messages.last(cid) == [first]
        assert db.conversations.get(cid).message_count == 1

    def test_append_to_unknown_conversation_is_not_found(self, db: DatabaseManager[Sync]) -> None:
        with pytest.raises(NotFoundError) as caught:
            db.messages.append(uuid.uuid4(), MessageCreate(role="user", content="x"))
        assert caught.value.field == "conversation_id"
        assert db.messages.count() == 0

    def test_malformed_id_is_a_validation_error(self, db: DatabaseManager[Sync]) -> None:
        with pytest.raises(ValidationError) as caught:
            db.messages.append("not-a-uuid", MessageCreate(role="user", content="x"))
        assert caught.value.field == "conversation_id"
        with pytest.raises(ValidationError):
            db.messages.last(12345, 5)  # type: ignore[arg-type]

    def test_oversized_content_is_rejected_and_nothing_is_written(
        self, db: DatabaseManager[Sync]
    ) -> None:
        cid = _conversation(db)
        too_big = "x" * (db.settings.max_content_bytes + 1)
        with pytest.raises(TooLargeError) as caught:
            db.messages.append(cid, MessageCreate(role="user", content=too_big))
        assert caught.value.field == "content"
        assert db.conversations.get(cid).message_count == 0

    def test_history_pages_backwards_and_forwards(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        for i in range(7):
            db.messages.append(cid, MessageCreate(role="user", content=str(i)))
        newest = db.messages.list(cid, limit=3)
        assert [m.seq for m in newest.items] == [5, 6, 7]
        older = db.messages.list(cid, limit=3, before=int(newest.next_cursor or 0))
        assert [m.seq for m in older.items] == [2, 3, 4]
        oldest = db.messages.list(cid, limit=3, before=int(older.next_cursor or 0))
        assert [m.seq for m in oldest.items] == [1]
        assert oldest.next_cursor is None
        forward = db.messages.list(cid, limit=4, after=0)
        assert [m.seq for m in forward.items] == [1, 2, 3, 4]
        rest = db.messages.list(cid, limit=4, after=int(forward.next_cursor or 0))
        assert [m.seq for m in rest.items] == [5, 6, 7]
        assert rest.next_cursor is None

    def test_all_reads_the_whole_history_oldest_first_as_the_pages_do(
        self, db: DatabaseManager[Sync]
    ) -> None:
        cid = _conversation(db)
        assert db.messages.all(cid) == []
        for i in range(db.settings.max_page_size + 3):  # longer than the longest page
            db.messages.append(cid, MessageCreate(role="user", content=str(i), metadata={"i": i}))
        everything = db.messages.all(cid)
        assert [m.seq for m in everything] == list(range(1, db.settings.max_page_size + 4))
        paged = db.messages.list(cid, limit=5, after=0).items
        assert everything[:5] == paged
        assert everything[-1] == db.messages.last(cid, 1)[0]
        assert db.messages.all(uuid.uuid4()) == []
        with pytest.raises(ValidationError):
            db.messages.all("not-an-id")

    def test_update_finalises_a_streamed_reply(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        draft = db.messages.append(
            cid, MessageCreate(role="assistant", content="", status="streaming")
        )
        done = db.messages.update(
            draft.id,
            MessageUpdate(
                content="full reply", status="complete", output_tokens=3, metadata={"ms": 5}
            ),
        )
        assert (done.content, done.status, done.output_tokens) == ("full reply", "complete", 3)
        assert done.metadata == {"ms": 5}
        assert done.seq == draft.seq
        assert done.updated_at >= draft.updated_at

    def test_reply_lookup_by_platform_message_id(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        db.messages.append(
            cid, MessageCreate(role="assistant", content="Which account?", message_id="102")
        )
        found = db.messages.find_by_platform_id("102", chat_id="c1")
        assert found is not None
        assert found.conversation_id == cid
        assert db.messages.find_by_platform_id("102", chat_id="other") is None

    def test_delete_message_keeps_sequence_numbers_unique(self, db: DatabaseManager[Sync]) -> None:
        cid = _conversation(db)
        first = db.messages.append(cid, MessageCreate(role="user", content="a"))
        assert db.messages.delete(first.id) is True
        assert db.messages.delete(first.id) is False
        later = db.messages.append(cid, MessageCreate(role="user", content="b"))
        assert later.seq == 2
        assert db.conversations.get(cid).message_count == 1


class TestSeedCallShapes:
    def test_seed_000_usage_works_as_written(self, db: DatabaseManager[Sync]) -> None:
        conversation_id = db.create_conversation(user_id="user123", name="Project Planning")
        db.add_message(
            session_id=conversation_id,
            role="user",
            content="Let's discuss the project timeline",
            metadata={"timestamp": "2025-05-05T10:00:00"},
        )
        assert db.conversations.get(conversation_id).title == "Project Planning"
        assert db.delete_conversation(conversation_id=str(conversation_id)) is True
        assert db.conversations.find(conversation_id) is None
        assert db.messages.count() == 0

    def test_seed_004_health_check(self, db: DatabaseManager[Sync], backend: str) -> None:
        status = db.test_connection()
        assert status["status"] == "success"
        assert {"database", "version", "host", "port", "message"} <= status.keys()
        expected = "PostgreSQL" if backend == "postgresql" else "SQLite"
        assert status["version"].startswith(expected)

    def test_add_message_with_wrong_role_is_a_validation_error(
        self, db: DatabaseManager[Sync]
    ) -> None:
        cid = db.create_conversation(user_id="u")
        with pytest.raises(ValidationError) as caught:
            db.add_message(session_id=cid, role="robot", content="x")
        assert caught.value.field == "role"
        with pytest.raises(ValidationError) as caught:
            db.add_message(session_id=cid, role="user", content="nul \x00 byte")
        assert caught.value.field == "content"
        assert db.messages.count(cid) == 0


class TestAsync:
    @pytest.mark.anyio
    async def test_an_async_unit_of_work_commits_together_or_not_at_all(
        self, adb: DatabaseManager[Async]
    ) -> None:
        conversation = await adb.conversations.create(ConversationCreate(user_id="u"))

        def both(uow: Unit) -> None:
            uow.messages.append(conversation.id, MessageCreate(role="user", content="a"))
            uow.messages.append(conversation.id, MessageCreate(role="assistant", content="b"))

        def fail_half_way(uow: Unit) -> None:
            uow.messages.append(conversation.id, MessageCreate(role="user", content="c"))
            raise RuntimeError("boom")

        await adb.run(both)
        with pytest.raises(RuntimeError):
            await adb.run(fail_half_way)
        history = await adb.messages.last(conversation.id, 10)
        assert [m.content for m in history] == ["a", "b"]
        assert (await adb.conversations.get(conversation.id)).message_count == 2


class TestInsideATransaction:
    def test_a_duplicate_client_id_inside_a_transaction_returns_the_stored_message(
        self, db: DatabaseManager[Sync]
    ) -> None:
        cid = _conversation(db)
        with db.unit("write") as uow:
            first = uow.messages.append(cid, MessageCreate(role="user", content="a", client_id="k"))
            again = uow.messages.append(cid, MessageCreate(role="user", content="a", client_id="k"))
            assert again.id == first.id
        assert db.messages.count(cid) == 1
        with pytest.raises(IdempotencyConflictError), db.unit("write") as uow:
            uow.messages.append(cid, MessageCreate(role="user", content="b", client_id="k"))
        assert db.messages.count(cid) == 1


class TestWhatAnOlderReleaseStored:
    def test_a_tool_call_in_a_shape_of_its_own_reads_back_as_stored(
        self, db: DatabaseManager[Sync]
    ) -> None:
        cid = _conversation(db)
        reply = db.messages.append(cid, MessageCreate(role="assistant", content="done"))
        odd = [{"tool": "lookup", "args": [1, 2]}]  # no name: not a call this release writes

        def store_as_an_older_release(uow: Unit) -> None:
            uow.connection.execute(
                update(messages).where(messages.c.id == reply.id).values(tool_calls=odd)
            )

        db.run(store_as_an_older_release)
        assert db.messages.get(reply.id).tool_calls == odd
        assert [m.tool_calls for m in db.messages.last(cid)] == [odd]
