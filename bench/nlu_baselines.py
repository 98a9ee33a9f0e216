"""The NLU benchmark's baselines: frozen MiniLM + logistic regression, and Rasa's DIET."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.nlu_data import BenchSet, write_rasa_nlu
from bench.nlu_metrics import decide, oos_threshold, score, tradeoff
from bench.nlu_plans import TaskPlan

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CACHE = PROJECT_ROOT / "var" / "bench-cache"
RASA_PYTHON = PROJECT_ROOT / ".venv-rasa" / "bin" / "python"
RASA = PROJECT_ROOT / ".venv-rasa" / "bin" / "rasa"


def data_key(bench: BenchSet, extra: str) -> str:
    """Cache key of a task's data and a system's settings."""
    digest = hashlib.sha256(extra.encode())
    for group in (bench.train, bench.validation, bench.test):
        digest.update(json.dumps([[e.text, e.label] for e in group]).encode())
    return digest.hexdigest()[:16]


def run_frozen_lr(bench: BenchSet) -> dict[str, Any]:
    """Frozen all-MiniLM-L6-v2 sentence embeddings + logistic regression."""
    from sentence_transformers import SentenceTransformer
    from sklearn.linear_model import LogisticRegression

    from nlu_models.trainer import default_encoder_path

    started = time.perf_counter()
    encoder = SentenceTransformer(default_encoder_path(), device="cpu")
    embed = lambda exs: encoder.encode([e.text for e in exs], batch_size=64, normalize_embeddings=True)  # noqa: E731
    # Same data as the fine-tuned model: out-of-scope training queries form their own class.
    model = LogisticRegression(C=20.0, max_iter=3000, class_weight="balanced")
    model.fit(embed(bench.train), [e.label for e in bench.train])
    threshold = 0.0
    if bench.oos_label and bench.validation:
        val_probs = model.predict_proba(embed(bench.validation))
        gold = np.array([e.label for e in bench.validation])
        top = model.classes_[val_probs.argmax(1)]
        threshold = oos_threshold(gold, top, val_probs.max(1), bench.oos_label)
    probs = model.predict_proba(embed(bench.test))
    labels = model.classes_[probs.argmax(1)]
    test_top, test_gold = [str(l) for l in labels], [e.label for e in bench.test]
    predicted = decide(test_top, probs.max(1), threshold, bench.oos_label)
    result = score(predicted, test_gold, bench.oos_label)
    if bench.oos_label:
        result["tradeoff"] = tradeoff(np.where(labels == bench.oos_label, -np.inf, probs.max(1)), test_top,
                                      test_gold, bench.oos_label)
    result.update(train_seconds=round(time.perf_counter() - started, 1), oos_threshold=threshold)
    return result


DIET_CONFIG = """recipe: default.v1
language: en
assistant_id: bench
pipeline:
  - name: WhitespaceTokenizer
  - name: RegexFeaturizer
  - name: LexicalSyntacticFeaturizer
  - name: CountVectorsFeaturizer
  - name: CountVectorsFeaturizer
    analyzer: char_wb
    min_ngram: 1
    max_ngram: 4
  - name: DIETClassifier
    epochs: {epochs}
    random_seed: 13
policies: []
"""


def rasa_parse(model: Path, texts: list[str]) -> list[dict[str, Any]]:
    """Parse texts with a Rasa model archive in the Rasa interpreter."""
    probe = PROJECT_ROOT / "nlu_models" / "rasa_probe.py"
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "in.json", Path(tmp) / "out.json"
        inp.write_text(json.dumps(texts))
        subprocess.run([str(RASA_PYTHON), str(probe), "parse", str(model), str(inp), str(out)], check=True,
                       env=rasa_env(), stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())


def rasa_env() -> dict[str, str]:
    """Environment of every Rasa subprocess."""
    return {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "PYTHONPATH": str(PROJECT_ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}


def run_diet(bench: BenchSet, plan: TaskPlan, commit: str, earlier: dict[str, Any] | None = None) -> dict[str, Any]:
    """Rasa's default NLU pipeline (sparse features + DIET), cached by data hash and epochs.

    The cached result names the commit it was measured on, which the report shows when reused.
    ``earlier`` is the task's DIET result in the previous ``nlu.json``: when it was measured on the
    same data and settings (same key), a fresh checkout reuses it instead of spending most of an hour
    retraining DIET.
    """
    key = data_key(bench, f"diet-{plan.diet_epochs}")
    cached = CACHE / f"diet_{bench.name}_{key}.json"
    if not cached.exists() and earlier and earlier.get("data_key") == key:
        CACHE.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps({k: v for k, v in earlier.items() if k != "cached"}))
    if cached.exists():
        return {**json.loads(cached.read_text()), "data_key": key, "cached": True}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_rasa_nlu(bench.train, work / "nlu.yml")
        (work / "config.yml").write_text(DIET_CONFIG.format(epochs=plan.diet_epochs))
        started = time.perf_counter()
        subprocess.run(
            [str(RASA), "train", "nlu", "--config", str(work / "config.yml"), "--nlu", str(work / "nlu.yml"),
             "--out", str(work), "--fixed-model-name", "diet"],
            check=True, env=rasa_env(), cwd=work, stdout=subprocess.DEVNULL,
        )
        train_s = time.perf_counter() - started
        model = work / "diet.tar.gz"
        threshold = 0.0
        if bench.oos_label and bench.validation:
            parses = rasa_parse(model, [e.text for e in bench.validation])
            gold = np.array([e.label for e in bench.validation])
            conf = np.array([p["intent"]["confidence"] for p in parses])
            top = np.array([p["intent"]["name"] for p in parses])
            threshold = oos_threshold(gold, top, conf, bench.oos_label)
        parses = rasa_parse(model, [e.text for e in bench.test])
    predicted = decide([p["intent"]["name"] for p in parses], np.array([p["intent"]["confidence"] for p in parses]),
                       threshold, bench.oos_label)
    result = score(predicted, [e.label for e in bench.test], bench.oos_label)
    result.update(train_seconds=round(train_s, 1), epochs=plan.diet_epochs, oos_threshold=threshold, measured_on=commit,
                  data_key=key)
    CACHE.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(result))
    return result
