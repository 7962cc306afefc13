"""Provider tests: the fake OpenAI-compatible server (one per session, reset for each test) and an
``openai`` provider pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from agentkeep.providers.openai import OpenAIProvider
from providers.fake_openai import FakeOpenAI, serve
from providers.helpers import make_settings


@pytest.fixture(scope="session")
def openai_server_session() -> Iterator[FakeOpenAI]:
    with serve(FakeOpenAI()) as fake:
        yield fake


@pytest.fixture
def openai_server(openai_server_session: FakeOpenAI) -> FakeOpenAI:
    """The fake server with no script and nothing received yet."""
    openai_server_session.reset()
    return openai_server_session


@pytest.fixture
async def provider(openai_server: FakeOpenAI) -> AsyncIterator[OpenAIProvider]:
    """An ``openai`` provider whose settings point at the fake server (timeout 5 s)."""
    made = OpenAIProvider(make_settings(openai_server))
    yield made
    await made.aclose()
