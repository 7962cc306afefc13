"""Contract: seed 003's conversation workflow across domains, on every backend."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Table, update

from agentkeep import (
    Async,
    ConflictError,
    ConversationStatus,
    ConversationUpdate,
    DatabaseManager,
    MemoryCreate,
    MessageCreate,
    NotFoundError,
    PersonaCreate,
    Sync,
    ValidationError,
)
from agentkeep.db.rows import ConversationRow

conversations: Table = ConversationRow.__table__  # type: ignore[assignment]

# Seed 003's example texts (its mangled Cyrillic, restored): "bought coffee for 300 roubles",
# "From which account?", "cash".
NAN_DATA, NUL = {"a": float("nan")}, "a\x00b"
BOUGHT_COFFEE = "купил кофе за 300 рублей"
WHICH_ACCOUNT = "С какого счёта?"  # noqa: RUF001 - Cyrillic on purpose
CASH = "наличные"


def _lifecycle(db: DatabaseManager[Sync]) -> uuid.UUID:
    """Seed 003's example, steps 1-7: the conversation is still waiting for its category."""
    cid = db.create_conversation(
        user_id="telegram_user_id",
        chat_id="telegram_chat_id",
        operation_type="expense",
        agent_state="ExpenseAgent",
    )
    db.messages.append(cid, MessageCreate(role="user", content=BOUGHT_COFFEE, message_id="101"))
    db.conversation_data.add(cid, "partial", {"amount": 300, "item": "coffee"})
    question = db.questions.ask(
        cid, "ExpenseAgent", WHICH_ACCOUNT, missing_fields=["account", "category"], message_id=102
    )
    db.messages.append(
        cid, MessageCreate(role="assistant", content=WHICH_ACCOUNT, message_id="102")
    )
    db.messages.append(
        cid,
        MessageCreate(role="user", content=CASH, message_id="103", reply_to_message_id="102"),
    )
    # the reply to the bot message that carried the question answered it
    assert db.questions.get(question.id).answer == CASH
    db.conversation_data.add(cid, "partial", {"amount": 300, "item": "coffee", "account": "cash"})
    db.conversation_data.add(cid, "missing_fields", ["category"])
    return cid


def _backdate(db: DatabaseManager[Sync], cid: uuid.UUID, days: int) -> None:
    when = datetime.now(UTC) - timedelta(days=days)
    with db.unit("write") as uow:
        uow.connection.execute(
            update(conversations).where(conversations.c.id == cid).values(updated_at=when)
        )


class TestConversationLifecycle:
    def test_seed_003_lifecycle_resumes_with_full_context(self, db: DatabaseManager[Sync]) -> None:
        cid = _lifecycle(db)
        context = db.get_conversation_context(cid)
        assert (context.id, context.user_id, context.chat_id) == (
            cid,
            "telegram_user_id",
            "telegram_chat_id",
        )
        assert (context.operation_type, context.agent_state) == ("expense", "ExpenseAgent")
        assert context.status is ConversationStatus.ACTIVE
        assert context.partial_data == {"amount": 300, "item": "coffee", "account": "cash"}
        assert context.complete_data is None
        assert context.missing_fields == ["category"]
        assert [(m.role, m.message_id, m.reply_to_message_id, m.content) for m in
                context.message_history] == [
            ("user", "101", None, BOUGHT_COFFEE),
            ("assistant", "102", None, WHICH_ACCOUNT),
            ("user", "103", "102", CASH),
        ]  # fmt: skip
        [question] = context.agent_questions
        assert (question.agent_name, question.question) == ("ExpenseAgent", WHICH_ACCOUNT)
        assert question.missing_fields == ["account", "category"]
        assert question.answered_at is not None
        assert context.last_bot_message_id == "102"

    @pytest.mark.parametrize("given", [None, True, 1.5, "", [], {"id": 1}])
    def test_a_lookup_by_something_that_is_not_a_platform_id_is_refused(
        self, db: DatabaseManager[Sync], given: Any
    ) -> None:
        cid = db.create_conversation(user_id="u", chat_id="c")
        db.store_bot_message(cid, "asked without a platform id")  # message_id NULL
        db.store_bot_message(cid, "True")
        for field, lookup in (
            ("reply_to_message_id", lambda: db.find_conversation_by_reply(given)),
            ("chat_id", lambda: db.find_conversation_by_reply("1", chat_id=given)),
            ("message_id", lambda: db.messages.find_by_platform_id(given)),
            ("chat_id", lambda: db.messages.find_by_platform_id("1", chat_id=given)),
        ):
            if given is None and field == "chat_id":
                assert lookup() is None  # no chat given: every chat
                continue
            with pytest.raises(ValidationError) as caught:
                lookup()
            assert caught.value.field == field
            assert "must be a chat platform's id (text or an integer)" in caught.value.message

    def test_a_reply_finds_its_conversation(self, db: DatabaseManager[Sync]) -> None:
        cid = _lifecycle(db)
        assert db.find_conversation_by_reply(102) == cid
        assert db.find_conversation_by_reply("102", chat_id="telegram_chat_id") == cid
        assert db.find_conversation_by_reply("102", chat_id="another_chat") is None
        assert db.find_conversation_by_reply("999") is None

    def test_mark_complete_sets_status_reference_and_complete_data(
        self, db: DatabaseManager[Sync]
    ) -> None:
        cid = _lifecycle(db)
        complete = {
            "amount": 300,
            "item": "coffee",
            "account": "cash",
            "category": "coffee",
            "google_sheets_row": 7,
        }
        done = db.mark_conversation_complete(cid, 7, complete)
        assert (done.status, done.external_ref) == (ConversationStatus.COMPLETED, "7")
        context = db.get_conversation_context(str(cid))
        assert context.status is ConversationStatus.COMPLETED
        assert context.complete_data == complete
        assert db.get_user_active_conversations("telegram_user_id", "telegram_chat_id") == []

    def test_mark_complete_with_bad_data_changes_nothing(self, db: DatabaseManager[Sync]) -> None:
        cid = _lifecycle(db)
        with pytest.raises(ValidationError) as caught:
            db.mark_conversation_complete(cid, 7, {"bad": float("nan")})
        assert caught.value.field == "complete_data"
        assert caught.value.message.startswith("complete_data is not storable JSON")
        conversation = db.conversations.get(cid)
        assert (conversation.status, conversation.external_ref) == ("active", None)
        assert db.conversation_data.latest(cid, "complete") is None
        with pytest.raises(NotFoundError) as missing:
            db.mark_conversation_complete(uuid.uuid4(), 7, {})
        assert missing.value.field == "conversation_id"

    def test_context_of_an_unknown_conversation_is_not_found(
        self, db: DatabaseManager[Sync]
    ) -> None:
        with pytest.raises(NotFoundError) as missing:
            db.get_conversation_context(uuid.uuid4())
        assert missing.value.field == "conversation_id"
        with pytest.raises(ValidationError) as caught:
            db.get_conversation_context("123")
        assert caught.value.field == "conversation_id"

    def test_missing_fields_fall_back_to_the_pending_question(
        self, db: DatabaseManager[Sync]
    ) -> None:
        cid = db.create_conversation(user_id="u", chat_id="c")
        db.questions.ask(cid, "ExpenseAgent", "Category?", missing_fields=["category"])
        context = db.get_conversation_context(cid, history_limit=5)
        assert context.missing_fields == ["category"]
        assert context.partial_data is None
        assert context.message_history == []
        assert context.last_bot_message_id is None

    def test_user_active_conversations(self, db: DatabaseManager[Sync]) -> None:
        first = db.create_conversation(user_id="u", chat_id="c")
        second = db.create_conversation(user_id="u", chat_id="c")
        db.create_conversation(user_id="u", chat_id="other")
        done = db.create_conversation(user_id="u", chat_id="c")
        db.mark_conversation_complete(done, "row-1", {})
        active = db.get_user_active_conversations("u", "c")
        assert [c.id for c in active] == [second, first]


class TestChatBotSemantics:
    def test_platform_ids_are_integers_or_strings(self, db: DatabaseManager[Sync]) -> None:
        cid = db.create_conversation(user_id=42, chat_id=-1001)
        bot = db.messages.append(cid, MessageCreate(role="assistant", content="?", message_id=7))
        reply = db.messages.append(
            cid, MessageCreate(role="user", content="!", message_id=8, reply_to_message_id=7)
        )
        assert (bot.message_id, reply.reply_to_message_id) == ("7", "7")
        assert db.conversations.get(cid).chat_id == "-1001"
        assert db.find_conversation_by_reply(7, chat_id=-1001) == cid

    def test_missing_fields_are_what_the_latest_partial_data_lacks(
        self, db: DatabaseManager[Sync]
    ) -> None:
        cid = db.create_conversation(user_id="u", chat_id="c")
        db.messages.append(cid, MessageCreate(role="user", content=BOUGHT_COFFEE, message_id=101))
        db.conversation_data.add(cid, "partial", {"amount": 300, "item": "coffee"})
        question = db.questions.ask(
            cid,
            "ExpenseAgent",
            WHICH_ACCOUNT,
            missing_fields=["account", "category"],
            message_id=102,
        )
        db.messages.append(
            cid, MessageCreate(role="assistant", content=WHICH_ACCOUNT, message_id=102)
        )
        assert db.get_conversation_context(cid).missing_fields == ["account", "category"]
        db.messages.append(
            cid, MessageCreate(role="user", content=CASH, message_id=103, reply_to_message_id=102)
        )
        db.conversation_data.add(
            cid, "partial", {"amount": 300, "item": "coffee", "account": "cash"}
        )
        context = db.get_conversation_context(cid)
        assert context.missing_fields == ["category"]
        [asked] = context.agent_questions
        assert (asked.id, asked.answer) == (question.id, CASH)
        assert asked.answered_at is not None
        assert asked.answered_at >= asked.asked_at

    def test_a_reply_answers_only_its_own_conversations_question_once(
        self, db: DatabaseManager[Sync]
    ) -> None:
        cid = db.create_conversation(user_id="u", chat_id="c")
        other = db.create_conversation(user_id="u", chat_id="d")
        question = db.questions.ask(cid, "A", "Which?", message_id=5)
        db.messages.append(
            other, MessageCreate(role="user", content="no", message_id=6, reply_to_message_id=5)
        )
        db.messages.append(
            cid, MessageCreate(role="assistant", content="x", message_id=9, reply_to_message_id=5)
        )
        assert db.questions.get(question.id).answered_at is None
        for n, text in enumerate(("first", "second")):
            db.messages.append(
                cid,
                MessageCreate(role="user", content=text, message_id=10 + n, reply_to_message_id=5),
            )
        assert db.questions.get(question.id).answer == "first"
        assert db.messages.count(cid) == 3

    def test_complete_with_the_two_arguments_then_store_the_final_data(
        self, db: DatabaseManager[Sync]
    ) -> None:
        cid = _lifecycle(db)
        done = db.mark_conversation_complete(cid, 7)
        assert (done.status, done.external_ref) == ("completed", "7")
        assert db.conversation_data.latest(cid, "complete") is None
        db.store_final_operation_data(cid, {"amount": 300, "google_sheets_row": 7})
        assert db.get_conversation_context(cid).complete_data == {
            "amount": 300,
            "google_sheets_row": 7,
        }
        with pytest.raises(ConflictError) as again:
            db.mark_conversation_complete(cid, 8, {"x": 1})
        assert again.value.field == "status"
        assert db.conversations.get(cid).external_ref == "7"
        assert len(db.conversation_data.list(cid, data_type="complete").items) == 1


class TestSessionsKeptCurrent:
    def test_create_complete_and_resume_record_the_users_last_conversation(
        self, db: DatabaseManager[Sync]
    ) -> None:
        first = db.create_conversation(user_id="u", chat_id="c")
        assert db.user_sessions.get("u", "c").last_conversation_id == first
        second = db.create_conversation(user_id="u", chat_id="c")
        db.mark_conversation_complete(first, 1)
        assert db.user_sessions.get("u", "c").last_conversation_id == first
        db.conversations.update(second, ConversationUpdate(status="abandoned"))
        db.resume_conversation(second)
        assert db.user_sessions.get("u", "c").last_conversation_id == second
        db.create_conversation(user_id="u")  # no chat: no session to keep
        assert db.user_sessions.find("u", "c") is not None
        assert db.user_sessions.get("u", "c").last_conversation_id == second


class TestStatusLifecycle:
    def test_a_completed_conversation_is_final(self, db: DatabaseManager[Sync]) -> None:
        cid = db.create_conversation(user_id="u", chat_id="c")
        db.conversations.update(cid, ConversationUpdate(status="completed"))
        for status in ("active", "abandoned"):
            with pytest.raises(ConflictError) as caught:
                db.conversations.update(cid, ConversationUpdate(status=status, title="t"))
            assert caught.value.field == "status"
            assert "completed" in str(caught.value)
        assert db.conversations.get(cid).title is None
        assert db.conversations.update(cid, ConversationUpdate(title="t")).title == "t"
        with pytest.raises(ConflictError):
            db.resume_conversation(cid)

    def test_abandoned_conversations_resume(self, db: DatabaseManager[Sync]) -> None:
        cid = _lifecycle(db)
        db.conversations.update(cid, ConversationUpdate(status="abandoned"))
        context = db.resume_conversation(cid)
        assert context.status is ConversationStatus.ACTIVE
        assert context.partial_data == {"amount": 300, "item": "coffee", "account": "cash"}
        assert db.resume_conversation(cid).status is ConversationStatus.ACTIVE
        with pytest.raises(NotFoundError):
            db.resume_conversation(uuid.uuid4())

    def test_idle_active_conversations_are_abandoned(self, db: DatabaseManager[Sync]) -> None:
        idle = db.create_conversation(user_id="u", chat_id="c")
        _backdate(db, idle, days=2)
        done = db.create_conversation(user_id="u", chat_id="c")
        db.mark_conversation_complete(done, 1)
        _backdate(db, done, days=2)
        fresh = db.create_conversation(user_id="u", chat_id="c")
        assert db.abandon_idle_conversations(timedelta(days=1)) == [idle]
        statuses = [db.conversations.get(c).status for c in (idle, done, fresh)]
        assert statuses == ["abandoned", "completed", "active"]
        assert db.abandon_idle_conversations(timedelta(days=1)) == []
        with pytest.raises(ValidationError):
            db.abandon_idle_conversations(timedelta(seconds=-1))

    @pytest.mark.parametrize(
        "age", [timedelta.max, timedelta(days=100 * 365, seconds=1), timedelta(days=10**6)]
    )
    def test_an_age_beyond_a_century_is_refused_naming_the_argument(
        self, db: DatabaseManager[Sync], age: timedelta
    ) -> None:
        cid = db.create_conversation(user_id="u", chat_id="c")
        with pytest.raises(ValidationError) as caught:
            db.abandon_idle_conversations(age)
        assert caught.value.field == "idle_seconds"
        for call in (db.purge_conversations, db.count_purgeable):
            with pytest.raises(ValidationError) as caught:
                call("active", age)
            assert caught.value.field == "older_than"
            assert "at most 3153600000 seconds" in caught.value.message
        assert db.conversations.get(cid).status == "active"
        century = timedelta(seconds=100 * 365 * 24 * 3600)
        assert db.abandon_idle_conversations(century) == []
        assert db.purge_conversations("active", century) == 0

    @pytest.mark.parametrize("age", [5, 2.5, "30d", None])
    def test_an_age_that_is_not_a_timedelta_is_refused_naming_the_argument(
        self, db: DatabaseManager[Sync], age: Any
    ) -> None:
        db.create_conversation(user_id="u", chat_id="c")
        with pytest.raises(ValidationError) as caught:
            db.abandon_idle_conversations(age)
        assert caught.value.field == "idle_seconds"
        for call in (db.purge_conversations, db.count_purgeable):
            with pytest.raises(ValidationError) as caught:
                call("active", age)
            assert caught.value.field == "older_than"
            assert "must be a timedelta" in caught.value.message
        assert db.conversations.count() == 1

    def test_a_dry_run_counts_what_a_purge_deletes(self, db: DatabaseManager[Sync]) -> None:
        old = db.create_conversation(user_id="u", chat_id="c")
        db.mark_conversation_complete(old, 1)
        _backdate(db, old, days=3)
        db.mark_conversation_complete(db.create_conversation(user_id="u"), 2)
        assert db.count_purgeable("completed", timedelta(days=1)) == 1
        assert db.purge_conversations("completed", timedelta(days=1)) == 1
        assert db.count_purgeable("completed", timedelta(days=1)) == 0


class TestDeletionAndRetention:
    def test_deleting_a_conversation_cascades_to_everything_it_owns(
        self, db: DatabaseManager[Sync]
    ) -> None:
        cid = _lifecycle(db)
        persona = db.personas.create(PersonaCreate(name="Ava", template="You are Ava."))
        db.states.put(cid, "stage", {"step": 3}, persona_id=persona.id)
        db.states.put(cid, "stage", 1)
        db.memories.add(MemoryCreate(content="likes coffee", conversation_id=cid, user_id="u"))
        kept = db.memories.add(MemoryCreate(content="not tied to it", user_id="u"))
        db.user_sessions.touch("telegram_user_id", "telegram_chat_id", last_conversation_id=cid)
        assert db.delete_conversation(conversation_id=cid) is True
        assert db.conversation_data.list(cid).items == []
        assert db.questions.list(cid).items == []
        assert db.states.list(cid).items == []
        assert [m.id for m in db.memories.list(user_id="u").items] == [kept.id]
        assert db.messages.count(cid) == 0
        session = db.user_sessions.get("telegram_user_id", "telegram_chat_id")
        assert session.last_conversation_id is None
        assert db.personas.get(persona.id).name == "Ava"

    def test_purge_deletes_old_conversations_of_a_status_in_batches(
        self, db: DatabaseManager[Sync]
    ) -> None:
        old_done = []
        for _ in range(5):
            cid = _lifecycle(db)
            db.mark_conversation_complete(cid, 1, {"ok": True})
            _backdate(db, cid, days=40)
            old_done.append(cid)
        recent_done = db.create_conversation(user_id="u", chat_id="c")
        db.mark_conversation_complete(recent_done, 2, {})
        old_active = db.create_conversation(user_id="u", chat_id="c")
        _backdate(db, old_active, days=40)
        purged = db.purge_conversations("completed", timedelta(days=30), batch_size=2)
        assert purged == 5
        assert all(db.conversations.find(cid) is None for cid in old_done)
        assert db.conversations.find(recent_done) is not None
        assert db.conversations.find(old_active) is not None
        assert db.messages.count() == 0
        assert db.purge_conversations(ConversationStatus.COMPLETED, timedelta(days=30)) == 0

    def test_purge_rejects_bad_arguments(self, db: DatabaseManager[Sync]) -> None:
        cases = [
            ({"status": "finished", "older_than": timedelta(days=1)}, "status"),
            ({"status": "completed", "older_than": timedelta(days=-1)}, "older_than"),
        ]
        for kwargs, field in cases:
            with pytest.raises(ValidationError) as caught:
                db.purge_conversations(**kwargs)  # type: ignore[arg-type]
            assert caught.value.field == field


class TestSnapshot:
    def test_read_transactions_are_snapshots(self, db: DatabaseManager[Sync], backend: str) -> None:
        # the context's reads share one read unit; it must be one snapshot
        with db.service.unit("read") as conn:
            if backend == "postgresql":  # READ COMMITTED would re-snapshot every statement
                level = conn.exec_driver_sql("SHOW transaction_isolation").scalar()
                assert level == "repeatable read"
            else:  # SQLite: a deferred BEGIN reads one snapshot until it ends
                assert conn.in_transaction()


class TestConversationFlowAsync:
    @pytest.mark.anyio
    async def test_async_lifecycle(self, adb: DatabaseManager[Async]) -> None:
        cid = await adb.create_conversation(user_id="u", chat_id="c", operation_type="expense")
        await adb.messages.append(
            cid, MessageCreate(role="assistant", content=WHICH_ACCOUNT, message_id="7")
        )
        await adb.conversation_data.add(cid, "partial", {"amount": 300})
        await adb.states.put(cid, "stage", "asking")
        assert await adb.find_conversation_by_reply(7, chat_id="c") == cid
        context = await adb.get_conversation_context(cid)
        assert (context.partial_data, context.last_bot_message_id) == ({"amount": 300}, "7")
        done = await adb.run(lambda uow: uow.mark_conversation_complete(cid, 9, {"amount": 300}))
        assert done.status is ConversationStatus.COMPLETED
        assert await adb.get_user_active_conversations("u", "c") == []
        assert await adb.purge_conversations("completed", timedelta(0)) == 1
        assert (await adb.states.list(cid)).items == []


class TestTheBotsOwnCallShapes:
    """The expense bot's conversation manager, call for call, with its own names."""

    def test_an_expense_from_first_message_to_the_spreadsheet_row(
        self, db: DatabaseManager[Sync]
    ) -> None:
        cid = db.create_conversation(user_id="u7", chat_id=-100123)
        db.store_user_response(cid, "Bought coffee for 300", message_id=101)
        db.update_conversation_state(
            cid,
            partial_data={"amount": 300, "item": "coffee"},
            missing_fields=["account", "category"],
            agent_state="ExpenseAgent",
        )
        db.store_bot_message(cid, "Which account?", message_id=102)
        db.update_conversation_state(
            cid,
            question="Which account?",
            agent_name="ExpenseAgent",
            missing_fields=["account"],
            question_message_id=102,
            state={"step": "ask-account"},
        )
        assert db.find_conversation_by_reply(102) == cid
        db.store_user_response(cid, "Card", message_id=103, reply_to=102)
        context = db.get_conversation_context(cid)
        assert [q.answer for q in context.agent_questions] == ["Card"]  # the reply answered it
        assert context.last_bot_message_id == "102"
        assert context.partial_data == {"amount": 300, "item": "coffee"}
        assert [m.content for m in context.message_history] == [
            "Bought coffee for 300",
            "Which account?",
            "Card",
        ]
        assert context.agent_state == "ExpenseAgent"
        assert db.states.get(cid, "step").state_value == "ask-account"
        db.mark_conversation_complete(cid, 42)
        assert db.conversations.get(cid).status == "completed"

    @pytest.mark.parametrize(
        ("field", "call"),
        [
            ("partial_data", lambda db, c: db.update_conversation_state(c, partial_data=NAN_DATA)),
            ("partial_data", lambda db, c: db.update_conversation_state(c, partial_data=[1])),
            ("missing_fields", lambda db, c: db.update_conversation_state(c, missing_fields="a")),
            ("missing_fields", lambda db, c: db.update_conversation_state(c, missing_fields=[NUL])),
            ("complete_data", lambda db, c: db.store_final_operation_data(c, {"a": NUL})),
            ("complete_data", lambda db, c: db.mark_conversation_complete(c, 7, {"a": NUL})),
        ],
    )
    def test_bad_data_is_named_by_the_argument_that_carried_it(
        self, db: DatabaseManager[Sync], field: str, call: Any
    ) -> None:
        cid = db.create_conversation(user_id="u", chat_id="c")
        with pytest.raises(ValidationError) as caught:
            call(db, cid)
        assert caught.value.field == field
        assert caught.value.message.startswith(field)
        assert "content" not in caught.value.message.split(":")[0]
        assert db.conversation_data.list(cid).items == []

    def test_a_bad_change_writes_nothing(self, db: DatabaseManager[Sync]) -> None:
        cid = db.create_conversation(user_id="u8", chat_id="c")
        with pytest.raises(ValidationError):
            db.update_conversation_state(
                cid, partial_data={"amount": 1}, state={"k": 1}, status="no-such-status"
            )
        assert db.conversation_data.list(cid).items == []
        assert db.states.list(cid).items == []
        with pytest.raises(NotFoundError):
            db.store_bot_message(uuid.uuid4(), "hi", message_id=1)

    @pytest.mark.anyio
    async def test_the_same_on_the_async_api(self, adb: DatabaseManager[Async]) -> None:
        cid = await adb.create_conversation(user_id="u9", chat_id="c")
        said = await adb.store_user_response(cid, "hello", message_id="m1")
        assert (said.role, said.message_id) == ("user", "m1")
        updated = await adb.update_conversation_state(cid, title="Coffee", partial_data={"a": 1})
        assert updated.title == "Coffee"
