"""The minilm embedder: all-MiniLM-L6-v2 from the ``embeddings`` extra, run here, offline.

Without the extra these tests are skipped, except under ``CI=true``, where they fail (``make
test`` installs it). The model is loaded once for the module.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from agentkeep import Settings
from agentkeep.memory import embedder_from
from agentkeep.memory.hashing import HashEmbedder
from agentkeep.memory.minilm import MiniLMEmbedder, missing_packages
from agentkeep.models.memory import MemoryCreate
from recall_set import MEMORIES, QUERIES, recall_at


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    missing = missing_packages()
    if missing:
        reason = f"the embeddings extra is not installed ({', '.join(missing)}; make test does it)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"{reason}: CI requires it")
        pytest.skip(reason)
    embedder = MiniLMEmbedder(batch_size=8)
    embedder.embed(["warm up"])  # loads the model
    return embedder


OFFLINE_RUN = """
import json, socket, sys, threading

def refuse(*args, **kwargs):
    raise OSError("network access attempted: " + repr(args[:2]))

socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse

from agentkeep import Settings
from agentkeep.memory import embedder_from
from agentkeep.memory import minilm

embedder = embedder_from(Settings(embedder="minilm"))
ready = threading.Barrier(4)
models = []

def first_call():
    ready.wait()
    models.append(id(minilm._load()))

threads = [threading.Thread(target=first_call) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
vectors = embedder.embed(["The user's daughter is called Alice", ""])
print(json.dumps({"models": len(set(models)), "calls": len(models), "vectors": vectors}))
"""


@pytest.mark.slow
@pytest.mark.usefixtures("minilm")
def test_the_model_loads_once_in_a_fresh_process_with_no_network() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("HF_")}
    env.pop("TRANSFORMERS_OFFLINE", None)
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    env["HF_HOME"] = "/nonexistent/hf-home"  # no cache to fall back on either
    run = subprocess.run(
        [sys.executable, "-c", OFFLINE_RUN],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.splitlines()[-1])
    assert (result["models"], result["calls"]) == (1, 4)  # four first calls, one load
    for vector in result["vectors"]:
        assert len(vector) == 384
        assert math.isclose(float(np.linalg.norm(vector)), 1.0, rel_tol=1e-5)
    assert "Loading weights" not in run.stderr  # no progress bars in a server's log


class TestMiniLM:
    def test_vectors_have_384_unit_length_finite_numbers(self, minilm: MiniLMEmbedder) -> None:
        vectors = minilm.embed(["hello", "Купил кофе за 300 рублей", "我喜欢喝咖啡 🎉", "", " "])
        for vector in vectors:
            assert len(vector) == 384
            assert all(math.isfinite(x) for x in vector)
            assert math.isclose(float(np.linalg.norm(vector)), 1.0, rel_tol=1e-5)
            MemoryCreate(content="x", embedding=vector)  # storable

    def test_batches_give_what_single_texts_give_in_order(self, minilm: MiniLMEmbedder) -> None:
        texts = MEMORIES[:19]  # three batches of 8, the last one short
        together = np.array(minilm.embed(texts))
        alone = np.array([minilm.embed([text])[0] for text in texts])
        assert np.allclose(together, alone, atol=1e-5)
        assert minilm.embed([]) == []

    def test_settings_choose_it_and_share_the_loaded_model(self, minilm: MiniLMEmbedder) -> None:
        chosen = embedder_from(Settings(embedder="minilm", embedding_batch_size=8))
        assert chosen.name == "all-MiniLM-L6-v2"
        assert np.allclose(chosen.embed(["coffee"]), minilm.embed(["coffee"]), atol=1e-6)

    def test_it_finds_by_meaning_what_hashing_cannot(self, minilm: MiniLMEmbedder) -> None:
        hashed = HashEmbedder(384)
        recall = {
            name: recall_at(
                5, np.array(embedder.embed(MEMORIES)), np.array(embedder.embed(list(QUERIES)))
            )
            for name, embedder in (("minilm", minilm), ("hash", hashed))
        }
        assert recall["minilm"] >= 0.9, recall
        assert recall["minilm"] > recall["hash"] + 0.3, recall
