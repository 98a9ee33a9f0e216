"""Help-centre embeddings: the ONNX encoder gives sentence-transformers' vectors without loading torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from gateway.settings import PROJECT_ROOT
from knowledge_base.embedder import SentenceEmbedder, default_model_path, max_sequence_length, mean_pooled_model

TEXTS = ["how long do refunds take?", "", "Ünïcode — 配送 📦", "shipping " * 400]


def test_the_onnx_encoder_gives_the_vectors_sentence_transformers_gives() -> None:
    from sentence_transformers import SentenceTransformer

    embedder = SentenceEmbedder()
    vectors = embedder.embed(TEXTS)
    assert embedder._encoder() is not None  # the packaged MiniLM runs in ONNX Runtime
    expected = SentenceTransformer(embedder.model_path).encode(TEXTS, normalize_embeddings=True)
    assert vectors.shape == (len(TEXTS), embedder.dimension) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # The long text is truncated where sentence-transformers truncates it (256 tokens).
    assert float((vectors * expected).sum(axis=1).min()) > 0.9999


def test_answering_a_question_does_not_import_torch() -> None:
    code = ("import sys; from knowledge_base.embedder import SentenceEmbedder; "
            "SentenceEmbedder().embed(['where is my parcel?']); print('torch' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "HF_HUB_OFFLINE": "1"}
    SentenceEmbedder().embed(["warm the export cache"])  # the export itself needs torch, once per machine
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"


def _folder(tmp_path: Path, modules: list[str], pooling: dict[str, bool]) -> Path:
    folder = tmp_path / "model"
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "modules.json").write_text(json.dumps(
        [{"idx": i, "path": "1_Pooling" if kind == "Pooling" else "", "type": f"sentence_transformers.models.{kind}"}
         for i, kind in enumerate(modules)]))
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    return folder


def test_only_mean_pooled_models_take_the_onnx_path(tmp_path: Path) -> None:
    assert mean_pooled_model(Path(default_model_path()))
    mean = {"pooling_mode_mean_tokens": True, "pooling_mode_cls_token": False}
    assert mean_pooled_model(_folder(tmp_path / "a", ["Transformer", "Pooling"], mean))
    # A dense layer, CLS pooling or an unknown folder keep sentence-transformers (torch).
    assert not mean_pooled_model(_folder(tmp_path / "b", ["Transformer", "Pooling", "Dense", "Normalize"], mean))
    assert not mean_pooled_model(_folder(tmp_path / "c", ["Transformer", "Pooling"],
                                         {"pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}))
    assert not mean_pooled_model(tmp_path / "missing")
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "config.json").write_text(json.dumps({"max_position_embeddings": 128}))
    assert mean_pooled_model(plain) and max_sequence_length(plain) == 128
    assert max_sequence_length(Path(default_model_path())) == 256
