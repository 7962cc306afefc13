"""Contract: ``load_history``, an agent's earlier messages with one user, on every backend."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from agentkeep import (
    AgentCreate,
    Async,
    ConversationCreate,
    DatabaseManager,
    MessageCreate,
    NotFoundError,
    Sync,
    ValidationError,
)
from statements import watched


def _conversation(
    db: DatabaseManager[Sync], agent_id: uuid.UUID, user_id: str, *contents: str
) -> uuid.UUID:
    conversation = db.conversations.create(ConversationCreate(agent_id=agent_id, user_id=user_id))
    for index, content in enumerate(contents):
        role = "user" if index % 2 == 0 else "assistant"
        db.messages.append(conversation.id, MessageCreate(role=role, content=content))
    return conversation.id


class TestLoadHistory:
    @pytest.fixture
    def agents(self, db: DatabaseManager[Sync]) -> tuple[uuid.UUID, uuid.UUID]:
        bookkeeper = db.agents.create(AgentCreate(name="bookkeeper"))
        helper = db.agents.create(AgentCreate(name="helper"))
        _conversation(db, bookkeeper.id, "u1", "first", "first reply")
        _conversation(db, bookkeeper.id, "u2", "someone else")
        _conversation(db, helper.id, "u1", "another agent")
        _conversation(db, bookkeeper.id, "u1", "second", "second reply", "third")
        return bookkeeper.id, helper.id

    @pytest.mark.usefixtures("agents")
    def test_returns_the_agents_messages_with_the_user_oldest_first_across_conversations(
        self, db: DatabaseManager[Sync]
    ) -> None:
        history = db.load_history("bookkeeper", "u1")
        assert [m.content for m in history] == [
            "first",
            "first reply",
            "second",
            "second reply",
            "third",
        ]

    @pytest.mark.usefixtures("agents")
    def test_the_limit_keeps_the_latest(self, db: DatabaseManager[Sync]) -> None:
        assert [m.content for m in db.load_history("bookkeeper", "u1", 4)] == [
            "first reply",
            "second",
            "second reply",
            "third",
        ]
        assert [m.content for m in db.load_history("bookkeeper", "u1", limit=1)] == ["third"]

    @pytest.mark.usefixtures("agents")
    def test_another_user_or_agent_sees_only_its_own(self, db: DatabaseManager[Sync]) -> None:
        assert [m.content for m in db.load_history("bookkeeper", "u2")] == ["someone else"]
        assert [m.content for m in db.load_history("helper", "u1")] == ["another agent"]
        assert db.load_history("helper", "u2") == []

    def test_a_numeric_user_id_is_the_same_user(self, db: DatabaseManager[Sync]) -> None:
        agent = db.agents.create(AgentCreate(name="bot"))
        _conversation(db, agent.id, "42", "hello")
        assert [m.content for m in db.load_history("bot", 42)] == ["hello"]

    def test_an_unknown_agent_is_not_found(self, db: DatabaseManager[Sync]) -> None:
        with pytest.raises(NotFoundError) as raised:
            db.load_history("nobody", "u1")
        assert raised.value.field == "agent_name"

    def test_an_agent_given_by_id_or_as_a_model_is_refused_naming_agent_name(
        self, db: DatabaseManager[Sync], agents: tuple[uuid.UUID, uuid.UUID]
    ) -> None:
        bookkeeper = db.agents.get(agents[0])
        for given in (bookkeeper.id, bookkeeper, None):
            with pytest.raises(ValidationError) as raised:
                db.load_history(given, "u1")  # type: ignore[arg-type]
            assert raised.value.field == "agent_name"
            assert "must be the agent's name" in raised.value.message

    @pytest.mark.usefixtures("agents")
    @pytest.mark.parametrize("user", [None, 1.5, True, ["u1"]])
    def test_a_user_that_is_not_text_or_an_integer_is_refused(
        self, db: DatabaseManager[Sync], user: Any
    ) -> None:
        with pytest.raises(ValidationError) as raised:
            db.load_history("bookkeeper", user)
        assert raised.value.field == "user_id"

    @pytest.mark.usefixtures("agents")
    @pytest.mark.parametrize("limit", [0, -1, 10_000])
    def test_a_limit_out_of_range_is_refused(self, db: DatabaseManager[Sync], limit: int) -> None:
        with pytest.raises(ValidationError) as raised:
            db.load_history("bookkeeper", "u1", limit)
        assert raised.value.field == "limit"

    def test_spans_more_conversations_than_one_page_reads(self, db: DatabaseManager[Sync]) -> None:
        agent = db.agents.create(AgentCreate(name="many"))
        for index in range(25):
            _conversation(db, agent.id, "u1", f"m{index}")
        history = db.load_history("many", "u1", limit=100)
        assert [m.content for m in history] == [f"m{index}" for index in range(25)]

    def test_in_a_unit_with_other_operations(self, db: DatabaseManager[Sync]) -> None:
        agent = db.agents.create(AgentCreate(name="unit"))
        with db.unit("write") as uow:
            conversation = uow.conversations.create(
                ConversationCreate(agent_id=agent.id, user_id="u1")
            )
            uow.messages.append(conversation.id, MessageCreate(role="user", content="in a unit"))
            assert [m.content for m in uow.load_history("unit", "u1")] == ["in a unit"]

    @pytest.mark.anyio
    async def test_async(self, adb: DatabaseManager[Async]) -> None:
        agent = await adb.agents.create(AgentCreate(name="async-bot"))
        conversation = await adb.conversations.create(
            ConversationCreate(agent_id=agent.id, user_id="u1")
        )
        await adb.messages.append(conversation.id, MessageCreate(role="user", content="hi"))
        history = await adb.load_history("async-bot", "u1", limit=10)
        assert [m.content for m in history] == ["hi"]


@contextmanager
def _statements(db: DatabaseManager[Sync]) -> Iterator[list[str]]:
    """The SQL statements sent while the block runs (by SQLAlchemy or on the driver)."""
    seen: list[str] = []
    with watched(db.service, seen.append):
        yield seen


class TestHistoryQuery:
    """``messages.history``: the one query behind an agent's history with a user."""

    @pytest.fixture
    def past(self, db: DatabaseManager[Sync]) -> dict[str, uuid.UUID]:
        bookkeeper = db.agents.create(AgentCreate(name="bookkeeper"))
        helper = db.agents.create(AgentCreate(name="helper"))
        return {
            "agent": bookkeeper.id,
            "helper": helper.id,
            "first": _conversation(db, bookkeeper.id, "u1", "a1", "a2"),
            "other user": _conversation(db, bookkeeper.id, "u2", "someone else"),
            "other agent": _conversation(db, helper.id, "u1", "another agent"),
            "second": _conversation(db, bookkeeper.id, "u1", "b1", "b2", "b3"),
        }

    def test_the_users_conversations_with_the_agent_oldest_first(
        self, db: DatabaseManager[Sync], past: dict[str, uuid.UUID]
    ) -> None:
        history = db.messages.history(past["agent"], "u1", limit=50)
        assert [m.content for m in history] == ["a1", "a2", "b1", "b2", "b3"]
        assert [m.conversation_id for m in history] == [past["first"]] * 2 + [past["second"]] * 3

    def test_the_limit_keeps_the_latest(
        self, db: DatabaseManager[Sync], past: dict[str, uuid.UUID]
    ) -> None:
        assert [m.content for m in db.messages.history(past["agent"], "u1", limit=4)] == [
            "a2",
            "b1",
            "b2",
            "b3",
        ]
        assert [m.content for m in db.messages.history(past["agent"], "u1", limit=1)] == ["b3"]

    def test_the_most_recently_active_conversation_comes_last_each_in_order(
        self, db: DatabaseManager[Sync], past: dict[str, uuid.UUID]
    ) -> None:
        db.messages.append(past["first"], MessageCreate(role="user", content="a3"))
        history = db.messages.history(past["agent"], "u1", limit=50)
        assert [m.content for m in history] == ["b1", "b2", "b3", "a1", "a2", "a3"]

    def test_another_user_or_agent_or_nobody(
        self, db: DatabaseManager[Sync], past: dict[str, uuid.UUID]
    ) -> None:
        assert [m.content for m in db.messages.history(past["agent"], "u2", limit=9)] == [
            "someone else"
        ]
        assert [m.content for m in db.messages.history(past["helper"], "u1", limit=9)] == [
            "another agent"
        ]
        assert db.messages.history(past["helper"], "u2", limit=9) == []
        assert db.messages.history(uuid.uuid4(), "u1", limit=9) == []

    def test_an_integer_user_id_is_its_text(self, db: DatabaseManager[Sync]) -> None:
        agent = db.agents.create(AgentCreate(name="bot"))
        _conversation(db, agent.id, "42", "hello")
        assert [m.content for m in db.messages.history(agent.id, 42, limit=5)] == ["hello"]

    def test_replies_streaming_or_failed_are_left_out_cancelled_ones_kept(
        self, db: DatabaseManager[Sync]
    ) -> None:
        agent = db.agents.create(AgentCreate(name="bot"))
        cid = _conversation(db, agent.id, "u1", "question")
        for status in ("error", "cancelled", "streaming"):
            db.messages.append(cid, MessageCreate(role="assistant", content=status, status=status))
        history = db.messages.history(agent.id, "u1", limit=2)
        assert [(m.content, m.status.value) for m in history] == [
            ("question", "complete"),
            ("cancelled", "cancelled"),
        ]

    def test_the_message_being_answered_and_after_are_left_out(
        self, db: DatabaseManager[Sync], past: dict[str, uuid.UUID]
    ) -> None:
        history = db.messages.history(
            past["agent"], "u1", limit=50, conversation_id=past["second"], before=3
        )
        assert [m.content for m in history] == ["a1", "a2", "b1", "b2"]

    def test_without_a_user_only_the_conversation(
        self, db: DatabaseManager[Sync], past: dict[str, uuid.UUID]
    ) -> None:
        history = db.messages.history(
            past["agent"], None, limit=50, conversation_id=past["second"], before=3
        )
        assert [m.content for m in history] == ["b1", "b2"]
        only = db.messages.history(past["agent"], None, limit=1, conversation_id=past["first"])
        assert [m.content for m in only] == ["a2"]

    def test_is_one_statement(self, db: DatabaseManager[Sync], past: dict[str, uuid.UUID]) -> None:
        for index in range(10):
            _conversation(db, past["agent"], "u1", f"more {index}")
        with _statements(db) as seen:
            history = db.messages.history(past["agent"], "u1", limit=50)
        assert len(history) == 15
        assert [s.split(maxsplit=1)[0].upper() for s in seen] == ["SELECT"]

    @pytest.mark.usefixtures("past")
    def test_load_history_is_one_statement_after_finding_the_agent(
        self, db: DatabaseManager[Sync]
    ) -> None:
        with _statements(db) as seen:
            db.load_history("bookkeeper", "u1")
        assert len([s for s in seen if s.lstrip().upper().startswith("SELECT")]) == 2

    @pytest.mark.parametrize(
        ("arguments", "field"),
        [
            ({"user_id": "u1", "limit": 0}, "limit"),
            ({"user_id": "u1", "limit": 10_000}, "limit"),
            ({"user_id": "", "limit": 5}, "user_id"),
            ({"user_id": "x" * 256, "limit": 5}, "user_id"),
            ({"user_id": True, "limit": 5}, "user_id"),
            ({"user_id": None, "limit": 5}, "user_id"),
            ({"user_id": "u1", "limit": 5, "before": 3}, "before"),
            ({"user_id": "u1", "limit": 5, "conversation_id": "nope"}, "conversation_id"),
            (
                {"user_id": "u1", "limit": 5, "conversation_id": uuid.uuid4(), "before": -1},
                "before",
            ),
            ({"user_id": "u1", "limit": 5, "agent_id": "not-an-id"}, "agent_id"),
        ],
    )
    def test_bad_input_is_refused_naming_the_field(
        self,
        db: DatabaseManager[Sync],
        past: dict[str, uuid.UUID],
        arguments: dict[str, Any],
        field: str,
    ) -> None:
        arguments = {"agent_id": past["agent"], **arguments}
        with pytest.raises(ValidationError) as raised:
            db.messages.history(**arguments)
        assert raised.value.field == field

    def test_a_bad_user_id_in_load_history(self, db: DatabaseManager[Sync]) -> None:
        db.agents.create(AgentCreate(name="bot"))
        with pytest.raises(ValidationError) as raised:
            db.load_history("bot", "")
        assert raised.value.field == "user_id"
