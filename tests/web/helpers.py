"""What the page tests share: a client on a served app, making things through the API, and
fetching a page checked for the headers and the absence of inline code every page must have."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from pydantic import SecretStr

from agentkeep import Settings
from agentkeep.api import create_app
from api.shapes import read_sse

API = "/api/v1"
SCRIPT = "<script>alert('x')</script>"
ESCAPED = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
KEY = "sesame-open-the-door"
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)", re.IGNORECASE)
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
INLINE_STYLE = re.compile(r"<style|\sstyle\s*=", re.IGNORECASE)
CSRF_META = re.compile(r'<meta name="agentkeep-csrf" content="([^"]+)">')


@asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client on ``create_app(settings)``, started (its lifespan) and stopped around the block."""
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c,
    ):
        yield c


def with_key(settings: Settings) -> Settings:
    """``settings`` with API keys on (the one key :data:`KEY`): the pages need a sign-in."""
    return settings.model_copy(update={"api_keys": [SecretStr(KEY)]})


def pages_showing(agent_id: str, conversation_id: str) -> tuple[str, ...]:
    """Every page that shows an agent or a conversation of it."""
    return (
        "/",
        "/agents",
        f"/agents/{agent_id}",
        "/chat",
        f"/chat/{agent_id}?conversation={conversation_id}",
        "/tools",
        f"/conversations/{conversation_id}",
    )


async def create(
    client: httpx.AsyncClient, path: str, headers: dict[str, str] | None = None, **body: Any
) -> dict[str, Any]:
    response = await client.post(f"{API}/{path}", json=body, headers=headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def chat(
    client: httpx.AsyncClient, agent_id: str, content: str, headers: dict[str, str] | None = None
) -> str:
    """Run one turn with the echo model; the new conversation's id."""
    body = {"agent_id": agent_id, "content": content}
    response = await client.post(f"{API}/streaming/start", json=body, headers=headers)
    events = await read_sse(response)
    assert events[-1][0] == "message_end", events
    conversation_id: str = events[0][1]["conversation_id"]
    return conversation_id


async def page(client: httpx.AsyncClient, path: str, status: int = 200) -> str:
    response = await client.get(path)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert_ui_headers(response)
    html = response.text
    assert not INLINE_SCRIPT.search(html), path
    assert not INLINE_HANDLER.search(html), path
    assert not INLINE_STYLE.search(html), path
    return html


def csrf_token(html: str) -> str:
    found = CSRF_META.search(html)
    assert found, "the page gives its script no token"
    return found.group(1)


async def same_site(client: httpx.AsyncClient) -> dict[str, str]:
    """What the page's script sends with a change: the token its page holds, from this site."""
    return {"X-CSRF-Token": csrf_token(await page(client, "/agents")), "Origin": "http://test"}


def policy_of(response: httpx.Response) -> dict[str, list[str]]:
    directives = response.headers["content-security-policy"].split(";")
    return {name: values for name, *values in (d.split() for d in directives)}


def assert_ui_headers(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"
    policy = policy_of(response)
    assert policy["script-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
