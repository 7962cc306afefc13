"""API keys: configured (``AGENTKEEP_API_KEYS``) and stored (``db.api_keys``), on every backend,
and the web UI's sign-in cookie, which the API takes only from the server's own pages.

The stored keys' cache is driven by a fake clock, so a test moves past the TTL without sleeping.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.datastructures import Headers
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from agentkeep import ApiKey, Async, DatabaseManager, NotFoundError, Settings, Sync, ValidationError
from agentkeep.api import create_app
from agentkeep.api.auth import (
    ADMIN_KEY_NEEDED,
    CSRF_HEADER,
    SESSION_COOKIE,
    SESSION_LIFETIME,
    TOUCH_INTERVAL,
    ApiKeys,
    Sessions,
    same_origin,
)
from agentkeep.repositories.api_keys import CACHE_TTL

pytestmark = pytest.mark.anyio

PROTECTED = "/api/v1/agents"
TTL = 5.0


class Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Served:
    client: httpx.AsyncClient
    db: DatabaseManager[Async]
    clock: Clock
    keys: ApiKeys

    async def status(self, path: str = PROTECTED, key: str | None = None) -> int:
        headers = {} if key is None else {"Authorization": f"Bearer {key}"}
        return (await self.client.get(path, headers=headers)).status_code


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[Served]:
    """The app for ``settings``, started, with its API keys on a fake clock."""
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c,
    ):
        assert isinstance(app.state.api_keys, ApiKeys)
        assert app.state.api_keys.ttl == CACHE_TTL
        clock = Clock()
        app.state.api_keys = keys = ApiKeys(settings, app.state.db, ttl=TTL, clock=clock)
        yield Served(c, app.state.db, clock, keys)


def with_keys(settings: Settings, *keys: str) -> Settings:
    return settings.model_copy(update={"api_keys": [SecretStr(k) for k in keys]})


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.json()["error"]["message"]
    assert response.headers["WWW-Authenticate"] == "Bearer"


class TestWithoutKeys:
    async def test_every_route_is_open(self, settings: Settings) -> None:
        async with serving(settings) as served:
            assert await served.status() == 200
            assert await served.status("/api/v1/stats") == 200
            assert await served.status("/health") == 200

    async def test_a_key_sent_anyway_is_ignored(self, settings: Settings) -> None:
        async with serving(settings) as served:
            assert await served.status(key="whatever") == 200


class TestInsistingServer:
    async def test_refuses_every_api_request_while_no_key_exists(self, settings: Settings) -> None:
        insisting = settings.model_copy(update={"require_api_keys": True})
        async with serving(insisting) as served:
            assert_unauthorized(await served.client.get(PROTECTED))
            assert await served.status(key="anything") == 401
            assert await served.status("/health") == 200
            _, key = await served.db.api_keys.create("ops")
            served.clock.advance(TTL)
            assert await served.status(key=key) == 200


class TestConfiguredKeys:
    async def test_api_routes_need_a_key(self, settings: Settings) -> None:
        async with serving(with_keys(settings, "k-one", "k-two")) as served:
            assert_unauthorized(await served.client.get(PROTECTED))
            assert "Authorization: Bearer" in (await served.client.get(PROTECTED)).text

    async def test_a_wrong_key_or_another_scheme_is_refused(self, settings: Settings) -> None:
        async with serving(with_keys(settings, "k-one")) as served:
            for header in ("Bearer k-two", "Bearer k-one-and-more", "Basic azpvbmU=", "k-one"):
                response = await served.client.get(PROTECTED, headers={"Authorization": header})
                assert_unauthorized(response)

    async def test_each_configured_key_opens_the_api(self, settings: Settings) -> None:
        async with serving(with_keys(settings, "k-one", "k-two")) as served:
            assert await served.status(key="k-one") == 200
            assert await served.status(key="k-two") == 200
            assert await served.status("/api/v1/stats", key="k-two") == 200

    async def test_health_metrics_and_docs_stay_open(self, settings: Settings) -> None:
        async with serving(with_keys(settings, "k-one")) as served:
            for path in ("/health", "/metrics", "/docs", "/openapi.json"):
                assert await served.status(path) == 200, path

    async def test_a_write_without_a_key_is_refused_before_its_body_is_looked_at(
        self, settings: Settings
    ) -> None:
        async with serving(with_keys(settings, "k-one")) as served:
            assert_unauthorized(await served.client.post(PROTECTED, json={"no": "name"}))
            assert await served.db.agents.count() == 0


class TestStoredKeys:
    async def test_a_stored_key_opens_the_api_and_closes_it_to_others(
        self, settings: Settings
    ) -> None:
        async with serving(settings) as served:
            _, key = await served.db.api_keys.create("ci")
            assert_unauthorized(await served.client.get(PROTECTED))
            assert await served.status(key="not-it") == 401
            assert await served.status(key=key) == 200

    async def test_a_new_key_applies_within_the_ttl(self, settings: Settings) -> None:
        async with serving(settings) as served:
            assert await served.status() == 200  # no key yet: open, and remembered
            _, key = await served.db.api_keys.create("ci")
            served.clock.advance(TTL - 0.1)
            assert await served.status() == 200  # still the cached answer
            served.clock.advance(0.2)
            assert await served.status() == 401
            assert await served.status(key=key) == 200

    async def test_a_revoked_key_stops_working_within_the_ttl(self, settings: Settings) -> None:
        async with serving(settings) as served:
            stored, key = await served.db.api_keys.create("ci")
            await served.db.api_keys.create("another")  # the API stays closed without ci's key
            assert await served.status(key=key) == 200
            await served.db.api_keys.revoke(stored.prefix)
            assert await served.status(key=key) == 200  # cached for up to the TTL
            served.clock.advance(TTL)
            assert await served.status(key=key) == 401

    async def test_configured_and_stored_keys_both_open_the_api(self, settings: Settings) -> None:
        async with serving(with_keys(settings, "configured")) as served:
            _, key = await served.db.api_keys.create("ci")
            assert await served.status(key="configured") == 200
            assert await served.status(key=key) == 200
            assert await served.status() == 401

    async def test_use_is_recorded_with_the_next_refresh_at_most_once_a_minute(
        self, settings: Settings
    ) -> None:
        async with serving(settings) as served:
            _, key = await served.db.api_keys.create("ci")
            assert await served.status(key=key) == 200
            assert (await served.db.api_keys.list())[0].last_used_at is None  # no write yet
            served.clock.advance(TTL)
            assert await served.status(key=key) == 200  # the refresh records the first use
            (first,) = await served.db.api_keys.list()
            assert first.last_used_at is not None
            served.clock.advance(TTL)
            assert await served.status(key=key) == 200
            served.clock.advance(TTL)
            assert await served.status(key=key) == 200
            assert (await served.db.api_keys.list())[0].last_used_at == first.last_used_at
            served.clock.advance(TOUCH_INTERVAL)
            assert await served.status(key=key) == 200
            served.clock.advance(TTL)
            assert await served.status(key=key) == 200
            (later,) = await served.db.api_keys.list()
            assert later.last_used_at is not None
            assert later.last_used_at > first.last_used_at


ORIGIN = "http://test"
FOREIGN = "http://evil.example"


def sign_in(served: Served, key: str) -> str:
    """Give the client the session the sign-in form would; the page's CSRF token."""
    session = served.keys.sessions.issue(key)
    served.client.cookies.set(SESSION_COOKIE, session)
    return served.keys.sessions.csrf_token(session)


ADMIN_ROUTES = [
    ("post", "/api/v1/config/sync?dry_run=true", {"tools": [{"name": "t"}]}),
    ("get", "/api/v1/config/export", None),
    (
        "post",
        "/api/v1/conversations/purge",
        {"status": "completed", "older_than_seconds": 3600, "dry_run": True},
    ),
]


class TestAdminKeys:
    """What changes the whole store at once (configuration sync and export, purge) needs an
    admin key when keys are on; every other route takes any valid key."""

    async def _answer(
        self, served: Served, method: str, path: str, body: Any, key: str
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"}
        return await served.client.request(method, path, json=body, headers=headers)

    @pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES)
    async def test_a_plain_key_gets_403_and_an_admin_key_gets_through(
        self, settings: Settings, method: str, path: str, body: Any
    ) -> None:
        async with serving(settings) as served:
            plain, plain_key = await served.db.api_keys.create("app")
            admin, admin_key = await served.db.api_keys.create("ops", admin=True)
            assert (plain.admin, admin.admin) == (False, True)
            refused = await self._answer(served, method, path, body, plain_key)
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"]["code"] == "forbidden"
            assert refused.json()["error"]["message"] == ADMIN_KEY_NEEDED
            assert (await self._answer(served, method, path, body, admin_key)).status_code == 200
            assert await served.status(key=plain_key) == 200  # any other route: any key
            assert await served.db.tools.count() == 0  # the refused sync wrote nothing

    async def test_configured_keys_are_admin_and_no_keys_means_open(
        self, settings: Settings
    ) -> None:
        async with serving(with_keys(settings, "k-env")) as served:
            answer = await self._answer(served, "get", "/api/v1/config/export", None, "k-env")
            assert answer.status_code == 200
        async with serving(settings) as served:
            assert (await served.client.get("/api/v1/config/export")).status_code == 200

    async def test_the_sign_in_cookie_carries_its_keys_role(self, settings: Settings) -> None:
        async with serving(settings) as served:
            _, plain_key = await served.db.api_keys.create("app")
            _, admin_key = await served.db.api_keys.create("ops", admin=True)
            sign_in(served, plain_key)
            assert (await served.client.get("/api/v1/config/export")).status_code == 403
            sign_in(served, admin_key)
            assert (await served.client.get("/api/v1/config/export")).status_code == 200

    async def test_a_key_made_admin_only_by_its_row(self, settings: Settings) -> None:
        async with serving(settings) as served:
            listed, _ = await served.db.api_keys.create("ops", admin=True)
            assert [k.admin for k in await served.db.api_keys.list()] == [True]
            assert listed.admin is True


class TestSignInCookie:
    async def test_the_cookie_opens_the_api_and_changes_need_its_token(
        self, settings: Settings
    ) -> None:
        async with serving(with_keys(settings, "k-one")) as served:
            token = sign_in(served, "k-one")
            assert await served.status() == 200
            page = {"Origin": ORIGIN, "Sec-Fetch-Site": "same-origin"}
            response = await served.client.post(
                PROTECTED, json={"name": "a"}, headers=page | {CSRF_HEADER: token}
            )
            assert response.status_code == 201, response.text
            response = await served.client.post(PROTECTED, json={"name": "b"}, headers=page)
            assert response.status_code == 403
            assert response.json()["error"]["code"] == "forbidden"
            assert CSRF_HEADER in response.json()["error"]["message"]
            assert await served.db.agents.count() == 1

    async def test_the_cookie_holds_a_signed_session_never_the_key(
        self, settings: Settings
    ) -> None:
        async with serving(with_keys(settings, "k-one")) as served:
            session = served.keys.sessions.issue("k-one")
            assert "k-one" not in session
            served.client.cookies.set(SESSION_COOKIE, "k-one")  # the key itself is no session
            assert_unauthorized(await served.client.get(PROTECTED))
            issued, key_digest, signature = session.split(".")
            other = hashlib.sha256(b"k-two").hexdigest()
            for forged in (
                f"{issued}.{other}.{signature}",
                f"{int(issued) + 3600}.{key_digest}.{signature}",
                f"{issued}.{key_digest}.{signature[:-2]}",
                Sessions().issue("k-one"),  # signed by another server
                "",
                "...",
            ):
                served.client.cookies.set(SESSION_COOKIE, forged)
                assert_unauthorized(await served.client.get(PROTECTED))
            served.client.cookies.clear()
            raw = [(b"cookie", f"{SESSION_COOKIE}=\u00fc.\u00fc.\u00fc".encode())]
            assert_unauthorized(await served.client.get(PROTECTED, headers=raw))

    async def test_revoking_the_key_ends_its_sessions(self, settings: Settings) -> None:
        async with serving(settings) as served:
            stored, key = await served.db.api_keys.create("browser")
            await served.db.api_keys.create("another")  # the API stays closed without it
            sign_in(served, key)
            assert await served.status() == 200
            await served.db.api_keys.revoke(stored.prefix)
            served.clock.advance(TTL)
            response = await served.client.get(PROTECTED)
            assert_unauthorized(response)
            assert "sign in again" in response.json()["error"]["message"]

    async def test_a_session_expires(self, settings: Settings) -> None:
        async with serving(with_keys(settings, "k-one")) as served:
            now = Clock()
            served.keys.sessions = Sessions(clock=now)
            sign_in(served, "k-one")
            now.advance(SESSION_LIFETIME - 1)
            assert await served.status() == 200
            now.advance(1)
            assert await served.status() == 401

    async def test_a_bearer_key_is_checked_as_before_whatever_the_cookie(
        self, settings: Settings
    ) -> None:
        async with serving(with_keys(settings, "k-one")) as served:
            sign_in(served, "k-one")
            assert await served.status(key="wrong") == 401  # a valid session does not save it
            foreign = {"Origin": FOREIGN, "Authorization": "Bearer k-one"}
            response = await served.client.post(PROTECTED, json={"name": "a"}, headers=foreign)
            assert response.status_code == 201  # no token, no origin rule: not the cookie's

    async def test_the_cookie_is_ignored_by_a_server_without_keys(self, settings: Settings) -> None:
        async with serving(settings) as served:
            served.client.cookies.set(SESSION_COOKIE, "stale")
            response = await served.client.post(PROTECTED, json={"name": "a"})
            assert response.status_code == 201


def sign_in_socket(client: TestClient) -> None:
    app: Any = client.app
    client.cookies.set(SESSION_COOKIE, app.state.api_keys.sessions.issue("k-one"))


class TestSignInCookieOnTheWebSocket:
    def socket_url(self, client: TestClient) -> str:
        agent = client.post(
            "/api/v1/agents", json={"name": "ws"}, headers={"Authorization": "Bearer k-one"}
        ).json()
        started = client.post(
            "/api/v1/conversations/start",
            json={"agent_id": agent["id"]},
            headers={"Authorization": "Bearer k-one"},
        ).json()
        return f"/api/v1/streaming/ws/{started['conversation']['id']}"

    def test_opens_from_this_servers_pages(self, settings: Settings) -> None:
        with TestClient(create_app(with_keys(settings, "k-one"))) as client:
            url = self.socket_url(client)
            sign_in_socket(client)
            with client.websocket_connect(url, headers={"Origin": "http://testserver"}) as ws:
                ws.send_json({"type": "message", "content": "hello"})
                frames: list[dict[str, Any]] = []
                while not frames or frames[-1]["event"] not in ("message_end", "error"):
                    frames.append(ws.receive_json())
                assert frames[-1]["event"] == "message_end"

    @pytest.mark.parametrize(
        "origin",
        [None, FOREIGN, "http://testserver:8080", "null"],
        ids=["no origin", "another site", "another port", "opaque"],
    )
    def test_is_refused_from_anywhere_else(self, settings: Settings, origin: str | None) -> None:
        with TestClient(create_app(with_keys(settings, "k-one"))) as client:
            url = self.socket_url(client)
            sign_in_socket(client)
            headers = {} if origin is None else {"Origin": origin}
            with (
                pytest.raises(WebSocketDisconnect) as refused,
                client.websocket_connect(url, headers=headers),
            ):
                pass
            assert refused.value.code == 1008

    def test_a_key_in_the_query_still_opens_it_from_anywhere(self, settings: Settings) -> None:
        with TestClient(create_app(with_keys(settings, "k-one"))) as client:
            url = self.socket_url(client)
            with client.websocket_connect(f"{url}?api_key=k-one", headers={"Origin": FOREIGN}):
                pass
            with pytest.raises(WebSocketDisconnect), client.websocket_connect(f"{url}?api_key=no"):
                pass


class TestSameOrigin:
    @pytest.mark.parametrize(
        ("headers", "expected"),
        [
            ({"host": "example.com"}, True),  # a client that says nothing: the token decides
            ({"host": "example.com", "origin": "https://example.com"}, True),  # behind TLS
            ({"host": "example.com:443", "origin": "https://example.com"}, True),
            ({"host": "127.0.0.1:8000", "origin": "http://127.0.0.1:8000"}, True),
            ({"host": "127.0.0.1:8000", "origin": "http://127.0.0.1:3000"}, False),
            ({"host": "127.0.0.1:8000", "origin": "http://localhost:8000"}, False),
            ({"host": "example.com", "origin": "https://evil.example"}, False),
            ({"host": "example.com", "origin": "https://example.com.evil.example"}, False),
            ({"host": "example.com", "origin": "null"}, False),
            ({"host": "example.com", "origin": "https://example.com:99999"}, False),
            ({"host": "example.com", "sec-fetch-site": "same-origin"}, True),
            ({"host": "example.com", "sec-fetch-site": "none"}, True),
            ({"host": "example.com", "sec-fetch-site": "same-site"}, False),
            ({"host": "example.com", "sec-fetch-site": "cross-site"}, False),
        ],
    )
    def test_names_this_server_only(self, headers: dict[str, str], expected: bool) -> None:
        assert same_origin(Headers(headers)) is expected

    def test_a_websocket_must_name_its_origin(self) -> None:
        assert not same_origin(Headers({"host": "example.com"}), origin_required=True)


class TestSessions:
    def test_a_session_names_its_key_until_it_expires(self) -> None:
        clock = Clock()
        sessions = Sessions(clock=clock, lifetime=60)
        session = sessions.issue("k-one")
        assert sessions.key_digest(session) == hashlib.sha256(b"k-one").hexdigest()
        clock.advance(60)
        assert sessions.key_digest(session) is None

    def test_the_csrf_token_belongs_to_one_session(self) -> None:
        sessions = Sessions()
        one, two = sessions.issue("k-one"), sessions.issue("k-two")
        assert sessions.csrf_matches(one, sessions.csrf_token(one))
        assert not sessions.csrf_matches(one, sessions.csrf_token(two))
        assert not sessions.csrf_matches(one, "")
        assert not Sessions().csrf_matches(one, sessions.csrf_token(one))


KEY = re.compile(r"ak_[A-Za-z0-9_-]{43}")


class TestApiKeyRepository:
    def test_create_returns_the_key_once_and_stores_only_its_digest(
        self, db: DatabaseManager[Sync]
    ) -> None:
        stored, key = db.api_keys.create("ci")
        assert KEY.fullmatch(key)
        assert stored.prefix == key[:11]
        assert stored.name == "ci"
        assert stored.active
        assert stored.last_used_at is None
        assert stored.revoked_at is None
        assert set(ApiKey.model_fields) & {"key", "key_hash"} == set()
        assert db.api_keys.active_hashes() == {hashlib.sha256(key.encode()).hexdigest()}

    def test_names_need_not_be_unique_and_keys_differ(self, db: DatabaseManager[Sync]) -> None:
        (first, one), (second, two) = db.api_keys.create("ci"), db.api_keys.create("ci")
        assert one != two
        assert first.id != second.id
        assert [k.id for k in db.api_keys.list()] == [first.id, second.id]

    def test_an_empty_name_is_invalid(self, db: DatabaseManager[Sync]) -> None:
        with pytest.raises(ValidationError):
            db.api_keys.create("")

    def test_revoke_by_id_prefix_or_key_and_again(self, db: DatabaseManager[Sync]) -> None:
        keys = [db.api_keys.create(name) for name in ("a", "b", "c")]
        (a, _), (b, _), (c, c_key) = keys
        assert db.api_keys.revoke(a.id).revoked_at is not None
        assert db.api_keys.revoke(str(b.id)).name == "b"
        revoked = db.api_keys.revoke(c_key)
        assert revoked.id == c.id
        assert revoked.active is False
        assert db.api_keys.revoke(c.prefix).revoked_at == revoked.revoked_at  # unchanged
        assert db.api_keys.active_hashes() == set()
        assert [k.active for k in db.api_keys.list()] == [False, False, False]

    def test_revoke_names_what_it_cannot_find(self, db: DatabaseManager[Sync]) -> None:
        db.api_keys.create("ci")
        for unknown in ("ak_unknown00", "ak_unknown00-and-the-rest-of-a-key"):
            with pytest.raises(NotFoundError):
                db.api_keys.revoke(unknown)
        with pytest.raises(ValidationError, match="neither"):
            db.api_keys.revoke("not-a-key")

    def test_touch_records_use_of_active_keys_only(self, db: DatabaseManager[Sync]) -> None:
        (used, used_key), (revoked, revoked_key) = db.api_keys.create("u"), db.api_keys.create("r")
        db.api_keys.revoke(revoked.id)
        digests = [hashlib.sha256(k.encode()).hexdigest() for k in (used_key, revoked_key)]
        db.api_keys.touch(digests)
        db.api_keys.touch([])
        listed = {k.id: k for k in db.api_keys.list()}
        assert listed[used.id].last_used_at is not None
        assert listed[revoked.id].last_used_at is None
