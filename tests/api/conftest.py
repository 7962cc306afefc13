"""API tests: ``create_app(settings)`` driven through ``httpx.AsyncClient`` on every backend.

The app's lifespan runs (the store opens and closes as it does under uvicorn); requests go through
the ASGI interface in process, so a test sees exactly what a client would, without a socket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from agentkeep import Settings
from agentkeep.api import create_app


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c,
    ):
        yield c
