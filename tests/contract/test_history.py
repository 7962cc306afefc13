"""Contract: ``load_history``, an agent's earlier messages with one user, on every backend."""

from __future__ import annotations

import uuid

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
