"""A chat bot's conversation workflow over HTTP: the expense bot's lifecycle end to end, each
route with good and bad input, on every backend."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from agentkeep import Settings
from agentkeep.api import create_app
from agentkeep.db.tables import conversations
from agentkeep.repositories.facade import Unit
from api.shapes import error_of

pytestmark = pytest.mark.anyio

API = "/api/v1"
CONVERSATIONS = f"{API}/conversations"
JSON = {"content-type": "application/json"}


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def start(client: httpx.AsyncClient, **fields: Any) -> str:
    body = {"user_id": 42, "chat_id": 42, "operation_type": "expense", **fields}
    started = await ok(await client.post(f"{CONVERSATIONS}/start", json=body), 201)
    cid: str = started["conversation"]["id"]
    return cid


async def say(
    client: httpx.AsyncClient, cid: str, role: str, content: str, **ids: Any
) -> dict[str, Any]:
    body = {"role": role, "content": content, **ids}
    message: dict[str, Any] = await ok(
        await client.post(f"{CONVERSATIONS}/{cid}/message", json=body), 201
    )
    return message


async def ask(client: httpx.AsyncClient, cid: str, **fields: Any) -> dict[str, Any]:
    body = {"agent_name": "ExpenseAgent", "question": "From which account?", **fields}
    question: dict[str, Any] = await ok(
        await client.post(f"{CONVERSATIONS}/{cid}/questions", json=body), 201
    )
    return question


async def partial(client: httpx.AsyncClient, cid: str, content: dict[str, Any]) -> None:
    body = {"data_type": "partial", "content": content}
    await ok(await client.post(f"{CONVERSATIONS}/{cid}/data", json=body), 201)


async def backdate(app: FastAPI, cid: str, days: int) -> None:
    when = datetime.now(UTC) - timedelta(days=days)

    def work(uow: Unit) -> None:
        uow.connection.execute(
            update(conversations)
            .where(conversations.c.id == uuid.UUID(cid))
            .values(updated_at=when)
        )

    await app.state.db.run(work)


async def expense_until_the_reply(client: httpx.AsyncClient) -> str:
    """The expense bot: coffee for 300, the account asked (bot message 102) and answered by a
    reply; the category still missing."""
    cid = await start(
        client, message={"role": "user", "content": "bought coffee for 300", "message_id": 101}
    )
    await partial(client, cid, {"amount": 300, "item": "coffee"})
    await ask(client, cid, missing_fields=["account", "category"], message_id=102)
    await say(client, cid, "assistant", "From which account?", message_id=102)
    found = await ok(
        await client.get(
            f"{CONVERSATIONS}/by-reply", params={"reply_to_message_id": 102, "chat_id": 42}
        )
    )
    assert found["id"] == cid
    await say(client, cid, "user", "cash", message_id=103, reply_to_message_id=102)
    await partial(client, cid, {"amount": 300, "item": "coffee", "account": "cash"})
    return cid


class TestExpenseBotLifecycle:
    async def test_the_whole_lifecycle(self, client: httpx.AsyncClient) -> None:
        cid = await expense_until_the_reply(client)
        context = await ok(await client.get(f"{CONVERSATIONS}/{cid}/context"))
        assert context["partial_data"] == {"amount": 300, "item": "coffee", "account": "cash"}
        assert context["missing_fields"] == ["category"]
        assert [
            (m["role"], m["message_id"], m["reply_to_message_id"])
            for m in context["message_history"]
        ] == [("user", "101", None), ("assistant", "102", None), ("user", "103", "102")]
        [question] = context["agent_questions"]
        assert question["answer"] == "cash"
        assert question["asked_at"] <= question["answered_at"]
        assert context["last_bot_message_id"] == "102"
        assert context["history_next_after"] is None
        pending = await ok(
            await client.get(f"{CONVERSATIONS}/{cid}/questions", params={"pending": "true"})
        )
        assert pending["items"] == []

        done = await ok(
            await client.post(
                f"{CONVERSATIONS}/{cid}/complete",
                json={"external_ref": 7, "complete_data": {"amount": 300, "category": "food"}},
            )
        )
        assert (done["status"], done["external_ref"]) == ("completed", "7")
        latest = await ok(await client.get(f"{CONVERSATIONS}/{cid}/data/complete"))
        assert latest["content"] == {"amount": 300, "category": "food"}
        active = await ok(
            await client.get(
                CONVERSATIONS, params={"user_id": 42, "chat_id": 42, "status": "active"}
            )
        )
        assert active["items"] == []

    async def test_a_history_page_beyond_the_page_size_is_refused(
        self, client: httpx.AsyncClient
    ) -> None:
        cid = await start(client)
        for response in (
            await client.get(f"{CONVERSATIONS}/{cid}/context", params={"history_limit": 501}),
            await client.post(f"{CONVERSATIONS}/{cid}/resume", params={"history_limit": 501}),
            await client.get(f"{CONVERSATIONS}/{cid}/context", params={"history_limit": 0}),
        ):
            assert error_of(response, 422)["field"] == "history_limit"

    async def test_the_context_pages_through_the_whole_thread(
        self, client: httpx.AsyncClient
    ) -> None:
        cid = await start(client)
        for n in range(5):
            await say(client, cid, "user", f"m{n}", message_id=n)
        seen, after = [], 0
        while after is not None:
            page = await ok(
                await client.get(
                    f"{CONVERSATIONS}/{cid}/context",
                    params={"history_limit": 2, "history_after": after},
                )
            )
            seen += [m["content"] for m in page["message_history"]]
            after = page["history_next_after"]
        assert seen == [f"m{n}" for n in range(5)]

    async def test_resume_after_the_server_restarts(self, settings: Settings) -> None:
        if settings.url is None:
            pytest.skip("an in-memory store does not outlive its server")

        async def served() -> Any:
            app = create_app(settings)
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
            return app, client

        app, client = await served()
        async with app.router.lifespan_context(app), client:
            cid = await expense_until_the_reply(client)
            await ok(await client.patch(f"{CONVERSATIONS}/{cid}", json={"status": "abandoned"}))
        app, client = await served()
        async with app.router.lifespan_context(app), client:
            found = await ok(
                await client.get(f"{CONVERSATIONS}/by-reply", params={"reply_to_message_id": "102"})
            )
            resumed = await ok(await client.post(f"{CONVERSATIONS}/{found['id']}/resume"))
            assert resumed["status"] == "active"
            assert resumed["missing_fields"] == ["category"]
            assert len(resumed["message_history"]) == 3


class TestFinding:
    async def test_by_message_and_by_reply_take_integers_or_text(
        self, client: httpx.AsyncClient
    ) -> None:
        cid = await start(client, chat_id="-100")
        await say(client, cid, "assistant", "?", message_id=55)
        for route, name in (("by-message", "message_id"), ("by-reply", "reply_to_message_id")):
            for value in (55, "55"):
                found = await ok(
                    await client.get(
                        f"{CONVERSATIONS}/{route}", params={name: value, "chat_id": -100}
                    )
                )
                assert found["id"] == cid

    @pytest.mark.parametrize(
        "params",
        [
            {"reply_to_message_id": "999"},
            {"reply_to_message_id": "55", "chat_id": "another chat"},
            {"reply_to_message_id": "5\x005"},
        ],
    )
    async def test_a_reply_to_an_unknown_or_another_chats_message_is_not_found(
        self, client: httpx.AsyncClient, params: dict[str, str]
    ) -> None:
        cid = await start(client, chat_id="c")
        await say(client, cid, "assistant", "?", message_id=55)
        error = error_of(await client.get(f"{CONVERSATIONS}/by-reply", params=params), 404)
        assert error["field"] == "reply_to_message_id"

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({}, "reply_to_message_id"),
            ({"reply_to_message_id": ""}, "reply_to_message_id"),
            ({"reply_to_message_id": "1", "chat_id": "x" * 256}, "chat_id"),
            ({"reply_to_message_id": "1", "message_id": "1"}, "message_id"),
        ],
    )
    async def test_malformed_lookups_are_refused(
        self, client: httpx.AsyncClient, params: dict[str, str], field: str
    ) -> None:
        error = error_of(await client.get(f"{CONVERSATIONS}/by-reply", params=params), 422)
        assert error["field"] == field


class TestData:
    async def test_snapshots_latest_and_list(self, client: httpx.AsyncClient) -> None:
        cid = await start(client)
        await partial(client, cid, {"amount": 300})
        await partial(client, cid, {"amount": 300, "item": "coffee"})
        body = {"data_type": "missing_fields", "content": ["account"]}
        await ok(await client.post(f"{CONVERSATIONS}/{cid}/data", json=body), 201)
        latest = await ok(await client.get(f"{CONVERSATIONS}/{cid}/data/partial"))
        assert latest["content"] == {"amount": 300, "item": "coffee"}
        every = await ok(await client.get(f"{CONVERSATIONS}/{cid}/data", params={"limit": 2}))
        assert [s["data_type"] for s in every["items"]] == ["missing_fields", "partial"]
        rest = await ok(
            await client.get(f"{CONVERSATIONS}/{cid}/data", params={"cursor": every["next_cursor"]})
        )
        assert [s["content"] for s in rest["items"]] == [{"amount": 300}]
        only = await ok(
            await client.get(f"{CONVERSATIONS}/{cid}/data", params={"data_type": "partial"})
        )
        assert len(only["items"]) == 2
        error = error_of(await client.get(f"{CONVERSATIONS}/{cid}/data/complete"), 404)
        assert error["field"] == "data_type"

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"data_type": "partial", "content": ["a"]}, "content"),
            ({"data_type": "missing_fields", "content": {"a": 1}}, "content"),
            ({"data_type": "final", "content": {}}, "data_type"),
            ({"data_type": "partial"}, "content"),
            ({"data_type": "partial", "content": {}, "extra": 1}, "extra"),
        ],
    )
    async def test_bad_snapshots_are_refused_and_nothing_is_stored(
        self, client: httpx.AsyncClient, body: dict[str, Any], field: str
    ) -> None:
        cid = await start(client)
        error = error_of(await client.post(f"{CONVERSATIONS}/{cid}/data", json=body), 422)
        assert error["field"] == field
        assert (await ok(await client.get(f"{CONVERSATIONS}/{cid}/data")))["items"] == []

    async def test_unknown_and_malformed_conversations(self, client: httpx.AsyncClient) -> None:
        body = {"data_type": "partial", "content": {}}
        unknown = f"{CONVERSATIONS}/{uuid.uuid4()}"
        for response in (
            await client.post(f"{unknown}/data", json=body),
            await client.get(f"{unknown}/data"),
            await client.get(f"{unknown}/data/partial"),
            await client.get(f"{unknown}/questions"),
            await client.get(f"{unknown}/context"),
            await client.post(f"{unknown}/resume"),
            await client.post(f"{unknown}/complete", json={"external_ref": 1}),
            await client.post(f"{unknown}/questions", json={"agent_name": "a", "question": "?"}),
        ):
            assert error_of(response, 404)["field"] == "conversation_id"
        for path in ("data", "data/partial", "questions", "context"):
            error = error_of(await client.get(f"{CONVERSATIONS}/123/{path}"), 422)
            assert error["field"] == "conversation_id"
        error = error_of(await client.get(f"{CONVERSATIONS}/{uuid.uuid4()}/data/final"), 422)
        assert error["field"] == "data_type"


class TestQuestions:
    async def test_ask_answer_once_and_list_pending(self, client: httpx.AsyncClient) -> None:
        cid = await start(client)
        first = await ask(client, cid, missing_fields=["account"])
        second = await ask(client, cid, question="Which category?")
        url = f"{CONVERSATIONS}/{cid}/questions/{first['id']}/answer"
        answered = await ok(await client.post(url, json={"answer": "cash"}))
        assert answered["answer"] == "cash"
        assert answered["answered_at"] is not None
        error = error_of(await client.post(url, json={"answer": "card"}), 409)
        assert error["field"] == "question_id"
        pending = await ok(
            await client.get(f"{CONVERSATIONS}/{cid}/questions", params={"pending": True})
        )
        assert [q["id"] for q in pending["items"]] == [second["id"]]
        every = await ok(await client.get(f"{CONVERSATIONS}/{cid}/questions"))
        assert [q["id"] for q in every["items"]] == [second["id"], first["id"]]

    async def test_a_question_of_another_conversation_or_none_is_not_found(
        self, client: httpx.AsyncClient
    ) -> None:
        cid, other = await start(client), await start(client)
        question = await ask(client, other)
        for qid in (question["id"], str(uuid.uuid4())):
            url = f"{CONVERSATIONS}/{cid}/questions/{qid}/answer"
            error = error_of(await client.post(url, json={"answer": "x"}), 404)
            assert error["field"] == "question_id"
        got = await ok(await client.get(f"{CONVERSATIONS}/{other}/questions"))
        assert got["items"][0]["answered_at"] is None

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"question": "?"}, "agent_name"),
            ({"agent_name": "a", "question": "?", "missing_fields": "account"}, "missing_fields"),
            ({"agent_name": "a", "question": "?", "message_id": 1.5}, "message_id"),
            ({"agent_name": "a", "question": "?", "message_id": True}, "message_id"),
        ],
    )
    async def test_bad_questions_are_refused(
        self, client: httpx.AsyncClient, body: dict[str, Any], field: str
    ) -> None:
        cid = await start(client)
        error = error_of(await client.post(f"{CONVERSATIONS}/{cid}/questions", json=body), 422)
        assert error["field"].startswith(field)
        assert (await ok(await client.get(f"{CONVERSATIONS}/{cid}/questions")))["items"] == []

    async def test_two_replies_to_one_question_at_once_answer_it_once(
        self, client: httpx.AsyncClient
    ) -> None:
        cid = await start(client)
        question = await ask(client, cid, message_id=102)
        await say(client, cid, "assistant", "From which account?", message_id=102)
        replies: list[dict[str, Any]] = []

        async def reply(text: str, message_id: int) -> None:
            replies.append(
                await say(client, cid, "user", text, message_id=message_id, reply_to_message_id=102)
            )

        async with anyio.create_task_group() as group:
            group.start_soon(reply, "cash", 103)
            group.start_soon(reply, "card", 104)
        assert len(replies) == 2
        got = await ok(await client.get(f"{CONVERSATIONS}/{cid}/questions"))
        [stored] = got["items"]
        assert stored["id"] == question["id"]
        first = min(replies, key=lambda m: m["seq"])
        assert stored["answer"] == first["content"]
        messages = await ok(await client.get(f"{CONVERSATIONS}/{cid}/messages"))
        assert len(messages["items"]) == 3


class TestStatusLifecycle:
    async def test_completed_is_final(self, client: httpx.AsyncClient) -> None:
        cid = await start(client)
        await ok(await client.post(f"{CONVERSATIONS}/{cid}/complete", json={"external_ref": "r"}))
        for response in (
            await client.patch(f"{CONVERSATIONS}/{cid}", json={"status": "active", "title": "t"}),
            await client.patch(f"{CONVERSATIONS}/{cid}", json={"status": "abandoned"}),
            await client.post(f"{CONVERSATIONS}/{cid}/resume"),
            await client.post(f"{CONVERSATIONS}/{cid}/complete", json={"external_ref": "s"}),
        ):
            error = error_of(response, 409)
            assert error["field"] == "status"
        kept = await ok(await client.get(f"{CONVERSATIONS}/{cid}"))
        assert (kept["status"], kept["external_ref"], kept["title"]) == ("completed", "r", None)

    async def test_complete_with_bad_data_writes_nothing(self, client: httpx.AsyncClient) -> None:
        cid = await start(client)
        for body, field in (
            ({"external_ref": "r", "complete_data": ["x"]}, "complete_data"),
            ({"external_ref": "r", "complete_data": {"a": "x\u0000"}}, "complete_data"),
            ({"external_ref": "r", "complete_data": {"a": {"b": "\ud800"}}}, "complete_data"),
            ({"complete_data": {}}, "external_ref"),
            ({"external_ref": ""}, "external_ref"),
        ):
            sent = json.dumps(body)  # ASCII: a lone surrogate goes as its \ud800 escape
            url = f"{CONVERSATIONS}/{cid}/complete"
            response = await client.post(url, content=sent, headers=JSON)
            assert error_of(response, 422)["field"] == field
        kept = await ok(await client.get(f"{CONVERSATIONS}/{cid}"))
        assert (kept["status"], kept["external_ref"]) == ("active", None)
        assert (await ok(await client.get(f"{CONVERSATIONS}/{cid}/data")))["items"] == []

    async def test_abandoned_conversations_resume(self, client: httpx.AsyncClient) -> None:
        cid = await start(client)
        await ok(await client.patch(f"{CONVERSATIONS}/{cid}", json={"status": "abandoned"}))
        resumed = await ok(await client.post(f"{CONVERSATIONS}/{cid}/resume"))
        assert resumed["status"] == "active"
        again = await ok(await client.post(f"{CONVERSATIONS}/{cid}/resume"))
        assert again["status"] == "active"

    async def test_abandon_idle(self, served: tuple[FastAPI, httpx.AsyncClient]) -> None:
        app, client = served
        idle, fresh, done = await start(client), await start(client), await start(client)
        await ok(await client.post(f"{CONVERSATIONS}/{done}/complete", json={"external_ref": 1}))
        for cid in (idle, done):
            await backdate(app, cid, days=2)
        url = f"{CONVERSATIONS}/abandon-idle"
        abandoned = await ok(await client.post(url, json={"idle_seconds": 86400}))
        assert abandoned == {"abandoned": 1, "conversation_ids": [idle]}
        statuses = [
            (await ok(await client.get(f"{CONVERSATIONS}/{c}")))["status"]
            for c in (idle, fresh, done)
        ]
        assert statuses == ["abandoned", "active", "completed"]
        for body in ({"idle_seconds": -1}, {"idle_seconds": "day"}, {}):
            assert error_of(await client.post(url, json=body), 422)["field"] == "idle_seconds"

    async def test_purge_dry_run_then_real(self, served: tuple[FastAPI, httpx.AsyncClient]) -> None:
        app, client = served
        old, recent = await expense_until_the_reply(client), await start(client)
        for cid in (old, recent):
            await ok(await client.post(f"{CONVERSATIONS}/{cid}/complete", json={"external_ref": 1}))
        await backdate(app, old, days=40)
        url = f"{CONVERSATIONS}/purge"
        body = {"status": "completed", "older_than_seconds": 30 * 86400}
        dry = await ok(await client.post(url, json={**body, "dry_run": True}))
        assert dry == {"purged": 1, "dry_run": True}
        assert (await client.get(f"{CONVERSATIONS}/{old}")).status_code == 200
        real = await ok(await client.post(url, json=body))
        assert real == {"purged": 1, "dry_run": False}
        assert error_of(await client.get(f"{CONVERSATIONS}/{old}"), 404)
        assert (await client.get(f"{CONVERSATIONS}/{recent}")).status_code == 200
        for bad, field in (
            ({**body, "status": "finished"}, "status"),
            ({**body, "older_than_seconds": -1}, "older_than_seconds"),
            ({"status": "completed"}, "older_than_seconds"),
        ):
            assert error_of(await client.post(url, json=bad), 422)["field"] == field


class TestSessions:
    async def test_put_then_get(self, client: httpx.AsyncClient) -> None:
        url = f"{API}/users/42/sessions/-100"
        assert error_of(await client.get(url), 404)["field"] == "user_id"
        cid = await start(client)
        body = {"last_conversation_id": cid, "timezone": "Europe/Moscow"}
        first = await ok(await client.put(url, json=body))
        assert (first["user_id"], first["chat_id"], first["timezone"]) == (
            "42",
            "-100",
            "Europe/Moscow",
        )
        second = await ok(await client.put(url, json={"metadata": {"lang": "ru"}}))
        assert (second["last_conversation_id"], second["timezone"]) == (cid, "Europe/Moscow")
        assert second["last_activity_at"] >= first["last_activity_at"]
        assert await ok(await client.get(url)) == second

    async def test_the_workflow_keeps_the_session_current(self, client: httpx.AsyncClient) -> None:
        url = f"{API}/users/42/sessions/42"
        first = await start(client)
        started = await ok(await client.get(url))
        assert started["last_conversation_id"] == first
        second = await start(client)
        assert (await ok(await client.get(url)))["last_conversation_id"] == second
        await ok(await client.post(f"{CONVERSATIONS}/{first}/complete", json={"external_ref": 1}))
        completed = await ok(await client.get(url))
        assert completed["last_conversation_id"] == first
        assert completed["last_activity_at"] >= started["last_activity_at"]
        await ok(await client.patch(f"{CONVERSATIONS}/{second}", json={"status": "abandoned"}))
        await ok(await client.post(f"{CONVERSATIONS}/{second}/resume"))
        assert (await ok(await client.get(url)))["last_conversation_id"] == second
        await start(client, user_id=None)
        assert (await ok(await client.get(url)))["last_conversation_id"] == second

    @pytest.mark.parametrize(
        ("body", "status", "field"),
        [
            ({"timezone": "Mars/Olympus"}, 422, "timezone"),
            ({"last_conversation_id": "123"}, 422, "last_conversation_id"),
            ({"last_conversation_id": str(uuid.uuid4())}, 404, "last_conversation_id"),
            ({"metadata": [1]}, 422, "metadata"),
        ],
    )
    async def test_bad_sessions_are_refused_and_nothing_is_stored(
        self, client: httpx.AsyncClient, body: dict[str, Any], status: int, field: str
    ) -> None:
        url = f"{API}/users/u/sessions/c"
        assert error_of(await client.put(url, json=body), status)["field"] == field
        assert error_of(await client.get(url), 404)


class TestTemplates:
    async def test_crud_and_use(self, client: httpx.AsyncClient) -> None:
        body = {
            "operation_type": "expense",
            "template_name": "coffee",
            "sample_input": "coffee 300",
            "expected_output": {"amount": 300},
        }
        made = await ok(await client.post(f"{API}/templates", json=body), 201)
        error = error_of(await client.post(f"{API}/templates", json=body), 409)
        assert error["field"] == "template_name"
        url = f"{API}/templates/{made['id']}"
        used = await ok(await client.post(f"{url}/use"))
        assert used["usage_count"] == 1
        changed = await ok(await client.patch(url, json={"sample_input": "coffee, 300"}))
        assert (changed["sample_input"], changed["usage_count"]) == ("coffee, 300", 1)
        listed = await ok(
            await client.get(f"{API}/templates", params={"operation_type": "expense"})
        )
        assert [t["id"] for t in listed["items"]] == [made["id"]]
        none = await ok(await client.get(f"{API}/templates", params={"operation_type": "income"}))
        assert none["items"] == []
        assert (await client.delete(url)).status_code == 204
        for response in (
            await client.get(url),
            await client.delete(url),
            await client.post(f"{url}/use"),
            await client.patch(url, json={"sample_input": "x"}),
        ):
            assert error_of(response, 404)["field"] == "template_id"

    async def test_bad_templates_are_refused(self, client: httpx.AsyncClient) -> None:
        for body, field in (
            ({"operation_type": "e", "template_name": "n"}, "sample_input"),
            (
                {"operation_type": "e", "template_name": "n", "sample_input": "s", "x": 1},
                "x",
            ),
        ):
            error = error_of(await client.post(f"{API}/templates", json=body), 422)
            assert error["field"] == field
        assert (await ok(await client.get(f"{API}/templates")))["items"] == []
        error = error_of(await client.get(f"{API}/templates/nope"), 422)
        assert error["field"] == "template_id"


class TestUnknownQueryParameters:
    @pytest.mark.parametrize(
        "path",
        [
            "conversations",
            "agents",
            "templates",
            "conversations/{cid}/messages",
            "conversations/{cid}/state",
            "conversations/{cid}/data",
            "conversations/{cid}/questions",
        ],
    )
    async def test_a_list_refuses_a_parameter_it_does_not_take(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        cid = await start(client)
        url = f"{API}/{path.format(cid=cid)}"
        error = error_of(await client.get(url, params={"reply_to_message_id": 102}), 422)
        assert error["field"] == "reply_to_message_id"
        assert (await client.get(url, params={"limit": 5})).status_code == 200
