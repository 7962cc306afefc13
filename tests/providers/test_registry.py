"""Providers by name: one instance per settings object, unknown names refused, closing."""

from __future__ import annotations

import pytest

from agentkeep.config import Settings
from agentkeep.errors import ValidationError
from agentkeep.providers import PROVIDER_NAMES, Token, close_providers, get_provider
from agentkeep.providers.echo import EchoProvider
from agentkeep.providers.openai import OpenAIProvider, resolve_endpoint
from providers.fake_openai import FakeOpenAI
from providers.helpers import ask, make_settings, run

pytestmark = pytest.mark.anyio


def test_names() -> None:
    assert PROVIDER_NAMES == ("echo", "openai", "adk")


def test_unknown_name_is_a_validation_error_listing_the_choices() -> None:
    with pytest.raises(
        ValidationError, match=r"unknown provider 'claude'; choose one of: echo, openai"
    ) as caught:
        get_provider("claude", Settings(database_url="memory"))
    assert caught.value.field == "provider"


async def test_one_instance_per_settings_object() -> None:
    settings, other = Settings(database_url="memory"), Settings(database_url="memory")
    echo = get_provider("echo", settings)
    assert isinstance(echo, EchoProvider)
    assert get_provider("echo", settings) is echo
    assert get_provider("echo", other) is not echo
    assert isinstance(get_provider("openai", settings), OpenAIProvider)
    await close_providers()
    assert get_provider("echo", settings) is not echo  # forgotten once closed
    await close_providers()


async def test_close_providers_closes_the_openai_clients(openai_server: FakeOpenAI) -> None:
    settings, other = make_settings(openai_server), make_settings(openai_server)
    provider = get_provider("openai", settings)
    assert isinstance(provider, OpenAIProvider)
    assert await run(provider, ask()) == [Token("ok")]
    client = provider.client(resolve_endpoint(ask(), settings))
    untouched = get_provider("echo", other)

    await close_providers(settings)  # only this settings object's providers
    assert client.is_closed()
    assert get_provider("openai", settings) is not provider
    assert get_provider("echo", other) is untouched
    await close_providers()


def test_an_agent_may_name_exactly_the_providers_that_are_built() -> None:
    from agentkeep.providers import _FACTORIES

    assert tuple(_FACTORIES) == PROVIDER_NAMES
