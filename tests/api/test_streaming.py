"""Chat turns over SSE and WebSocket with the offline echo model, on every backend.

Frames are asserted in order; a client that hangs up mid-stream leaves a ``cancelled`` reply with
its partial text; two turns at once on one conversation keep their order; an agent edited through
the API is used fresh by the next turn.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI

from agentkeep.providers.echo import PREFIX
from api.shapes import error_of, read_sse, sse_events

pytestmark = pytest.mark.anyio

API = "/api/v1"
Events = list[tuple[str, dict[str, Any]]]


async def make_agent(client: httpx.AsyncClient, **settings: Any) -> dict[str, Any]:
    body = {"name": f"agent-{uuid.uuid4().hex[:8]}", "provider": "echo", "model_settings": settings}
    response = await client.post(f"{API}/agents", json=body)
    assert response.status_code == 201, response.text
    agent: dict[str, Any] = response.json()
    return agent


async def start(
    client: httpx.AsyncClient, agent_id: str, content: str = "hello there", *, user: str = "u1"
) -> Events:
    response = await client.post(
        f"{API}/streaming/start", json={"agent_id": agent_id, "content": content, "user_id": user}
    )
    return await read_sse(response)


def names(events: Events) -> list[str]:
    return [event for event, _ in events]


def text_of(events: Events) -> str:
    return "".join(data["text"] for event, data in events if event == "token")


class TestSSE:
    async def test_a_turn_streams_in_order_and_is_stored(self, client: httpx.AsyncClient) -> None:
        agent = await make_agent(client)
        events = await start(client, agent["id"], "bought coffee for 300")
        kinds = names(events)
        assert kinds[0] == "message_start"
        assert kinds[-1] == "message_end"
        assert set(kinds[1:-1]) == {"token"}
        assert len(kinds) > 4  # word by word
        reply = text_of(events)
        assert reply.startswith(PREFIX)
        assert "bought coffee for 300" in reply

        started, ended = events[0][1], events[-1][1]
        assert ended["message_id"] == started["message_id"]
        assert ended["status"] == "complete"
        assert ended["output_tokens"] == kinds.count("token")
        assert ended["input_tokens"] > 0
        cid = started["conversation_id"]
        stored = (await client.get(f"{API}/conversations/{cid}/messages")).json()["items"]
        assert [(m["role"], m["status"]) for m in stored] == [
            ("user", "complete"),
            ("assistant", "complete"),
        ]
        assert stored[0]["id"] == started["user_message_id"]
        assert stored[1]["content"] == reply
        assert stored[1]["metadata"]["provider"] == "echo"
        assert stored[1]["metadata"]["latency_ms"] > 0
        used = (await client.get(f"{API}/agents/{agent['id']}")).json()
        assert used["conversation_count"] == 1
        assert used["message_count"] == 2
        assert used["output_tokens"] == ended["output_tokens"]
        assert used["input_tokens"] == ended["input_tokens"]

    async def test_send_continues_with_the_history(self, client: httpx.AsyncClient) -> None:
        agent = await make_agent(client)
        first = await start(client, agent["id"], "one")
        cid = first[0][1]["conversation_id"]
        second = await read_sse(
            await client.post(
                f"{API}/streaming/send", json={"conversation_id": cid, "content": "two"}
            )
        )
        assert second[-1][0] == "message_end"
        assert "two" in text_of(second)
        # the second prompt held the first exchange, so it had more words in it
        assert second[-1][1]["input_tokens"] > first[-1][1]["input_tokens"]
        stored = (await client.get(f"{API}/conversations/{cid}/messages")).json()["items"]
        assert [m["role"] for m in stored] == ["user", "assistant", "user", "assistant"]

    async def test_thinking_and_a_tool_call_stream_and_are_stored(
        self, client: httpx.AsyncClient
    ) -> None:
        agent = await make_agent(client, thinking=True, tool_call="current_time")
        tool = (await client.post(f"{API}/tools", json={"name": "current_time"})).json()
        await client.post(f"{API}/agents/{agent['id']}/tools/{tool['id']}")
        events = await start(client, agent["id"], "what time is it?")
        kinds = names(events)
        assert kinds[:2] == ["message_start", "thinking"]
        assert kinds.index("tool_call") < kinds.index("tool_result") < kinds.index("token")
        assert kinds[-1] == "message_end"
        result = next(data for event, data in events if event == "tool_result")
        assert result["name"] == "current_time"
        assert result["is_error"] is False
        assert "iso" in json.loads(result["content"])
        assert "current_time" in text_of(events)

        cid = events[0][1]["conversation_id"]
        stored = (await client.get(f"{API}/conversations/{cid}/messages")).json()["items"]
        assert [m["role"] for m in stored] == ["user", "assistant", "tool"]
        reply = next(m for m in stored if m["role"] == "assistant")
        assert reply["thinking"]
        assert reply["tool_calls"][0]["name"] == "current_time"
        assert stored[2]["metadata"]["tool_call_id"] == reply["tool_calls"][0]["id"]
        assert (await client.get(f"{API}/tools/{tool['id']}")).json()["usage_count"] == 1

    async def test_a_failing_provider_ends_with_an_error_and_a_stored_error(
        self, client: httpx.AsyncClient
    ) -> None:
        agent = await make_agent(client, fail="the model is down", fail_after_tokens=2)
        events = await start(client, agent["id"], "are you there")
        kinds = names(events)
        assert kinds[0] == "message_start"
        assert kinds[-1] == "error"
        assert kinds.count("token") == 2
        error = events[-1][1]
        assert error["code"] == "provider_error"
        assert "the model is down" in error["message"]
        cid = events[0][1]["conversation_id"]
        stored = (await client.get(f"{API}/conversations/{cid}/messages")).json()["items"]
        assert stored[-1]["id"] == error["message_id"]
        assert stored[-1]["status"] == "error"
        assert stored[-1]["content"] == text_of(events)

    async def test_an_edited_agent_is_used_fresh_by_the_next_turn(
        self, client: httpx.AsyncClient
    ) -> None:
        agent = await make_agent(client)
        assert "thinking" not in names(await start(client, agent["id"]))
        patched = await client.patch(
            f"{API}/agents/{agent['id']}", json={"model_settings": {"thinking": True}}
        )
        assert patched.status_code == 200
        assert "thinking" in names(await start(client, agent["id"]))

    async def test_a_conversation_moved_to_another_agent_is_answered_by_it(
        self, client: httpx.AsyncClient
    ) -> None:
        plain = await make_agent(client)
        thinker = await make_agent(client, thinking=True)
        cid = (await start(client, plain["id"]))[0][1]["conversation_id"]
        send = {"conversation_id": cid, "content": "again"}
        first = await read_sse(await client.post(f"{API}/streaming/send", json=send))
        assert "thinking" not in names(first)
        await client.patch(f"{API}/conversations/{cid}", json={"agent_id": thinker["id"]})
        moved = await read_sse(await client.post(f"{API}/streaming/send", json=send))
        assert "thinking" in names(moved)
        assert moved[0][1]["agent_id"] == thinker["id"]
        assert (await client.delete(f"{API}/conversations/{cid}")).status_code == 204
        gone = await client.post(f"{API}/streaming/send", json=send)
        assert error_of(gone, 404)["field"] == "conversation_id"

    async def test_a_persona_and_matching_modules_shape_the_prompt(
        self, client: httpx.AsyncClient
    ) -> None:
        persona = await client.post(
            f"{API}/personas", json={"name": "p", "template": "You are a very patient helper."}
        )
        # each start is a new conversation of one user: keep the others' turns out of the prompt
        agent = await make_agent(client, history_scope="conversation")
        await client.patch(f"{API}/agents/{agent['id']}", json={"persona_id": persona.json()["id"]})
        # each by another user, so that no turn recalls another's message into its prompt
        plain = await start(client, agent["id"], "refund please", user="p1")
        await client.post(
            f"{API}/modules",
            json={
                "name": "refunds",
                "type": "instructions",
                "content": "Refunds are possible within thirty days of purchase.",
                "trigger_pattern": "(?i)refund",
                "execution_context": "IMMEDIATE",
            },
        )
        with_module = await start(client, agent["id"], "refund please", user="p2")
        unmatched = await start(client, agent["id"], "hello again", user="p3")
        words = [e[-1][1]["input_tokens"] for e in (plain, with_module, unmatched)]
        assert words[1] == words[0] + 8  # the module's eight words joined the system prompt
        assert words[2] == words[0]  # "hello again" has as many words and no refund

    async def test_post_response_modules_keep_their_output_in_state(
        self, client: httpx.AsyncClient
    ) -> None:
        module = await client.post(
            f"{API}/modules",
            json={
                "name": "summary",
                "type": "analysis",
                "content": "Summarise the exchange.",
                "execution_context": "POST_RESPONSE",
                "requires_ai_inference": True,
            },
        )
        agent = await make_agent(client)
        events = await start(client, agent["id"], "note this")
        assert events[-1][0] == "message_end"
        cid = events[0][1]["conversation_id"]
        state = await client.get(
            f"{API}/conversations/{cid}/state/output", params={"module_id": module.json()["id"]}
        )
        assert state.status_code == 200
        assert PREFIX in state.json()["state_value"]

    @pytest.mark.parametrize(
        ("path", "body", "status", "field"),
        [
            ("start", {"agent_id": str(uuid.uuid4()), "content": "x"}, 404, "agent_id"),
            ("start", {"agent_id": "nope", "content": "x"}, 422, "agent_id"),
            ("start", {"content": "x"}, 422, "agent_id"),
            (
                "send",
                {"conversation_id": str(uuid.uuid4()), "content": "x"},
                404,
                "conversation_id",
            ),
            ("send", {"conversation_id": str(uuid.uuid4())}, 422, "content"),
            ("send", {"conversation_id": str(uuid.uuid4()), "content": "a\x00"}, 422, "content"),
        ],
    )
    async def test_bad_input_is_refused_before_streaming(
        self,
        client: httpx.AsyncClient,
        path: str,
        body: dict[str, Any],
        status: int,
        field: str,
    ) -> None:
        response = await client.post(f"{API}/streaming/{path}", json=body)
        assert error_of(response, status)["field"] == field
        assert (await client.get(f"{API}/stats")).json()["messages"] == 0

    async def test_oversized_content_is_refused_and_nothing_is_stored(
        self, client: httpx.AsyncClient
    ) -> None:
        agent = await make_agent(client)
        response = await client.post(
            f"{API}/streaming/start", json={"agent_id": agent["id"], "content": "x" * 1_000_001}
        )
        assert error_of(response, 413)["field"] == "content"
        assert (await client.get(f"{API}/stats")).json()["conversations"] == 0

    async def test_a_conversation_without_an_agent_cannot_be_sent_to(
        self, client: httpx.AsyncClient
    ) -> None:
        started = await client.post(f"{API}/conversations/start", json={"user_id": "u"})
        cid = started.json()["conversation"]["id"]
        response = await client.post(
            f"{API}/streaming/send", json={"conversation_id": cid, "content": "hi"}
        )
        assert error_of(response, 422)["field"] == "conversation_id"

    async def test_two_turns_at_once_keep_their_order(self, client: httpx.AsyncClient) -> None:
        agent = await make_agent(client, token_delay_ms=2)
        cid = (await start(client, agent["id"], "zero"))[0][1]["conversation_id"]
        results: dict[str, Events] = {}

        async def send(content: str) -> None:
            response = await client.post(
                f"{API}/streaming/send", json={"conversation_id": cid, "content": content}
            )
            results[content] = await read_sse(response)

        async with anyio.create_task_group() as tg:
            tg.start_soon(send, "first")
            tg.start_soon(send, "second")
        assert all(events[-1][0] == "message_end" for events in results.values())
        stored = (await client.get(f"{API}/conversations/{cid}/messages")).json()["items"]
        assert [m["role"] for m in stored] == ["user", "assistant"] * 3
        for question, answer in zip(stored[2::2], stored[3::2], strict=True):
            assert question["content"] in answer["content"]  # each reply answers its own message
        assert all(m["status"] == "complete" for m in stored)


class TestLiveStreaming:
    async def test_tokens_arrive_before_the_reply_is_complete(
        self, live_app: tuple[FastAPI, str]
    ) -> None:
        _, base = live_app
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            agent = await make_agent(client, token_delay_ms=40)
            arrivals: list[tuple[str, float]] = []
            body = {"agent_id": agent["id"], "content": "one two three four five six"}
            async with client.stream("POST", f"{API}/streaming/start", json=body) as response:
                async for event, _ in sse_events(response):
                    arrivals.append((event, time.perf_counter()))
        tokens = [at for event, at in arrivals if event == "token"]
        assert arrivals[-1][0] == "message_end"
        assert tokens[-1] - tokens[0] > 0.2  # spread over the stream, not delivered at the end

    async def test_a_client_that_hangs_up_leaves_a_cancelled_partial_reply(
        self, live_app: tuple[FastAPI, str]
    ) -> None:
        _, base = live_app
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            agent = await make_agent(client, token_delay_ms=50)
            content = " ".join(f"word{i}" for i in range(60))
            body = {"agent_id": agent["id"], "content": content}
            seen: Events = []
            async with client.stream("POST", f"{API}/streaming/start", json=body) as response:
                async for pair in sse_events(response):
                    seen.append(pair)
                    if names(seen).count("token") == 3:
                        break  # leaving the block closes the connection mid-stream
            cid = seen[0][1]["conversation_id"]
            message_id = seen[0][1]["message_id"]
            reply: dict[str, Any] = {}
            with anyio.fail_after(10):
                while reply.get("status") in (None, "streaming"):
                    await anyio.sleep(0.05)
                    page = await client.get(f"{API}/conversations/{cid}/messages")
                    reply = next(m for m in page.json()["items"] if m["id"] == message_id)
        assert reply["status"] == "cancelled"
        assert reply["content"].startswith(text_of(seen))
        assert 0 < len(reply["content"]) < len(content)

    async def test_a_conversation_deleted_mid_turn_ends_it_with_not_found_and_no_retry(
        self, live_app: tuple[FastAPI, str], caplog: pytest.LogCaptureFixture
    ) -> None:
        _, base = live_app
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            agent = await make_agent(client, token_delay_ms=50)
            body = {"agent_id": agent["id"], "content": " ".join(["word"] * 30)}
            seen: Events = []
            async with client.stream("POST", f"{API}/streaming/start", json=body) as response:
                async for pair in sse_events(response):
                    seen.append(pair)
                    if names(seen).count("token") == 2:
                        cid = seen[0][1]["conversation_id"]
                        deleted = await client.delete(f"{API}/conversations/{cid}")
                        assert deleted.status_code == 204
            gone = await client.get(f"{API}/conversations/{cid}")
        event, data = seen[-1]
        assert event == "error", seen[-3:]
        assert (data["code"], data["field"]) == ("not_found", "conversation_id")
        assert "deleted during the turn" in data["message"]
        assert gone.status_code == 404
        assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]

    async def test_a_tool_deleted_mid_turn_leaves_the_reply_complete(
        self, live_app: tuple[FastAPI, str]
    ) -> None:
        _, base = live_app
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            tool = (await client.post(f"{API}/tools", json={"name": "current_time"})).json()
            agent = await make_agent(client, token_delay_ms=50, tool_call="current_time")
            await client.post(f"{API}/agents/{agent['id']}/tools/{tool['id']}")
            body = {"agent_id": agent["id"], "content": "what time is it " + "now " * 20}
            seen: Events = []
            async with client.stream("POST", f"{API}/streaming/start", json=body) as response:
                async for pair in sse_events(response):
                    seen.append(pair)
                    if pair[0] == "tool_result":  # the call counted, not yet stored
                        deleted = await client.delete(f"{API}/tools/{tool['id']}")
                        assert deleted.status_code == 204
            cid = seen[0][1]["conversation_id"]
            page = await client.get(f"{API}/conversations/{cid}/messages")
        assert seen[-1][0] == "message_end", seen[-3:]
        reply = next(m for m in page.json()["items"] if m["id"] == seen[0][1]["message_id"])
        assert reply["status"] == "complete"
        assert reply["content"] == text_of(seen)


class TestAgentModules:
    async def test_an_agent_that_names_modules_runs_only_those(
        self, client: httpx.AsyncClient
    ) -> None:
        for name, content in (("refunds", "Refunds within thirty days."), ("tone", "Be warm.")):
            made = await client.post(
                f"{API}/modules",
                json={
                    "name": name,
                    "type": "instructions",
                    "content": content,
                    "trigger_pattern": "(?i)refund",
                    "execution_context": "IMMEDIATE",
                },
            )
            assert made.status_code == 201
        chosen = await make_agent(client, history_scope="conversation")
        every = await make_agent(client, history_scope="conversation")
        listed_modules = (await client.get(f"{API}/modules")).json()["items"]
        tone = next(m for m in listed_modules if m["name"] == "tone")
        put = await client.put(
            f"{API}/agents/{chosen['id']}/modules", json={"modules": ["refunds", tone["id"]]}
        )
        assert [m["name"] for m in put.json()] == ["refunds", "tone"]
        put = await client.put(f"{API}/agents/{chosen['id']}/modules", json={"modules": ["tone"]})
        assert put.status_code == 200
        listed = await client.get(f"{API}/agents/{chosen['id']}/modules")
        assert [m["name"] for m in listed.json()] == ["tone"]
        # by two users, so that the second turn does not recall the first's message
        only_tone = await start(client, chosen["id"], "refund please", user="m1")
        both = await start(client, every["id"], "refund please", user="m2")
        tokens = [e[-1][1]["input_tokens"] for e in (only_tone, both)]
        assert tokens[1] - tokens[0] == 4  # "Refunds within thirty days." is left out

    async def test_bad_module_lists_are_refused_and_change_nothing(
        self, client: httpx.AsyncClient
    ) -> None:
        agent = await make_agent(client)
        url = f"{API}/agents/{agent['id']}/modules"
        assert error_of(await client.put(url, json={"modules": ["nope"]}), 404)["field"] == (
            "modules[0]"
        )
        missing = await client.put(url, json={"modules": ["nope-not", str(uuid.uuid4())]})
        assert error_of(missing, 404)["field"] == "modules[0]"
        module = await client.post(f"{API}/modules", json={"name": "tone", "type": "style"})
        missing = await client.put(url, json={"modules": ["tone", str(uuid.uuid4())]})
        assert error_of(missing, 404)["field"] == "modules[1]"  # the body's field, by position
        twice = await client.put(url, json={"modules": ["tone", module.json()["id"]]})
        error = error_of(twice, 422)
        assert (error["field"], error["message"]) == (
            "modules[1]",
            f"{module.json()['id']!r} is listed twice",
        )
        assert (await client.get(url)).json() == []  # nothing was set
        assert error_of(await client.put(url, json={"modules": "x"}), 422)
        assert error_of(await client.put(url, json={}), 422)
        gone = await client.put(f"{API}/agents/{uuid.uuid4()}/modules", json={"modules": []})
        assert error_of(gone, 404)["field"] == "agent_id"
        assert error_of(await client.get(f"{API}/agents/{uuid.uuid4()}/modules"), 404)
        assert (await client.get(url)).json() == []
