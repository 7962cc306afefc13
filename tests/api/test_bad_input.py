"""Odd input never breaks the server, on every backend.

A generated sweep over every write route of the API (read from the OpenAPI schema the app builds
from its routes, so a new route is swept without being listed): a valid body per route, then
mutated with deep nesting, lone surrogates, NULs, odd JSON shapes, numbers beyond range, wrong
types, bytes that are not UTF-8 and odd path parameters. No answer is a 5xx; every 4xx has the
one error shape; a refused write leaves what is stored unchanged. Then explicit regressions for
the cases found by hand, each over HTTP.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from fastapi import FastAPI
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import update
from starlette.testclient import TestClient

from agentkeep import Settings
from agentkeep.api import create_app
from agentkeep.api.paths import PathChecks
from agentkeep.db.tables import agents, conversation_states, conversations, messages
from agentkeep.models.common import MAX_JSON_DEPTH, TOO_DEEP
from api.shapes import error_of, read_sse

API = "/api/v1"
WRITES = ("post", "put", "patch", "delete")
EXAMPLES_PER_ROUTE = 5
"""Per route and backend: 150 requests per backend in all, a few seconds on an idle machine."""

# -- the sweep ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    body: str | None
    """The name of the body's schema, ``None`` for a route without a body."""
    query: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path}"


def write_routes(app: FastAPI) -> list[Route]:
    found = []
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            if method not in WRITES or not path.startswith(API):
                continue
            schema = operation.get("requestBody", {}).get("content", {})
            ref = schema.get("application/json", {}).get("schema", {}).get("$ref")
            query = tuple(p["name"] for p in operation.get("parameters", []) if p["in"] == "query")
            found.append(Route(method, path, ref.rsplit("/", 1)[-1] if ref else None, query))
    return found


@dataclass
class World:
    """One of each thing a write route can name, fresh, so every route has a valid target."""

    ids: dict[str, str] = field(default_factory=dict)

    def path(self, template: str, odd: dict[str, str]) -> str:
        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            return odd.get(name) or self.ids.get(name, "k")

        return re.sub(r"\{(\w+)\}", fill, template)


async def make_world(client: httpx.AsyncClient) -> World:
    tag = uuid.uuid4().hex[:8]

    async def made(path: str, body: dict[str, Any]) -> str:
        response = await client.post(f"{API}/{path}", json=body)
        assert response.status_code in (200, 201), response.text
        created: dict[str, Any] = response.json()
        return str(created["conversation"]["id"] if "conversation" in created else created["id"])

    ids = {
        "agent_id": await made("agents", {"name": f"a-{tag}", "provider": "echo"}),
        "persona_id": await made("personas", {"name": f"p-{tag}", "template": "t"}),
        "module_id": await made("modules", {"name": f"m-{tag}", "type": "t"}),
        "tool_id": await made("tools", {"name": f"t-{tag}"}),
        "workflow_id": await made("workflows", {"name": f"w-{tag}"}),
    }
    ids["conversation_id"] = await made(
        "conversations/start",
        {"agent_id": ids["agent_id"], "message": {"role": "user", "content": "hi"}},
    )
    ids["key"] = "k"
    conversation = f"{API}/conversations/{ids['conversation_id']}"
    asked = await client.post(
        f"{conversation}/questions", json={"agent_name": "a", "question": "?"}
    )
    assert asked.status_code == 201, asked.text
    ids["question_id"] = asked.json()["id"]
    ids["data_type"] = "partial"
    ids["template_id"] = await made(
        "templates", {"operation_type": "t", "template_name": tag, "sample_input": "s"}
    )
    ids["user_id"], ids["chat_id"] = "u", "c"
    response = await client.put(
        f"{API}/conversations/{ids['conversation_id']}/state/k", json={"value": {"step": 1}}
    )
    assert response.status_code == 200, response.text
    ids["memory_id"] = await made(
        "memories", {"content": f"remembered {tag}", "agent_id": ids["agent_id"]}
    )
    return World(ids)


def valid_body(schema: str, world: World) -> dict[str, Any]:
    """A body the route accepts; a schema not listed gets its required fields filled in."""
    name = f"n-{uuid.uuid4().hex[:8]}"
    doc = {"source": "sweep", "tags": ["a", 1, None]}
    bodies: dict[str, dict[str, Any]] = {
        "ConversationStart": {
            "user_id": "u",
            "metadata": doc,
            "message": {"role": "user", "content": "hi", "metadata": doc},
        },
        "ConversationUpdate": {"title": "t", "metadata": doc},
        "MessageCreate": {"role": "user", "content": "hi", "metadata": doc},
        "StateValue": {"value": doc},
        "NewConversation": {"agent_id": world.ids["agent_id"], "content": "hi", "metadata": doc},
        "SendInput": {"conversation_id": world.ids["conversation_id"], "content": "hi"},
        "AgentCreate": {"name": name, "provider": "echo", "model_settings": {}, "metadata": doc},
        "AgentUpdate": {"description": "d", "metadata": doc},
        "PersonaCreate": {"name": name, "template": "t"},
        "PersonaUpdate": {"description": "d"},
        "ModuleCreate": {"name": name, "type": "t"},
        "ModuleUpdate": {"description": "d"},
        "ToolCreate": {"name": name, "parameters": {"type": "object"}, "config": doc},
        "ToolUpdate": {"config": doc},
        "WorkflowCreate": {"name": name, "steps": ["a", {"agent": "b"}], "config": doc},
        "WorkflowUpdate": {"config": doc},
        "Project": {
            "tools": [{"name": name, "config": doc}],
            "agents": [{"name": name, "provider": "echo", "tools": [name], "metadata": doc}],
        },
        "ConversationDataCreate": {"data_type": "partial", "content": doc},
        "AgentQuestionCreate": {"agent_name": "a", "question": "?", "missing_fields": ["f"]},
        "AgentAnswer": {"answer": "yes"},
        "ConversationComplete": {"external_ref": 7, "complete_data": doc},
        "AbandonIdle": {"idle_seconds": 3600},
        "Purge": {"status": "completed", "older_than_seconds": 3600, "dry_run": True},
        "SessionPut": {"timezone": "Europe/Moscow", "metadata": doc},
        "OperationTemplateCreate": {
            "operation_type": "t",
            "template_name": name,
            "sample_input": "s",
            "expected_output": doc,
        },
        "OperationTemplateUpdate": {"sample_input": "s2", "expected_output": doc},
        "AgentModules": {"modules": [world.ids["module_id"]]},
        "MemoryCreate": {
            "content": "likes tea",
            "user_id": "u",
            "agent_id": world.ids["agent_id"],
            "memory_type": "preference",
            "importance": 0.7,
            "metadata": doc,
        },
        "MemoryUpdate": {"content": "likes green tea", "importance": 0.9, "metadata": doc},
        "MemorySearch": {"q": "tea", "k": 3, "user_id": "u", "count_access": False},
    }
    return bodies.get(schema) or {"name": name}


HUGE = "\x1ahuge\x1a"
"""Stands for a number too long for JSON encoders (substituted in the encoded text)."""

odd_characters = st.sampled_from(["\x00", "\ud800", "\udfff", "\ud83d", "\ufffe", "\u202e"])
odd_text = st.builds(
    lambda before, odd, after: before + odd + after,
    st.text(max_size=4),
    odd_characters | st.characters(categories=["Cs", "Cc", "Co"]),
    st.text(max_size=4),
)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and infinity included: Python's encoder writes them
    | st.text(st.characters(categories=["L", "N", "P", "Cs", "Cc"]), max_size=8)
    | st.just(HUGE)
)
json_shapes = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=4) | odd_text, inner, max_size=3)
    ),
    max_leaves=8,
)


def deep(levels: int, as_list: bool) -> Any:
    document: Any = "leaf"
    for _ in range(levels):
        document = [document] if as_list else {"k": document}
    return document


bad_values = (
    st.builds(deep, st.integers(MAX_JSON_DEPTH + 1, 900), st.booleans())
    | odd_text
    | json_shapes
    | st.integers(min_value=2**63)
    | st.just(HUGE)
)


@dataclass(frozen=True)
class Mutation:
    key: str | None
    """The body field replaced (or added), ``None`` to replace the whole body."""
    value: Any
    inside: bool
    """Put the value inside the field's document rather than replacing the field."""
    broken_utf8: bytes | None
    odd_path: str | None


mutations = st.builds(
    Mutation,
    key=st.none() | st.text(max_size=12),
    value=bad_values,
    inside=st.booleans(),
    broken_utf8=st.none() | st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80abc"]),
    odd_path=st.none() | odd_text | st.text(max_size=6),
)
path_mutations = st.builds(  # for a route without a body: only its path can be odd
    Mutation,
    key=st.none(),
    value=st.none(),
    inside=st.just(False),
    broken_utf8=st.none(),
    odd_path=odd_text | st.text(min_size=1, max_size=6),
)


def mutated(body: dict[str, Any], mutation: Mutation) -> Any:
    if mutation.key is None:
        return mutation.value
    key = mutation.key if mutation.key not in ("", "-") else "metadata"
    key = next((k for k in body if k.startswith(key[:1])), key)  # mostly a real field
    changed = dict(body)
    target = changed.get(key)
    if mutation.inside and isinstance(target, dict):
        changed[key] = {**target, "odd": mutation.value}
    elif mutation.inside and isinstance(target, list):
        changed[key] = [*target, mutation.value]
    else:
        changed[key] = mutation.value
    return changed


def encode(body: Any, broken: bytes | None) -> bytes:
    text = json.dumps(body, ensure_ascii=True)  # a lone surrogate goes as its \\ud800 escape
    raw = text.replace(json.dumps(HUGE), "1" + "0" * 5000).encode()
    if broken is not None:
        cut = len(raw) // 2
        raw = raw[:cut] + broken + raw[cut:]
    return raw


def percent(text: str) -> str:
    """A path segment with any character, lone surrogates included, as a client may send it."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


@dataclass
class Sweep:
    portal: BlockingPortal
    app: FastAPI
    client: httpx.AsyncClient
    world: World
    stored: list[Any] = field(default_factory=list)
    """What the store held after the last accepted write: a refused one must leave it so."""

    async def snapshot(self) -> list[Any]:
        """What a refused write must leave unchanged."""
        ids, client = self.world.ids, self.client
        reads = [
            "stats",
            f"conversations/{ids['conversation_id']}",
            f"conversations/{ids['conversation_id']}/messages",
            f"conversations/{ids['conversation_id']}/state",
            f"conversations/{ids['conversation_id']}/data",
            f"conversations/{ids['conversation_id']}/questions",
            "templates",
            "conversations",
            "agents",
            "personas",
            "modules",
            "tools",
            "workflows",
            "memories",
        ]
        seen = []
        for read in reads:
            response = await client.get(f"{API}/{read}")
            assert response.status_code == 200, (read, response.text)
            seen.append(response.json())
        return seen

    async def attempt(self, route: Route, mutation: Mutation) -> None:
        odd = {}
        if mutation.odd_path is not None:
            name = re.findall(r"\{(\w+)\}", route.path)
            if name:
                odd[name[-1]] = percent(mutation.odd_path) or "%20"
        url = self.world.path(route.path, odd)
        content = None
        if route.body is not None:
            body = mutated(valid_body(route.body, self.world), mutation)
            content = encode(body, mutation.broken_utf8)
        response = await self.client.request(
            route.method,
            url,
            content=content,
            headers={"content-type": "application/json"} if content is not None else None,
        )
        assert response.status_code < 500, (str(route), response.text)
        if response.status_code >= 400:
            error_of(response, response.status_code)
            assert await self.snapshot() == self.stored, f"{route} half-wrote a refused write"
        else:  # an accepted mutation may have changed or deleted the world's things
            await self.renew()

    async def renew(self) -> None:
        self.world = await make_world(self.client)
        self.stored = await self.snapshot()


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c,
    ):
        yield app, c


@pytest.fixture
def sweep(settings: Settings) -> Iterator[Sweep]:
    """The app in a portal, so hypothesis (which is synchronous) can drive the async client."""
    with (
        start_blocking_portal("asyncio") as portal,
        portal.wrap_async_context_manager(running(settings)) as (app, client),
    ):
        sweep = Sweep(portal, app, client, World())
        portal.call(sweep.renew)
        yield sweep


class TestSweep:
    def test_every_write_route_is_found_and_has_a_valid_body(self, sweep: Sweep) -> None:
        routes = write_routes(sweep.app)
        assert {r.method for r in routes} == set(WRITES)
        for route in routes:
            if route.body is None:
                continue
            body = valid_body(route.body, sweep.world)
            url = sweep.world.path(route.path, {})
            send = functools.partial(sweep.client.request, route.method, url, json=body)
            response = sweep.portal.call(send)
            assert response.status_code < 300, (str(route), response.text)
            sweep.world = sweep.portal.call(make_world, sweep.client)

    def test_no_write_route_answers_5xx_or_half_writes_on_odd_input(self, sweep: Sweep) -> None:
        for route in write_routes(sweep.app):  # each route its own run: none left to chance
            sweep_route(sweep, route)


def sweep_route(sweep: Sweep, route: Route) -> None:
    @hypothesis_settings(
        max_examples=EXAMPLES_PER_ROUTE,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(mutation=mutations if route.body is not None else path_mutations)
    def attempt(mutation: Mutation) -> None:
        sweep.portal.call(sweep.attempt, route, mutation)

    attempt()


# -- regressions ----------------------------------------------------------------------------------


def nested(levels: int) -> Any:
    document: Any = 1
    for _ in range(levels):
        document = {"a": document}
    return document


def depth_of(document: Any) -> int:
    levels = 0
    while isinstance(document, dict):
        levels, document = levels + 1, document["a"]
    return levels


async def post_raw(client: httpx.AsyncClient, url: str, raw: bytes) -> httpx.Response:
    return await client.post(url, content=raw, headers={"content-type": "application/json"})


@pytest.mark.anyio
class TestRegressions:
    async def test_deep_metadata_is_refused_and_lists_keep_answering(
        self, client: httpx.AsyncClient
    ) -> None:
        started = await client.post(f"{API}/conversations/start", json={"user_id": "u"})
        cid = started.json()["conversation"]["id"]
        url = f"{API}/conversations/{cid}/message"
        body = {"role": "user", "content": "x", "metadata": nested(256)}
        error = error_of(await client.post(url, json=body), 422)
        assert error["field"] == "metadata"
        assert str(MAX_JSON_DEPTH) in error["message"]
        body["metadata"] = nested(MAX_JSON_DEPTH)
        assert (await client.post(url, json=body)).status_code == 201
        for read in ("conversations", "agents", f"conversations/{cid}/messages"):
            assert (await client.get(f"{API}/{read}")).status_code == 200

    @pytest.mark.parametrize(
        ("path", "body", "field"),
        [
            ("agents", {"name": "a", "model_settings": nested(300)}, "model_settings"),
            ("conversations/start", {"metadata": nested(300)}, "metadata"),
            (
                "conversations/start",
                {"message": {"role": "user", "content": "x", "metadata": nested(65)}},
                "metadata",
            ),
            ("workflows", {"name": "w", "steps": [{"agent": "a", "x": nested(100)}]}, "steps"),
            ("tools", {"name": "t", "parameters": {"p": "\ud800"}}, "parameters"),
        ],
    )
    async def test_odd_documents_are_refused_naming_the_field(
        self, client: httpx.AsyncClient, path: str, body: dict[str, Any], field: str
    ) -> None:
        raw = json.dumps(body).encode()  # ASCII: a lone surrogate goes as its escape
        error = error_of(await post_raw(client, f"{API}/{path}", raw), 422)
        assert error["field"] == field
        stats = (await client.get(f"{API}/stats")).json()
        assert stats["agents"] == stats["conversations"] == stats["workflows"] == 0

    async def test_deep_state_values_are_refused(self, client: httpx.AsyncClient) -> None:
        started = await client.post(f"{API}/conversations/start", json={})
        cid = started.json()["conversation"]["id"]
        response = await client.put(
            f"{API}/conversations/{cid}/state/k", json={"value": [nested(200)]}
        )
        assert error_of(response, 422)["field"] == "state_value"
        assert (await client.get(f"{API}/conversations/{cid}/state")).json()["items"] == []

    @pytest.mark.parametrize("field", ["content", "thinking"])
    async def test_a_lone_surrogate_escape_in_text_is_a_422_naming_the_field(
        self, client: httpx.AsyncClient, field: str
    ) -> None:
        started = await client.post(f"{API}/conversations/start", json={})
        cid = started.json()["conversation"]["id"]
        raw = f'{{"role": "user", "content": "ok", "{field}": "a\\ud800b"}}'.encode()
        response = await post_raw(client, f"{API}/conversations/{cid}/message", raw)
        assert error_of(response, 422)["field"] == field
        raw = b'{"role": "user", "content": "ok", "metadata": {"k": "\\udfff"}}'
        response = await post_raw(client, f"{API}/conversations/{cid}/message", raw)
        assert error_of(response, 422)["field"] == "metadata"
        messages_page = (await client.get(f"{API}/conversations/{cid}/messages")).json()
        assert messages_page["items"] == []

    async def test_an_unknown_field_named_with_a_lone_surrogate_is_answered(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await post_raw(client, f"{API}/agents", b'{"name": "a", "\\ud800": 1}')
        error_of(response, 422)

    async def test_a_uuid_field_with_a_lone_surrogate_is_answered(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await post_raw(
            client, f"{API}/streaming/send", b'{"conversation_id": "\\ud800", "content": "x"}'
        )
        assert error_of(response, 422)["field"] == "conversation_id"

    async def test_streaming_send_refuses_odd_input_before_the_stream(
        self, client: httpx.AsyncClient
    ) -> None:
        agent = await client.post(f"{API}/agents", json={"name": "a", "provider": "echo"})
        started = await client.post(
            f"{API}/conversations/start", json={"agent_id": agent.json()["id"]}
        )
        cid = started.json()["conversation"]["id"]
        deep = json.dumps(nested(99))
        for raw, named in [
            (f'{{"conversation_id": "{cid}", "content": "\\ud800"}}', "content"),
            (f'{{"conversation_id": "{cid}", "content": "x", "metadata": {deep}}}', "metadata"),
        ]:
            response = await post_raw(client, f"{API}/streaming/send", raw.encode())
            assert response.headers["content-type"].startswith("application/json")
            assert error_of(response, 422)["field"] == named
        messages_page = (await client.get(f"{API}/conversations/{cid}/messages")).json()
        assert messages_page["items"] == []

    @pytest.mark.parametrize("route", ["conversations/start", "streaming/start", "agents"])
    @pytest.mark.parametrize("raw", [b'{"content": "\xff"}', b'{"title": "a\xc3"}', b"\x80"])
    async def test_a_body_that_is_not_utf8_is_a_400(
        self, client: httpx.AsyncClient, route: str, raw: bytes
    ) -> None:
        error = error_of(await post_raw(client, f"{API}/{route}", raw), 400)
        assert error["code"] == "invalid_json"

    @pytest.mark.parametrize("route", ["conversations/start", "streaming/start", "agents"])
    async def test_a_surrogate_encoded_as_bytes_is_a_422(
        self, client: httpx.AsyncClient, route: str
    ) -> None:
        # Python's JSON parser reads these bytes as a lone surrogate rather than refusing them
        raw = b'{"title": "\xed\xa0\x80", "name": "a", "content": "b"}'
        error = error_of(await post_raw(client, f"{API}/{route}", raw), 422)
        assert error["field"] in ("title", "name", "agent_id")

    async def test_a_body_nested_beyond_the_parser_is_a_400(
        self, client: httpx.AsyncClient
    ) -> None:
        error = error_of(await post_raw(client, f"{API}/agents", b"[" * 100_000), 400)
        assert error["code"] == "invalid_json"

    async def test_odd_query_and_path_parameters_are_answered(
        self, client: httpx.AsyncClient
    ) -> None:
        started = await client.post(f"{API}/conversations/start", json={})
        cid = started.json()["conversation"]["id"]
        for query in ("user_id=%ED%A0%80", "user_id=%00", "chat_id=%FF", "agent_id=%ED%A0%80"):
            response = await client.get(f"{API}/conversations?{query}")
            assert response.status_code in (200, 422), (query, response.text)
        for key in ("%ED%A0%80", "%00", "%FF%FE"):
            response = await client.put(f"{API}/conversations/{cid}/state/{key}", json={"value": 1})
            assert response.status_code in (200, 422), (key, response.text)
            response = await client.get(f"{API}/conversations/{cid}/state/{key}")
            assert response.status_code in (200, 404, 422), (key, response.text)

    async def test_a_query_parameter_given_twice_is_a_422_naming_it(
        self, client: httpx.AsyncClient
    ) -> None:
        await client.post(f"{API}/conversations/start", json={"user_id": "b"})
        for query, name in [
            ("user_id=a&user_id=b", "user_id"),
            ("limit=1&user_id=b&limit=100", "limit"),
            ("user%5Fid=a&user_id=b", "user_id"),  # however it is spelled
            ("x=&x=", "x"),
        ]:
            response = await client.get(f"{API}/conversations?{query}")
            error = error_of(response, 422)
            assert error["field"] == name, query
            assert error["message"] == f"{name}: given more than once; send it once"
        listed = await client.get(f"{API}/conversations?user_id=b&limit=5")
        assert [c["user_id"] for c in listed.json()["items"]] == ["b"]
        search = await client.post(f"{API}/memories?a=1&a=2", json={"content": "kept?"})
        assert error_of(search, 422)["field"] == "a"
        assert (await client.get(f"{API}/memories")).json()["items"] == []  # nothing stored

    async def test_documents_stored_too_deep_earlier_read_back_cut_at_the_limit(
        self, served: tuple[FastAPI, httpx.AsyncClient]
    ) -> None:
        app, client = served
        agent = (await client.post(f"{API}/agents", json={"name": "a"})).json()
        started = await client.post(
            f"{API}/conversations/start",
            json={"agent_id": agent["id"], "message": {"role": "user", "content": "x"}},
        )
        cid = started.json()["conversation"]["id"]
        await client.put(f"{API}/conversations/{cid}/state/k", json={"value": 1})
        deep = nested(300)
        with app.state.db.service.unit("write", single=True) as conn:  # as an older release did
            conn.execute(update(messages).values(metadata=deep))
            conn.execute(update(conversations).values(metadata=deep))
            conn.execute(update(agents).values(model_settings=deep))
            conn.execute(update(conversation_states).values(state_value=deep))
        listed = await client.get(f"{API}/conversations")
        assert listed.status_code == 200, listed.text
        assert depth_of(listed.json()["items"][0]["metadata"]) == MAX_JSON_DEPTH
        page = await client.get(f"{API}/conversations/{cid}/messages")
        assert page.status_code == 200, page.text
        cut = page.json()["items"][0]["metadata"]
        assert depth_of(cut) == MAX_JSON_DEPTH
        assert json.dumps(cut).endswith(json.dumps(TOO_DEEP) + "}" * MAX_JSON_DEPTH)
        for read in ("agents", f"agents/{agent['id']}", f"conversations/{cid}/state/k"):
            response = await client.get(f"{API}/{read}")
            assert response.status_code == 200, (read, response.text)

    @pytest.mark.parametrize(
        ("data_type", "content", "says"),
        [
            ("missing_fields", None, "missing_fields content must be a list of field names"),
            ("missing_fields", {"a": 1}, "missing_fields content must be a list of field names"),
            ("partial", "str", "partial content must be a JSON object"),
            ("complete", [1], "complete content must be a JSON object"),
            ("partial", 7, "partial content must be a JSON object"),
        ],
    )
    async def test_data_of_the_wrong_shape_is_named_by_its_type(
        self, client: httpx.AsyncClient, data_type: str, content: Any, says: str
    ) -> None:
        started = await client.post(f"{API}/conversations/start", json={})
        url = f"{API}/conversations/{started.json()['conversation']['id']}/data"
        body = {"data_type": data_type, "content": content}
        error = error_of(await client.post(url, json=body), 422)
        assert error["field"] == "content"
        assert says in error["message"]
        assert (await client.get(url)).json()["items"] == []

    @pytest.mark.parametrize("where", ["importance", "metadata"])
    async def test_an_integer_longer_than_python_reads_is_a_400_saying_so(
        self, client: httpx.AsyncClient, where: str
    ) -> None:
        number = "1" * 5000
        value = number if where == "importance" else f'{{"n": {number}}}'
        raw = f'{{"content": "x", "{where}": {value}}}'.encode()
        error = error_of(await post_raw(client, f"{API}/memories", raw), 400)
        assert error["code"] == "invalid_json"
        assert "more than 4300 digits" in error["message"]

    @pytest.mark.parametrize(
        ("method", "path", "allowed"),
        [
            ("GET", "conversations/start", "POST"),
            ("GET", "conversations/purge", "POST"),
            ("GET", "conversations/abandon-idle", "POST"),
            ("DELETE", "conversations/by-reply", "GET"),
            ("PATCH", "memories/search", "GET, POST"),
            ("GET", "conversations/start/", "POST"),
        ],
    )
    async def test_a_method_an_action_does_not_take_is_a_405_with_allow(
        self, client: httpx.AsyncClient, method: str, path: str, allowed: str
    ) -> None:
        response = await client.request(method, f"{API}/{path}")
        assert error_of(response, 405)["code"] == "method_not_allowed"
        assert response.headers["allow"] == allowed

    async def test_every_documented_path_without_a_parameter_is_checked_for_its_methods(
        self, served: tuple[FastAPI, httpx.AsyncClient]
    ) -> None:
        app, _ = served
        middleware = app.user_middleware
        (checks,) = [m for m in middleware if getattr(m.cls, "__name__", "") == "PathChecks"]
        routers: Any = checks.kwargs["routers"]
        literal = PathChecks(app, routers=routers)._literal_paths()
        documented = {
            path: frozenset(method.upper() for method in operations)
            for path, operations in app.openapi()["paths"].items()
            if "{" not in path
        }
        assert literal == documented

    async def test_a_path_that_is_not_utf8_once_decoded_is_a_422_and_nothing_is_stored(
        self, client: httpx.AsyncClient
    ) -> None:
        for user in ("%ED%A0%80", "%FF", "%C3"):
            response = await client.put(f"{API}/users/{user}/sessions/x", json={})
            assert error_of(response, 422)["field"] == "path"
            response = await client.get(f"{API}/agents/{user}")
            assert error_of(response, 422)["field"] == "path"
        assert (await client.put(f"{API}/users/%C3%A9/sessions/x", json={})).status_code == 200
        stored = await client.get(f"{API}/users/%C3%A9/sessions/x")
        assert stored.json()["user_id"] == "\u00e9"

    async def test_history_settings_stored_before_they_were_checked_end_the_turn_with_an_error(
        self, served: tuple[FastAPI, httpx.AsyncClient]
    ) -> None:
        app, client = served
        agent = (await client.post(f"{API}/agents", json={"name": "a", "provider": "echo"})).json()
        bad = {"history_messages": "lots"}
        with app.state.db.service.unit("write", single=True) as conn:  # as an older release did
            conn.execute(update(agents).values(model_settings=bad))
        app.state.agents.evict(agent["id"])  # as a server started after the change would
        body = {"agent_id": agent["id"], "user_id": "u", "content": "hello"}
        events = await read_sse(await client.post(f"{API}/streaming/start", json=body))
        assert events[-1][0] == "error", events
        assert events[-1][1]["field"] == "model_settings.history_messages"
        listed = await client.get(f"{API}/conversations", params={"user_id": "u"})
        assert listed.json()["items"] == []  # the refused turn stored nothing

    @pytest.mark.parametrize("when", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
    async def test_a_time_utc_cannot_hold_is_a_422_naming_its_field(
        self, client: httpx.AsyncClient, when: str
    ) -> None:
        await client.post(f"{API}/memories", json={"content": "likes tea", "user_id": "u"})
        for bound in ("created_after", "created_before"):
            for route, query in (("memories", {}), ("memories/search", {"q": "tea"})):
                response = await client.get(f"{API}/{route}", params={**query, bound: when})
                assert error_of(response, 422)["field"] == bound
            searched = await client.post(f"{API}/memories/search", json={"q": "tea", bound: when})
            assert error_of(searched, 422)["field"] == bound
        started = await client.post(f"{API}/conversations/start", json={"user_id": "u"})
        cid = started.json()["conversation"]["id"]
        asked = await client.post(
            f"{API}/conversations/{cid}/questions", json={"agent_name": "a", "question": "q?"}
        )
        answer = {"answer": "cash", "answered_at": when}
        answered = await client.post(
            f"{API}/conversations/{cid}/questions/{asked.json()['id']}/answer", json=answer
        )
        assert error_of(answered, 422)["field"] == "answered_at"
        cursor = base64.urlsafe_b64encode(json.dumps([when, cid]).encode()).decode()
        for route in ("conversations", "memories", f"conversations/{cid}/data"):
            response = await client.get(f"{API}/{route}", params={"cursor": cursor})
            assert error_of(response, 422)["field"] == "cursor"
        for page in ("/conversations", "/memory"):
            assert (await client.get(page, params={"cursor": cursor})).status_code < 500


class TestWebSocketText:
    def test_odd_message_content_is_answered_with_an_error_frame(self, settings: Settings) -> None:
        with TestClient(create_app(settings)) as client:
            agent = client.post(f"{API}/agents", json={"name": "a", "provider": "echo"}).json()
            started = client.post(f"{API}/conversations/start", json={"agent_id": agent["id"]})
            cid = started.json()["conversation"]["id"]
            with client.websocket_connect(f"{API}/streaming/ws/{cid}") as socket:
                deep = json.dumps(nested(200))
                for frame, named in [
                    ('{"type": "message", "content": "a\\ud800"}', "content"),
                    (f'{{"type": "message", "content": "x", "metadata": {deep}}}', "metadata"),
                    (
                        '{"type": "message", "content": "x", "metadata": {"k": "\\udc00"}}',
                        "metadata",
                    ),
                ]:
                    socket.send_text(frame)  # ASCII: the escapes reach the server's parser
                    error = socket.receive_json()
                    assert error["event"] == "error"
                    assert error["data"]["field"] == named
                socket.send_json({"type": "message", "content": "still here"})
                assert socket.receive_json()["event"] == "message_start"
            stored = client.get(f"{API}/conversations/{cid}/messages").json()["items"]
            assert [m["content"] for m in stored][:1] == ["still here"]
