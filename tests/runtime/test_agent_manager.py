"""The agent manager: lazy loading, the LRU cache, eviction and expiry, on every backend."""

from __future__ import annotations

import pytest

from agentkeep import (
    AgentCreate,
    AgentUpdate,
    Async,
    DatabaseManager,
    NotFoundError,
    PersonaCreate,
    ToolCreate,
)
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


async def test_evict_and_expiry_reload_a_changed_agent(adb: DatabaseManager[Async]) -> None:
    agent = await adb.agents.create(AgentCreate(name="a"))
    clock = Clock()
    manager = AgentManager(adb, adb.settings, ttl=30, clock=clock)
    await manager.ensure_agent_instance(agent.id)
    await adb.agents.update(agent.id, AgentUpdate(model="m2"))
    assert (await manager.ensure_agent_instance(agent.id)).model == "echo-1"  # cached
    clock.now = 31
    assert (await manager.ensure_agent_instance(agent.id)).model == "m2"  # expired: reloaded
    await adb.agents.update(agent.id, AgentUpdate(model="m3"))
    manager.evict(agent.id)
    assert (await manager.ensure_agent_instance(agent.id)).model == "m3"


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
