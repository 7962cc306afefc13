"""Conversations, their messages and their state over HTTP, with good and bad input."""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import httpx
import pytest

from api.shapes import error_of

pytestmark = pytest.mark.anyio

API = "/api/v1/conversations"
CALL_NAME = "tool_calls.0.name"


async def start(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await client.post(f"{API}/start", json={"user_id": "u1", **fields})
    assert response.status_code == 201, response.text
    started: dict[str, Any] = response.json()
    return started


async def append(
    client: httpx.AsyncClient, cid: str, content: str, **fields: Any
) -> httpx.Response:
    return await client.post(
        f"{API}/{cid}/message", json={"role": "user", "content": content, **fields}
    )


class TestStart:
    async def test_start_with_a_first_message_stores_both(self, client: httpx.AsyncClient) -> None:
        started = await start(
            client, title="Lunch", message={"role": "user", "content": "coffee 300"}
        )
        conversation, message = started["conversation"], started["message"]
        assert conversation["title"] == "Lunch"
        assert conversation["message_count"] == 1
        assert message["seq"] == 1
        assert message["conversation_id"] == conversation["id"]
        fetched = (await client.get(f"{API}/{conversation['id']}")).json()
        assert fetched == conversation

    async def test_start_without_a_message(self, client: httpx.AsyncClient) -> None:
        started = await start(client)
        assert started["message"] is None
        assert started["conversation"]["message_count"] == 0

    async def test_start_counts_in_the_agents_usage(self, client: httpx.AsyncClient) -> None:
        agent = (await client.post("/api/v1/agents", json={"name": "a"})).json()
        await start(client, agent_id=agent["id"], message={"role": "user", "content": "hi"})
        used = (await client.get(f"/api/v1/agents/{agent['id']}")).json()
        assert used["conversation_count"] == 1
        assert used["message_count"] == 1

    async def test_a_bad_first_message_leaves_nothing_behind(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post(
            f"{API}/start",
            json={"user_id": "u1", "message": {"role": "user", "content": "x" * 1_000_001}},
        )
        error = error_of(response, 413)
        assert error["field"] == "content"
        assert "1000000" in error["message"]
        assert (await client.get(API, params={"user_id": "u1"})).json()["items"] == []

    @pytest.mark.parametrize(
        ("body", "status", "field"),
        [
            ({"agent_id": str(uuid.uuid4())}, 404, "agent_id"),
            ({"agent_id": "nope"}, 422, "agent_id"),
            ({"status": "sleeping"}, 422, "status"),
            ({"metadata": "not an object"}, 422, "metadata"),
            ({"message": {"role": "robot", "content": "x"}}, 422, "message.role"),
            ({"message": {"role": "user"}}, 422, "message.content"),
            ({"surprise": True}, 422, "surprise"),
        ],
    )
    async def test_bad_starts_are_refused(
        self, client: httpx.AsyncClient, body: dict[str, Any], status: int, field: str
    ) -> None:
        error = error_of(await client.post(f"{API}/start", json=body), status)
        assert error["field"] == field
        assert (await client.get(API)).json()["items"] == []


class TestReadChangeDelete:
    async def test_list_filters_and_pages(self, client: httpx.AsyncClient) -> None:
        agent = (await client.post("/api/v1/agents", json={"name": "a"})).json()
        ids = [
            (await start(client, user_id="u1", chat_id="c1"))["conversation"]["id"]
            for _ in range(3)
        ]
        await start(client, user_id="u2", agent_id=agent["id"], status="completed")
        first = (await client.get(API, params={"user_id": "u1", "limit": 2})).json()
        second = (
            await client.get(
                API, params={"user_id": "u1", "limit": 2, "cursor": first["next_cursor"]}
            )
        ).json()
        assert [c["id"] for c in first["items"] + second["items"]] == ids[::-1]
        assert second["next_cursor"] is None
        by_agent = (await client.get(API, params={"agent_id": agent["id"]})).json()["items"]
        assert [c["user_id"] for c in by_agent] == ["u2"]
        by_status = (await client.get(API, params={"status": "completed"})).json()["items"]
        assert [c["user_id"] for c in by_status] == ["u2"]
        assert len((await client.get(API, params={"chat_id": "c1"})).json()["items"]) == 3

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"status": "nope"}, "status"),
            ({"agent_id": "nope"}, "agent_id"),
            ({"limit": "0"}, "limit"),
            ({"limit": "501"}, "limit"),
            ({"limit": "many"}, "limit"),
            ({"cursor": "garbage"}, "cursor"),
        ],
    )
    async def test_bad_list_parameters(
        self, client: httpx.AsyncClient, params: dict[str, str], field: str
    ) -> None:
        assert error_of(await client.get(API, params=params), 422)["field"] == field

    async def test_patch_changes_what_it_names(self, client: httpx.AsyncClient) -> None:
        cid = (await start(client, title="t"))["conversation"]["id"]
        changed = await client.patch(
            f"{API}/{cid}",
            json={
                "status": "completed",
                "metadata": {"k": "v"},
                "agent_state": "waiting_for_amount",
                "operation_type": "expense",
            },
        )
        assert changed.status_code == 200
        body = changed.json()
        assert (body["status"], body["metadata"], body["title"]) == ("completed", {"k": "v"}, "t")
        assert (body["agent_state"], body["operation_type"]) == ("waiting_for_amount", "expense")

    @pytest.mark.parametrize(
        ("body", "status", "field"),
        [
            ({"status": "paused"}, 422, "status"),
            ({"status": None}, 422, "status"),
            ({"title": "x" * 501}, 422, "title"),
            ({"agent_id": str(uuid.uuid4())}, 404, "agent_id"),
            ({"metadata": {"big": "x" * 70_000}}, 413, "metadata"),
            ({"message_count": 5}, 422, "message_count"),
        ],
    )
    async def test_bad_patches_change_nothing(
        self, client: httpx.AsyncClient, body: dict[str, Any], status: int, field: str
    ) -> None:
        conversation = (await start(client, title="t"))["conversation"]
        cid = conversation["id"]
        assert error_of(await client.patch(f"{API}/{cid}", json=body), status)["field"] == field
        assert (await client.get(f"{API}/{cid}")).json() == conversation

    async def test_unknown_and_malformed_ids(self, client: httpx.AsyncClient) -> None:
        missing = uuid.uuid4()
        for response in [
            await client.get(f"{API}/{missing}"),
            await client.patch(f"{API}/{missing}", json={"title": "x"}),
            await client.delete(f"{API}/{missing}"),
            await append(client, str(missing), "hi"),
            await client.get(f"{API}/{missing}/messages"),
            await client.get(f"{API}/{missing}/state"),
            await client.put(f"{API}/{missing}/state/k", json={"value": 1}),
        ]:
            assert error_of(response, 404)["field"] == "conversation_id"
        assert error_of(await client.get(f"{API}/123"), 422)["field"] == "conversation_id"

    async def test_delete_cascades(self, client: httpx.AsyncClient) -> None:
        cid = (await start(client, message={"role": "user", "content": "hi"}))["conversation"]["id"]
        await client.put(f"{API}/{cid}/state/step", json={"value": 2})
        assert (await client.delete(f"{API}/{cid}")).status_code == 204
        error_of(await client.get(f"{API}/{cid}/messages"), 404)
        error_of(await client.get(f"{API}/{cid}/state/step"), 404)
        stats = (await client.get("/api/v1/stats")).json()
        assert (stats["conversations"], stats["messages"]) == (0, 0)


class TestMessages:
    async def test_append_and_page_both_ways(self, client: httpx.AsyncClient) -> None:
        cid = (await start(client))["conversation"]["id"]
        for i in range(7):
            response = await append(client, cid, f"m{i}", metadata={"i": i})
            assert response.status_code == 201
            assert response.json()["seq"] == i + 1
        newest = (await client.get(f"{API}/{cid}/messages", params={"limit": 3})).json()
        assert [m["content"] for m in newest["items"]] == ["m4", "m5", "m6"]
        older = (
            await client.get(
                f"{API}/{cid}/messages", params={"limit": 3, "before": newest["next_cursor"]}
            )
        ).json()
        assert [m["content"] for m in older["items"]] == ["m1", "m2", "m3"]
        forward = (
            await client.get(f"{API}/{cid}/messages", params={"after": 0, "limit": 4})
        ).json()
        assert [m["content"] for m in forward["items"]] == ["m0", "m1", "m2", "m3"]
        rest = (
            await client.get(f"{API}/{cid}/messages", params={"after": forward["next_cursor"]})
        ).json()
        assert [m["content"] for m in rest["items"]] == ["m4", "m5", "m6"]
        assert rest["next_cursor"] is None
        assert rest["items"][0]["metadata"] == {"i": 4}

    async def test_the_same_client_id_stores_one_message(self, client: httpx.AsyncClient) -> None:
        cid = (await start(client))["conversation"]["id"]
        first = await append(client, cid, "once", client_id="tg-1")
        again = await append(client, cid, "once", client_id="tg-1")
        assert first.status_code == again.status_code == 201
        assert first.json() == again.json()
        assert (await client.get(f"{API}/{cid}")).json()["message_count"] == 1

    async def test_a_client_id_reused_for_other_content_is_a_conflict(
        self, client: httpx.AsyncClient
    ) -> None:
        cid = (await start(client))["conversation"]["id"]
        await append(client, cid, "once", client_id="tg-2")
        other = await append(client, cid, "something else", client_id="tg-2")
        assert other.status_code == 409
        assert other.json()["error"]["code"] == "idempotency_conflict"
        assert other.json()["error"]["field"] == "client_id"
        assert (await client.get(f"{API}/{cid}")).json()["message_count"] == 1

    async def test_concurrent_retries_store_one_message(self, client: httpx.AsyncClient) -> None:
        cid = (await start(client))["conversation"]["id"]
        answers: list[dict[str, Any]] = []

        async def send() -> None:
            response = await append(client, cid, "retry", client_id="same")
            assert response.status_code == 201
            answers.append(response.json())

        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(send)
        assert len({a["id"] for a in answers}) == 1
        assert (await client.get(f"{API}/{cid}")).json()["message_count"] == 1

    async def test_message_fields_round_trip(self, client: httpx.AsyncClient) -> None:
        cid = (await start(client))["conversation"]["id"]
        sent = {
            "role": "assistant",
            "content": "<script>alert(1)</script> ünïcödé 🎉",
            "thinking": "considering",
            "tool_calls": [{"name": "current_time", "arguments": {}}],
            "input_tokens": 12,
            "output_tokens": 7,
            "status": "complete",
            "message_id": "tg-55",
            "reply_to_message_id": "tg-54",
        }
        stored = (await client.post(f"{API}/{cid}/message", json=sent)).json()
        assert {k: stored[k] for k in sent} == sent

    @pytest.mark.parametrize(
        ("body", "status", "field"),
        [
            ({"role": "user", "content": "x" * 1_000_001}, 413, "content"),
            ({"role": "user", "content": "ok", "metadata": {"b": "x" * 70_000}}, 413, "metadata"),
            ({"role": "user", "content": "nul \x00"}, 422, "content"),
            ({"role": "wizard", "content": "x"}, 422, "role"),
            ({"role": "user"}, 422, "content"),
            ({"role": "user", "content": "x", "input_tokens": -1}, 422, "input_tokens"),
            ({"role": "user", "content": "x", "status": "done"}, 422, "status"),
            ({"role": "user", "content": "x", "metadata": [1]}, 422, "metadata"),
            ({"role": "user", "content": "x", "client_id": ""}, 422, "client_id"),
            ({"role": "user", "content": "", "tool_calls": [{}]}, 422, CALL_NAME),
            ({"role": "user", "content": "", "tool_calls": [{"name": 1}]}, 422, CALL_NAME),
        ],
    )
    async def test_bad_messages_store_nothing(
        self, client: httpx.AsyncClient, body: dict[str, Any], status: int, field: str
    ) -> None:
        cid = (await start(client))["conversation"]["id"]
        response = await client.post(f"{API}/{cid}/message", json=body)
        assert error_of(response, status)["field"] == field
        assert (await client.get(f"{API}/{cid}/messages")).json()["items"] == []

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"limit": "501"}, "limit"),
            ({"limit": "0"}, "limit"),
            ({"before": "-1"}, "before"),
            ({"after": "x"}, "after"),
            ({"before": "3", "after": "1"}, "before"),
        ],
    )
    async def test_bad_paging_parameters(
        self, client: httpx.AsyncClient, params: dict[str, str], field: str
    ) -> None:
        cid = (await start(client))["conversation"]["id"]
        response = await client.get(f"{API}/{cid}/messages", params=params)
        assert error_of(response, 422)["field"] == field

    async def test_a_body_over_the_request_limit_is_refused_before_reading(
        self, client: httpx.AsyncClient
    ) -> None:
        cid = (await start(client))["conversation"]["id"]
        huge = b'{"role": "user", "content": "' + b"x" * 8_100_000 + b'"}'
        response = await client.post(
            f"{API}/{cid}/message", content=huge, headers={"content-type": "application/json"}
        )
        assert error_of(response, 413)["code"] == "too_large"
        assert (await client.get(f"{API}/{cid}")).json()["message_count"] == 0


class TestState:
    async def test_put_get_list_delete(self, client: httpx.AsyncClient) -> None:
        cid = (await start(client))["conversation"]["id"]
        for key, value in [
            ("step", 2),
            ("draft", {"amount": 300, "items": ["coffee"]}),
            ("n", None),
        ]:
            response = await client.put(f"{API}/{cid}/state/{key}", json={"value": value})
            assert response.status_code == 200
            assert response.json()["state_value"] == value
        replaced = await client.put(f"{API}/{cid}/state/step", json={"value": 3})
        assert replaced.json()["state_value"] == 3
        got = (await client.get(f"{API}/{cid}/state/step")).json()
        assert (got["state_key"], got["state_value"]) == ("step", 3)
        listed = (await client.get(f"{API}/{cid}/state")).json()
        assert [s["state_key"] for s in listed["items"]] == ["draft", "n", "step"]
        first = (await client.get(f"{API}/{cid}/state", params={"limit": 2})).json()
        assert [s["state_key"] for s in first["items"]] == ["draft", "n"]
        rest = await client.get(
            f"{API}/{cid}/state", params={"limit": 2, "cursor": first["next_cursor"]}
        )
        assert ([s["state_key"] for s in rest.json()["items"]], rest.json()["next_cursor"]) == (
            ["step"],
            None,
        )
        bad = error_of(await client.get(f"{API}/{cid}/state", params={"cursor": "x"}), 422)
        assert bad["field"] == "cursor"
        assert (await client.delete(f"{API}/{cid}/state/step")).status_code == 204
        assert error_of(await client.get(f"{API}/{cid}/state/step"), 404)["field"] == "state_key"
        error_of(await client.delete(f"{API}/{cid}/state/step"), 404)

    async def test_state_is_scoped_to_persona_and_module(self, client: httpx.AsyncClient) -> None:
        cid = (await start(client))["conversation"]["id"]
        persona = (
            await client.post("/api/v1/personas", json={"name": "p", "template": "t"})
        ).json()
        scoped = {"persona_id": persona["id"]}
        await client.put(f"{API}/{cid}/state/k", json={"value": "plain"})
        await client.put(f"{API}/{cid}/state/k", params=scoped, json={"value": "persona"})
        assert (await client.get(f"{API}/{cid}/state/k")).json()["state_value"] == "plain"
        got = await client.get(f"{API}/{cid}/state/k", params=scoped)
        assert got.json()["state_value"] == "persona"
        only = (await client.get(f"{API}/{cid}/state", params=scoped)).json()
        assert [s["state_value"] for s in only["items"]] == ["persona"]
        # a key held only in a persona's scope: the 404 says where it is
        await client.put(f"{API}/{cid}/state/mood", params=scoped, json={"value": "calm"})
        error = error_of(await client.get(f"{API}/{cid}/state/mood"), 404)
        assert error["field"] == "state_key"
        assert f"persona_id={persona['id']}" in error["message"]

    @pytest.mark.parametrize(
        ("body", "params", "status", "field"),
        [
            ({}, {}, 422, "value"),
            ({"value": 1, "extra": 2}, {}, 422, "extra"),
            ({"value": "x" * 70_000}, {}, 413, "state_value"),
            ({"value": "nul\x00"}, {}, 422, "state_value"),
            ({"value": 1}, {"persona_id": str(uuid.uuid4())}, 404, "persona_id"),
            ({"value": 1}, {"module_id": "nope"}, 422, "module_id"),
        ],
    )
    async def test_bad_state_writes_store_nothing(
        self,
        client: httpx.AsyncClient,
        body: dict[str, Any],
        params: dict[str, str],
        status: int,
        field: str,
    ) -> None:
        cid = (await start(client))["conversation"]["id"]
        response = await client.put(f"{API}/{cid}/state/k", json=body, params=params)
        assert error_of(response, status)["field"] == field
        assert (await client.get(f"{API}/{cid}/state")).json()["items"] == []
