"""API keys: configured (``AGENTKEEP_API_KEYS``) and stored (``db.api_keys``), on every backend.

The stored keys' cache is driven by a fake clock, so a test moves past the TTL without sleeping.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
from pydantic import SecretStr

from agentkeep import ApiKey, Async, DatabaseManager, NotFoundError, Settings, Sync, ValidationError
from agentkeep.api import create_app
from agentkeep.api.auth import TOUCH_INTERVAL, ApiKeys
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
        app.state.api_keys = ApiKeys(settings, app.state.db, ttl=TTL, clock=clock)
        yield Served(c, app.state.db, clock)


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
