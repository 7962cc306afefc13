"""The ``openai`` embedder: any OpenAI-compatible ``POST {base}/embeddings`` endpoint.

OpenAI itself, Ollama, vLLM, llama.cpp's server, LM Studio, text-embeddings-inference: each
batch of ``embedding_batch_size`` texts is one request ``{"model", "input": [...]}``, and the
answer's ``data[*].embedding`` are put back in order by their ``index``. Blank texts are not sent
(OpenAI refuses an empty input): they get the fixed unit vector, like every embedder's.

The dimension is whatever the model answers with: learned from the first answer (or, when asked
for before any text was embedded, from one probe request) and then held to — a later answer of
another length is an error, since vectors of different lengths cannot be compared.

Every failure — unreachable server, timeout, HTTP error, a body that is not the expected JSON, a
wrong number of vectors, a number that is not finite, an all-zero vector — is an
:class:`EmbedderError` that names the endpoint, the status and the server's own message. The
key is never in it: the message is scrubbed of it even when a server echoes it back.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from agentkeep.memory.base import EmbedderError, batches, check_texts, unit_vector, vector_problem

DEFAULT_BASE_URL = "https://api.openai.com/v1"
PROBE = "dimension probe"
MESSAGE_LIMIT = 300


def _safe_url(url: str) -> str:
    """``url`` without user info (a password may sit there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _server_message(response: httpx.Response) -> str:
    """The server's own explanation: OpenAI's ``error.message``, else the body's start."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error", body.get("detail", body.get("message")))
        if isinstance(error, dict):
            error = error.get("message", error)
        if error is not None:
            return str(error)[:MESSAGE_LIMIT]
    return response.text.strip()[:MESSAGE_LIMIT] or response.reason_phrase


class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible endpoint; see the module docstring."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        model: str,
        batch_size: int,
        timeout: float,
    ) -> None:
        self.name = f"openai:{model}"
        self.model = model
        self.batch_size = batch_size
        self.base_url = _safe_url(base_url.rstrip("/"))
        self.url = self.base_url + "/embeddings"
        api_key = api_key.strip() if api_key else None
        if api_key and not (api_key.isascii() and api_key.isprintable() and " " not in api_key):
            raise EmbedderError(
                "the embedding API key holds a character an HTTP header cannot carry (a space, "
                "a control character or a non-ASCII letter): check AGENTKEEP_EMBEDDING_API_KEY",
                field="embedding_api_key",
            )
        self._key = api_key
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + "/", headers=headers, timeout=timeout
        )
        self._timeout = timeout
        self._dimension: int | None = None
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int:
        """The model's dimension; asks the endpoint once if no text was embedded yet."""
        if self._dimension is None:
            self._request([PROBE])
        assert self._dimension is not None  # set by every successful request
        return self._dimension

    @property
    def description(self) -> str:
        known = f"{self._dimension} dimensions" if self._dimension else "dimension learned on use"
        return f"{self.name} at {self.base_url} ({known})"

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order, one request per ``batch_size`` non-blank texts."""
        check_texts(texts)
        sent = [position for position, text in enumerate(texts) if text.strip()]
        vectors: list[list[float]] = []
        for batch in batches([texts[position] for position in sent], self.batch_size):
            vectors += self._request(batch)
        if len(sent) == len(texts):
            return vectors
        blank = unit_vector(self.dimension)
        result = [blank] * len(texts)
        for position, vector in zip(sent, vectors, strict=True):
            result[position] = vector
        return [list(vector) for vector in result]

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def _fail(self, message: str) -> EmbedderError:
        text = f"the embeddings endpoint {self.url} {message}"
        if self._key:
            text = text.replace(self._key, "***")
        return EmbedderError(text, field="embedder")

    def _request(self, batch: Sequence[str]) -> list[list[float]]:
        try:
            response = self._client.post(
                "embeddings", json={"model": self.model, "input": list(batch)}
            )
        except httpx.TimeoutException as exc:
            raise self._fail(f"did not answer within {self._timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise self._fail(
                f"could not be reached ({type(exc).__name__}: {exc}); is the server running "
                "at AGENTKEEP_EMBEDDING_BASE_URL?"
            ) from exc
        if response.status_code != httpx.codes.OK:
            hint = ""
            if response.status_code in {401, 403}:
                hint = " (check AGENTKEEP_EMBEDDING_API_KEY)"
            elif response.status_code == 404:
                hint = " (check AGENTKEEP_EMBEDDING_BASE_URL and AGENTKEEP_EMBEDDING_MODEL)"
            raise self._fail(f"answered {response.status_code}: {_server_message(response)}{hint}")
        return self._vectors(response, len(batch))

    def _vectors(self, response: httpx.Response, expected: int) -> list[list[float]]:
        try:
            body: Any = response.json()
        except ValueError as exc:
            raise self._fail(f"answered with a body that is not JSON: {exc}") from exc
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise self._fail('answered without a "data" list of embeddings')
        if len(data) != expected:
            raise self._fail(f"answered {len(data)} embeddings for {expected} texts")
        ordered: list[list[float] | None] = [None] * expected
        for item in data:
            index = item.get("index") if isinstance(item, dict) else None
            vector = item.get("embedding") if isinstance(item, dict) else None
            if type(index) is not int or not 0 <= index < expected or ordered[index] is not None:
                raise self._fail(f"answered an embedding with a bad index ({index!r})")
            if not isinstance(vector, list) or not vector:
                raise self._fail(f"answered embedding {index} that is not a list of numbers")
            if not all(type(x) in {int, float} for x in vector):
                raise self._fail(f"answered embedding {index} that is not a list of numbers")
            try:
                ordered[index] = [float(x) for x in vector]
            except OverflowError:  # an integer beyond any float
                raise self._fail(f"answered embedding {index} with a number too large") from None
        vectors = [vector for vector in ordered if vector is not None]
        dimension = self._dimension or len(vectors[0])
        for index, vector in enumerate(vectors):
            problem = vector_problem(vector, dimension)
            if problem is not None:
                raise self._fail(f"answered embedding {index} that {problem}")
        with self._lock:  # the first good answer decides, and concurrent ones agree with it
            if self._dimension is None:
                self._dimension = dimension
        return vectors
