"""What another process changes (``agentkeep serve --workers``, another instance, a script)
reaches this process's caches at their next use, through the store's change log, not a minute
later when they expire."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from agentkeep import (
    AgentCreate,
    AgentUpdate,
    Async,
    ConversationCreate,
    ConversationUpdate,
    DatabaseManager,
    NotFoundError,
    PersonaCreate,
    PersonaUpdate,
    Settings,
    Sync,
    connect_sync,
)
from agentkeep.db.changes import Change, Changes
from agentkeep.managers.agents import AgentManager
from agentkeep.managers.chat import ChatRuntime
from agentkeep.managers.turn_types import TurnInput
from agentkeep.repositories import store_changes

pytestmark = pytest.mark.anyio


@pytest.fixture
def elsewhere(settings: Settings, backend: str) -> Iterator[DatabaseManager[Sync]]:
    """A store on the same database as another process has it: its own listeners and origin."""
    if backend == "memory":
        pytest.skip("the in-memory store lives in one process")
    other = connect_sync(settings)
    other.service.changes = Changes()
    yield other
    other.close()


@pytest.fixture
def manager(adb: DatabaseManager[Async]) -> Iterator[AgentManager]:
    found = AgentManager(adb, adb.settings)
    yield found
    found.close()


async def test_an_agent_edited_elsewhere_runs_as_edited_at_its_next_use(
    adb: DatabaseManager[Async], elsewhere: DatabaseManager[Sync], manager: AgentManager
) -> None:
    agent = await adb.agents.create(AgentCreate(name="a"))
    await manager.ensure_agent_instance(agent.id)

    elsewhere.agents.update(agent.id, AgentUpdate(model_settings={"fail": "boom"}))

    fresh = await manager.ensure_agent_instance(agent.id)
    assert fresh.agent.model_settings == {"fail": "boom"}
    assert await manager.ensure_agent_instance(agent.id) is fresh  # then cached again


async def test_a_persona_edited_or_an_agent_deleted_elsewhere(
    adb: DatabaseManager[Async], elsewhere: DatabaseManager[Sync], manager: AgentManager
) -> None:
    persona = await adb.personas.create(PersonaCreate(name="p", template="You are kind."))
    agent = await adb.agents.create(AgentCreate(name="a", persona_id=persona.id))
    await manager.ensure_agent_instance(agent.id)

    elsewhere.personas.update(persona.id, PersonaUpdate(template="You are terse."))
    instance = await manager.ensure_agent_instance(agent.id)
    assert instance.persona is not None
    assert instance.persona.template == "You are terse."

    elsewhere.agents.delete(agent.id)
    with pytest.raises(NotFoundError):
        await manager.ensure_agent_instance(agent.id)


async def test_this_process_does_not_hear_its_own_changes_again(
    adb: DatabaseManager[Async], manager: AgentManager
) -> None:
    agent = await adb.agents.create(AgentCreate(name="a"))
    await manager.ensure_agent_instance(agent.id)
    await adb.agents.update(agent.id, AgentUpdate(model="m2"))  # written through the cache
    misses = manager.stats.misses

    assert (await manager.ensure_agent_instance(agent.id)).model == "m2"
    assert manager.stats.misses == misses  # its own log entry did not evict it
    assert await adb.follow_changes() == 0


async def test_a_conversation_given_another_agent_elsewhere_is_answered_by_it(
    adb: DatabaseManager[Async], elsewhere: DatabaseManager[Sync], manager: AgentManager
) -> None:
    first = await adb.agents.create(AgentCreate(name="first"))
    second = await adb.agents.create(AgentCreate(name="second"))
    conversation = await adb.conversations.create(
        ConversationCreate(user_id="u", agent_id=first.id)
    )
    runtime = ChatRuntime(adb, manager, adb.settings)
    try:
        turn = await runtime.send(conversation.id, TurnInput(content="hi"))
        assert turn.instance.agent.id == first.id

        elsewhere.conversations.update(conversation.id, ConversationUpdate(agent_id=second.id))

        turn = await runtime.send(conversation.id, TurnInput(content="hi"))
        assert turn.instance.agent.id == second.id
    finally:
        runtime.close()


async def test_a_real_other_process(
    adb: DatabaseManager[Async], settings: Settings, backend: str, manager: AgentManager
) -> None:
    if settings.url is None or backend == "memory":
        pytest.skip("the in-memory store lives in one process")
    agent = await adb.agents.create(AgentCreate(name="a"))
    await manager.ensure_agent_instance(agent.id)
    url = settings.url.render_as_string(hide_password=False)
    script = (
        "import agentkeep, sys\n"
        "db = agentkeep.connect_sync(agentkeep.Settings(database_url=sys.argv[1], "
        "auto_migrate=False))\n"
        "db.agents.update(sys.argv[2], agentkeep.AgentUpdate(model='from-a-script'))\n"
    )
    subprocess.run([sys.executable, "-c", script, url, str(agent.id)], check=True, timeout=60)

    assert (await manager.ensure_agent_instance(agent.id)).model == "from-a-script"


async def test_a_process_that_fell_behind_the_trimmed_log_drops_every_copy(
    adb: DatabaseManager[Async],
    elsewhere: DatabaseManager[Sync],
    manager: AgentManager,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    agent = await adb.agents.create(AgentCreate(name="a"))
    other = await adb.agents.create(AgentCreate(name="b"))
    await manager.ensure_agent_instance(agent.id)
    await manager.ensure_agent_instance(other.id)
    monkeypatch.setattr(store_changes, "KEEP", 3)
    monkeypatch.setattr(store_changes, "TRIM_EVERY", 1)

    for i in range(6):  # entries this process never followed, then trimmed away
        elsewhere.agents.update(other.id, AgentUpdate(description=f"d{i}"))
    elsewhere.agents.update(agent.id, AgentUpdate(model="m3"))

    assert (await manager.ensure_agent_instance(agent.id)).model == "m3"
    assert len(manager) == 1  # the other agent's copy was dropped too: it is read again
    fresh = await manager.ensure_agent_instance(other.id)
    assert fresh.agent.description == "d5"


def test_on_postgresql_the_log_is_written_in_commit_order(
    elsewhere: DatabaseManager[Sync], backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has one writer at a time")
    agent = elsewhere.agents.create(AgentCreate(name="a"))
    service = elsewhere.service

    order: list[str] = []
    with service.unit("write") as conn:
        store_changes.record(conn, [Change("agent", agent.id)], "first")

        def second() -> None:
            with service.unit("write") as other:
                store_changes.record(other, [Change("agent", agent.id)], "second")
            order.append("second committed")

        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.3)  # the second writer waits for the log's lock, which this one holds
        order.append("first commits")
    thread.join(10)

    assert order == ["first commits", "second committed"]
    with service.unit("read") as conn:
        rows = conn.exec_driver_sql(
            "SELECT origin FROM store_changes WHERE origin IN ('first', 'second') ORDER BY seq"
        ).all()
    assert [r[0] for r in rows] == ["first", "second"]
