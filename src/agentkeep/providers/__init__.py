"""LLM providers by name: ``echo`` (offline, deterministic), ``openai`` (any compatible endpoint),
``adk`` (the agent run as a Google ADK ``LlmAgent``: ``agentkeep.integrations.adk.runtime``).

``get_provider(name, settings)`` returns the provider an agent names (``settings.provider`` when it
names none — the caller decides that). Instances are cached per ``Settings`` object, so the
``openai`` provider's pooled HTTP clients are reused across calls; ``close_providers()`` closes
them and is what the app calls on shutdown. The ``openai`` SDK is imported only when that
provider is first asked for: importing it takes about a second, which the offline default and
the CLI should not pay; so is Google ADK for the ``adk`` provider (the ``adk`` extra).
"""

from __future__ import annotations

from collections.abc import Callable

from agentkeep.config import Settings
from agentkeep.errors import ValidationError
from agentkeep.models.config import PROVIDER_NAMES
from agentkeep.providers.base import (
    ChatMessage,
    ChatRole,
    CompletionRequest,
    Provider,
    ProviderError,
    ProviderEvent,
    ProviderTimeoutError,
    Thinking,
    Token,
    ToolCall,
    ToolCallRequest,
    ToolSpec,
    Usage,
)
from agentkeep.providers.echo import EchoProvider

__all__ = [
    "PROVIDER_NAMES",
    "ChatMessage",
    "ChatRole",
    "CompletionRequest",
    "Provider",
    "ProviderError",
    "ProviderEvent",
    "ProviderTimeoutError",
    "Thinking",
    "Token",
    "ToolCall",
    "ToolCallRequest",
    "ToolSpec",
    "Usage",
    "close_providers",
    "get_provider",
]


def _echo(settings: Settings) -> Provider:
    return EchoProvider()


def _openai(settings: Settings) -> Provider:
    from agentkeep.providers.openai import OpenAIProvider  # noqa: PLC0415 (see the docstring)

    return OpenAIProvider(settings)


def _adk(settings: Settings) -> Provider:
    try:
        from agentkeep.integrations.adk.runtime import AdkProvider  # noqa: PLC0415 (as above)
    except ImportError as exc:
        raise ProviderError(
            "the adk provider needs Google ADK: pip install 'agentkeep[adk]'", field="provider"
        ) from exc
    return AdkProvider(settings)


_FACTORIES: dict[str, Callable[[Settings], Provider]] = {
    "echo": _echo,
    "openai": _openai,
    "adk": _adk,
}

# keyed by the Settings object's id; the object is kept alongside so its id cannot be reused
_cache: dict[tuple[str, int], tuple[Settings, Provider]] = {}


def get_provider(name: str, settings: Settings) -> Provider:
    """The provider called ``name``, made once per ``settings`` object.

    Raises ``ValidationError`` (field ``provider``) for a name that is not a provider.
    """
    factory = _FACTORIES.get(name)
    if factory is None:
        choices = ", ".join(PROVIDER_NAMES)
        raise ValidationError(
            f"unknown provider {name!r}; choose one of: {choices}", field="provider"
        )
    key = (name, id(settings))
    cached = _cache.get(key)
    if cached is None or cached[0] is not settings:
        cached = _cache[key] = (settings, factory(settings))
    return cached[1]


async def close_providers(settings: Settings | None = None) -> None:
    """Close the providers made for ``settings`` (every one when ``None``) and forget them."""
    for key, (owner, provider) in list(_cache.items()):
        if settings is None or owner is settings:
            del _cache[key]
            aclose = getattr(provider, "aclose", None)
            if aclose is not None:
                await aclose()
