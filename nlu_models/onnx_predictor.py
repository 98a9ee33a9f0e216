"""Serving side of the classifier: ONNX Runtime + tokenizers + numpy, nothing else.

This module is imported inside the Rasa process (``.venv-rasa``, Python 3.10): no torch, no
transformers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from nlu_models.calibration import in_scope_scores, softmax
from nlu_models.encoder_pool import EncoderPool, OnnxTextGraph
from nlu_models.neighbour_vote import load_head
from nlu_models.probe import ProbeHead

#: 2 adds probe models (``kind: probe``: a shared encoder file + ``heads.npz``); 1 is read as fine-tuned.
FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
HEADS_FILE = "heads.npz"
MODEL_FP32 = "model.onnx"
MODEL_INT8 = "model.int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
LABELS_FILE = "labels.json"
META_FILE = "meta.json"


@dataclass(frozen=True)
class Prediction:
    """What the classifier says about one message.

    Attributes:
        intent_ranking: (intent, calibrated confidence), best first.
        out_of_scope: Whether the best class is an out-of-scope class, or its score (the top
            probability or top logit, as the export says) is below the out-of-scope threshold.
        sentiment: Best sentiment label.
        sentiment_scores: Calibrated probability of each sentiment label.
    """

    intent_ranking: List[Tuple[str, float]]
    out_of_scope: bool
    sentiment: str
    sentiment_scores: Dict[str, float]


class OnnxIntentSentimentPredictor:
    """Loads an exported classifier folder and predicts intents and sentiment.

    Two kinds of folder: a fine-tuned model (its own ONNX graph with both heads) and a probe model
    (a frozen encoder file, shared with every other model that carries the same file, plus this
    model's linear heads).

    Args:
        folder: The folder written by ``nlu_models.export``.
        quantized: Serve the int8 graph (True) or fp32 (False) of a fine-tuned model; None follows the
            export's ``served_precision`` (int8 only where it agreed with fp32 on >= 99.5 % of
            intents). A probe folder carries the one encoder file it serves (fp32; older exports
            may carry int8) and ignores this.
        threads: Intra-op threads of the ONNX Runtime session.
    """

    def __init__(self, folder: Path, quantized: Optional[bool] = None, threads: int = 1) -> None:
        self.folder = Path(folder)
        self.meta: Dict[str, Any] = json.loads((self.folder / META_FILE).read_text())
        if self.meta.get("format_version") not in READABLE_FORMATS:
            raise ValueError(f"{self.folder}: unsupported model format {self.meta.get('format_version')!r}")
        labels = json.loads((self.folder / LABELS_FILE).read_text())
        self.intents: List[str] = labels["intents"]
        self.sentiments: List[str] = labels["sentiments"]
        self.max_length = int(self.meta["max_length"])
        self.intent_temperature = float(self.meta["intent_temperature"])
        self.sentiment_temperature = float(self.meta["sentiment_temperature"])
        self.oos_threshold = float(self.meta["oos_threshold"])
        # What the threshold applies to: the top probability (older exports have no key) or the top logit.
        self.oos_score = self.meta.get("oos_score", "probability")
        # Weight of the out-of-scope class's logit subtracted from the top logit (older exports: none).
        self.oos_penalty = float(self.meta.get("oos_penalty", 0.0))
        # Classes trained from out-of-scope examples (e.g. CLINC150's "oos"); older exports have none.
        self.oos_classes = [self.intents.index(label) for label in self.meta.get("oos_intents", [])]
        self.kind = self.meta.get("kind", "finetuned")
        # A probe's middle-layer weight in its intent features (older exports: the last layer alone).
        self.middle_weight = float(self.meta.get("middle_weight", 0.0))
        self._encoder_key: Optional[str] = None
        if self.kind == "probe":
            self._encoder_key, self.encoder = EncoderPool.acquire(
                self.folder / self.meta["encoder_file"], self.folder / TOKENIZER_FILE, self.max_length,
                self.meta.get("encoder_sha256"), threads)
            with np.load(self.folder / HEADS_FILE) as arrays:
                heads = dict(arrays)
            self.intent_head = load_head(heads, "intent", self.intents)
            if self.middle_weight > 0 and not self.encoder.has_middle:
                self.close()
                raise ValueError(f"{self.folder}: the model reads the encoder's middle layer, its encoder file lacks it")
            self.sentiment_head = ProbeHead.from_arrays(heads, "sentiment", self.sentiments)
            self.precision = "int8" if "int8" in self.meta["encoder_file"] else "fp32"
            return
        if quantized is None:
            quantized = self.meta.get("served_precision", "int8") == "int8"
        self.precision = "int8" if quantized else "fp32"
        model = MODEL_INT8 if quantized else MODEL_FP32
        self.graph = OnnxTextGraph(self.folder / model, self.folder / TOKENIZER_FILE, self.max_length, threads)

    def close(self) -> None:
        """Let go of the shared encoder (a probe model's); the predictor is unusable afterwards."""
        if self._encoder_key is not None:
            EncoderPool.release(self._encoder_key)
            self._encoder_key = None

    def logits(self, texts: List[str]) -> Tuple[np.ndarray, np.ndarray]:
        """Raw (intent, sentiment) logits."""
        if not texts:
            return np.zeros((0, len(self.intents)), np.float32), np.zeros((0, len(self.sentiments)), np.float32)
        if self.kind == "probe":
            pooled, features = self.encoder.encode(texts, self.middle_weight)
            return self.intent_head.logits(features), self.sentiment_head.logits(pooled)
        intent, sentiment = self.graph.run(texts)
        return intent, sentiment

    def predict(self, texts: List[str]) -> List[Prediction]:
        """Calibrated predictions for a batch of texts."""
        intent_logits, sentiment_logits = self.logits(texts)
        intent_probs = softmax(intent_logits.astype(np.float64), self.intent_temperature)
        sentiment_probs = softmax(sentiment_logits.astype(np.float64), self.sentiment_temperature)
        scores = in_scope_scores(intent_logits, self.intent_temperature, self.oos_score, self.oos_classes,
                                 self.oos_penalty)
        predictions = []
        for score, intent_row, sentiment_row in zip(scores, intent_probs, sentiment_probs):
            order = np.argsort(-intent_row)
            ranking = [(self.intents[i], float(intent_row[i])) for i in order]
            predictions.append(
                Prediction(
                    intent_ranking=ranking,
                    out_of_scope=score == -np.inf or score < self.oos_threshold,
                    sentiment=self.sentiments[int(sentiment_row.argmax())],
                    sentiment_scores={label: float(p) for label, p in zip(self.sentiments, sentiment_row)},
                )
            )
        return predictions
