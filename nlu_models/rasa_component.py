"""Rasa 3.6 intent classifier backed by the fine-tuned intent + sentiment model (ONNX Runtime).

Runs inside the Rasa process (``.venv-rasa``, Python 3.10), so it imports Rasa, numpy, ONNX
Runtime and tokenizers only. Training needs torch, which lives in the Python 3.11 ``.venv``: the
component hands the training data to ``python -m nlu_models.train`` there and stores the exported
folder inside the Rasa model archive, so one archive is one complete bot version.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu_models.onnx_predictor import OnnxIntentSentimentPredictor, Prediction

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SENTIMENT = "sentiment"
EXPORT_DIR = "classifier"
TRAINER_PYTHON_ENV = "SWITCHBOARD_TRAINER_PYTHON"


def _resolve(path: Text) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() else PROJECT_ROOT / candidate


def _hash_files(paths: List[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if file.exists() and "__pycache__" not in file.parts:
                digest.update(file.name.encode())
                digest.update(file.read_bytes())
    return digest.hexdigest()


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class BertIntentSentimentClassifier(GraphComponent, IntentClassifier):
    """Sets ``intent``, ``intent_ranking`` and ``sentiment`` on every message.

    Messages whose calibrated confidence is below the out-of-scope threshold chosen on validation
    data get ``fallback_intent`` (Rasa's ``nlu_fallback``), with the real ranking kept below it.
    """

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """Defaults; every key can be set in ``config.yml``."""
        return {
            # Sentiment training data: CSV files (text,label) or folders of them.
            "sentiment_data": ["bot/sentiment"],
            # Local Hugging Face BERT-family folder; None = packaged all-MiniLM-L6-v2.
            "encoder": None,
            # Probe first (frozen encoder + logistic regression, seconds); then "auto" fine-tunes too and
            # serves whichever scores higher on the same held-out data, "never" serves the probe.
            "finetune": "auto",
            # Without out-of-scope examples: share of held-out in-scope messages the threshold may reject.
            "fallback_rate": 0.02,
            # Weight of the encoder's middle layer beside its last in the probe's intent features.
            "probe_middle_weight": 0.5,
            # Weight of the nearest-neighbour vote over the training examples beside the probe's head (0: off).
            "probe_vote_weight": 0.25,
            "epochs": 20,
            "patience": 4,
            "batch_size": 32,
            "random_seed": 13,
            # What the out-of-scope threshold applies to: "probability" or "max_logit" (many intents).
            "oos_score": "probability",
            # Exponential moving average of the weights (0 = off) and the intent head's cosine
            # scale: see nlu_models.trainer.TrainingConfig.
            "ema_decay": 0.0,
            "intent_scale": 20.0,
            # Fine-tuning runs averaged into one model (a weight soup): better generalisation at the
            # same serving cost, this many times the training time.
            "soup_size": 1,
            # "uniform" (all runs) or "greedy" (runs kept only when validation says they help).
            "soup_rule": "uniform",
            # With a soup: one more run learns from the runs' ensemble and is served instead
            # (0 = off); see nlu_models.trainer.TrainingConfig.
            "distill_weight": 0.0,
            "distill_temperature": 2.0,
            # With an intent named "oos" (examples of what the bot does not handle): extra prototypes
            # of that class, and candidate weights of its logit subtracted from the top logit
            # ("max_logit" score), the best chosen on validation; see TrainingConfig.
            "oos_prototypes": 0,
            "oos_penalties": [0.0],
            # Python of the torch environment that trains (default: the project's .venv).
            "trainer_python": None,
            # None: what the export chose (int8 only at >= 99.5 % top-1 agreement with fp32).
            "quantized": None,
            "threads": 1,
            # Threads of the training run (None: one per core, at most 4).
            "train_threads": None,
            "ranking_length": 10,
            "fallback_intent": "nlu_fallback",
        }

    @staticmethod
    def required_packages() -> List[Text]:
        """Serving needs only these (training runs in the torch environment)."""
        return ["onnxruntime", "tokenizers"]

    @classmethod
    def fingerprint_addon(cls, config: Dict[Text, Any]) -> Optional[str]:
        """Retrain when the sentiment data or the training code changes, not only the NLU data."""
        sources = [_resolve(p) for p in config.get("sentiment_data", [])]
        sources.append(Path(__file__).resolve().parent)
        return _hash_files(sources)

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        predictor: Optional[OnnxIntentSentimentPredictor] = None,
    ) -> None:
        self.component_config = config
        self._model_storage = model_storage
        self._resource = resource
        self._execution_context = execution_context
        self.predictor = predictor

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "BertIntentSentimentClassifier":
        """A new, untrained classifier."""
        return cls(config, model_storage, resource, execution_context)

    def _trainer_python(self) -> str:
        configured = self.component_config.get("trainer_python") or os.environ.get(TRAINER_PYTHON_ENV)
        python = _resolve(configured) if configured else PROJECT_ROOT / ".venv" / "bin" / "python"
        if not Path(python).exists():
            raise RuntimeError(
                f"the classifier trains with torch in the Python 3.11 environment, but {python} does not exist: "
                "run `make setup` (or set trainer_python / SWITCHBOARD_TRAINER_PYTHON)"
            )
        return str(python)

    def train(self, training_data: TrainingData) -> Resource:
        """Fine-tune the classifier in the torch environment and store the exported model."""
        examples = [m for m in training_data.intent_examples if m.get(TEXT) and m.get(INTENT)]
        if not examples:
            logger.warning("no intent examples: the classifier is not trained")
            return self._resource
        with tempfile.TemporaryDirectory(prefix="switchboard-nlu-") as workdir:
            data_file = Path(workdir) / "intents.csv"
            with data_file.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(["text", "label"])
                for message in examples:
                    writer.writerow([message.get(TEXT), message.get(INTENT)])
            out = Path(workdir) / EXPORT_DIR
            cfg = self.component_config
            command = [
                self._trainer_python(), "-m", "nlu_models.train", "--data", str(data_file), "--out", str(out),
                "--epochs", str(cfg["epochs"]), "--patience", str(cfg["patience"]),
                "--batch-size", str(cfg["batch_size"]), "--seed", str(cfg["random_seed"]),
                "--oos-score", str(cfg["oos_score"]), "--ema-decay", str(cfg["ema_decay"]),
                "--intent-scale", str(cfg["intent_scale"]), "--soup-size", str(cfg["soup_size"]),
                "--soup-rule", str(cfg["soup_rule"]),
                "--distill-weight", str(cfg["distill_weight"]),
                "--distill-temperature", str(cfg["distill_temperature"]),
                "--oos-prototypes", str(cfg["oos_prototypes"]),
                "--oos-penalties", *[str(p) for p in cfg["oos_penalties"]],
                "--finetune", str(cfg["finetune"]), "--fallback-rate", str(cfg["fallback_rate"]),
                "--probe-middle-weight", str(cfg["probe_middle_weight"]),
                "--probe-vote-weight", str(cfg["probe_vote_weight"]),
            ]
            if cfg.get("train_threads"):
                command += ["--threads", str(cfg["train_threads"])]
            for path in cfg.get("sentiment_data", []):
                command += ["--sentiment", str(_resolve(path))]
            if cfg.get("encoder"):
                command += ["--encoder", str(_resolve(cfg["encoder"]))]
            env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "HF_HUB_OFFLINE": "1"}
            # Output is inherited so the trainer's progress bars show during `rasa train`.
            result = subprocess.run(command, cwd=PROJECT_ROOT, env=env)
            if result.returncode != 0:
                raise RuntimeError(f"classifier training failed (exit {result.returncode}): {' '.join(command)}")
            with self._model_storage.write_to(self._resource) as model_dir:
                shutil.copytree(out, Path(model_dir) / EXPORT_DIR)
            with self._model_storage.read_from(self._resource) as model_dir:
                self.predictor = self._load_predictor(Path(model_dir) / EXPORT_DIR, cfg)
        return self._resource

    @staticmethod
    def _load_predictor(folder: Path, config: Dict[Text, Any]) -> OnnxIntentSentimentPredictor:
        quantized = config.get("quantized")
        return OnnxIntentSentimentPredictor(
            folder, quantized=None if quantized is None else bool(quantized), threads=int(config.get("threads", 1))
        )

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "BertIntentSentimentClassifier":
        """Load the exported classifier from the model archive."""
        try:
            with model_storage.read_from(resource) as model_dir:
                predictor = cls._load_predictor(Path(model_dir) / EXPORT_DIR, config)
        except (ValueError, FileNotFoundError) as exc:
            logger.warning("no trained classifier in the model (%s); intents will not be predicted", exc)
            predictor = None
        return cls(config, model_storage, resource, execution_context, predictor)

    def process(self, messages: List[Message]) -> List[Message]:
        """Classify every message that has text."""
        if self.predictor is None:
            return messages
        with_text = [m for m in messages if isinstance(m.get(TEXT), str)]
        texts = [self._clean(m.get(TEXT)) for m in with_text]
        nonempty = [t for t in texts if t]
        predictions = iter(self.predictor.predict(nonempty)) if nonempty else iter(())
        for message, text in zip(with_text, texts):
            if not text:
                self._set_fallback(message, confidence=1.0, ranking=[])
                continue
            self._apply(message, next(predictions))
        return messages

    @staticmethod
    def _clean(text: Text) -> Text:
        # Control characters carry no meaning for the classifier and can confuse tokenisation.
        return "".join(ch if ch.isprintable() or ch in " \t" else " " for ch in text).strip()

    def _apply(self, message: Message, prediction: Prediction) -> None:
        limit = int(self.component_config.get("ranking_length", 10)) or None
        ranking = [
            {INTENT_NAME_KEY: name, PREDICTED_CONFIDENCE_KEY: confidence}
            for name, confidence in prediction.intent_ranking[:limit]
        ]
        top_name, top_confidence = prediction.intent_ranking[0]
        if prediction.out_of_scope:
            self._set_fallback(message, confidence=1.0 - top_confidence, ranking=ranking)
        else:
            message.set(INTENT, {INTENT_NAME_KEY: top_name, PREDICTED_CONFIDENCE_KEY: top_confidence}, add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        message.set(
            SENTIMENT,
            {
                "label": prediction.sentiment,
                "score": prediction.sentiment_scores[prediction.sentiment],
                "scores": prediction.sentiment_scores,
            },
            add_to_output=True,
        )

    def _set_fallback(self, message: Message, confidence: float, ranking: List[Dict[Text, Any]]) -> None:
        fallback = {INTENT_NAME_KEY: self.component_config["fallback_intent"], PREDICTED_CONFIDENCE_KEY: confidence}
        message.set(INTENT, fallback, add_to_output=True)
        message.set(INTENT_RANKING_KEY, [fallback] + ranking, add_to_output=True)
        if message.get(SENTIMENT) is None:
            message.set(SENTIMENT, {"label": "neutral", "score": 1.0, "scores": {}}, add_to_output=True)
