"""The Personas, Modules and Workflows pages, and what every page shows the same way (times,
untitled conversations, the favicon), on every backend, without a browser.

The create, edit and delete flows themselves run in a browser in ``tests/e2e/test_ui.py``; here
each page is checked for what it shows and for the forms it offers (the API call each makes).
"""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from web.helpers import API, ESCAPED, KEY, SCRIPT, chat, create, page, same_site

pytestmark = pytest.mark.anyio

TIME = re.compile(
    r'<time datetime="(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00)" title="\1">'
    r"\d{4}-\d\d-\d\d \d\d:\d\d UTC</time>"
)


class TestPersonas:
    async def test_the_list_shows_each_persona_with_its_agents_and_a_create_form(
        self, client: httpx.AsyncClient
    ) -> None:
        persona = await create(
            client, "personas", name="support", template="You help.", mode="assistant"
        )
        await create(client, "personas", name="narrator", template="You tell.", is_active=False)
        agent = await create(client, "agents", name="helpdesk", persona_id=persona["id"])
        html = await page(client, "/personas")
        assert f'<a href="/personas/{persona["id"]}">support</a>' in html
        assert f'<a href="/agents/{agent["id"]}">helpdesk</a>' in html
        assert ">narrator</a>" in html
        assert 'data-api="POST /api/v1/personas"' in html
        assert 'data-then="/personas/{id}"' in html
        for field in ("name", "template", "first_message", "is_active"):
            assert f'data-error-for="{field}"' in html
        assert '<a href="/personas" aria-current="page">Personas</a>' in html

    async def test_a_persona_page_edits_every_field_and_deletes_after_confirming(
        self, client: httpx.AsyncClient
    ) -> None:
        persona = await create(
            client, "personas", name="guide", template="You guide.", first_message="Hello!"
        )
        agent = await create(client, "agents", name="tourist", persona_id=persona["id"])
        html = await page(client, f"/personas/{persona['id']}")
        assert "<h1>guide</h1>" in html
        assert f'data-api="PATCH /api/v1/personas/{persona["id"]}"' in html
        assert ">You guide.</textarea>" in html
        assert ">Hello!</textarea>" in html
        assert 'name="is_active" type="checkbox" checked' in html
        assert 'name="mode" type="text" value="" ' in html
        assert 'data-empty="null"' in html  # emptying a field clears it
        assert f'<a href="/agents/{agent["id"]}">tourist</a>' in html
        assert f'data-api="DELETE /api/v1/personas/{persona["id"]}"' in html
        assert "<dialog" in html

    async def test_the_agent_page_links_the_persona_pages(self, client: httpx.AsyncClient) -> None:
        persona = await create(client, "personas", name="p", template="t")
        agent = await create(client, "agents", name="a", persona_id=persona["id"])
        html = await page(client, f"/agents/{agent['id']}")
        assert f'<option value="{persona["id"]}" selected>p</option>' in html
        assert '<a href="/personas">Personas</a>' in html


class TestModules:
    async def test_the_list_shows_when_each_module_runs_and_a_create_form(
        self, client: httpx.AsyncClient
    ) -> None:
        module = await create(
            client,
            "modules",
            name="refunds",
            type="instructions",
            trigger_pattern="(?i)refund",
            execution_context="IMMEDIATE",
            stage_priority=10,
        )
        await create(client, "modules", name="summary", type="summary")
        html = await page(client, "/modules")
        assert f'<a href="/modules/{module["id"]}">refunds</a>' in html
        assert "<code>(?i)refund</code>" in html
        assert "<td>IMMEDIATE</td>" in html
        assert '<span class="muted">always</span>' in html  # no trigger
        assert 'data-api="POST /api/v1/modules"' in html
        assert '<option value="ON_DEMAND" selected>' in html  # the API's default
        assert 'name="stage_priority" type="number" value="100"' in html

    async def test_a_module_page_edits_every_field_and_deletes_after_confirming(
        self, client: httpx.AsyncClient
    ) -> None:
        module = await create(
            client,
            "modules",
            name="follow-up",
            type="summary",
            content="Summarise the exchange.",
            execution_context="POST_RESPONSE",
            requires_ai_inference=True,
        )
        html = await page(client, f"/modules/{module['id']}")
        assert "<h1>follow-up</h1>" in html
        assert f'data-api="PATCH /api/v1/modules/{module["id"]}"' in html
        assert '<option value="POST_RESPONSE" selected>' in html
        assert ">Summarise the exchange.</textarea>" in html
        assert 'name="requires_ai_inference" type="checkbox" checked' in html
        assert f'data-api="DELETE /api/v1/modules/{module["id"]}"' in html

    async def test_the_agent_page_links_the_modules_it_runs(
        self, client: httpx.AsyncClient
    ) -> None:
        module = await create(
            client, "modules", name="tone", type="instructions", execution_context="IMMEDIATE"
        )
        agent = await create(client, "agents", name="a")
        html = await page(client, f"/agents/{agent['id']}")
        assert f'<a href="/modules/{module["id"]}">tone</a>' in html


class TestWorkflows:
    async def test_the_list_shows_the_steps_in_order_and_a_create_form(
        self, client: httpx.AsyncClient
    ) -> None:
        steps = ["triage", {"agent": "support", "retries": 2}, {"tool": "clock"}]
        workflow = await create(client, "workflows", name="triage-then-answer", steps=steps)
        html = await page(client, "/workflows")
        assert f'<a href="/workflows/{workflow["id"]}">triage-then-answer</a>' in html
        assert "triage → support → {&#34;tool&#34;: &#34;clock&#34;}" in html
        assert 'data-api="POST /api/v1/workflows"' in html
        assert 'data-type="json"' in html

    async def test_a_workflow_page_links_the_agents_its_steps_name(
        self, client: httpx.AsyncClient
    ) -> None:
        agent = await create(client, "agents", name="triage")
        workflow = await create(client, "workflows", name="w", steps=["triage", "nobody"])
        html = await page(client, f"/workflows/{workflow['id']}")
        assert f'<li><a href="/agents/{agent["id"]}">triage</a></li>' in html
        assert "<li>nobody</li>" in html
        assert f'data-api="PATCH /api/v1/workflows/{workflow["id"]}"' in html
        assert "&#34;triage&#34;," in html  # the steps, as JSON to edit
        assert f'data-api="DELETE /api/v1/workflows/{workflow["id"]}"' in html


class TestCatalogPages:
    @pytest.mark.parametrize("kind", ["personas", "modules", "workflows"])
    async def test_an_unknown_or_malformed_id_is_a_404_page(
        self, client: httpx.AsyncClient, kind: str
    ) -> None:
        for item_id in (str(uuid.uuid4()), "not-an-id"):
            html = await page(client, f"/{kind}/{item_id}", status=404)
            assert "<h1>Not found</h1>" in html

    async def test_names_and_texts_show_as_text(self, client: httpx.AsyncClient) -> None:
        persona = await create(client, "personas", name=SCRIPT, template=SCRIPT)
        module = await create(client, "modules", name=SCRIPT, type="x", content=SCRIPT)
        workflow = await create(client, "workflows", name=SCRIPT, steps=[SCRIPT])
        for path in (
            "/personas",
            f"/personas/{persona['id']}",
            "/modules",
            f"/modules/{module['id']}",
            "/workflows",
            f"/workflows/{workflow['id']}",
        ):
            html = await page(client, path)
            assert SCRIPT not in html, path
            assert ESCAPED in html, path

    async def test_with_api_keys_they_need_a_sign_in_and_hold_the_token(
        self, keyed: httpx.AsyncClient
    ) -> None:
        assert (await keyed.get("/personas")).status_code == 303
        await keyed.post("/login", data={"api_key": KEY, "next": "/"})
        headers = await same_site(keyed)
        made = await create(keyed, "modules", headers=headers, name="m", type="t")
        for path in ("/personas", "/modules", f"/modules/{made['id']}", "/workflows"):
            html = await page(keyed, path)
            assert '<meta name="agentkeep-csrf" content="' in html, path
            assert KEY not in html, path


class TestReadability:
    async def test_the_agents_table_shows_the_model_and_under_it_the_provider(
        self, client: httpx.AsyncClient
    ) -> None:
        await create(client, "agents", name="a", provider="echo", model="echo-2")
        await create(client, "agents", name="b")
        html = await page(client, "/agents")
        assert '<th scope="col">Model <span class="sub">/ provider</span></th>' in html
        assert re.search(r'<td>echo-2\s*<br><span class="muted">echo</span></td>', html)
        assert '<span class="muted">default model</span>' in html
        assert '<span class="muted">echo (server default)</span>' in html
        assert "echo · echo-2" not in html

    async def test_a_conversation_without_a_title_is_called_the_same_everywhere(
        self, client: httpx.AsyncClient
    ) -> None:
        agent = await create(client, "agents", name="a")
        started = await create(client, "conversations/start", agent_id=agent["id"])
        conversation_id = started["conversation"]["id"]
        for path in ("/", f"/chat/{agent['id']}", f"/conversations/{conversation_id}"):
            html = await page(client, path)
            assert "Untitled conversation<" in html, path
            assert re.search(r">Untitled<", html) is None, path

    async def test_times_are_time_elements_with_the_iso_moment_and_a_readable_fallback(
        self, client: httpx.AsyncClient
    ) -> None:
        agent = await create(client, "agents", name="a")
        conversation_id = await chat(client, agent["id"], "hello")
        for path in (
            "/",
            "/agents",
            f"/chat/{agent['id']}?conversation={conversation_id}",
            f"/conversations/{conversation_id}",
        ):
            html = await page(client, path)
            assert TIME.search(html), path
            assert "<time" not in TIME.sub("", html), path  # every one in the same form

    async def test_the_state_panel_names_the_module_or_persona_that_keeps_a_value(
        self, client: httpx.AsyncClient
    ) -> None:
        module = await create(client, "modules", name="tracker", type="t")
        persona = await create(client, "personas", name="host", template="t")
        agent = await create(client, "agents", name="a")
        conversation_id = await chat(client, agent["id"], "hi")
        state = f"{API}/conversations/{conversation_id}/state"
        for scope, key in (
            (f"module_id={module['id']}", "seen"),
            (f"persona_id={persona['id']}", "mood"),
        ):
            response = await client.put(f"{state}/{key}?{scope}", json={"value": 1})
            assert response.status_code == 200, response.text
        html = await page(client, f"/conversations/{conversation_id}")
        assert f'module <a href="/modules/{module["id"]}">tracker</a>' in html
        assert f'persona <a href="/personas/{persona["id"]}">host</a>' in html
        assert f"module {module['id']}" not in html

    async def test_every_page_links_the_favicon_which_is_served(
        self, client: httpx.AsyncClient
    ) -> None:
        html = await page(client, "/")
        found = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', html)
        assert found
        icon = await client.get(found.group(1))
        assert icon.status_code == 200
        assert icon.headers["content-type"].startswith("image/svg+xml")
        assert "<svg" in icon.text
        assert "<script" not in icon.text
