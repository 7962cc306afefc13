"""The ``hash`` embedder: lexical feature hashing, built in, no model and no network.

A text is normalised (NFKC, casefolded) and cut into tokens: runs of word characters (``\\w+``,
any script) and single symbols such as emoji. Each distinct token contributes

- itself, with weight 1, and
- its character 3-grams (of the token padded as ``<token>``), together weighing three quarters
  of the token (each far less), so "coffee" and "coffees" point partly the same way,

all scaled by the token's sublinear term frequency ``1 + ln(count)``. Each feature lands in one
of ``dimension`` buckets with a sign (+1 or -1), both taken from its BLAKE2b hash: collisions
cancel on average instead of piling up, and the result is the same in every process (Python's
own ``hash()`` is salted per process). The vector is L2-normalised, so a dot product is the
cosine similarity.

It matches shared words and word pieces, not meaning: "my kid's name" finds "the user's
daughter is called Alice" only through a model (``minilm`` or ``openai``).
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from hashlib import blake2b

import numpy as np
import regex

from agentkeep.memory.base import check_texts, unit_vector

TOKEN = regex.compile(r"\w+|\p{So}")
"""Word-character runs, and each symbol (emoji, pictographs) on its own."""

GRAM_WEIGHT = 0.75
"""The L2 weight of a token's 3-grams together, relative to the token itself."""


def _bucket(feature: str, dimension: int) -> tuple[int, float]:
    """The bucket and sign of one feature: stable across processes and machines."""
    digest = blake2b(feature.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    number = int.from_bytes(digest, "little")
    return (number >> 1) % dimension, (1.0 if number & 1 else -1.0)


@lru_cache(maxsize=1 << 16)
def _gram(gram: str, dimension: int) -> tuple[int, float]:
    return _bucket("g:" + gram, dimension)


@lru_cache(maxsize=1 << 14)
def _token_features(token: str, dimension: int) -> tuple[tuple[int, float], ...]:
    """Where one occurrence of ``token`` adds to the vector, and how much. Cached, as are the
    3-grams: a vocabulary is small next to the texts that use it."""
    padded = f"<{token}>"
    grams = {padded[i : i + 3] for i in range(max(1, len(padded) - 2))}
    weight = GRAM_WEIGHT / math.sqrt(len(grams))
    features = [_bucket("w:" + token, dimension)]
    for gram in grams:
        bucket, sign = _gram(gram, dimension)
        features.append((bucket, sign * weight))
    return tuple(features)


class HashEmbedder:
    """Feature hashing of words and their 3-grams; see the module docstring."""

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension
        self.name = f"hash-{dimension}"
        self.description = f"{self.name} (built in, lexical: matches shared words, not meaning)"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One L2-normalised vector per text, in order."""
        check_texts(texts)
        return [self._one(text) for text in texts]

    def _one(self, text: str) -> list[float]:
        counts = Counter(TOKEN.findall(unicodedata.normalize("NFKC", text).casefold()))
        buckets: list[int] = []
        weights: list[float] = []
        for token, count in counts.items():
            tf = 1.0 + math.log(count)
            for bucket, weight in _token_features(token, self.dimension):
                buckets.append(bucket)
                weights.append(weight * tf)
        vector = np.bincount(buckets, weights=weights, minlength=self.dimension)
        norm = float(np.linalg.norm(vector))
        # nothing to embed, or every feature cancelled out (possible at a tiny dimension)
        if not norm > 1e-12:
            return unit_vector(self.dimension)
        result: list[float] = (vector / norm).tolist()
        return result
