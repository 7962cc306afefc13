"""ON_DEMAND modules run when asked (by a client, or by the model through ``run_module``), and
modules take no scripts. Driven over HTTP with the echo model, on every backend."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from agentkeep.models.config import ModuleCreate
from agentkeep.providers.echo import PREFIX
from api.shapes import read_sse

pytestmark = pytest.mark.anyio

API = "/api/v1"
SUMMARY = {
    "name": "summary",
    "type": "analysis",
    "description": "sums up the conversation",
    "content": "Sum up the conversation in one line.",
    "requires_ai_inference": True,
}
POLITE = {
    "name": "polite",
    "type": "instructions",
    "description": "a formal register",
    "content": "Answer formally, addressing the user as Sir or Madam.",
}


async def module(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    created = await client.post(f"{API}/modules", json=fields)
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


async def agent(client: httpx.AsyncClient, **model_settings: Any) -> str:
    name = f"agent-{uuid.uuid4().hex[:8]}"
    body = {"name": name, "provider": "echo", "model_settings": model_settings}
    created = await client.post(f"{API}/agents", json=body)
    assert created.status_code == 201, created.text
    agent_id: str = created.json()["id"]
    return agent_id


async def chatted(client: httpx.AsyncClient, agent_id: str, content: str) -> str:
    """A conversation with one turn in it."""
    body = {"agent_id": agent_id, "content": content, "user_id": "u1"}
    events = await read_sse(await client.post(f"{API}/streaming/start", json=body))
    assert events[-1][0] == "message_end", events
    cid: str = events[0][1]["conversation_id"]
    return cid


async def state(client: httpx.AsyncClient, cid: str, module_id: str) -> dict[str, Any]:
    page = (await client.get(f"{API}/conversations/{cid}/state?module_id={module_id}")).json()
    return {item["state_key"]: item["state_value"] for item in page["items"]}


def run_url(cid: str, ref: str) -> str:
    return f"{API}/conversations/{cid}/modules/{ref}/run"


class TestRunRoute:
    async def test_a_module_saved_without_a_context_is_on_demand_and_runs_by_name(
        self, client: httpx.AsyncClient
    ) -> None:
        polite = await module(client, **POLITE)
        assert polite["execution_context"] == "ON_DEMAND"
        cid = await chatted(client, await agent(client), "hello there")
        ran = await client.post(run_url(cid, "polite"))
        assert ran.status_code == 200, ran.text
        body = ran.json()
        assert body["result"] == POLITE["content"]
        assert (body["module"], body["module_id"]) == ("polite", polite["id"])
        assert body["state_key"] == "triggered"
        messages = (await client.get(f"{API}/conversations/{cid}/messages")).json()["items"]
        assert await state(client, cid, polite["id"]) == {"triggered": messages[-1]["id"]}

    async def test_a_module_that_asks_the_model_keeps_its_answer_in_the_state(
        self, client: httpx.AsyncClient
    ) -> None:
        summary = await module(client, **SUMMARY)
        cid = await chatted(client, await agent(client), "I bought coffee for 300")
        ran = await client.post(run_url(cid, summary["id"]))  # by id as well
        assert ran.status_code == 200, ran.text
        result = ran.json()["result"]
        assert result.startswith(PREFIX)
        assert "User: I bought coffee for 300" in result  # the conversation was its input
        assert "Assistant:" in result
        assert ran.json()["state_key"] == "output"
        assert await state(client, cid, summary["id"]) == {"output": result}
        again = await client.post(run_url(cid, "summary"))
        assert await state(client, cid, summary["id"]) == {"output": again.json()["result"]}

    async def test_unknown_module_or_conversation_is_a_404_naming_it(
        self, client: httpx.AsyncClient
    ) -> None:
        await module(client, **POLITE)
        cid = await chatted(client, await agent(client), "hi")
        missing = await client.post(run_url(cid, "nothing-of-the-kind"))
        assert missing.status_code == 404
        assert missing.json()["error"]["field"] == "module"
        missing = await client.post(run_url(cid, str(uuid.uuid4())))
        assert (missing.status_code, missing.json()["error"]["field"]) == (404, "module")
        gone = await client.post(run_url(str(uuid.uuid4()), "polite"))
        assert (gone.status_code, gone.json()["error"]["field"]) == (404, "conversation_id")
        bad = await client.post(run_url("not-a-uuid", "polite"))
        assert (bad.status_code, bad.json()["error"]["field"]) == (422, "conversation_id")

    @pytest.mark.parametrize(
        ("change", "said"),
        [
            ({"execution_context": "IMMEDIATE"}, "only ON_DEMAND modules run when asked"),
            ({"execution_context": "POST_RESPONSE"}, "only ON_DEMAND modules run when asked"),
            ({"is_active": False}, "is not active"),
        ],
    )
    async def test_a_module_that_is_not_on_demand_and_active_is_a_409(
        self, client: httpx.AsyncClient, change: dict[str, Any], said: str
    ) -> None:
        made = await module(client, **{**POLITE, **change})
        cid = await chatted(client, await agent(client), "hi")
        before = await state(client, cid, made["id"])  # a POST_RESPONSE module ran after the turn
        refused = await client.post(run_url(cid, "polite"))
        assert refused.status_code == 409
        assert refused.json()["error"]["field"] == "module"
        assert said in refused.json()["error"]["message"]
        assert await state(client, cid, made["id"]) == before

    async def test_a_model_module_in_a_conversation_without_agent_is_a_422_nothing_kept(
        self, client: httpx.AsyncClient
    ) -> None:
        summary = await module(client, **SUMMARY)
        started = await client.post(f"{API}/conversations/start", json={"user_id": "u1"})
        assert started.status_code < 300, started.text
        cid = started.json()["conversation"]["id"]
        refused = await client.post(run_url(cid, "summary"))
        assert refused.status_code == 422
        assert refused.json()["error"]["field"] == "conversation_id"
        assert await state(client, cid, summary["id"]) == {}
        await module(client, **POLITE)  # one that needs no model runs without an agent
        assert (await client.post(run_url(cid, "polite"))).json()["state_key"] == "triggered"

    async def test_a_failing_provider_is_a_502_and_nothing_is_kept(
        self, client: httpx.AsyncClient
    ) -> None:
        summary = await module(client, **SUMMARY)
        agent_id = await agent(client)
        cid = await chatted(client, agent_id, "hi")
        changed = await client.patch(
            f"{API}/agents/{agent_id}", json={"model_settings": {"fail": "the model is down"}}
        )
        assert changed.status_code == 200, changed.text
        failed = await client.post(run_url(cid, "summary"))
        assert failed.status_code == 502
        assert failed.json()["error"] == {
            "code": "provider_error",
            "message": "the model is down",
        }
        assert await state(client, cid, summary["id"]) == {}


class TestRunModuleTool:
    async def test_the_model_runs_an_on_demand_module_and_gets_its_instructions(
        self, client: httpx.AsyncClient
    ) -> None:
        polite = await module(client, **POLITE)
        call = {"name": "run_module", "arguments": {"name": "polite"}}
        agent_id = await agent(client, tool_call=call)
        body = {"agent_id": agent_id, "content": "hello", "user_id": "u1"}
        events = await read_sse(await client.post(f"{API}/streaming/start", json=body))
        assert [e for e, _ in events] == [
            "message_start",
            "tool_call",
            "tool_result",
            *["token"] * (len(events) - 4),
            "message_end",
        ]
        result = events[2][1]
        assert (result["content"], result["is_error"]) == (POLITE["content"], False)
        cid = events[0][1]["conversation_id"]
        messages = (await client.get(f"{API}/conversations/{cid}/messages")).json()["items"]
        assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
        assert "Sir or Madam" in messages[1]["content"]  # the model answered with it
        assert await state(client, cid, polite["id"]) == {"triggered": messages[0]["id"]}

    async def test_a_model_module_answers_about_the_turn_and_keeps_its_answer(
        self, client: httpx.AsyncClient
    ) -> None:
        summary = await module(client, **SUMMARY)
        agent_id = await agent(
            client, tool_call={"name": "run_module", "arguments": {"name": "summary"}}
        )
        body = {"agent_id": agent_id, "content": "spent 300 on coffee", "user_id": "u1"}
        events = await read_sse(await client.post(f"{API}/streaming/start", json=body))
        result = next(data for event, data in events if event == "tool_result")
        assert not result["is_error"]
        assert "User: spent 300 on coffee" in result["content"]
        cid = events[0][1]["conversation_id"]
        assert await state(client, cid, summary["id"]) == {"output": result["content"]}

    async def test_an_unknown_module_name_is_an_error_result_and_the_turn_goes_on(
        self, client: httpx.AsyncClient
    ) -> None:
        await module(client, **POLITE)
        agent_id = await agent(client, tool_call={"name": "run_module", "arguments": {"name": "x"}})
        body = {"agent_id": agent_id, "content": "hello", "user_id": "u1"}
        events = await read_sse(await client.post(f"{API}/streaming/start", json=body))
        result = next(data for event, data in events if event == "tool_result")
        assert result["is_error"]
        assert "'polite'" in result["content"]
        assert events[-1][1]["status"] == "complete"

    async def test_without_on_demand_modules_the_tool_is_not_offered(
        self, client: httpx.AsyncClient
    ) -> None:
        await module(client, **{**POLITE, "execution_context": "IMMEDIATE"})
        await module(client, **{**SUMMARY, "is_active": False})
        agent_id = await agent(client, tool_call="run_module")
        body = {"agent_id": agent_id, "content": "hello", "user_id": "u1"}
        events = await read_sse(await client.post(f"{API}/streaming/start", json=body))
        assert "tool_call" not in [event for event, _ in events]
        assert events[-1][0] == "message_end"

    async def test_a_module_made_after_a_turn_is_offered_at_the_next(
        self, client: httpx.AsyncClient
    ) -> None:
        agent_id = await agent(client, tool_call={"name": "run_module", "arguments": {}})
        body = {"agent_id": agent_id, "content": "hello", "user_id": "u1"}
        events = await read_sse(await client.post(f"{API}/streaming/start", json=body))
        assert "tool_call" not in [event for event, _ in events]
        await module(client, **POLITE)
        events = await read_sse(await client.post(f"{API}/streaming/start", json=body))
        assert "tool_call" in [event for event, _ in events]

    async def test_the_agents_own_tool_of_that_name_comes_first(
        self, client: httpx.AsyncClient
    ) -> None:
        polite = await module(client, **POLITE)
        call = {"name": "run_module", "arguments": {"name": "polite"}}
        agent_id = await agent(client, tool_call=call)
        tool = await client.post(f"{API}/tools", json={"name": "run_module"})
        assert tool.status_code == 201, tool.text
        await client.post(f"{API}/agents/{agent_id}/tools/{tool.json()['id']}")
        body = {"agent_id": agent_id, "content": "hello", "user_id": "u1"}
        events = await read_sse(await client.post(f"{API}/streaming/start", json=body))
        result = next(data for event, data in events if event == "tool_result")
        assert result["is_error"]  # its own tool ran (it names no callable), not the module
        assert "no built-in tool 'run_module'" in result["content"]
        assert await state(client, events[0][1]["conversation_id"], polite["id"]) == {}


class TestScripts:
    async def test_a_module_with_a_script_is_refused_naming_script_and_not_saved(
        self, client: httpx.AsyncClient
    ) -> None:
        refused = await client.post(f"{API}/modules", json={**POLITE, "script": "print(1)"})
        assert refused.status_code == 422
        error = refused.json()["error"]
        assert error["field"] == "script"
        assert "AGENTKEEP_TOOL_MODULES" in error["message"]
        assert (await client.get(f"{API}/modules")).json()["items"] == []
        made = await module(client, **POLITE, script=None)  # null is accepted
        changed = await client.patch(f"{API}/modules/{made['id']}", json={"script": "x = 1"})
        assert (changed.status_code, changed.json()["error"]["field"]) == (422, "script")
        assert (await client.get(f"{API}/modules/{made['id']}")).json()["script"] is None

    async def test_a_stored_script_reads_back_exports_without_it_and_is_never_run(
        self, served: tuple[FastAPI, httpx.AsyncClient]
    ) -> None:
        app, client = served
        old = ModuleCreate.model_construct(  # as an earlier release stored it
            **{**ModuleCreate(**POLITE).model_dump(), "script": "raise SystemExit"}
        )
        stored = await app.state.db.modules.create(old)
        read = (await client.get(f"{API}/modules/{stored.id}")).json()
        assert read["script"] == "raise SystemExit"
        exported = await client.get(f"{API}/config/export")
        assert exported.status_code == 200, exported.text
        assert "script" not in exported.json()["modules"][0]
        cid = await chatted(client, await agent(client), "hi")
        ran = await client.post(run_url(cid, "polite"))
        assert ran.json()["result"] == POLITE["content"]
