"""The agent manager: lazy loading, the LRU cache, following the store's changes, expiry."""

from __future__ import annotations

import anyio.to_thread
import pytest
from sqlalchemy import update

from agentkeep import (
    AgentCreate,
    AgentUpdate,
    Async,
    DatabaseManager,
    NotFoundError,
    PersonaCreate,
    PersonaUpdate,
    ToolCreate,
    ToolUpdate,
    Unit,
    connect_sync,
)
from agentkeep.db.tables import agents
from agentkeep.managers.agents import AgentManager

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_miss_loads_agent_persona_and_tools_then_hits(adb: DatabaseManager[Async]) -> None:
    persona = await adb.personas.create(PersonaCreate(name="p", template="You are kind."))
    agent = await adb.agents.create(AgentCreate(name="a", persona_id=persona.id))
    tool = await adb.tools.create(ToolCreate(name="current_time"))
    await adb.agents.attach_tool(agent.id, tool.id)
    manager = AgentManager(adb, adb.settings)

    first = await manager.ensure_agent_instance(str(agent.id))
    assert (first.agent.id, first.persona, first.tools) == (agent.id, persona, (tool,))
    assert (first.provider, first.model) == ("echo", "echo-1")
    assert await manager.ensure_agent_instance(agent.id) is first
    assert (manager.stats.hits, manager.stats.misses) == (1, 1)


async def test_unknown_agent_is_not_found(adb: DatabaseManager[Async]) -> None:
    manager = AgentManager(adb, adb.settings)
    with pytest.raises(NotFoundError) as caught:
        await manager.ensure_agent_instance("00000000-0000-0000-0000-000000000000")
    assert caught.value.field == "agent_id"
    assert len(manager) == 0


async def test_a_change_made_outside_this_process_is_seen_when_the_entry_expires(
    adb: DatabaseManager[Async],
) -> None:
    agent = await adb.agents.create(AgentCreate(name="a"))
    clock = Clock()
    manager = AgentManager(adb, adb.settings, ttl=30, clock=clock)
    await manager.ensure_agent_instance(agent.id)

    def another_process(uow: Unit) -> None:  # SQL that no repository of this process ran
        uow.connection.execute(update(agents).where(agents.c.id == agent.id).values(model="m2"))

    await adb.run(another_process)
    assert (await manager.ensure_agent_instance(agent.id)).model == "echo-1"  # cached
    clock.now = 31
    assert (await manager.ensure_agent_instance(agent.id)).model == "m2"  # expired: reloaded
    manager.close()


async def test_a_changed_agent_is_written_through(adb: DatabaseManager[Async]) -> None:
    persona = await adb.personas.create(PersonaCreate(name="p", template="You are kind."))
    agent = await adb.agents.create(AgentCreate(name="a", persona_id=persona.id))
    manager = AgentManager(adb, adb.settings)
    await manager.ensure_agent_instance(agent.id)
    await adb.agents.update(agent.id, AgentUpdate(model="m2", description="new"))
    misses = manager.stats.misses
    fresh = await manager.ensure_agent_instance(agent.id)
    assert (fresh.model, fresh.agent.description, fresh.persona) == ("m2", "new", persona)
    assert manager.stats.misses == misses  # placed in the cache by the change, not re-read
    manager.close()


async def test_a_new_agent_is_ready_without_a_read_and_a_deleted_one_is_gone(
    adb: DatabaseManager[Async],
) -> None:
    manager = AgentManager(adb, adb.settings)
    agent = await adb.agents.create(AgentCreate(name="a", model="m1"))
    assert (await manager.ensure_agent_instance(agent.id)).model == "m1"
    assert manager.stats.misses == 0
    await adb.agents.delete(agent.id)
    with pytest.raises(NotFoundError):
        await manager.ensure_agent_instance(agent.id)
    manager.close()


async def test_tools_personas_and_modules_changed_anywhere_reach_the_cache(
    adb: DatabaseManager[Async],
) -> None:
    persona = await adb.personas.create(PersonaCreate(name="p", template="v1"))
    agent = await adb.agents.create(AgentCreate(name="a", persona_id=persona.id))
    tool = await adb.tools.create(ToolCreate(name="current_time"))
    manager = AgentManager(adb, adb.settings)
    assert (await manager.ensure_agent_instance(agent.id)).tools == ()
    await adb.agents.attach_tool(agent.id, tool.id)
    assert (await manager.ensure_agent_instance(agent.id)).tools == (tool,)
    await adb.personas.update(persona.id, PersonaUpdate(template="v2"))
    loaded = await manager.ensure_agent_instance(agent.id)
    assert loaded.persona is not None
    assert loaded.persona.template == "v2"
    await adb.tools.update(tool.id, ToolUpdate(description="tells the time"))
    assert (await manager.ensure_agent_instance(agent.id)).tools[0].description == "tells the time"
    await adb.agents.detach_tool(agent.id, tool.id)
    assert (await manager.ensure_agent_instance(agent.id)).tools == ()
    manager.close()


async def test_a_change_through_another_store_object_of_this_process_reaches_it(
    adb: DatabaseManager[Async], backend: str
) -> None:
    """A script's ``connect_sync()`` on the same database as the API, in the same process."""
    if backend == "memory":
        return  # each in-memory store is a database of its own
    agent = await adb.agents.create(AgentCreate(name="a"))
    manager = AgentManager(adb, adb.settings)
    await manager.ensure_agent_instance(agent.id)
    script = connect_sync(adb.settings)
    try:
        await anyio.to_thread.run_sync(
            lambda: script.agents.update(agent.id, AgentUpdate(model="from-a-script"))
        )
    finally:
        script.close()
    assert (await manager.ensure_agent_instance(agent.id)).model == "from-a-script"
    manager.close()


async def test_the_cache_keeps_the_most_recently_used(adb: DatabaseManager[Async]) -> None:
    ids = [(await adb.agents.create(AgentCreate(name=f"a{i}"))).id for i in range(3)]
    manager = AgentManager(adb, adb.settings.model_copy(update={"agent_cache_size": 2}))
    for agent_id in ids[:2]:
        await manager.ensure_agent_instance(agent_id)
    await manager.ensure_agent_instance(ids[0])  # a0 is now the most recent
    await manager.ensure_agent_instance(ids[2])  # a1, the least recent, goes
    assert len(manager) == 2
    assert manager.stats.evictions == 1
    misses = manager.stats.misses
    await manager.ensure_agent_instance(ids[0])
    assert manager.stats.misses == misses
    await manager.ensure_agent_instance(ids[1])
    assert manager.stats.misses == misses + 1


async def test_provider_and_model_come_from_settings_when_the_agent_names_none(
    adb: DatabaseManager[Async],
) -> None:
    agent = await adb.agents.create(AgentCreate(name="a"))
    settings = adb.settings.model_copy(update={"openai_base_url": "http://127.0.0.1:1/v1"})
    instance = await AgentManager(adb, settings).ensure_agent_instance(agent.id)
    assert (instance.provider, instance.model) == ("openai", "gpt-4o-mini")
