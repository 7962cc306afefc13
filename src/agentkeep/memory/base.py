"""What every embedder promises, and the checks that hold each one to it.

An embedder turns texts into vectors whose cosine similarity says how alike the texts are. Every
vector it returns has the embedder's ``dimension``, is finite and is never all zeros (a stored
embedding needs a direction): a text with nothing to embed (empty, whitespace, punctuation only)
gets :func:`unit_vector`, the same fixed direction for all of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

from agentkeep.errors import AgentkeepError, ValidationError


class Embedder(Protocol):
    """Computes embeddings. Synchronous: async callers run it in a worker thread.

    Not ``runtime_checkable`` on purpose: an ``isinstance`` check reads every member, and
    reading an endpoint's ``dimension`` may call the endpoint.
    """

    @property
    def name(self) -> str:
        """Recorded with every stored embedding, e.g. ``hash-384`` or ``all-MiniLM-L6-v2``."""
        ...

    @property
    def dimension(self) -> int:
        """The length of every vector :meth:`embed` returns."""
        ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order; batched internally."""
        ...


class EmbedderError(AgentkeepError):
    """The embedder could not be loaded, or its endpoint failed. The message says why and how
    to fix it, and never holds an API key."""

    code = "embedder_unavailable"
    exit_code = 7


FLOAT32_MAX = 3.4028234663852886e38
"""Embeddings are stored as float32."""


def unit_vector(dimension: int) -> list[float]:
    """The fixed direction of a text with nothing to embed: a 1 in the first place."""
    vector = [0.0] * dimension
    vector[0] = 1.0
    return vector


def check_texts(texts: Sequence[str]) -> None:
    """Refuse what is not a sequence of strings (a bare string would embed its characters)."""
    if isinstance(texts, str | bytes):
        raise ValidationError("texts must be a list of strings, not one string", field="texts")
    for position, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValidationError(
                f"texts[{position}] is {type(text).__name__}, not a string", field="texts"
            )


def batches(texts: Sequence[str], size: int) -> list[Sequence[str]]:
    """``texts`` cut into consecutive runs of at most ``size``."""
    return [texts[start : start + size] for start in range(0, len(texts), size)]


def vector_problem(vector: Sequence[float], dimension: int) -> str | None:
    """Why ``vector`` cannot be stored as an embedding of ``dimension``, or ``None``."""
    if len(vector) != dimension:
        return f"has {len(vector)} numbers, not {dimension}"
    if not all(math.isfinite(x) for x in vector):
        return "holds a number that is not finite (NaN or infinity)"
    if any(abs(x) > FLOAT32_MAX for x in vector):
        return "holds a number beyond float32's range (about 3.4e38)"
    if not any(vector):
        return "is all zeros"
    return None
