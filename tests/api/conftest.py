"""API tests: ``create_app(settings)`` driven through ``httpx.AsyncClient`` on every backend.

The app's lifespan runs (the store opens and closes as it does under uvicorn); requests go through
the ASGI interface in process, so a test sees exactly what a client would, without a socket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI

from agentkeep import Settings
from agentkeep.api import create_app
from servers import serve_app


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app, started, and a client of it (for tests that also use the app's own store)."""
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c,
    ):
        yield app, c


@pytest.fixture
def client(served: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return served[1]


@pytest.fixture
def live_app(settings: Settings) -> Iterator[tuple[FastAPI, str]]:
    """The app served by uvicorn on a free loopback port, in a thread: for what needs a real
    socket (tokens arriving while a reply streams, a client hanging up mid-stream)."""
    app = create_app(settings)
    with serve_app(app) as url:
        yield app, url
