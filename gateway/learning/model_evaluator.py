"""Scores a Rasa model archive on the held-out sets: the numbers the evaluation gate compares.

The classifier is scored exactly as Rasa serves it: the exported folder is taken out of the archive
and run through the same ``OnnxIntentSentimentPredictor`` the Rasa component uses (int8 by default).
The conversation tests run through Rasa's own ``rasa test core`` in ``.venv-rasa``.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gateway.settings import PROJECT_ROOT
from gateway.rasa_cli import RASA_BIN, rasa_cli_env
from nlu_models.data import Example, load_csv, load_examples
from nlu_models.onnx_predictor import OnnxIntentSentimentPredictor

#: Labels that count as "the bot should not claim to understand this".
OUT_OF_SCOPE = ("out_of_scope", "nlu_fallback")
_CLASSIFIER_DIR = "classifier"


class EvaluationError(RuntimeError):
    """The archive could not be scored (no classifier inside, Rasa's test run failed to start, …)."""


@dataclass(frozen=True)
class EvaluationSets:
    """The held-out data every model is scored on.

    Attributes:
        nlu_holdout: Rasa NLU YAML of intent examples never trained on (``out_of_scope`` ones included).
        sentiment_holdout: CSV (text,label) of sentiment examples never trained on.
        conversation_tests: Folder of Rasa test stories (``rasa test core``); None skips them.
    """

    nlu_holdout: Path = PROJECT_ROOT / "bot" / "evaluation" / "nlu_holdout.yml"
    sentiment_holdout: Path = PROJECT_ROOT / "bot" / "evaluation" / "sentiment_holdout.csv"
    conversation_tests: Path | None = PROJECT_ROOT / "bot" / "tests"

    def fingerprint(self) -> str:
        """Hash of the sets' contents: metrics are only comparable when it matches."""
        digest = hashlib.sha256()
        for path in (self.nlu_holdout, self.sentiment_holdout, self.conversation_tests):
            if path is None:
                digest.update(b"-")
                continue
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            for file in files:
                digest.update(file.name.encode())
                digest.update(file.read_bytes())
        return digest.hexdigest()


@dataclass
class ClassifierScores:
    """Metrics of the classifier on the held-out sets (all in 0..1, higher is better)."""

    intent_accuracy: float
    intent_macro_f1: float
    oos_recall: float
    sentiment_accuracy: float
    per_intent_f1: dict[str, float] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    examples: int = 0


def _f1(tp: int, fp: int, fn: int) -> float:
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def score_predictions(expected: list[str], predicted: list[str]) -> tuple[float, float, float, dict[str, float]]:
    """In-scope accuracy, macro F1 over the expected in-scope intents, and out-of-scope recall.

    Args:
        expected: Gold intents (``out_of_scope`` for texts the bot should not claim to understand); an
            intent the model does not know is scored as a miss.
        predicted: Predicted intents (``nlu_fallback`` when the model abstained).
    """
    in_scope = [(e, p) for e, p in zip(expected, predicted) if e not in OUT_OF_SCOPE]
    oos = [(e, p) for e, p in zip(expected, predicted) if e in OUT_OF_SCOPE]
    accuracy = sum(e == p for e, p in in_scope) / len(in_scope) if in_scope else 1.0
    oos_recall = sum(p in OUT_OF_SCOPE for _, p in oos) / len(oos) if oos else 1.0
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for e, p in zip(expected, predicted):
        if e == p and e not in OUT_OF_SCOPE:
            tp[e] += 1
            continue
        if e not in OUT_OF_SCOPE:
            fn[e] += 1
        if p not in OUT_OF_SCOPE:
            fp[p] += 1
    labels = sorted({e for e, _ in in_scope})
    per_intent = {label: round(_f1(tp[label], fp[label], fn[label]), 4) for label in labels}
    macro = sum(per_intent.values()) / len(per_intent) if per_intent else 1.0
    return accuracy, macro, oos_recall, per_intent


def find_classifier(root: Path) -> Path:
    """The exported classifier folder inside an unpacked Rasa model.

    Raises:
        EvaluationError: The model has no classifier.
    """
    for meta in sorted(root.rglob("meta.json")):
        if meta.parent.name == _CLASSIFIER_DIR and (meta.parent / "labels.json").exists():
            return meta.parent
    raise EvaluationError("the model archive holds no exported classifier")


def unpack_classifier(archive: Path, into: Path) -> Path:
    """Extract only the classifier folder of a Rasa model archive (never paths outside ``into``)."""
    with tarfile.open(archive, "r:gz") as tar:
        members = [m for m in tar.getmembers() if f"/{_CLASSIFIER_DIR}/" in f"/{m.name.lstrip('/')}"
                   and (m.isfile() or m.isdir())]
        tar.extractall(into, members=members, filter="data")
    return find_classifier(into)


def read_model_id(archive: Path) -> str | None:
    """Rasa's ``model_id`` from the archive's metadata (what ``/status`` reports once it is loaded)."""
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            if member.name.lstrip("/") == "metadata.json":
                handle = tar.extractfile(member)
                if handle is not None:
                    return json.load(handle).get("model_id")
    return None


class ModelEvaluator:
    """Scores model archives on one set of held-out data.

    Args:
        sets: The held-out data.
        quantized: Score the int8 (True) or fp32 (False) model; None: what the export serves (Rasa's default).
    """

    def __init__(self, sets: EvaluationSets | None = None, quantized: bool | None = None) -> None:
        self.sets = sets or EvaluationSets()
        self.quantized = quantized

    def holdout(self) -> list[Example]:
        """The intent examples of the held-out set."""
        return load_examples(self.sets.nlu_holdout)

    def score_classifier(self, archive: Path) -> ClassifierScores:
        """Intent accuracy / macro F1, out-of-scope recall and sentiment accuracy of the archive's classifier."""
        with tempfile.TemporaryDirectory(prefix="switchboard-eval-") as tmp:
            predictor = OnnxIntentSentimentPredictor(unpack_classifier(archive, Path(tmp)), quantized=self.quantized)
            intents = self.holdout()
            predictions = predictor.predict([e.text for e in intents])
            predicted = ["nlu_fallback" if p.out_of_scope else p.intent_ranking[0][0] for p in predictions]
            expected = [e.label for e in intents]
            accuracy, macro, oos_recall, per_intent = score_predictions(expected, predicted)
            sentiment = load_csv(self.sets.sentiment_holdout)
            sentiment_predictions = predictor.predict([e.text for e in sentiment])
            sentiment_accuracy = (sum(p.sentiment == e.label for p, e in zip(sentiment_predictions, sentiment))
                                  / len(sentiment)) if sentiment else 1.0
        errors = [{"text": e.text, "expected": e.label, "predicted": p}
                  for e, p in zip(intents, predicted)
                  if not (e.label == p or (e.label in OUT_OF_SCOPE and p in OUT_OF_SCOPE))]
        return ClassifierScores(round(accuracy, 4), round(macro, 4), round(oos_recall, 4), round(sentiment_accuracy, 4),
                                per_intent, errors, len(intents))

    def run_conversation_tests(self, archive: Path, timeout_s: float = 900.0) -> dict[str, Any]:
        """Share of conversation-test stories that pass end to end (``rasa test core``) and the failed ones.

        Raises:
            EvaluationError: Rasa could not run the tests at all.
        """
        folder = self.sets.conversation_tests
        if folder is None:
            return {"conversation_tests": 1.0, "stories": 0, "failed_stories": []}
        stories = _story_names(folder)
        with tempfile.TemporaryDirectory(prefix="switchboard-stories-") as out:
            env = rasa_cli_env()
            try:
                result = subprocess.run(
                    [str(RASA_BIN), "test", "core", "--model", str(archive), "--stories", str(folder), "--out", out,
                     "--no-plot"],
                    cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout_s)
            except subprocess.TimeoutExpired as exc:
                raise EvaluationError(f"rasa test core did not finish in {timeout_s:.0f}s") from exc
            failed_file = Path(out) / "failed_test_stories.yml"
            if result.returncode != 0 and not failed_file.exists():
                raise EvaluationError("rasa test core failed: " + (result.stderr or result.stdout)[-2000:])
            failed = _story_names_in(failed_file) if failed_file.exists() else []
        passed = max(0, len(stories) - len(failed))
        return {"conversation_tests": round(passed / len(stories), 4) if stories else 1.0,
                "stories": len(stories), "failed_stories": failed}

    def evaluate(self, archive: Path, conversation_tests: bool = True) -> dict[str, Any]:
        """Every metric of one archive, as stored in the registry."""
        scores = self.score_classifier(archive)
        metrics: dict[str, Any] = {
            "intent_accuracy": scores.intent_accuracy,
            "intent_macro_f1": scores.intent_macro_f1,
            "oos_recall": scores.oos_recall,
            "sentiment_accuracy": scores.sentiment_accuracy,
            "per_intent_f1": scores.per_intent_f1,
            "holdout_errors": scores.errors[:50],
            "holdout_examples": scores.examples,
            "evaluation_sets": self.sets.fingerprint(),
        }
        if conversation_tests:
            metrics.update(self.run_conversation_tests(archive))
        return metrics


def _story_names(folder: Path) -> list[str]:
    names: list[str] = []
    for file in sorted(folder.rglob("*.yml")):
        names.extend(_story_names_in(file))
    return names


def _story_names_in(file: Path) -> list[str]:
    document = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    return [str(s.get("story")) for s in document.get("stories", []) or [] if isinstance(s, dict)]
