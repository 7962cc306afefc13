"""Contract: agents, tools and the links between them behave the same on every backend."""

from __future__ import annotations

import uuid

import pytest

from agentkeep import (
    AgentCreate,
    AgentUpdate,
    ConversationCreate,
    DatabaseManager,
    NotFoundError,
    PersonaCreate,
    Sync,
    TooLargeError,
    ToolCreate,
    ToolUpdate,
    ValidationError,
)
from agentkeep.models.common import validate_input


def _agent_with_tool(db: DatabaseManager[Sync]) -> tuple[uuid.UUID, uuid.UUID]:
    agent = db.agents.create(AgentCreate(name="planner"))
    tool = db.tools.create(ToolCreate(name="search"))
    db.agents.attach_tool(agent.id, tool.id)
    return agent.id, tool.id


class TestAgents:
    def test_create_round_trips_every_field(self, db: DatabaseManager[Sync]) -> None:
        persona = db.personas.create(PersonaCreate(name="p", template="t"))
        sent = AgentCreate(
            name="бухгалтер",
            description="Считает расходы 💰",
            persona_id=persona.id,
            provider="openai",
            model="claude-sonnet",
            model_settings={"temperature": 0.2, "max_tokens": 1024, "stop": ["\n\n"]},
            metadata={"team": "финансы", "nested": {"list": [1, 2.5, None, True]}},
            include_history=False,
        )
        stored = db.agents.create(sent)
        assert stored.model_dump(include=set(sent.model_dump())) == sent.model_dump()
        assert (stored.conversation_count, stored.message_count) == (0, 0)
        assert stored.last_used_at is None
        assert db.agents.get(stored.id) == stored

    def test_unknown_persona_is_not_found_and_nothing_is_written(
        self, db: DatabaseManager[Sync]
    ) -> None:
        with pytest.raises(NotFoundError) as caught:
            db.agents.create(AgentCreate(name="a", persona_id=uuid.uuid4()))
        assert caught.value.field == "persona_id"
        with pytest.raises(NotFoundError) as caught:
            db.agents.upsert_by_name(AgentCreate(name="a", persona_id=uuid.uuid4()))
        assert caught.value.field == "persona_id"
        assert db.agents.count() == 0
        agent = db.agents.create(AgentCreate(name="b"))
        with pytest.raises(NotFoundError) as caught:
            db.agents.update(agent.id, AgentUpdate(persona_id=uuid.uuid4()))
        assert caught.value.field == "persona_id"
        assert db.agents.get(agent.id) == agent

    def test_oversized_metadata_is_too_large_and_nothing_is_written(
        self, db: DatabaseManager[Sync]
    ) -> None:
        huge = {"blob": "x" * db.settings.max_metadata_bytes}
        with pytest.raises(TooLargeError) as caught:
            db.agents.create(AgentCreate(name="a", metadata=huge))
        assert caught.value.field == "metadata"
        with pytest.raises(TooLargeError) as caught:
            db.agents.upsert_by_name(AgentCreate(name="a", model_settings=huge))
        assert caught.value.field == "model_settings"
        assert db.agents.count() == 0
        agent = db.agents.create(AgentCreate(name="a"))
        with pytest.raises(TooLargeError):
            db.agents.update(agent.id, AgentUpdate(metadata=huge))
        assert db.agents.get(agent.id).metadata == {}

    def test_unstorable_json_is_a_validation_error(self, db: DatabaseManager[Sync]) -> None:
        with pytest.raises(ValidationError) as caught:
            db.agents.create(AgentCreate(name="a", metadata={"note": "nul \x00 byte"}))
        assert caught.value.field == "metadata"
        with pytest.raises(ValidationError) as caught:
            db.agents.upsert_by_name(AgentCreate(name="a", model_settings={"t": float("nan")}))
        assert caught.value.field == "model_settings"
        assert db.agents.count() == 0

    def test_usage_statistics_are_not_input(self) -> None:
        with pytest.raises(ValidationError) as caught:
            validate_input(AgentUpdate, {"conversation_count": 3})
        assert caught.value.field == "conversation_count"

    def test_upsert_keeps_usage_statistics(self, db: DatabaseManager[Sync]) -> None:
        agent = db.agents.upsert_by_name(AgentCreate(name="a", model="m1"))
        db.conversations.create(ConversationCreate(agent_id=agent.id))
        used = db.agents.get(agent.id)
        assert used.conversation_count == 1
        assert used.updated_at == agent.updated_at  # usage is not a configuration change
        redeclared = db.agents.upsert_by_name(AgentCreate(name="a", model="m2"))
        assert (redeclared.model, redeclared.conversation_count) == ("m2", 1)
        assert redeclared.last_used_at == used.last_used_at

    def test_list_filters_by_persona(self, db: DatabaseManager[Sync]) -> None:
        persona = db.personas.create(PersonaCreate(name="p", template="t"))
        db.agents.create(AgentCreate(name="with", persona_id=persona.id))
        db.agents.create(AgentCreate(name="without"))
        assert [a.name for a in db.agents.list(persona_id=str(persona.id)).items] == ["with"]
        with pytest.raises(ValidationError) as caught:
            db.agents.list(persona_id="nope")
        assert caught.value.field == "persona_id"

    def test_attach_tool_is_idempotent(self, db: DatabaseManager[Sync]) -> None:
        agent_id, tool_id = _agent_with_tool(db)
        assert db.agents.attach_tool(str(agent_id), str(tool_id)) is False
        other = db.tools.create(ToolCreate(name="calculator"))
        assert db.agents.attach_tool(agent_id, other.id) is True
        assert [t.name for t in db.agents.list_tools(agent_id).items] == ["calculator", "search"]

    def test_an_agents_tools_and_a_tools_agents_come_in_pages(
        self, db: DatabaseManager[Sync]
    ) -> None:
        agent = db.agents.create(AgentCreate(name="many"))
        names = ["c", "a", "é", "b", "z"]
        for name in names:
            tool = db.tools.create(ToolCreate(name=name))
            db.agents.attach_tool(agent.id, tool.id)
            db.agents.attach_tool(db.agents.create(AgentCreate(name=f"user-{name}")).id, tool.id)
        seen, cursor = [], None
        while True:
            page = db.agents.list_tools(agent.id, limit=2, cursor=cursor)
            assert len(page.items) <= 2
            seen += [t.name for t in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == [t.name for t in db.agents.list_tools(agent.id).items]
        assert sorted(seen) == sorted(names)
        first = db.tools.find_by_name("a")
        assert first is not None
        using = db.tools.list_agents_using(first.id, limit=1)
        assert [a.name for a in using.items] == ["many"]
        rest = db.tools.list_agents_using(first.id, limit=1, cursor=using.next_cursor)
        assert ([a.name for a in rest.items], rest.next_cursor) == (["user-a"], None)
        with pytest.raises(ValidationError) as caught:
            db.agents.list_tools(agent.id, limit=2, cursor="nonsense")
        assert caught.value.field == "cursor"
        with pytest.raises(ValidationError) as caught:
            db.agents.list_tools(agent.id, limit=0)
        assert caught.value.field == "limit"

    def test_detach_tool_is_idempotent(self, db: DatabaseManager[Sync]) -> None:
        agent_id, tool_id = _agent_with_tool(db)
        assert db.agents.detach_tool(agent_id, tool_id) is True
        assert db.agents.detach_tool(agent_id, tool_id) is False
        assert db.agents.list_tools(agent_id).items == []
        assert db.tools.find(tool_id) is not None

    def test_attaching_to_or_from_nothing_is_not_found_naming_which(
        self, db: DatabaseManager[Sync]
    ) -> None:
        agent = db.agents.create(AgentCreate(name="a"))
        tool = db.tools.create(ToolCreate(name="t"))
        with pytest.raises(NotFoundError) as caught:
            db.agents.attach_tool(uuid.uuid4(), tool.id)
        assert caught.value.field == "agent_id"
        with pytest.raises(NotFoundError) as caught:
            db.agents.attach_tool(agent.id, uuid.uuid4())
        assert caught.value.field == "tool_id"
        with pytest.raises(ValidationError) as malformed:
            db.agents.attach_tool(agent.id, "tool")
        assert malformed.value.field == "tool_id"
        with pytest.raises(NotFoundError) as caught:
            db.agents.list_tools(uuid.uuid4())
        assert caught.value.field == "agent_id"
        assert db.agents.list_tools(agent.id).items == []

    def test_deleting_an_agent_removes_its_links_but_not_the_tool(
        self, db: DatabaseManager[Sync]
    ) -> None:
        agent_id, tool_id = _agent_with_tool(db)
        assert db.agents.delete(agent_id) is True
        assert db.tools.get(tool_id).name == "search"
        assert db.tools.list_agents_using(tool_id).items == []

    def test_deleting_a_tool_detaches_it(self, db: DatabaseManager[Sync]) -> None:
        agent_id, tool_id = _agent_with_tool(db)
        assert db.tools.delete(tool_id) is True
        assert db.agents.list_tools(agent_id).items == []


class TestTools:
    def test_create_round_trips_every_field(self, db: DatabaseManager[Sync]) -> None:
        sent = ToolCreate(
            name="add_expense",
            description="Записать расход в таблицу 📊",
            parameters={
                "type": "object",
                "properties": {
                    "amount": {"type": "number", "minimum": 0},
                    "category": {"type": "string", "enum": ["еда", "транспорт"]},
                },
                "required": ["amount"],
            },
            config={"sheet": "Расходы", "retries": 3},
        )
        stored = db.tools.create(sent)
        assert stored.model_dump(include=set(sent.model_dump())) == sent.model_dump()
        assert (stored.usage_count, stored.last_used_at) == (0, None)
        assert db.tools.get(stored.id) == stored

    def test_record_use_counts_calls_without_changing_the_configuration(
        self, db: DatabaseManager[Sync]
    ) -> None:
        tool = db.tools.create(ToolCreate(name="t"))
        db.tools.record_use(tool.id)
        used = db.tools.record_use(str(tool.id))
        assert used.usage_count == 2
        assert used.last_used_at is not None
        assert used.last_used_at >= tool.created_at
        assert used.updated_at == tool.updated_at
        assert db.tools.get(tool.id) == used

    def test_record_use_of_an_unknown_tool_is_not_found(self, db: DatabaseManager[Sync]) -> None:
        with pytest.raises(NotFoundError) as caught:
            db.tools.record_use(uuid.uuid4())
        assert caught.value.field == "tool_id"

    def test_list_agents_using_a_tool(self, db: DatabaseManager[Sync]) -> None:
        _, tool_id = _agent_with_tool(db)
        second = db.agents.create(AgentCreate(name="critic"))
        db.agents.attach_tool(second.id, tool_id)
        assert [a.name for a in db.tools.list_agents_using(tool_id).items] == ["critic", "planner"]
        with pytest.raises(NotFoundError) as caught:
            db.tools.list_agents_using(uuid.uuid4())
        assert caught.value.field == "tool_id"

    def test_agents_using_each_of_several_tools_in_one_call(
        self, db: DatabaseManager[Sync]
    ) -> None:
        _, tool_id = _agent_with_tool(db)
        second = db.agents.create(AgentCreate(name="critic"))
        db.agents.attach_tool(second.id, tool_id)
        unused = db.tools.create(ToolCreate(name="unused")).id
        using = db.tools.agents_using_each([tool_id, str(unused)])
        assert {key: [a.name for a in agents] for key, agents in using.items()} == {
            tool_id: ["critic", "planner"],
            unused: [],
        }
        assert using[tool_id] == db.tools.list_agents_using(tool_id).items
        assert db.tools.agents_using_each([]) == {}

    def test_oversized_parameters_are_too_large(self, db: DatabaseManager[Sync]) -> None:
        huge = {"description": "x" * db.settings.max_metadata_bytes}
        with pytest.raises(TooLargeError) as caught:
            db.tools.create(ToolCreate(name="t", parameters=huge))
        assert caught.value.field == "parameters"
        tool = db.tools.create(ToolCreate(name="t"))
        with pytest.raises(TooLargeError) as caught:
            db.tools.update(tool.id, ToolUpdate(config=huge))
        assert caught.value.field == "config"
        assert db.tools.get(tool.id) == tool
