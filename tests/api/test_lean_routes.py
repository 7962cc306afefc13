"""The lean request path answers exactly as FastAPI's own handling of the same routes, on every
backend: one corpus of requests, good and bad, sent to an app whose hot routes are
``LeanRoute``\\ s and to the same app with them as plain ``APIRoute``\\ s; status, headers and body
must be the same (ids and times aside), with API keys off and on and with the web UI's cookie.
Requests the lean path accepts must not go through FastAPI's dependency solving at all.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

import anyio
import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException
from fastapi.routing import APIRoute
from pydantic import SecretStr
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response

from agentkeep import Settings
from agentkeep.api import create_app
from agentkeep.api.auth import CSRF_HEADER, SESSION_COOKIE
from agentkeep.api.lean import LeanRoute
from agentkeep.api.routers import conversations
from agentkeep.models.common import MAX_JSON_DEPTH

pytestmark = pytest.mark.anyio

KEY = "k-lean-one"
LIMIT = 4096
TIMEOUT = 0.5
MISSING = "01930000-0000-7000-8000-000000000000"
VOLATILE = {"id", "conversation_id", "created_at", "updated_at"}
"""Fields that differ between two stores however alike the requests (ids and times)."""


@dataclass
class Side:
    """One app, started, with a conversation of its own."""

    app: FastAPI
    client: httpx.AsyncClient
    conversation: str = ""
    session: str = ""


@dataclass
class Request:
    method: str
    path: str  # "{cid}" is the side's conversation
    content: bytes | Callable[[], AsyncIterator[bytes]] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    cookie: bool = False  # send the side's sign-in cookie (and {csrf} in headers is its token)


def json_body(value: Any) -> bytes:
    return json.dumps(value).encode()


JSON = {"content-type": "application/json"}


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"k": value}
    return value


def chunks(body: bytes) -> Callable[[], AsyncIterator[bytes]]:
    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    return pieces


async def stalled() -> AsyncIterator[bytes]:
    yield b'{"role": '
    await anyio.sleep(60)


MESSAGE = {"role": "user", "content": "hi", "metadata": {"source": "t", "n": [1, 2.5, None]}}


def message(**changes: Any) -> bytes:
    return json_body({**MESSAGE, **changes})


def document(fields: bytes) -> bytes:
    """A message body written by hand: ``fields`` after a role and a content."""
    return b'{"role": "user", "content": "a"' + fields + b"}"


def post(
    content: bytes | Callable[[], AsyncIterator[bytes]] | None,
    headers: dict[str, str] | None = None,
    *,
    path: str = "/message",
    cookie: bool = False,
) -> Request:
    return Request("POST", path, content, JSON if headers is None else headers, cookie)


def get(path: str, headers: dict[str, str] | None = None, *, cookie: bool = False) -> Request:
    return Request("GET", path, headers={} if headers is None else headers, cookie=cookie)


def kind(value: str) -> dict[str, str]:
    return {"content-type": value}


OTHER = "/api/v1/conversations/{}/message"
"""A conversation's append route given its id (``!`` marks a path sent as written)."""
CALLS = [
    {"id": "c1", "name": "f", "arguments": {"a": 1}},
    {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "{}"}},
]
EVERY_FIELD = {
    "role": "assistant",
    "thinking": "hmm",
    "tool_calls": CALLS,
    "input_tokens": 3,
    "output_tokens": "4",
    "status": "streaming",
    "message_id": 1001,
    "reply_to_message_id": "1000",
    "client_id": "c-1",
}
DEEP = b"[" * 1500 + b"]" * 1500
"""Nested beyond what ``json.loads`` follows (and within the size limit)."""
TOO_BIG = message(content="x" * 2 * LIMIT)

APPENDS: list[tuple[str, Request]] = [
    ("valid", post(message())),
    ("every field", post(message(**EVERY_FIELD))),
    ("same client_id again", post(message(client_id="c-1"))),
    ("charset", post(message(), kind("application/json; charset=utf-8"))),
    ("+json type", post(message(), kind("application/vnd.x+json"))),
    ("upper-case type", post(message(), kind("Application/JSON"))),
    ("text/plain", post(message(), kind("text/plain"))),
    ("no content type", post(message(), {})),
    ("empty body", post(b"")),
    ("no body", post(None)),
    ("invalid JSON", post(b'{"role": "user", "content": ')),
    ("trailing data", post(message() + b" x")),
    ("not UTF-8", post(b'{"role": "user", "content": "a\xff"}')),
    ("UTF-16", post(json.dumps(MESSAGE).encode("utf-16"))),
    ("byte-order mark", post(b"\xef\xbb\xbf" + message())),
    ("encoded surrogate", post(b'{"role": "user", "content": "\xed\xa0\x80"}')),
    ("lone surrogate", post(b'{"role": "user", "content": "a\\ud800"}')),
    ("surrogate in metadata", post(document(b', "metadata": {"k": "\\udc00"}'))),
    ("surrogate as a field name", post(document(b', "\\ud800": 1'))),
    ("NUL", post(message(content="a\x00b"))),
    ("raw control character", post(b'{"role": "user", "content": "a\tb"}')),
    ("deep metadata", post(message(metadata=nested(MAX_JSON_DEPTH + 1)))),
    (
        "beyond any parser",
        post(document(b', "metadata": {"k": ' + b"[" * 1500 + b"]" * 1500 + b"}")),
    ),
    ("huge count", post(message(input_tokens=2**40))),
    ("huge integer", post(message(metadata={"n": 10**40}))),
    ("float beyond range", post(document(b', "metadata": {"n": 1e400}'))),
    ("NaN", post(document(b', "metadata": {"n": NaN}'))),
    ("fractional count", post(message(input_tokens=1.5))),
    ("duplicate keys", post(document(b', "content": "b"'))),
    ("extra field", post(message(colour="red"))),
    ("unknown role", post(message(role="nobody"))),
    ("missing content", post(json_body({"role": "user"}))),
    ("a list", post(b"[]")),
    ("null", post(b"null")),
    ("a string", post(b'"hi"')),
    ("client_id too long", post(message(client_id="x" * 256))),
    ("declared too big", post(TOO_BIG)),
    ("chunked too big", post(chunks(TOO_BIG))),
    ("chunked within", post(chunks(message(content="x" * 2000)))),
    ("stalled", post(stalled)),
    ("query on a write", post(message(), path="/message?x=1")),
    ("trailing slash", post(message(), path="/message/")),
    ("not a uuid", post(message(), path="!" + OTHER.format("not-a-uuid"))),
    ("no such conversation", post(message(), path="!" + OTHER.format(MISSING))),
    ("bad id and bad body", post(b"{", path="!" + OTHER.format("x"))),
    ("bad id and invalid body", post(b"[]", path="!" + OTHER.format("x"))),
    ("uuid without dashes", post(message(), path="!" + OTHER.format(MISSING.replace("-", "")))),
    ("wrong method", Request("PUT", "/message", message(), JSON)),
]

PAGES: list[tuple[str, Request]] = [
    ("default", get("/messages")),
    ("limit", get("/messages?limit=2")),
    ("before", get("/messages?before=3&limit=1")),
    ("after", get("/messages?after=1")),
    ("before and after", get("/messages?before=3&after=1")),
    ("limit 0", get("/messages?limit=0")),
    ("limit over the maximum", get("/messages?limit=501")),
    ("limit abc", get("/messages?limit=abc")),
    ("limit empty", get("/messages?limit=")),
    ("limit 1.0", get("/messages?limit=1.0")),
    ("limit huge", get("/messages?limit=" + "9" * 40)),
    ("before -1", get("/messages?before=-1")),
    ("after over int32", get(f"/messages?after={2**31}")),
    ("before abc", get("/messages?before=abc")),
    ("repeated limit", get("/messages?limit=1&limit=3")),
    ("repeated, the last bad", get("/messages?limit=1&limit=x")),
    ("unknown parameter", get("/messages?limitt=3")),
    ("unknown and bad", get("/messages?limit=0&limitt=3")),
    ("encoded name", get("/messages?%6Cimit=2")),
    ("surrogate in the query", get("/messages?limit=%ED%A0%80")),
    ("body on a read", Request("GET", "/messages", b"{}", JSON)),
    ("trailing slash", get("/messages/")),
    ("not a uuid", get("!/api/v1/conversations/not-a-uuid/messages")),
    ("bad uuid and bad limit", get("!/api/v1/conversations/nope/messages?limit=0")),
    ("no such conversation", get(f"!/api/v1/conversations/{MISSING}/messages")),
    ("no such conversation, after", get(f"!/api/v1/conversations/{MISSING}/messages?after=5")),
    ("wrong method", Request("DELETE", "/messages")),
]

BEARER = {"authorization": f"Bearer {KEY}"}
TOKEN = {**JSON, CSRF_HEADER: "{csrf}"}
KEYED: list[tuple[str, Request]] = [
    ("no key", get("/messages")),
    ("no key, append", post(message())),
    ("key", get("/messages", BEARER)),
    ("key, append", post(message(), {**JSON, **BEARER})),
    ("wrong key", get("/messages", {"authorization": "Bearer nope"})),
    ("basic scheme", get("/messages", {"authorization": f"Basic {KEY}"})),
    ("lower-case scheme", get("/messages", {"authorization": f"bearer {KEY}"})),
    ("no key, invalid JSON", post(b"{")),
    ("no key, invalid body", post(b"[]")),
    ("no key, bad limit", get("/messages?limit=0")),
    ("no key, unknown parameter", get("/messages?x=1")),
    ("key, unknown parameter", get("/messages?x=1", BEARER)),
    ("key, bad limit", get("/messages?limit=0", BEARER)),
    ("cookie, read", get("/messages", {"sec-fetch-site": "same-origin"}, cookie=True)),
    ("cookie, append without token", post(message(), cookie=True)),
    ("cookie, append with token", post(message(), TOKEN, cookie=True)),
    ("cookie, wrong token", post(message(), {**JSON, CSRF_HEADER: "nope"}, cookie=True)),
    ("cookie, another site", get("/messages", {"sec-fetch-site": "cross-site"}, cookie=True)),
    (
        "cookie, another origin",
        post(message(), {**TOKEN, "origin": "http://x.example"}, cookie=True),
    ),
    ("cookie and key", post(message(), {**JSON, **BEARER}, cookie=True)),
    ("cookie and wrong key", post(message(), {**TOKEN, "authorization": "Bearer x"}, cookie=True)),
    ("forged cookie", get("/messages", {"cookie": f"{SESSION_COOKIE}=1.2.3"})),
]


@asynccontextmanager
async def side(
    settings: Settings, route_class: type[APIRoute], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Side]:
    with monkeypatch.context() as patch:
        add = functools.partial(conversations.add_message_routes, route_class=route_class)
        patch.setattr(conversations, "add_message_routes", add)
        app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c,
    ):
        made = Side(app, c)
        started = await c.post(
            "/api/v1/conversations/start", json={"user_id": "lean"}, headers=BEARER
        )
        assert started.status_code == 201, started.text
        made.conversation = started.json()["conversation"]["id"]
        made.session = app.state.api_keys.sessions.issue(KEY)
        yield made


async def send(side: Side, request: Request) -> httpx.Response:
    path = request.path
    path = path[1:] if path.startswith("!") else f"/api/v1/conversations/{side.conversation}{path}"
    headers = dict(request.headers)
    if request.cookie:
        headers["cookie"] = f"{SESSION_COOKIE}={side.session}"
        csrf = side.app.state.api_keys.sessions.csrf_token(side.session)
        headers = {k: v.replace("{csrf}", csrf) for k, v in headers.items()}
    content = request.content() if callable(request.content) else request.content
    return await side.client.request(request.method, path, content=content, headers=headers)


def normalised(side: Side, response: httpx.Response) -> Any:
    """The response's body with what differs between two stores (ids, times) replaced."""
    text = response.content.decode("utf-8", "replace").replace(side.conversation, "<cid>")
    try:
        value = json.loads(text)
    except ValueError:
        return text

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: "<v>" if k in VOLATILE else walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(value)


def headers_of(response: httpx.Response) -> list[tuple[str, str]]:
    assert int(response.headers.get("content-length", len(response.content))) == len(
        response.content
    )
    return [(k, v) for k, v in response.headers.multi_items() if k != "content-length"]


async def compare(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, corpus: list[tuple[str, Request]]
) -> None:
    """Send ``corpus`` to both apps, one request at a time, in the same order."""
    async with (
        side(settings, LeanRoute, monkeypatch) as lean,
        side(settings, APIRoute, monkeypatch) as plain,
    ):
        for _ in range(4):  # messages to page through
            for each in (lean, plain):
                await send(
                    each, Request("POST", "/message", json_body(MESSAGE), {**JSON, **BEARER})
                )
        for name, request in corpus:
            expected, got = await send(plain, request), await send(lean, request)
            assert (got.status_code, headers_of(got), normalised(lean, got)) == (
                expected.status_code,
                headers_of(expected),
                normalised(plain, expected),
            ), name


@pytest.fixture
def limited(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_request_bytes": LIMIT, "body_timeout": TIMEOUT})


class TestLeanRoutesAnswerAsFastAPI:
    async def test_appends(self, limited: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
        await compare(limited, monkeypatch, APPENDS)

    async def test_pages(self, limited: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
        await compare(limited, monkeypatch, PAGES)

    async def test_with_api_keys_and_the_sign_in_cookie(
        self, limited: Settings, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        keyed = limited.model_copy(update={"api_keys": [SecretStr(KEY)]})
        await compare(keyed, monkeypatch, KEYED)


class TestTheLeanPathIsTaken:
    @pytest.fixture
    def solved(self, monkeypatch: pytest.MonkeyPatch) -> list[str]:
        """The routes FastAPI solved dependencies for, by path, from now on."""
        seen: list[str] = []
        from fastapi.dependencies.utils import solve_dependencies as solve

        async def counting(**kwargs: Any) -> Any:
            seen.append(kwargs["request"].url.path)
            return await solve(**kwargs)

        monkeypatch.setattr("fastapi.routing.solve_dependencies", counting)
        return seen

    async def test_by_requests_it_accepts(self, settings: Settings, solved: list[str]) -> None:
        keyed = settings.model_copy(update={"api_keys": [SecretStr(KEY)]})
        app = create_app(keyed)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
        ):
            started = await c.post("/api/v1/conversations/start", json={}, headers=BEARER)
            cid = started.json()["conversation"]["id"]
            del solved[:]
            appended = await c.post(
                f"/api/v1/conversations/{cid}/message", json=MESSAGE, headers=BEARER
            )
            assert appended.status_code == 201
            page = await c.get(f"/api/v1/conversations/{cid}/messages?limit=5", headers=BEARER)
            assert [m["content"] for m in page.json()["items"]] == ["hi"]
            assert (await c.get(f"/api/v1/conversations/{cid}/messages")).status_code == 401
            assert solved == []  # the key refused by the same check, on the lean path
            bad = await c.get(f"/api/v1/conversations/{cid}/messages?limit=0", headers=BEARER)
            assert bad.status_code == 422
            assert solved == [f"/api/v1/conversations/{cid}/messages"]  # FastAPI's refusal

    async def test_not_while_dependencies_are_overridden(
        self, served: tuple[FastAPI, httpx.AsyncClient], solved: list[str]
    ) -> None:
        from agentkeep.api.deps import get_db

        app, client = served
        started = await client.post("/api/v1/conversations/start", json={})
        cid = started.json()["conversation"]["id"]
        app.dependency_overrides[get_db] = lambda: app.state.db
        try:
            del solved[:]
            page = await client.get(f"/api/v1/conversations/{cid}/messages")
            assert page.status_code == 200
            assert len(solved) == 1
        finally:
            app.dependency_overrides.clear()

    def test_routes_of_another_shape_keep_fastapi_s_handler(self) -> None:
        async def with_header(x_thing: Annotated[str, Header()]) -> Response:
            return Response()

        assert not hasattr(LeanRoute("/thing", with_header).get_route_handler(), "plan")
        router = APIRouter()
        conversations.add_message_routes(router)
        hot = [r for r in router.routes if isinstance(r, LeanRoute)]
        assert len(hot) == 2
        assert all(hasattr(r.get_route_handler(), "plan") for r in hot)

    async def test_in_an_included_router_with_the_inclusion_s_dependencies(
        self, solved: list[str]
    ) -> None:
        async def refuse(request: StarletteRequest) -> None:
            if "x-let-in" not in request.headers:
                raise HTTPException(403, "no")

        async def endpoint(n: int = 1) -> Response:
            return Response(str(n))

        router = APIRouter(route_class=LeanRoute)
        router.add_api_route("/n", endpoint)
        app = FastAPI()
        app.include_router(router, prefix="/p", dependencies=[Depends(refuse)])
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/p/n?n=2")).status_code == 403
            allowed = await client.get("/p/n?n=2", headers={"x-let-in": "1"})
            assert (allowed.status_code, allowed.text) == (200, "2")
            assert solved == []
            assert (await client.get("/p/n?n=x", headers={"x-let-in": "1"})).status_code == 422
            assert solved == ["/p/n"]
