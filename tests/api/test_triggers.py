"""Module triggers that backtrack without end: the turn goes on without the module, the server
keeps serving, and the reply says which module was left out; on every backend."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import anyio
import httpx
import pytest
from starlette.testclient import TestClient

from agentkeep import Settings
from agentkeep.api import create_app
from agentkeep.managers import prompt
from api.shapes import error_of, read_sse

API = "/api/v1"
RUNAWAY = "(a|a)+$"
"""Backtracks without end on a run of ``a`` that does not end the text."""
MESSAGE = "a" * 30 + "!"

Events = list[tuple[str, dict[str, Any]]]


@pytest.fixture(autouse=True)
def trigger_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A limit long enough to be sure a runaway pattern runs into it on a busy machine."""
    monkeypatch.setattr(prompt, "TRIGGER_TIMEOUT", 0.3)


def module_body(name: str, pattern: str, context: str = "IMMEDIATE") -> dict[str, Any]:
    return {
        "name": name,
        "type": "instructions",
        "content": f"{name} instructions.",
        "trigger_pattern": pattern,
        "execution_context": context,
    }


async def agent_with_runaway_modules(client: httpx.AsyncClient) -> str:
    for body in (
        module_body("runaway", RUNAWAY),
        module_body("nested", "(a+)+$"),  # the classic one: answered at once by the engine
        module_body("exclaims", "!$"),
        module_body("after", RUNAWAY, "POST_RESPONSE"),
    ):
        assert (await client.post(f"{API}/modules", json=body)).status_code == 201
    agent = await client.post(
        f"{API}/agents", json={"name": f"a-{uuid.uuid4().hex[:8]}", "provider": "echo"}
    )
    agent_id: str = agent.json()["id"]
    return agent_id


def assert_reports_the_runaway_module(warnings: list[dict[str, str]]) -> None:
    assert [(w["code"], w["module"]) for w in warnings] == [("trigger_timeout", "runaway")]
    assert "runaway" in warnings[0]["message"]


pytestmark = pytest.mark.anyio


class TestRunawayTriggers:
    async def test_the_turn_completes_without_the_module_and_says_so(
        self, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        agent_id = await agent_with_runaway_modules(client)
        body = {"agent_id": agent_id, "content": MESSAGE, "user_id": "u"}
        with caplog.at_level(logging.WARNING, "agentkeep.chat"):
            began = time.monotonic()
            events: Events = await read_sse(await client.post(f"{API}/streaming/start", json=body))
            elapsed = time.monotonic() - began
        assert elapsed < 30  # bounded by the limit (twice 0.3 s here), not by the patterns
        assert events[-1][0] == "message_end"
        assert events[-1][1]["status"] == "complete"
        assert_reports_the_runaway_module(events[-1][1]["warnings"])
        cid = events[0][1]["conversation_id"]
        stored = (await client.get(f"{API}/conversations/{cid}/messages")).json()["items"]
        assert_reports_the_runaway_module(stored[-1]["metadata"]["warnings"])
        logged = [r.getMessage() for r in caplog.records if r.name == "agentkeep.chat"]
        assert any("'runaway'" in line for line in logged)
        assert any("'after'" in line for line in logged)  # POST_RESPONSE: logged, left out
        assert not any(r.exc_info for r in caplog.records)

    async def test_other_requests_are_served_while_a_trigger_runs(
        self, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(prompt, "TRIGGER_TIMEOUT", 1.0)
        agent_id = await agent_with_runaway_modules(client)
        body = {"agent_id": agent_id, "content": MESSAGE}
        finished: dict[str, float] = {}

        async def chat() -> None:
            await read_sse(await client.post(f"{API}/streaming/start", json=body))
            finished["chat"] = time.monotonic()

        async with anyio.create_task_group() as group:
            group.start_soon(chat)
            await anyio.sleep(0.3)  # the trigger is searching by now (it takes 1 s)
            health = await client.get("/health")
            finished["health"] = time.monotonic()
        assert health.status_code == 200
        assert finished["health"] < finished["chat"]

    @pytest.mark.parametrize(
        "pattern", ["(unclosed", "((a{1000}){1000}){1000}", "a{100000}", "(?:" * 300 + ")" * 300]
    )
    async def test_a_pattern_that_cannot_be_searched_safely_is_refused_when_saved(
        self, client: httpx.AsyncClient, pattern: str
    ) -> None:
        response = await client.post(f"{API}/modules", json=module_body("bad", pattern))
        assert error_of(response, 422)["field"] == "trigger_pattern"
        created = await client.post(f"{API}/modules", json=module_body("good", "x"))
        patched = await client.patch(
            f"{API}/modules/{created.json()['id']}", json={"trigger_pattern": pattern}
        )
        assert error_of(patched, 422)["field"] == "trigger_pattern"
        listed = (await client.get(f"{API}/modules")).json()["items"]
        assert [(m["name"], m["trigger_pattern"]) for m in listed] == [("good", "x")]


def test_the_websocket_turn_reports_the_module_too(settings: Settings) -> None:
    app = create_app(settings)
    with TestClient(app) as client:
        for body in (module_body("runaway", RUNAWAY), module_body("exclaims", "!$")):
            assert client.post(f"{API}/modules", json=body).status_code == 201
        agent = client.post(f"{API}/agents", json={"name": "ws", "provider": "echo"}).json()
        started = client.post(f"{API}/conversations/start", json={"agent_id": agent["id"]})
        cid = started.json()["conversation"]["id"]
        with client.websocket_connect(f"{API}/streaming/ws/{cid}") as socket:
            socket.send_json({"type": "message", "content": MESSAGE})
            frame = socket.receive_json()
            while frame["event"] not in ("message_end", "error"):
                frame = socket.receive_json()
        assert frame["event"] == "message_end"
        assert_reports_the_runaway_module(frame["data"]["warnings"])
