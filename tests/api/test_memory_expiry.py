"""A memory's expiry over HTTP (``expires_at`` on ``/api/v1/memories``), on every backend: set,
moved and removed; an expired memory is neither listed nor found by a search; a bad expiry is a
422 naming ``expires_at`` and stores nothing; a running server deletes expired memories."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import pytest

from agentkeep import Settings
from agentkeep.api import create_app
from agentkeep.api.housekeeping import sweep_logged
from agentkeep.errors import StorageError
from api.shapes import error_of

pytestmark = pytest.mark.anyio

API = "/api/v1/memories"


def _iso(moment: datetime) -> str:
    return moment.isoformat()


async def _listed(client: httpx.AsyncClient) -> list[str]:
    response = await client.get(API)
    assert response.status_code == 200, response.text
    return [item["content"] for item in response.json()["items"]]


async def _found(client: httpx.AsyncClient, q: str) -> list[str]:
    response = await client.get(f"{API}/search", params={"q": q, "k": 10})
    assert response.status_code == 200, response.text
    return [hit["memory"]["content"] for hit in response.json()["items"]]


async def test_an_expired_memory_is_neither_listed_nor_found(client: httpx.AsyncClient) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=0.4)
    made = await client.post(API, json={"content": "parked on level 3", "expires_at": _iso(soon)})
    assert made.status_code == 201, made.text
    memory = made.json()
    assert datetime.fromisoformat(memory["expires_at"]) == soon
    lasting = await client.post(API, json={"content": "parked the bike at home"})
    assert lasting.status_code == 201
    assert lasting.json().get("expires_at") is None
    assert set(await _found(client, "parked level")) == {
        "parked on level 3",
        "parked the bike at home",
    }
    await anyio.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.05)
    assert await _listed(client) == ["parked the bike at home"]
    assert "parked on level 3" not in await _found(client, "parked level")
    got = await client.get(f"{API}/{memory['id']}")  # by its id until swept
    assert got.status_code == 200


async def test_an_expiry_is_moved_and_removed_by_a_patch(client: httpx.AsyncClient) -> None:
    later = datetime.now(UTC) + timedelta(days=7)
    made = await client.post(API, json={"content": "door code 4711", "expires_at": _iso(later)})
    assert made.status_code == 201, made.text
    path = f"{API}/{made.json()['id']}"
    moved = await client.patch(path, json={"expires_at": _iso(later + timedelta(days=1))})
    assert moved.status_code == 200, moved.text
    assert datetime.fromisoformat(moved.json()["expires_at"]) == later + timedelta(days=1)
    removed = await client.patch(path, json={"expires_at": None})
    assert removed.status_code == 200, removed.text
    assert removed.json().get("expires_at") is None


def _bad_expiries() -> list[Any]:
    now = datetime.now(UTC)
    return [
        pytest.param(_iso(now - timedelta(minutes=1)), "in the future", id="past"),
        pytest.param("2001-09-09T01:46:40+00:00", "in the future", id="long-past"),
        pytest.param(_iso(now + timedelta(days=365 * 101)), "at most a century", id="too-far"),
        pytest.param("9999-12-31T23:59:59+00:00", "at most a century", id="year-9999"),
        pytest.param("2030-01-01T00:00:00", "timezone", id="naive"),
        pytest.param("tomorrow", "datetime", id="words"),
        pytest.param(-1, "in the future", id="negative"),
        pytest.param(True, "datetime", id="boolean"),
    ]


@pytest.mark.parametrize(("expires_at", "says"), _bad_expiries())
async def test_a_bad_expiry_is_a_422_naming_it_and_stores_nothing(
    client: httpx.AsyncClient, expires_at: Any, says: str
) -> None:
    response = await client.post(API, json={"content": "x", "expires_at": expires_at})
    error = error_of(response, 422)
    assert error["field"] == "expires_at"
    assert says in error["message"]
    assert not error["message"].startswith("expires_at: Value error")
    assert await _listed(client) == []


async def test_a_patch_to_a_past_expiry_is_a_422_and_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    made = await client.post(API, json={"content": "kept"})
    path = f"{API}/{made.json()['id']}"
    past = datetime.now(UTC) - timedelta(seconds=5)
    error = error_of(await client.patch(path, json={"expires_at": _iso(past)}), 422)
    assert error["field"] == "expires_at"
    assert (await client.get(path)).json().get("expires_at") is None


@asynccontextmanager
async def _server(settings: Settings, sweep_every: float) -> AsyncIterator[Any]:
    """A started app that sweeps every ``sweep_every`` seconds, and a client of it."""
    app = create_app(settings.model_copy(update={"memory_sweep_seconds": sweep_every}))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c,
    ):
        yield app, c


async def test_a_running_server_deletes_expired_memories_every_sweep(settings: Settings) -> None:
    async with _server(settings, sweep_every=0.2) as (_, c):
        soon = _iso(datetime.now(UTC) + timedelta(seconds=1))
        doomed = (await c.post(API, json={"content": "gate code 4411", "expires_at": soon})).json()
        kept = (await c.post(API, json={"content": "likes jazz"})).json()
        assert (await c.get(f"{API}/{doomed['id']}")).status_code == 200  # until it is swept
        with anyio.fail_after(10):
            while (await c.get(f"{API}/{doomed['id']}")).status_code != 404:
                await anyio.sleep(0.05)
        assert (await c.get(f"{API}/{kept['id']}")).status_code == 200


async def test_a_server_told_never_to_sweep_keeps_expired_memories_readable_by_id(
    settings: Settings,
) -> None:
    async with _server(settings, sweep_every=0) as (app, c):
        soon = _iso(datetime.now(UTC) + timedelta(seconds=1))
        made = (await c.post(API, json={"content": "gate code 4411", "expires_at": soon})).json()
        with anyio.fail_after(10):
            while await _listed(c):  # listed until it expires
                await anyio.sleep(0.1)
        await anyio.sleep(0.3)  # a sweep would have run by now
        assert (await c.get(f"{API}/{made['id']}")).status_code == 200  # but not deleted
        assert await app.state.db.memory.sweep_expired() == 1


async def test_a_failed_sweep_is_logged_and_the_next_one_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []

    class Flaky:
        async def sweep_expired(self) -> int:
            calls.append(1)
            if len(calls) == 1:
                raise StorageError("database error: the server is away")
            return 2

    db: Any = type("Store", (), {"memory": Flaky()})()
    with caplog.at_level("WARNING", logger="agentkeep.api.housekeeping"):
        assert await sweep_logged(db) == 0
    assert "deleting expired memories failed" in caplog.text
    assert await sweep_logged(db) == 2
