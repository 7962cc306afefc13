"""The openai embedder against a real HTTP server on loopback, scripted per test.

The server answers ``POST /v1/embeddings`` like OpenAI: by default with a vector derived from
each text (so order can be checked), listed in reverse order (so the ``index`` must be used).
A test may script the next answers instead: a status and a raw body.
"""

from __future__ import annotations

import json
import math
import socket
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from agentkeep import Settings
from agentkeep.memory import EmbedderError, describe, embedder_from
from agentkeep.memory.openai import OpenAIEmbedder

KEY = "sk-test-0123456789abcdef-secret"
DIMENSION = 5


def vector_of(text: str) -> list[float]:
    """What the fake server answers for ``text``: its length in front, then ones."""
    return [float(len(text)), 1.0, 1.0, 1.0, 1.0][:DIMENSION]


@dataclass
class FakeEmbeddings:
    scripted: deque[tuple[int, str]] = field(default_factory=deque)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    base_url: str = ""

    def script(self, status: int, body: object) -> None:
        self.scripted.append((status, body if isinstance(body, str) else json.dumps(body)))

    def answer(self, body: dict[str, Any]) -> tuple[int, str]:
        if self.scripted:
            return self.scripted.popleft()
        data = [
            {"object": "embedding", "index": i, "embedding": vector_of(text)}
            for i, text in enumerate(body["input"])
        ]
        return 200, json.dumps({"object": "list", "data": data[::-1], "model": body["model"]})


@pytest.fixture(scope="module")
def server() -> Iterator[FakeEmbeddings]:
    """One server for the module (stopping one takes half a second)."""
    state = FakeEmbeddings()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length))
            state.requests.append(body)
            state.headers.append(dict(self.headers))
            status, text = (404, '{"error": {"message": "no such route"}}')
            if self.path == "/v1/embeddings":
                status, text = state.answer(body)
            payload = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def fake(server: FakeEmbeddings) -> FakeEmbeddings:
    """The server, with nothing scripted and nothing received yet."""
    server.scripted.clear()
    server.requests.clear()
    server.headers.clear()
    return server


def embedder(base_url: str, *, batch_size: int = 64, key: str | None = KEY) -> OpenAIEmbedder:
    return OpenAIEmbedder(
        base_url=base_url,
        api_key=key,
        model="text-embedding-3-small",
        batch_size=batch_size,
        timeout=5.0,
    )


class TestOpenAIEmbedder:
    def test_embeds_in_order_in_batches_of_the_batch_size(self, fake: FakeEmbeddings) -> None:
        texts = [f"text number {i}" + "x" * i for i in range(7)]
        vectors = embedder(fake.base_url, batch_size=3).embed(texts)
        assert vectors == [vector_of(text) for text in texts]
        assert [len(request["input"]) for request in fake.requests] == [3, 3, 1]
        assert [text for request in fake.requests for text in request["input"]] == texts
        assert {request["model"] for request in fake.requests} == {"text-embedding-3-small"}
        assert fake.headers[0]["Authorization"] == f"Bearer {KEY}"

    def test_the_dimension_is_learned_from_the_first_answer(self, fake: FakeEmbeddings) -> None:
        model = embedder(fake.base_url)
        model.embed(["hello"])
        assert model.dimension == DIMENSION
        assert len(fake.requests) == 1

    def test_the_dimension_asked_first_costs_one_probe(self, fake: FakeEmbeddings) -> None:
        model = embedder(fake.base_url)
        assert model.dimension == DIMENSION
        assert model.dimension == DIMENSION
        assert len(fake.requests) == 1

    def test_blank_texts_are_not_sent_and_get_the_unit_vector(self, fake: FakeEmbeddings) -> None:
        vectors = embedder(fake.base_url).embed(["", "hi", "  \n"])
        assert fake.requests[0]["input"] == ["hi"]
        assert vectors == [[1.0, 0, 0, 0, 0], vector_of("hi"), [1.0, 0, 0, 0, 0]]

    def test_nothing_to_embed_sends_nothing(self, fake: FakeEmbeddings) -> None:
        assert embedder(fake.base_url).embed([]) == []
        assert fake.requests == []

    def test_no_key_sends_no_authorization(self, fake: FakeEmbeddings) -> None:
        embedder(fake.base_url, key=None).embed(["hi"])
        assert "Authorization" not in fake.headers[0]

    def test_a_later_answer_of_another_length_is_refused(self, fake: FakeEmbeddings) -> None:
        model = embedder(fake.base_url)
        model.embed(["hi"])
        fake.script(200, {"data": [{"index": 0, "embedding": [1.0, 2.0]}]})
        with pytest.raises(EmbedderError, match="has 2 numbers, not 5"):
            model.embed(["again"])

    def test_a_bare_string_is_refused(self, fake: FakeEmbeddings) -> None:
        with pytest.raises(ValueError, match="not one string"):
            embedder(fake.base_url).embed("hello")


class TestOpenAIEmbedderFailures:
    @pytest.mark.parametrize(
        ("status", "body", "expected"),
        [
            (401, {"error": {"message": "Incorrect API key"}}, r"401: Incorrect API key .*KEY"),
            (404, {"error": {"message": "model not found"}}, r"404: model not found .*MODEL"),
            (429, {"error": {"message": "rate limited"}}, "429: rate limited"),
            (500, "upstream exploded", "500: upstream exploded"),
            (503, {"detail": "loading"}, "503: loading"),
        ],
    )
    def test_an_error_status_names_the_status_and_the_server_message(
        self, fake: FakeEmbeddings, status: int, body: object, expected: str
    ) -> None:
        fake.script(status, body)
        with pytest.raises(EmbedderError, match=expected) as caught:
            embedder(fake.base_url).embed(["hi"])
        assert caught.value.code == "embedder_unavailable"
        assert fake.base_url in caught.value.message

    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            ("not json at all", "not JSON"),
            ([1, 2, 3], '"data" list'),
            ({"data": "nope"}, '"data" list'),
            ({"data": []}, "0 embeddings for 1 texts"),
            ({"data": [{"index": 0, "embedding": [1.0]}] * 2}, "2 embeddings for 1 texts"),
            ({"data": [{"index": 3, "embedding": [1.0]}]}, "bad index"),
            ({"data": [{"index": "0", "embedding": [1.0]}]}, "bad index"),
            ({"data": [{"embedding": [1.0]}]}, "bad index"),
            ({"data": [{"index": 0, "embedding": "AAAA"}]}, "not a list of numbers"),
            ({"data": [{"index": 0, "embedding": []}]}, "not a list of numbers"),
            ({"data": [{"index": 0, "embedding": [1.0, "2"]}]}, "not a list of numbers"),
            ({"data": [{"index": 0, "embedding": [True, 1.0]}]}, "not a list of numbers"),
            ('{"data": [{"index": 0, "embedding": [1.0, NaN]}]}', "not finite"),
            ('{"data": [{"index": 0, "embedding": [1.0, 1e999]}]}', "not finite"),
            ({"data": [{"index": 0, "embedding": [1.0, 1e39]}]}, "float32"),
            ({"data": [{"index": 0, "embedding": [1.0, 10**400]}]}, "too large"),
            ({"data": [{"index": 0, "embedding": [0.0, 0.0]}]}, "all zeros"),
        ],
    )
    def test_a_malformed_answer_is_an_embedder_error(
        self, fake: FakeEmbeddings, body: object, expected: str
    ) -> None:
        fake.script(200, body)
        with pytest.raises(EmbedderError, match=expected):
            embedder(fake.base_url).embed(["hi"])

    def test_a_wrong_count_in_a_later_batch_fails_the_call(self, fake: FakeEmbeddings) -> None:
        model = embedder(fake.base_url, batch_size=2)
        fake.script(200, {"data": [{"index": i, "embedding": [1.0] * 5} for i in range(2)]})
        fake.script(200, {"data": [{"index": 0, "embedding": [1.0] * 5}]})
        with pytest.raises(EmbedderError, match="1 embeddings for 2 texts"):
            model.embed(["a", "b", "c", "d"])

    def test_a_refused_connection_says_where_and_what_to_check(self) -> None:
        with socket.socket() as sock:  # a port that was free a moment ago and has no listener
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with pytest.raises(EmbedderError, match="could not be reached") as caught:
            embedder(f"http://127.0.0.1:{port}/v1").embed(["hi"])
        assert f"127.0.0.1:{port}/v1/embeddings" in caught.value.message
        assert "AGENTKEEP_EMBEDDING_BASE_URL" in caught.value.message

    def test_a_server_that_does_not_answer_in_time_is_an_error(self) -> None:
        with socket.socket() as listener:  # accepts connections, never answers
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            port = listener.getsockname()[1]
            model = OpenAIEmbedder(
                base_url=f"http://127.0.0.1:{port}/v1",
                api_key=KEY,
                model="m",
                batch_size=8,
                timeout=0.3,
            )
            with pytest.raises(EmbedderError, match=r"did not answer within 0.3 s"):
                model.embed(["hi"])

    def test_the_key_is_never_in_an_error_even_when_the_server_echoes_it(
        self, fake: FakeEmbeddings
    ) -> None:
        fake.script(401, {"error": {"message": f"key {KEY} is revoked"}})
        fake.script(200, f"garbage {KEY}")
        model = embedder(fake.base_url)
        messages = []
        for _ in range(2):
            with pytest.raises(EmbedderError) as caught:
                model.embed(["hi"])
            messages.append(str(caught.value))
        assert "key *** is revoked" in messages[0]
        assert all(KEY not in message for message in messages)

    @pytest.mark.parametrize("key", ["sk-abc\ndef", "sk-ab cd", "sk-clé", "sk-\x00"])
    def test_a_key_no_header_can_carry_is_refused_without_showing_it(self, key: str) -> None:
        with pytest.raises(EmbedderError, match="AGENTKEEP_EMBEDDING_API_KEY") as caught:
            embedder("http://127.0.0.1:9/v1", key=key)
        assert caught.value.field == "embedding_api_key"
        assert "sk-" not in caught.value.message

    def test_surrounding_whitespace_in_the_key_is_ignored(self, fake: FakeEmbeddings) -> None:
        embedder(fake.base_url, key=f"  {KEY}\n").embed(["hi"])
        assert fake.headers[0]["Authorization"] == f"Bearer {KEY}"

    def test_user_info_in_the_base_url_is_not_shown(self, fake: FakeEmbeddings) -> None:
        url = fake.base_url.replace("http://", "http://user:hunter2@")
        fake.script(500, "boom")
        with pytest.raises(EmbedderError) as caught:
            embedder(url).embed(["hi"])
        assert "hunter2" not in caught.value.message


class TestOpenAIFromSettings:
    def test_settings_choose_the_endpoint_model_and_batch_size(self, fake: FakeEmbeddings) -> None:
        settings = Settings(
            embedder="openai",
            embedding_base_url=fake.base_url,
            embedding_api_key=KEY,
            embedding_model="nomic-embed-text",
            embedding_batch_size=2,
        )
        model = embedder_from(settings)
        assert model.name == "openai:nomic-embed-text"
        assert model.embed(["a", "b", "c"]) == [vector_of(t) for t in "abc"]
        assert [request["input"] for request in fake.requests] == [["a", "b"], ["c"]]
        assert fake.requests[0]["model"] == "nomic-embed-text"
        assert embedder_from(settings) is model
        assert describe(model) == f"openai:nomic-embed-text at {fake.base_url} (5 dimensions)"

    def test_the_chat_providers_endpoint_and_key_are_the_fallback(
        self, fake: FakeEmbeddings
    ) -> None:
        settings = Settings(embedder="openai", openai_base_url=fake.base_url, openai_api_key=KEY)
        model = embedder_from(settings)
        assert "dimension learned on use" in describe(model)
        assert not fake.requests  # describing it asks nothing
        model.embed(["hello"])
        assert fake.headers[0]["Authorization"] == f"Bearer {KEY}"
        assert math.isclose(model.embed(["hello"])[0][0], 5.0)
