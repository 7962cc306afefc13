"""Chat turns whose tools fail, time out or are refused, or that run out of tool rounds; and
history across a user's conversations. Driven over SSE with the echo model, on every backend.

Each of these turns still ends with ``message_end`` and a reply stored as ``complete``: the model
is told what went wrong as an error result, and the echo model repeats it in its reply.
"""

from __future__ import annotations

import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentkeep import Settings
from agentkeep.api import create_app
from agentkeep.providers.echo import PREFIX
from api.shapes import read_sse

pytestmark = pytest.mark.anyio

API = "/api/v1"
Events = list[tuple[str, dict[str, Any]]]

TOOLS = """
import time

def slow(seconds):
    time.sleep(seconds)
    return "finally done"

def big(size):
    return "x" * size
"""


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A package of tool functions under a fresh name, on ``sys.path``."""
    name = f"akchat_{uuid.uuid4().hex[:8]}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / name / "box.py").write_text(textwrap.dedent(TOOLS))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for module in [m for m in sys.modules if m.startswith(name)]:
        del sys.modules[module]


@asynccontextmanager
async def client_for(settings: Settings, **changes: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update=changes))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c,
    ):
        yield c


async def agent_with_tool(
    client: httpx.AsyncClient, tool: dict[str, Any], arguments: dict[str, Any] | None = None
) -> str:
    """An echo agent that calls ``tool`` (created and attached here) on every user message."""
    name = tool["name"]
    call = {"name": name, "arguments": arguments or {}}
    created = await client.post(
        f"{API}/agents",
        json={"name": f"agent-{uuid.uuid4().hex[:8]}", "model_settings": {"tool_call": call}},
    )
    assert created.status_code == 201, created.text
    agent_id: str = created.json()["id"]
    made = await client.post(f"{API}/tools", json=tool)
    assert made.status_code == 201, made.text
    attached = await client.post(f"{API}/agents/{agent_id}/tools/{made.json()['id']}")
    assert attached.status_code < 300, attached.text
    return agent_id


async def start(client: httpx.AsyncClient, agent_id: str, content: str, user: str = "u1") -> Events:
    body = {"agent_id": agent_id, "content": content, "user_id": user}
    return await read_sse(await client.post(f"{API}/streaming/start", json=body))


def names(events: Events) -> list[str]:
    return [event for event, _ in events]


def text_of(events: Events) -> str:
    return "".join(data["text"] for event, data in events if event == "token")


def result_of(events: Events) -> dict[str, Any]:
    return next(data for event, data in events if event == "tool_result")


async def stored(client: httpx.AsyncClient, events: Events) -> list[dict[str, Any]]:
    cid = events[0][1]["conversation_id"]
    items: list[dict[str, Any]] = (await client.get(f"{API}/conversations/{cid}/messages")).json()[
        "items"
    ]
    return items


class TestFailingTools:
    async def test_a_sync_tool_past_its_limit_is_an_error_the_turn_goes_on(
        self, settings: Settings, package: str
    ) -> None:
        async with client_for(settings, tool_modules=[package], tool_timeout=0.3) as client:
            tool = {"name": "slow", "config": {"callable": f"{package}.box:slow"}}
            agent_id = await agent_with_tool(client, tool, {"seconds": 3})
            began = time.perf_counter()
            events = await start(client, agent_id, "take your time")
            assert time.perf_counter() - began < 2.0  # not the tool's 3 s
            assert names(events)[:3] == ["message_start", "tool_call", "tool_result"]
            assert names(events)[-1] == "message_end"
            assert events[-1][1]["status"] == "complete"
            result = result_of(events)
            assert result["is_error"] is True
            assert result["content"] == "slow took longer than 0.3 s"
            assert "The tool slow returned: slow took longer than 0.3 s" in text_of(events)
            messages = await stored(client, events)
            assert [(m["role"], m["status"]) for m in messages] == [
                ("user", "complete"),
                ("assistant", "complete"),
                ("tool", "complete"),
            ]
            assert messages[2]["metadata"]["is_error"] is True
            assert "finally done" not in str(messages)  # what it returned later was discarded

    async def test_a_callable_outside_the_allowed_modules_is_refused_and_not_imported(
        self, settings: Settings, package: str
    ) -> None:
        elsewhere = f"{package}_evil.box"
        async with client_for(settings, tool_modules=[package]) as client:
            tool = {"name": "sneaky", "config": {"callable": f"{elsewhere}:slow"}}
            events = await start(client, await agent_with_tool(client, tool), "try it")
            result = result_of(events)
            assert result["is_error"] is True
            assert result["content"].startswith(f"sneaky failed: PermissionError: {package}_evil")
            assert "AGENTKEEP_TOOL_MODULES" in result["content"]
            assert events[-1][0] == "message_end"
            assert "The tool sneaky returned: sneaky failed: PermissionError" in text_of(events)
            assert elsewhere not in sys.modules
            assert f"{package}_evil" not in sys.modules

    async def test_a_result_too_large_to_store_is_an_error_the_turn_goes_on(
        self, settings: Settings, package: str
    ) -> None:
        async with client_for(settings, tool_modules=[package], max_content_bytes=4000) as client:
            tool = {"name": "big", "config": {"callable": f"{package}.box:big"}}
            events = await start(client, await agent_with_tool(client, tool, {"size": 5000}), "x")
            assert result_of(events) == {
                **result_of(events),
                "is_error": True,
                "content": "big returned 5000 bytes; a result may have at most 4000 "
                "(AGENTKEEP_MAX_CONTENT_BYTES)",
            }
            assert events[-1][0] == "message_end"
            assert events[-1][1]["status"] == "complete"


class TestToolRounds:
    async def test_a_turn_that_runs_out_of_tool_rounds_answers_without_tools(
        self, settings: Settings
    ) -> None:
        """With no tool round left after the first, the tool runs, its result is stored, and the
        model is called once more offering no tools: it answers with the result."""
        async with client_for(settings, max_tool_rounds=1) as client:
            agent_id = await agent_with_tool(client, {"name": "current_time"})
            events = await start(client, agent_id, "what time is it?")
            assert names(events)[:3] == ["message_start", "tool_call", "tool_result"]
            assert set(names(events)[3:-1]) == {"token"}
            assert events[-1][1]["status"] == "complete"
            assert result_of(events)["is_error"] is False
            messages = await stored(client, events)
            assert [(m["role"], m["status"]) for m in messages] == [
                ("user", "complete"),
                ("assistant", "complete"),
                ("tool", "complete"),
            ]
            reply = messages[1]
            assert reply["content"] == text_of(events)
            assert reply["content"].startswith(f"{PREFIX} You said: what time is it?")
            assert reply["metadata"]["tool_rounds_exhausted"] is True
            assert [call["name"] for call in reply["tool_calls"]] == ["current_time"]
            assert messages[2]["metadata"]["tool_call_id"] == reply["tool_calls"][0]["id"]

    async def test_a_second_round_lets_the_model_answer_with_the_result(
        self, settings: Settings
    ) -> None:
        async with client_for(settings, max_tool_rounds=2) as client:
            agent_id = await agent_with_tool(client, {"name": "current_time"})
            events = await start(client, agent_id, "what time is it?")
            assert names(events)[:3] == ["message_start", "tool_call", "tool_result"]
            assert set(names(events)[3:-1]) == {"token"}
            assert text_of(events).startswith(f"{PREFIX} You said: what time is it?")
            assert (await stored(client, events))[1]["content"] == text_of(events)


class TestUserScopedHistory:
    @pytest.mark.parametrize("scope", [{}, {"history_scope": "user"}], ids=["default", "user"])
    async def test_the_same_users_earlier_conversations_with_the_agent_are_in_the_prompt(
        self, settings: Settings, scope: dict[str, str]
    ) -> None:
        """The echo model counts every word of its prompt as input tokens, so a new
        conversation's first turn shows how much earlier conversation its prompt held (memory
        recall off: recalled memories would join the prompt too)."""
        async with client_for(settings, memory_recall=0) as client:
            agent = await make_agent(client, **scope)
            other_agent = await make_agent(client, **scope)
            ann_said = "remember the blue door"
            bob_said = " ".join(["bob"] * 40)
            ann_earlier = await start(client, agent, ann_said, user="ann")
            bob_earlier = await start(client, agent, bob_said, user="bob")
            await start(client, other_agent, bob_said, user="ann")  # another agent

            baseline = await start(client, agent, "and now?", user="cy")  # no earlier turns
            ann_now = await start(client, agent, "and now?", user="ann")
            bob_now = await start(client, agent, "and now?", user="bob")

            ann_reply = text_of(ann_earlier)
            extra = input_tokens(ann_now) - input_tokens(baseline)
            assert extra == len(ann_said.split()) + len(ann_reply.split())
            bob_reply = text_of(bob_earlier)
            extra = input_tokens(bob_now) - input_tokens(baseline)
            assert extra == len(bob_said.split()) + len(bob_reply.split())

    async def test_with_the_conversation_scope_a_new_conversation_starts_empty(
        self, settings: Settings
    ) -> None:
        async with client_for(settings, memory_recall=0) as client:  # history alone
            agent = await make_agent(client, history_scope="conversation")
            await start(client, agent, "remember the blue door", user="ann")
            baseline = await start(client, agent, "and now?", user="cy")
            ann_now = await start(client, agent, "and now?", user="ann")
            assert input_tokens(ann_now) == input_tokens(baseline)


async def make_agent(client: httpx.AsyncClient, **model_settings: Any) -> str:
    body = {"name": f"agent-{uuid.uuid4().hex[:8]}", "model_settings": model_settings}
    created = await client.post(f"{API}/agents", json=body)
    assert created.status_code == 201, created.text
    agent_id: str = created.json()["id"]
    return agent_id


def input_tokens(events: Events) -> int:
    assert events[-1][0] == "message_end", events[-1]
    count: int = events[-1][1]["input_tokens"]
    return count
