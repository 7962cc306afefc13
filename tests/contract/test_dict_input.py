"""What a create or an update takes on the Python API: its model, or a dict of the model's
fields (``db.agents.create({"name": "a"})``), checked as the model checks them, on every backend;
anything else is a ``TypeError`` saying what was expected."""

from __future__ import annotations

import pytest

from agentkeep import AgentCreate, ConversationCreate, MessageCreate
from agentkeep.errors import ValidationError
from agentkeep.repositories.base import Async, Sync
from agentkeep.repositories.facade import DatabaseManager


def test_every_create_and_update_takes_a_dict_of_its_fields(db: DatabaseManager[Sync]) -> None:
    persona = db.personas.create({"name": "kind", "template": "Be kind."})
    agent = db.agents.create({"name": "helper", "persona_id": persona.id})
    assert agent.persona_id == persona.id
    assert db.agents.update(agent.id, {"description": "helps"}).description == "helps"
    again = db.agents.upsert_by_name({"name": "helper", "description": "still helps"})
    assert (again.id, again.description) == (agent.id, "still helps")
    assert db.tools.create({"name": "clock"}).name == "clock"
    assert db.modules.create({"name": "tone", "type": "template"}).name == "tone"
    assert db.workflows.create({"name": "flow", "steps": ["helper"]}).steps == ["helper"]

    conversation = db.conversations.create({"user_id": "u1", "agent_id": agent.id})
    assert db.conversations.update(conversation.id, {"title": "hi"}).title == "hi"
    message = db.messages.append(conversation.id, {"role": "user", "content": "hello"})
    assert (message.seq, message.content) == (1, "hello")
    assert db.messages.update(message.id, {"content": "hello!"}).content == "hello!"

    memory = db.memories.add({"content": "likes tea", "user_id": "u1"})
    both = db.memories.add_many([{"content": "lives in Lyon"}, {"content": "works nights"}])
    assert [m.content for m in both] == ["lives in Lyon", "works nights"]
    assert db.memories.update(memory.id, {"importance": 0.9}).importance == 0.9
    assert db.memory.update(memory.id, {"content": "likes green tea"}).content == "likes green tea"

    template = db.templates.create(
        {"operation_type": "expense", "template_name": "t", "sample_input": "coffee 3"}
    )
    assert db.templates.update(template.id, {"sample_input": "tea 2"}).sample_input == "tea 2"


def test_a_bad_dict_is_refused_naming_its_field_and_stores_nothing(
    db: DatabaseManager[Sync],
) -> None:
    with pytest.raises(ValidationError) as refused:
        db.agents.create({"name": ""})
    assert refused.value.field == "name"
    with pytest.raises(ValidationError) as refused:
        db.agents.create({"name": "a", "colour": "blue"})  # not a field
    assert refused.value.field == "colour"
    assert db.agents.list().items == []
    conversation = db.conversations.create(ConversationCreate(user_id="u1"))
    with pytest.raises(ValidationError) as refused:
        db.messages.append(conversation.id, {"role": "robot", "content": "hi"})
    assert refused.value.field == "role"
    with pytest.raises(ValidationError) as refused:
        db.memories.add_many([{"content": "kept?"}, {"content": ""}])
    assert refused.value.field == "content"
    assert db.messages.count(conversation.id) == 0
    assert db.memories.list().items == []


def test_anything_else_is_a_type_error_saying_what_was_expected(
    db: DatabaseManager[Sync],
) -> None:
    with pytest.raises(TypeError, match="expected AgentCreate or a dict of its fields, not str"):
        db.agents.create("helper")  # type: ignore[arg-type]
    agent = db.agents.create(AgentCreate(name="helper"))
    with pytest.raises(TypeError, match="expected AgentUpdate or a dict of its fields, not list"):
        db.agents.update(agent.id, [("name", "x")])  # type: ignore[arg-type]
    conversation = db.conversations.create(ConversationCreate())
    with pytest.raises(TypeError, match="expected MessageCreate"):
        db.messages.append(conversation.id, AgentCreate(name="x"))  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_the_async_api_takes_dicts_too(adb: DatabaseManager[Async]) -> None:
    conversation = await adb.conversations.create({"user_id": "u1"})
    message = await adb.messages.append(conversation.id, {"role": "user", "content": "hi"})
    assert message.seq == 1
    assert (
        await adb.messages.append(conversation.id, MessageCreate(role="user", content="2"))
    ).seq == 2
