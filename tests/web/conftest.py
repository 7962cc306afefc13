"""Page tests: ``create_app(settings)`` driven through ``httpx.AsyncClient`` on every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from agentkeep import Settings
from web.helpers import served, with_key


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with served(settings) as c:
        yield c


@pytest.fixture
async def keyed(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client on a server whose API needs a key (``helpers.KEY``), not signed in."""
    async with served(with_key(settings)) as c:
        yield c
