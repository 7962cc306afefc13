"""Page tests: ``create_app(settings)`` driven through ``httpx.AsyncClient`` on every backend."""

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
