"""The Conversations page and the chat-bot workflow panels of the Conversation page, rendered on
every backend without a browser (the browser flow is in ``tests/e2e/test_ui.py``)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from web.helpers import API, ESCAPED, SCRIPT, create, page

pytestmark = pytest.mark.anyio

CONVERSATIONS = f"{API}/conversations"


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def start(client: httpx.AsyncClient, content: str, **fields: Any) -> str:
    body = {"chat_id": "c1", **fields, "message": {"role": "user", "content": content}}
    started = await ok(await client.post(f"{CONVERSATIONS}/start", json=body), 201)
    cid: str = started["conversation"]["id"]
    return cid


def rows(html: str) -> list[str]:
    """The conversation ids the list shows, in order."""
    return re.findall(r'<th scope="row"><a href="/conversations/([0-9a-f-]+)">', html)


class TestConversationsPage:
    async def test_lists_every_conversation_with_an_agent_or_without(
        self, client: httpx.AsyncClient
    ) -> None:
        agent = await create(client, "agents", name="helper", provider="echo")
        bot = await start(client, "bought coffee for 300", user_id="u1", title="coffee")
        with_agent = await start(client, "hello", user_id="u2", agent_id=agent["id"])
        html = await page(client, "/conversations")
        assert "<h1>Conversations</h1>" in html
        assert set(rows(html)) == {bot, with_agent}
        assert rows(html)[0] == with_agent  # most recently active first
        assert f'<a href="/agents/{agent["id"]}">helper</a>' in html
        assert '<a href="/conversations" aria-current="page">Conversations</a>' in html

    async def test_filters_by_user_chat_and_status(self, client: httpx.AsyncClient) -> None:
        first = await start(client, "one", user_id="u1")
        second = await start(client, "two", user_id="u2")
        other_chat = await start(client, "three", user_id="u1", chat_id="c2")
        await ok(await client.patch(f"{CONVERSATIONS}/{second}", json={"status": "abandoned"}))
        assert rows(await page(client, "/conversations?user_id=u1")) == [other_chat, first]
        assert rows(await page(client, "/conversations?user_id=u1&chat_id=c1")) == [first]
        assert rows(await page(client, "/conversations?status=abandoned")) == [second]
        empty = await page(client, "/conversations?user_id=nobody")
        assert rows(empty) == []
        assert "No conversation matches these filters." in empty
        # an empty field of the filter form is no filter
        assert len(rows(await page(client, "/conversations?user_id=&chat_id=&status="))) == 3

    async def test_searches_message_text_and_shows_the_matches(
        self, client: httpx.AsyncClient
    ) -> None:
        coffee = await start(client, "bought coffee for 300", user_id="u1")
        await start(client, "paid the rent", user_id="u1")
        abandoned = await start(client, "more coffee please", user_id="u2")
        await ok(await client.patch(f"{CONVERSATIONS}/{abandoned}", json={"status": "abandoned"}))
        html = await page(client, "/conversations?q=coffee")
        assert set(rows(html)) == {coffee, abandoned}
        assert "user: bought coffee for 300" in html
        assert rows(await page(client, "/conversations?q=coffee&user_id=u1")) == [coffee]
        assert rows(await page(client, "/conversations?q=coffee&status=abandoned")) == [abandoned]
        none = await page(client, "/conversations?q=tea")
        assert "No conversation has a message containing every one of these words." in none

    async def test_pages_keep_their_filters(self, client: httpx.AsyncClient) -> None:
        for n in range(51):
            await start(client, f"message {n}", user_id="u1")
        html = await page(client, "/conversations?user_id=u1")
        assert len(rows(html)) == 50
        found = re.search(r'<a href="(/conversations\?user_id=u1&amp;cursor=[^"]+)">Next', html)
        assert found, "no next page link keeping the filter"
        rest = await page(client, found.group(1).replace("&amp;", "&"))
        assert len(rows(rest)) == 1

    async def test_an_unknown_status_is_a_422_page(self, client: httpx.AsyncClient) -> None:
        html = await page(client, "/conversations?status=gone", status=422)
        assert "status" in html

    async def test_a_broken_cursor_is_a_422_page(self, client: httpx.AsyncClient) -> None:
        html = await page(client, "/conversations?cursor=not-a-cursor", status=422)
        assert "cursor" in html

    @pytest.mark.parametrize("text", ["?!", '"coffee" OR -tea', "кофе ☕", "x" * 500])
    async def test_any_search_text_is_a_page_never_an_error(
        self, client: httpx.AsyncClient, text: str
    ) -> None:
        await start(client, "кофе ☕ coffee", user_id="u1")
        response = await client.get("/conversations", params={"q": text})
        assert response.status_code == 200, response.text

    async def test_search_text_beyond_the_limit_is_a_422_page(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/conversations", params={"q": "x" * 501})
        assert response.status_code == 422

    async def test_what_users_wrote_shows_as_text(self, client: httpx.AsyncClient) -> None:
        await start(client, f"coffee {SCRIPT}", user_id=SCRIPT, title=SCRIPT)
        html = await page(client, "/conversations?q=coffee")
        assert SCRIPT not in html
        assert ESCAPED in html


async def expense(client: httpx.AsyncClient) -> str:
    """The expense bot until the reply: amount and item given, the account asked and answered."""
    cid = await start(client, "bought coffee for 300", user_id="u1", title="coffee")
    data = {"data_type": "partial", "content": {"amount": 300, "item": "coffee"}}
    await ok(await client.post(f"{CONVERSATIONS}/{cid}/data", json=data), 201)
    missing = {"data_type": "missing_fields", "content": ["account", "category"]}
    await ok(await client.post(f"{CONVERSATIONS}/{cid}/data", json=missing), 201)
    question = {
        "agent_name": "ExpenseAgent",
        "question": "From which account?",
        "missing_fields": ["account"],
        "message_id": "102",
    }
    await ok(await client.post(f"{CONVERSATIONS}/{cid}/questions", json=question), 201)
    reply = {"role": "user", "content": "cash", "reply_to_message_id": "102"}
    await ok(await client.post(f"{CONVERSATIONS}/{cid}/message", json=reply), 201)
    return cid


class TestWorkflowPanels:
    async def test_data_snapshots_show_in_the_order_they_were_stored(
        self, client: httpx.AsyncClient
    ) -> None:
        cid = await expense(client)
        html = await page(client, f"/conversations/{cid}")
        section = html[html.index('id="data"') : html.index('id="questions"')]
        assert section.index("partial") < section.index("missing fields")
        assert "&#34;amount&#34;: 300" in section
        assert "&#34;category&#34;" in section

    async def test_questions_show_when_they_were_asked_and_answered(
        self, client: httpx.AsyncClient
    ) -> None:
        cid = await expense(client)
        await ok(
            await client.post(
                f"{CONVERSATIONS}/{cid}/questions",
                json={"agent_name": "ExpenseAgent", "question": "Which category?"},
            ),
            201,
        )
        html = await page(client, f"/conversations/{cid}")
        section = html[html.index('id="questions"') :]
        assert section.index("From which account?") < section.index("Which category?")
        assert section.count("<dt>Asked</dt><dd><time") == 2
        assert section.count("<dt>Answered</dt><dd><time") == 1  # the reply answered the first
        assert "<dt>Answer</dt><dd>cash</dd>" in section
        assert ">pending<" in section

    async def test_the_user_session_is_shown(self, client: httpx.AsyncClient) -> None:
        cid = await expense(client)
        await ok(
            await client.put(f"{API}/users/u1/sessions/c1", json={"timezone": "Europe/Madrid"})
        )
        html = await page(client, f"/conversations/{cid}")
        section = html[html.index('id="session"') :]
        assert "Europe/Madrid" in section
        assert "<dt>Last conversation</dt><dd>this one</dd>" in section

    async def test_a_conversation_without_a_user_has_no_session(
        self, client: httpx.AsyncClient
    ) -> None:
        cid = await start(client, "hello")
        html = await page(client, f"/conversations/{cid}")
        assert "This conversation has no user and chat, so no session." in html
        assert "No data has been stored for this conversation." in html
        assert "No agent has asked a question in this conversation." in html

    async def test_the_controls_call_the_lifecycle_routes(self, client: httpx.AsyncClient) -> None:
        cid = await expense(client)
        html = await page(client, f"/conversations/{cid}")
        base = f"{CONVERSATIONS}/{cid}"
        assert f'data-api="POST {base}/complete"' in html
        assert f'data-api="POST {base}/resume"' in html
        assert f'data-api="PATCH {base}"' in html
        assert '<input type="hidden" name="status" value="abandoned">' in html
        # each control has a place for a refused change of status
        section = html[html.index('id="workflow"') :]
        assert section.count('data-error-for="status"') == 3

    async def test_the_page_leads_back_to_the_list_and_to_the_users_conversations(
        self, client: httpx.AsyncClient
    ) -> None:
        cid = await start(client, "hello", user_id="ana & bo")
        html = await page(client, f"/conversations/{cid}")
        assert '<p class="crumbs"><a href="/conversations">Conversations</a>' in html
        assert '<a href="/conversations?user_id=ana+%26+bo">ana &amp; bo</a>' in html
