"""The ``adk`` provider: an agentkeep agent runs as an ADK ``LlmAgent``, on every backend.

Turns over the Python API and over HTTP SSE with the offline echo model (an ADK ``BaseLlm``)
stream and store their replies as other providers' turns do; the built ADK agent is kept with the
cached agent and rebuilt after a change; a model that cannot be reached ends the turn with an
error and the reply stored ``error``; a tool call goes round through agentkeep's tool runner.
"""

from __future__ import annotations

import importlib.util
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import httpx
import pytest

pytest.importorskip("google.adk")

from agentkeep import AgentCreate, AgentUpdate, Async, DatabaseManager, Settings, ToolCreate
from agentkeep.api import create_app
from agentkeep.integrations.adk.runtime import adk_agent, adk_runner, agent_name
from agentkeep.managers.agents import AgentManager
from agentkeep.managers.chat import ChatEvent, ChatRuntime, NewConversation, TurnInput
from agentkeep.models.conversation import ToolCallRecord
from agentkeep.providers.echo import PREFIX
from api.shapes import read_sse

pytestmark = pytest.mark.anyio

API = "/api/v1"


@pytest.fixture
def runtime(adb: DatabaseManager[Async]) -> ChatRuntime:
    return ChatRuntime(adb, AgentManager(adb, adb.settings), adb.settings)


async def adk_agent_row(
    adb: DatabaseManager[Async], *, model: str = "echo", **settings: Any
) -> uuid.UUID:
    agent = await adb.agents.create(
        AgentCreate(
            name=f"adk-{uuid.uuid4().hex[:6]}", provider="adk", model=model, model_settings=settings
        )
    )
    return agent.id


async def run(runtime: ChatRuntime, agent_id: uuid.UUID, content: str) -> list[ChatEvent]:
    turn = await runtime.start(NewConversation(agent_id=agent_id, content=content, user_id="u1"))
    async with aclosing(turn.events()) as events:
        return [event async for event in events]


def text_of(events: list[ChatEvent]) -> str:
    return "".join(e.data["text"] for e in events if e.event == "token")


class TestTurns:
    async def test_a_turn_streams_tokens_and_stores_the_reply(
        self, runtime: ChatRuntime, adb: DatabaseManager[Async]
    ) -> None:
        agent_id = await adk_agent_row(adb)
        events = await run(runtime, agent_id, "bought coffee for 300 roubles")

        kinds = [e.event for e in events]
        assert kinds[0] == "message_start"
        assert kinds[-1] == "message_end"
        assert set(kinds[1:-1]) == {"token"}
        assert len(kinds) > 4
        assert events[0].data["provider"] == "adk"
        text = text_of(events)
        assert text == f"{PREFIX} You said: bought coffee for 300 roubles"
        end = events[-1].data
        assert end["status"] == "complete"
        assert end["output_tokens"] == kinds.count("token")
        reply = await adb.messages.get(end["message_id"])
        assert (reply.status, reply.content) == ("complete", text)
        assert reply.metadata["provider"] == "adk"

    async def test_the_history_reaches_the_adk_agent(
        self, runtime: ChatRuntime, adb: DatabaseManager[Async]
    ) -> None:
        agent_id = await adk_agent_row(adb, thinking=True)
        first = await run(runtime, agent_id, "one")
        cid = first[0].data["conversation_id"]
        turn = await runtime.send(uuid.UUID(cid), TurnInput(content="two three"))
        async with aclosing(turn.events()) as stream:
            events = [event async for event in stream]
        thinking = "".join(e.data["text"] for e in events if e.event == "thinking")
        assert thinking == "The user wrote 2 words; I will repeat them."
        assert text_of(events).endswith("You said: two three")
        # the prompt held the earlier turn: more input tokens than the new message alone
        assert events[-1].data["input_tokens"] > first[-1].data["input_tokens"]
        stored = await adb.messages.last(uuid.UUID(cid))
        assert [m.role for m in stored] == ["user", "assistant", "user", "assistant"]

    async def test_a_tool_call_goes_round_through_agentkeeps_tool_runner(
        self, runtime: ChatRuntime, adb: DatabaseManager[Async]
    ) -> None:
        tool = await adb.tools.create(
            ToolCreate(
                name="current_time",
                description="the time now",
                parameters={"type": "object", "properties": {"timezone": {"type": "string"}}},
            )
        )
        agent_id = await adk_agent_row(
            adb, tool_call={"name": "current_time", "arguments": {"timezone": "UTC"}}
        )
        await adb.agents.attach_tool(agent_id, tool.id)

        events = await run(runtime, agent_id, "what time is it")

        kinds = [e.event for e in events]
        assert kinds[:3] == ["message_start", "tool_call", "tool_result"]
        assert kinds[-1] == "message_end"
        call, result = events[1].data, events[2].data
        assert (call["name"], call["arguments"]) == ("current_time", {"timezone": "UTC"})
        assert result["is_error"] is False
        assert '"timezone": "UTC"' in result["content"]
        assert f"The tool current_time returned: {result['content']}" in text_of(events)
        stored = await adb.messages.last(uuid.UUID(events[0].data["conversation_id"]))
        assert [m.role for m in stored] == ["user", "assistant", "tool"]
        assert stored[1].tool_calls is not None
        (record,) = stored[1].tool_calls
        assert isinstance(record, ToolCallRecord)
        assert record.name == "current_time"


class TestFailures:
    @pytest.mark.skipif(importlib.util.find_spec("litellm") is not None, reason="litellm present")
    async def test_a_model_behind_missing_litellm_ends_in_an_error_naming_the_extra(
        self, runtime: ChatRuntime, adb: DatabaseManager[Async]
    ) -> None:
        agent_id = await adk_agent_row(adb, model="gpt-4o-mini")
        events = await run(runtime, agent_id, "hello")

        assert [e.event for e in events] == ["message_start", "error"]
        error = events[-1].data
        assert error["code"] == "provider_error"
        assert error["field"] == "model"
        assert "agentkeep[adk-litellm]" in error["message"]
        reply = await adb.messages.get(error["message_id"])
        assert reply.status == "error"

    async def test_a_model_failing_midway_keeps_the_partial_reply_as_error(
        self, runtime: ChatRuntime, adb: DatabaseManager[Async]
    ) -> None:
        agent_id = await adk_agent_row(adb, fail="the model fell over", fail_after_tokens=2)
        events = await run(runtime, agent_id, "one two three")

        assert [e.event for e in events] == ["message_start", "token", "token", "error"]
        assert events[-1].data["message"] == "the model fell over"
        reply = await adb.messages.get(events[-1].data["message_id"])
        assert (reply.status, reply.content) == ("error", "(echo, the ")

    async def test_a_failing_model_logs_one_line_and_adks_tracebacks_only_at_debug(
        self, runtime: ChatRuntime, adb: DatabaseManager[Async], caplog: pytest.LogCaptureFixture
    ) -> None:
        agent_id = await adk_agent_row(adb, fail="boom")
        name = (await adb.agents.get(agent_id)).name
        caplog.set_level(logging.INFO)
        events = await run(runtime, agent_id, "hello")
        assert events[-1].data["message"] == "boom"
        shown = [r for r in caplog.records if r.levelno >= logging.INFO]
        assert [(r.name, r.levelname, r.getMessage()) for r in shown] == [
            ("agentkeep.adk", "WARNING", f"the adk agent {name!r} failed: boom")
        ]
        assert all(r.exc_info is None for r in shown)

        caplog.clear()
        caplog.set_level(logging.DEBUG)
        await run(runtime, agent_id, "hello again")
        tracebacks = [r for r in caplog.records if r.exc_info is not None]
        assert tracebacks
        assert {r.levelname for r in tracebacks} == {"DEBUG"}
        assert any(r.name.startswith("google_adk") for r in tracebacks)


class TestCache:
    async def test_the_adk_agent_is_built_once_and_again_after_the_agent_changes(
        self, runtime: ChatRuntime, adb: DatabaseManager[Async]
    ) -> None:
        agent_id = await adk_agent_row(adb)
        await run(runtime, agent_id, "first")
        instance = await runtime.agents.ensure_agent_instance(agent_id)
        built = adk_agent(instance, adb.settings)
        await run(runtime, agent_id, "second")
        assert (
            adk_agent(await runtime.agents.ensure_agent_instance(agent_id), adb.settings) is built
        )
        assert built.description == ""

        await adb.agents.update(agent_id, AgentUpdate(description="Answers about expenses"))
        changed = await runtime.agents.ensure_agent_instance(agent_id)
        rebuilt = adk_agent(changed, adb.settings)
        assert rebuilt is not built
        assert rebuilt.description == "Answers about expenses"
        events = await run(runtime, agent_id, "third")
        assert events[-1].event == "message_end"
        assert (
            adk_agent(await runtime.agents.ensure_agent_instance(agent_id), adb.settings) is rebuilt
        )


class TestAdkRunner:
    async def test_adks_own_runner_keeps_its_session_as_a_conversation_of_the_agent(
        self, runtime: ChatRuntime, adb: DatabaseManager[Async]
    ) -> None:
        from google.genai import types

        agent_id = await adk_agent_row(adb)
        runner = await adk_runner(adb, runtime.agents, agent_id)
        agent = await adb.agents.get(agent_id)
        session = await runner.session_service.create_session(app_name=agent.name, user_id="bob")
        said = []
        async for event in runner.run_async(
            user_id="bob",
            session_id=session.id,
            new_message=types.Content(role="user", parts=[types.Part(text="hello adk")]),
        ):
            if event.author == agent_name(agent.name) and event.content and event.content.parts:
                said.append(event.content.parts[0].text)
        assert said == [f"{PREFIX} You said: hello adk"]
        conversations = (await adb.conversations.list(user_id="bob")).items
        assert [c.agent_id for c in conversations] == [agent_id]
        stored = await adb.messages.last(conversations[0].id)
        assert [(m.role, m.content) for m in stored] == [
            ("user", "hello adk"),
            ("assistant", f"{PREFIX} You said: hello adk"),
        ]


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c,
    ):
        yield c


class TestOverHttp:
    async def test_an_sse_turn_streams_and_the_conversation_shows_the_reply(
        self, client: httpx.AsyncClient
    ) -> None:
        body = {"name": f"adk-{uuid.uuid4().hex[:6]}", "provider": "adk", "model": "echo"}
        created = await client.post(f"{API}/agents", json=body)
        assert created.status_code == 201, created.text
        response = await client.post(
            f"{API}/streaming/start",
            json={"agent_id": created.json()["id"], "content": "hi over http", "user_id": "u1"},
        )
        events = await read_sse(response)

        kinds = [kind for kind, _ in events]
        assert kinds[0] == "message_start"
        assert kinds[-1] == "message_end"
        assert set(kinds[1:-1]) == {"token"}
        text = "".join(data["text"] for kind, data in events if kind == "token")
        assert text == f"{PREFIX} You said: hi over http"
        cid = events[0][1]["conversation_id"]
        stored = (await client.get(f"{API}/conversations/{cid}/messages")).json()["items"]
        assert [(m["role"], m["status"]) for m in stored] == [
            ("user", "complete"),
            ("assistant", "complete"),
        ]
        assert stored[1]["content"] == text
        assert stored[1]["metadata"]["provider"] == "adk"

    async def test_an_unknown_provider_is_refused_with_the_choices(
        self, client: httpx.AsyncClient
    ) -> None:
        body = {"name": "x", "provider": "adkk"}
        response = await client.post(f"{API}/agents", json=body)
        assert response.status_code == 422
        assert "adk" in response.text
