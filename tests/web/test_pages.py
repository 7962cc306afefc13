"""The web UI's pages rendered on every backend, without a browser.

Each page answers 200 with what it is for; an unknown or malformed id is a 404 page (HTML, not
the API's JSON); what users and models wrote is escaped; with API keys configured the pages need
a sign-in, as the API does. The browser flow is in ``tests/e2e/test_ui.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Request

import agentkeep.web
from agentkeep import Settings
from agentkeep.models.conversation import Conversation
from agentkeep.web import NAV
from agentkeep.web.access import COOKIE
from agentkeep.web.panels import PANELS, conversation_panel
from api.shapes import read_sse
from web.helpers import (
    API,
    ESCAPED,
    INLINE_HANDLER,
    INLINE_SCRIPT,
    INLINE_STYLE,
    KEY,
    SCRIPT,
    assert_ui_headers,
    chat,
    create,
    csrf_token,
    page,
    pages_showing,
    policy_of,
    same_site,
    served,
    with_key,
)

pytestmark = pytest.mark.anyio

TEMPLATE_DIR = Path(agentkeep.web.__file__).parent / "templates"
TEMPLATES = sorted(TEMPLATE_DIR.rglob("*.html"))


class TestPages:
    async def test_home_shows_counts_database_provider_and_health(
        self, client: httpx.AsyncClient, backend: str
    ) -> None:
        agent = await create(client, "agents", name="helper", provider="echo")
        await chat(client, agent["id"], "bought coffee for 300")
        html = await page(client, "/")
        assert "<h1>Home</h1>" in html
        assert "bought coffee for 300" in html  # a recent conversation, titled by its message
        assert ">ok<" in html
        assert "echo" in html
        assert f"<dd>{'postgresql' if backend == 'postgresql' else 'sqlite'} · <code>" in html
        for label in ("Agents", "Conversations", "Messages", "Tokens"):
            assert f"<dt>{label}</dt>" in html

    async def test_the_navigation_lists_the_pages_in_order(self, client: httpx.AsyncClient) -> None:
        assert [item.label for item in NAV] == [
            "Home",
            "Agents",
            "Chat",
            "Conversations",
            "Memory",
            "Tools",
            "Personas",
            "Modules",
            "Workflows",
            "Config",
        ]
        html = await page(client, "/tools")
        assert '<a href="/tools" aria-current="page">Tools</a>' in html

    async def test_agents_lists_agents_and_offers_a_create_form(
        self, client: httpx.AsyncClient
    ) -> None:
        agent = await create(client, "agents", name="support-bot", description="Answers")
        html = await page(client, "/agents")
        assert f'href="/agents/{agent["id"]}">support-bot</a>' in html
        assert 'data-api="POST /api/v1/agents"' in html
        assert '<label for="new-name">Name</label>' in html
        assert 'data-error-for="name"' in html

    async def test_an_agent_page_edits_settings_tools_and_deletes(
        self, client: httpx.AsyncClient
    ) -> None:
        settings = {"history_messages": 8, "temperature": 0.5}
        agent = await create(client, "agents", name="planner", model_settings=settings)
        clock = await create(client, "tools", name="current_time")
        other = await create(client, "tools", name="lookup")
        await client.post(f"{API}/agents/{agent['id']}/tools/{clock['id']}")
        html = await page(client, f"/agents/{agent['id']}")
        assert f'data-api="PATCH /api/v1/agents/{agent["id"]}"' in html
        assert 'name="model_settings.history_messages" type="number" value="8"' in html
        assert "&#34;temperature&#34;: 0.5" in html  # the other settings, as JSON
        assert "history_messages&#34;" not in html  # edited in its own field only
        assert f"/tools/{clock['id']}" in html  # attached: a detach form
        assert f'<option value="{other["id"]}">lookup</option>' in html  # attachable
        assert f'data-api="DELETE /api/v1/agents/{agent["id"]}"' in html
        assert "<dialog" in html

    async def test_tools_show_schema_users_and_usage(self, client: httpx.AsyncClient) -> None:
        schema = {"type": "object", "properties": {"timezone": {"type": "string"}}}
        tool = await create(client, "tools", name="current_time", parameters=schema)
        user = await create(client, "agents", name="timekeeper", model_settings={})
        idle = await create(client, "agents", name="idle")
        await client.post(f"{API}/agents/{user['id']}/tools/{tool['id']}")
        html = await page(client, "/tools")
        assert "current_time" in html
        assert "&#34;timezone&#34;" in html
        assert f'<a href="/agents/{user["id"]}">timekeeper</a>' in html
        assert f'<option value="{idle["id"]}">idle</option>' in html
        assert "0 calls ·" in html

    async def test_tool_usage_is_counted_on_the_tools_page(self, client: httpx.AsyncClient) -> None:
        tool = await create(client, "tools", name="current_time")
        agent = await create(client, "agents", name="t", model_settings={"tool_call": tool["name"]})
        await client.post(f"{API}/agents/{agent['id']}/tools/{tool['id']}")
        await chat(client, agent["id"], "what time is it")
        assert "1 call ·" in await page(client, "/tools")

    async def test_chat_lists_agents_then_conversations_and_messages(
        self, client: httpx.AsyncClient
    ) -> None:
        agent = await create(client, "agents", name="echoer", model_settings={"thinking": True})
        assert f'href="/chat/{agent["id"]}">echoer</a>' in await page(client, "/chat")
        conversation_id = await chat(client, agent["id"], "hello there")
        html = await page(client, f"/chat/{agent['id']}?conversation={conversation_id}")
        assert f'data-conversation-id="{conversation_id}"' in html
        assert "(echo, the offline model)" in html
        assert '<details class="thinking">' in html  # collapsed: no "open"
        assert " in · " in html
        assert "out tokens" in html
        empty = await page(client, f"/chat/{agent['id']}")
        assert 'data-conversation-id=""' in empty
        assert 'aria-current="page">hello there' not in empty

    async def test_a_reply_shows_its_tool_calls_and_results_inline(
        self, client: httpx.AsyncClient
    ) -> None:
        tool = await create(client, "tools", name="current_time")
        agent = await create(client, "agents", name="t", model_settings={"tool_call": tool["name"]})
        await client.post(f"{API}/agents/{agent['id']}/tools/{tool['id']}")
        conversation_id = await chat(client, agent["id"], "what time is it")
        html = await page(client, f"/chat/{agent['id']}?conversation={conversation_id}")
        assert "Called <code>current_time</code>" in html
        assert '<div class="tool-result"><span class="label">Result</span>' in html
        assert "role-tool" not in html  # the result is inside the reply's bubble

    async def test_a_reply_shows_the_memories_it_was_given_escaped(
        self, client: httpx.AsyncClient
    ) -> None:
        agent = await create(client, "agents", name="rememberer")
        conversation_id = await chat(client, agent["id"], f"my cat is {SCRIPT} Miso")
        send = {"conversation_id": conversation_id, "content": "what is my cat called? Miso"}
        end = (await read_sse(await client.post(f"{API}/streaming/send", json=send)))[-1][1]
        (memory,) = end["memories"]
        html = await page(client, f"/chat/{agent['id']}?conversation={conversation_id}")
        assert html.count('<details class="remembered">') == 1  # only the reply that used it
        assert "<summary>Remembered (1)</summary>" in html
        assert f'<span class="memory-text">my cat is {ESCAPED} Miso</span>' in html
        assert f'<span class="score">{memory["score"]:.2f}</span>' in html
        assert SCRIPT not in html

    async def test_memories_metadata_of_another_shape_is_left_out(
        self, client: httpx.AsyncClient
    ) -> None:
        agent = await create(client, "agents", name="odd")
        started = await create(client, "conversations/start", agent_id=agent["id"])
        conversation_id = started["conversation"]["id"]
        odd = ["text", {"content": 3, "score": 1}, {"content": "kept", "score": 0.5}]
        body: dict[str, Any] = {"role": "assistant", "content": "x", "metadata": {"memories": odd}}
        await create(client, f"conversations/{conversation_id}/message", **body)
        html = await page(client, f"/chat/{agent['id']}?conversation={conversation_id}")
        assert "<summary>Remembered (1)</summary>" in html
        assert '<span class="memory-text">kept</span> <span class="score">0.50</span>' in html

    async def test_older_messages_load_by_sequence_number(self, client: httpx.AsyncClient) -> None:
        agent = await create(client, "agents", name="pager")
        started = await create(client, "conversations/start", agent_id=agent["id"])
        conversation_id = started["conversation"]["id"]
        for n in range(1, 46):
            body = {"role": "user", "content": f"message number {n}."}
            response = await client.post(
                f"{API}/conversations/{conversation_id}/message", json=body
            )
            assert response.status_code == 201
        html = await page(client, f"/chat/{agent['id']}?conversation={conversation_id}")
        assert 'data-before="16" data-more="true"' in html
        assert "message number 45." in html
        assert "message number 15." not in html
        older = await page(client, f"/conversations/{conversation_id}/history?before=16")
        assert 'data-before="1" data-more="false"' in older
        assert "message number 15." in older
        assert "message number 16." not in older
        assert "<html" not in older  # a fragment

    async def test_a_conversation_of_another_agent_is_shown_with_its_agent(
        self, client: httpx.AsyncClient
    ) -> None:
        one = await create(client, "agents", name="one")
        two = await create(client, "agents", name="two")
        conversation_id = await chat(client, one["id"], "hi")
        response = await client.get(f"/chat/{two['id']}?conversation={conversation_id}")
        assert response.status_code == 303
        assert response.headers["location"] == f"/chat/{one['id']}?conversation={conversation_id}"

    async def test_the_conversation_page_shows_messages_state_and_status(
        self, client: httpx.AsyncClient
    ) -> None:
        agent = await create(client, "agents", name="keeper")
        conversation_id = await chat(client, agent["id"], "remember the milk")
        state = {"value": {"step": 2}}
        response = await client.put(f"{API}/conversations/{conversation_id}/state/step", json=state)
        assert response.status_code == 200
        html = await page(client, f"/conversations/{conversation_id}")
        for panel in PANELS:
            assert f'id="{panel.key}"' in html
        assert "remember the milk" in html
        assert "<code>step</code>" in html  # the state panel
        assert "&#34;step&#34;: 2" in html
        assert f'data-api="PATCH /api/v1/conversations/{conversation_id}"' in html
        assert "&#34;provider&#34;: &#34;echo&#34;" in html  # a reply's metadata

    async def test_a_panel_is_added_in_one_place(
        self, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr("agentkeep.web.panels.PANELS", list(PANELS))

        @conversation_panel("extra", "Extra", "panels/state.html")
        async def extra(request: Request, conversation: Conversation) -> dict[str, Any]:
            return {"states": []}

        started = await create(client, "conversations/start", user_id="u1")
        html = await page(client, f"/conversations/{started['conversation']['id']}")
        assert '<h2 id="extra-title">Extra</h2>' in html
        assert '<a href="#extra">Extra</a>' in html


class TestNotFound:
    @pytest.mark.parametrize(
        "path",
        [
            "/agents/{id}",
            "/chat/{id}",
            "/conversations/{id}",
            "/agents/not-an-id",
            "/conversations/not-an-id",
            "/chat/not-an-id",
        ],
    )
    async def test_an_unknown_id_is_a_404_page(self, client: httpx.AsyncClient, path: str) -> None:
        html = await page(client, path.format(id=uuid.uuid4()), status=404)
        assert "<h1>Not found</h1>" in html

    async def test_an_unknown_conversation_in_the_chat_is_a_404_page(
        self, client: httpx.AsyncClient
    ) -> None:
        agent = await create(client, "agents", name="a")
        html = await page(client, f"/chat/{agent['id']}?conversation={uuid.uuid4()}", status=404)
        assert "not found" in html

    async def test_a_bad_query_parameter_is_a_422_page(self, client: httpx.AsyncClient) -> None:
        started = await create(client, "conversations/start", user_id="u1")
        cid = started["conversation"]["id"]
        html = await page(client, f"/conversations/{cid}/history?before=abc", status=422)
        assert "before" in html


class TestEscaping:
    async def test_user_content_shows_as_text(self, client: httpx.AsyncClient) -> None:
        agent = await create(client, "agents", name=SCRIPT, description=SCRIPT)
        tool = await create(client, "tools", name=f"t{SCRIPT}", description=SCRIPT)
        await client.post(f"{API}/agents/{agent['id']}/tools/{tool['id']}")
        conversation_id = await chat(client, agent["id"], SCRIPT)
        for path in pages_showing(agent["id"], conversation_id):
            html = await page(client, path)
            assert SCRIPT not in html, path
            assert ESCAPED in html, path


class TestAccess:
    async def test_pages_need_a_sign_in_when_the_api_needs_a_key(
        self, keyed: httpx.AsyncClient
    ) -> None:
        response = await keyed.get("/agents?cursor=x")
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=%2Fagents%3Fcursor%3Dx"
        assert "<h1>Sign in</h1>" in await page(keyed, "/login")

    async def test_a_wrong_key_is_refused_next_to_the_field(self, keyed: httpx.AsyncClient) -> None:
        response = await keyed.post("/login", data={"api_key": "nope", "next": "/tools"})
        assert response.status_code == 401
        assert "This API key is not valid." in response.text
        assert COOKIE not in response.headers.get("set-cookie", "")

    async def test_a_valid_key_opens_the_pages_which_hold_a_token_not_the_key(
        self, keyed: httpx.AsyncClient
    ) -> None:
        response = await keyed.post("/login", data={"api_key": KEY, "next": "/tools"})
        assert response.status_code == 303
        assert response.headers["location"] == "/tools"
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie
        assert KEY not in cookie
        agent = await create(keyed, "agents", name="keyed", headers=await same_site(keyed))
        conversation_id = await chat(keyed, agent["id"], "hi", headers=await same_site(keyed))
        for path in pages_showing(agent["id"], conversation_id):
            html = await page(keyed, path)
            assert KEY not in html, path
            assert f'<meta name="agentkeep-csrf" content="{csrf_token(html)}">' in html, path
        assert (await keyed.get("/tools")).headers["cache-control"] == "no-store"
        response = await keyed.post("/logout")
        assert response.status_code == 303
        assert (await keyed.get("/tools")).status_code == 303

    async def test_sign_in_never_sends_the_visitor_to_another_site(
        self, keyed: httpx.AsyncClient
    ) -> None:
        for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
            response = await keyed.post("/login", data={"api_key": KEY, "next": target})
            assert response.headers["location"] == "/", target

    async def test_without_keys_every_page_is_open(self, client: httpx.AsyncClient) -> None:
        html = await page(client, "/")
        assert "agentkeep-csrf" not in html
        assert (await client.get("/login")).status_code == 303


class TestCrossSiteRequests:
    """With the sign-in cookie, a change needs the page's token and must come from this site."""

    @pytest.fixture
    async def signed_in(self, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
        async with served(with_key(settings)) as c:
            response = await c.post("/login", data={"api_key": KEY, "next": "/agents"})
            assert response.status_code == 303
            yield c

    async def agent_names(self, client: httpx.AsyncClient) -> list[str]:
        response = await client.get(f"{API}/agents", headers={"Sec-Fetch-Site": "same-origin"})
        assert response.status_code == 200, response.text
        return [agent["name"] for agent in response.json()["items"]]

    async def test_a_post_from_the_page_with_its_token_works(
        self, signed_in: httpx.AsyncClient
    ) -> None:
        await create(signed_in, "agents", name="mine", headers=await same_site(signed_in))
        assert await self.agent_names(signed_in) == ["mine"]

    @pytest.mark.parametrize(
        "headers",
        [
            pytest.param({"X-CSRF-Token": ""}, id="no token"),
            pytest.param({"X-CSRF-Token": "forged"}, id="a wrong token"),
            pytest.param({"Origin": "http://evil.example"}, id="a foreign origin"),
            pytest.param({"Origin": "http://test:8080"}, id="another port of the host"),
            pytest.param({"Origin": "null"}, id="an opaque origin"),
            pytest.param({"Sec-Fetch-Site": "cross-site"}, id="cross-site"),
            pytest.param({"Sec-Fetch-Site": "same-site"}, id="a sibling site"),
        ],
    )
    async def test_a_post_with_the_cookie_from_elsewhere_is_refused_and_writes_nothing(
        self, signed_in: httpx.AsyncClient, headers: dict[str, str]
    ) -> None:
        sent = {k: v for k, v in (await same_site(signed_in) | headers).items() if v}
        response = await signed_in.post(f"{API}/agents", json={"name": "theirs"}, headers=sent)
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "forbidden"
        assert await self.agent_names(signed_in) == []

    async def test_a_streamed_chat_turn_needs_the_token_too(
        self, signed_in: httpx.AsyncClient
    ) -> None:
        agent = await create(signed_in, "agents", name="a", headers=await same_site(signed_in))
        body = {"agent_id": agent["id"], "content": "hello"}
        response = await signed_in.post(f"{API}/streaming/start", json=body)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "forbidden"
        await chat(signed_in, agent["id"], "hello", headers=await same_site(signed_in))

    async def test_a_read_from_another_site_is_refused(self, signed_in: httpx.AsyncClient) -> None:
        foreign = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
        assert (await signed_in.get(f"{API}/agents", headers=foreign)).status_code == 403
        assert (await signed_in.get(f"{API}/agents")).status_code == 200

    async def test_sign_in_and_out_from_another_site_are_refused(
        self, signed_in: httpx.AsyncClient
    ) -> None:
        foreign = {"Origin": "http://evil.example"}
        response = await signed_in.post("/logout", headers=foreign)
        assert response.status_code == 403
        assert "set-cookie" not in response.headers
        assert (await signed_in.get("/agents")).status_code == 200  # still signed in
        signed_in.cookies.clear()
        form = {"api_key": KEY, "next": "/"}
        response = await signed_in.post("/login", data=form, headers=foreign)
        assert response.status_code == 403
        assert "set-cookie" not in response.headers
        response = await signed_in.post("/login", data=form, headers={"Origin": "http://test"})
        assert response.status_code == 303


class TestSecurityHeaders:
    @pytest.mark.parametrize(
        "path",
        ["/", "/agents", "/chat", "/tools", f"/agents/{uuid.uuid4()}", "/static/app.js"],
    )
    async def test_every_ui_response_forbids_inline_script_framing_and_sniffing(
        self, client: httpx.AsyncClient, path: str
    ) -> None:
        response = await client.get(path)
        assert response.status_code in (200, 404)
        assert_ui_headers(response)

    async def test_the_sign_in_form_and_its_redirects_carry_them_too(
        self, keyed: httpx.AsyncClient
    ) -> None:
        assert_ui_headers(await keyed.get("/login"))
        assert_ui_headers(await keyed.get("/agents"))  # the redirect to /login
        assert_ui_headers(await keyed.post("/login", data={"api_key": "wrong"}))

    async def test_the_policy_allows_only_this_servers_scripts_styles_and_connections(
        self, client: httpx.AsyncClient
    ) -> None:
        policy = policy_of(await client.get("/"))
        assert policy["default-src"] == ["'none'"]
        assert policy["script-src"] == ["'self'"]
        assert policy["style-src"] == ["'self'"]
        assert policy["connect-src"] == ["'self'"]  # fetch, SSE and ws: to this host
        assert policy["frame-ancestors"] == ["'none'"]
        assert policy["form-action"] == ["'self'"]

    async def test_api_responses_are_never_sniffed(self, client: httpx.AsyncClient) -> None:
        for response in (
            await client.get(f"{API}/agents"),
            await client.get(f"{API}/agents/{uuid.uuid4()}"),
            await client.post(f"{API}/agents", json={}),
        ):
            assert response.headers["x-content-type-options"] == "nosniff"

    async def test_the_api_documentation_has_a_policy_of_its_own(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/docs")
        assert response.status_code == 200
        policy = policy_of(response)
        # Swagger UI and ReDoc come from this server and start with an inline script
        assert policy["script-src"] == ["'self'", "'unsafe-inline'"]
        assert all("https:" not in source for sources in policy.values() for source in sources)
        assert policy["frame-ancestors"] == ["'none'"]
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"

    @pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(TEMPLATE_DIR)))
    def test_no_template_has_inline_script_or_style(self, template: Path) -> None:
        text = template.read_text()
        assert not INLINE_SCRIPT.search(text)
        assert not INLINE_HANDLER.search(text)
        assert not INLINE_STYLE.search(text)
        assert "javascript:" not in text


class TestStatic:
    async def test_the_stylesheet_and_script_are_served(self, client: httpx.AsyncClient) -> None:
        css = await client.get("/static/app.css")
        js = await client.get("/static/app.js")
        assert css.status_code == js.status_code == 200
        assert css.headers["content-type"].startswith("text/css")
        assert "javascript" in js.headers["content-type"]
        assert "innerHTML" not in js.text  # model and user text is set with textContent
