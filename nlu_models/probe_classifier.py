"""A trained probe model: the shared frozen encoder plus this data's intent and sentiment heads."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from nlu_models.calibration import in_scope_scores
from nlu_models.encoder_export import ENCODER_FP32
from nlu_models.onnx_export import TOKENIZER_FILE
from nlu_models.encoder_pool import EncoderPool, SharedEncoder
from nlu_models.neighbour_vote import NeighbourVoteHead
from nlu_models.probe import ProbeHead


@dataclass
class ProbeClassifier:
    """Frozen encoder + linear heads, with the same prediction interface as a fine-tuned model.

    Attributes:
        intents: Intent labels (out-of-scope classes included).
        sentiments: Sentiment labels.
        intent_head: Linear head over unit-normalised intent features, with the nearest-neighbour vote
            where training added one.
        sentiment_head: Same, for sentiment.
        intent_temperature: Calibrating temperature of the intent logits.
        sentiment_temperature: Same, for sentiment.
        oos_threshold: Score below which a message is out of scope.
        config: The training configuration (``nlu_models.trainer.TrainingConfig``).
        encoder_folder: The exported encoder (``encoder.onnx``, ``tokenizer.json``).
        metrics: What training measured.
        oos_penalty: Weight of the out-of-scope logit in the ``max_logit`` score.
        middle_weight: Weight of the middle layer in the intent head's features (0: the last layer
            alone; see ``nlu_models.encoder_pool.SharedEncoder.encode``). The sentiment head reads the last
            layer alone.
    """

    intents: list[str]
    sentiments: list[str]
    intent_head: ProbeHead | NeighbourVoteHead
    sentiment_head: ProbeHead
    intent_temperature: float
    sentiment_temperature: float
    oos_threshold: float
    config: Any
    encoder_folder: Path
    metrics: dict[str, Any] = field(default_factory=dict)
    oos_penalty: float = 0.0
    middle_weight: float = 0.0
    _encoders: dict[str, SharedEncoder] = field(default_factory=dict, repr=False, compare=False)

    @property
    def oos_intents(self) -> list[str]:
        """Trained classes that stand for "out of scope"."""
        return [label for label in self.intents if label in self.config.oos_labels]

    @cached_property
    def _oos_classes(self) -> list[int]:
        return [self.intents.index(label) for label in self.oos_intents]

    def encoder(self) -> SharedEncoder:
        """The shared ONNX encoder, acquired from the pool once."""
        file = self.encoder_folder / ENCODER_FP32
        cached = self._encoders.get(file.name)
        if cached is None:
            _, cached = EncoderPool.acquire(file, self.encoder_folder / TOKENIZER_FILE, self.config.max_length)
            self._encoders[file.name] = cached
        return cached

    def encoded(self, texts: list[str], batch_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
        """(pooled vectors, intent features) of texts, one encoder pass batched by length."""
        encoder = self.encoder()
        pooled: np.ndarray | None = None
        features: np.ndarray | None = None
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            vectors, combined = encoder.encode([texts[i] for i in rows], self.middle_weight)
            if pooled is None or features is None:
                pooled = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
                features = np.zeros((len(texts), combined.shape[1]), dtype=np.float32)
            pooled[rows], features[rows] = vectors, combined
        if pooled is None or features is None:
            return np.zeros((0, 1), dtype=np.float32), np.zeros((0, 1), dtype=np.float32)
        return pooled, features

    def pooled(self, texts: list[str]) -> np.ndarray:
        """Pooled (last-layer) vectors of texts: what the sentiment head and the frozen baseline read."""
        return self.encoded(texts)[0]

    def features(self, texts: list[str]) -> np.ndarray:
        """What the intent head reads (see ``middle_weight``)."""
        return self.encoded(texts)[1]

    def logits(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Raw (intent, sentiment) logits."""
        if not texts:
            return np.zeros((0, len(self.intents))), np.zeros((0, len(self.sentiments)))
        pooled, features = self.encoded(texts)
        return self.intent_head.logits(features), self.sentiment_head.logits(pooled)

    def in_scope_score(self, intent_logits: np.ndarray) -> np.ndarray:
        """The score the out-of-scope threshold applies to (-inf where an out-of-scope class wins)."""
        return in_scope_scores(intent_logits, self.intent_temperature, self.config.oos_score, self._oos_classes,
                               self.oos_penalty)

    def intents_from_logits(self, intent_logits: np.ndarray, oos_label: str = "oos",
                            threshold: float | None = None) -> list[str]:
        """Top intent per row, or ``oos_label`` when out of scope (see ``TrainedClassifier``)."""
        threshold = self.oos_threshold if threshold is None else threshold
        score = self.in_scope_score(intent_logits)
        return [self.intents[int(row.argmax())] if s > -np.inf and s >= threshold else oos_label
                for row, s in zip(intent_logits, score)]

    def predict_intents(self, texts: list[str], oos_label: str = "oos") -> list[str]:
        """Top intent per text, or ``oos_label`` when out of scope."""
        return self.intents_from_logits(self.logits(texts)[0], oos_label)

    def predict_sentiments(self, texts: list[str]) -> list[str]:
        """Top sentiment per text."""
        return [self.sentiments[int(i)] for i in self.logits(texts)[1].argmax(axis=1)]
