"""A fine-tuned model with what it needs to predict, calibrate, export and serve."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from nlu_models.batching import collate, encode
from nlu_models.calibration import in_scope_scores
from nlu_models.model import IntentSentimentModel
from nlu_models.training_config import TrainingConfig


@dataclass
class TrainedClassifier:
    """A trained model with everything needed to export and serve it."""

    model: IntentSentimentModel
    tokenizer: PreTrainedTokenizerBase
    intents: list[str]
    sentiments: list[str]
    intent_temperature: float
    sentiment_temperature: float
    oos_threshold: float
    config: TrainingConfig
    metrics: dict[str, Any] = field(default_factory=dict)
    oos_penalty: float = 0.0  # see TrainingConfig.oos_penalties
    #: Texts the weights were not trained on (the validation split or set): the export checks int8 on them.
    held_out_texts: list[str] = field(default_factory=list, repr=False)

    @property
    def oos_intents(self) -> list[str]:
        """Trained classes that stand for "out of scope"."""
        return [label for label in self.intents if label in self.config.oos_labels]

    def in_scope_score(self, intent_logits: np.ndarray) -> np.ndarray:
        """The score the out-of-scope threshold applies to (``config.oos_score``), per text.

        It is -inf where the top class is an out-of-scope class.
        """
        return in_scope_scores(intent_logits, self.intent_temperature, self.config.oos_score, self._oos_classes,
                               self.oos_penalty)

    @cached_property
    def _oos_classes(self) -> list[int]:
        """Indices of the out-of-scope classes (labels are fixed once trained)."""
        return [self.intents.index(label) for label in self.oos_intents]

    @torch.no_grad()
    def logits(self, texts: list[str], batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Raw (intent, sentiment) logits for texts, on the CPU as numpy.

        Texts are batched by length (less padding) and returned in their original order.
        """
        self.model.eval()
        device = next(self.model.parameters()).device
        if not texts:
            return np.zeros((0, len(self.intents))), np.zeros((0, len(self.sentiments)))
        ids = encode(self.tokenizer, texts, self.config.max_length)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        intent_out = np.zeros((len(texts), len(self.intents)), dtype=np.float32)
        sentiment_out = np.zeros((len(texts), len(self.sentiments)), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            input_ids, mask = collate([ids[i] for i in rows], self.tokenizer.pad_token_id or 0, device)
            intent, sentiment = self.model(input_ids, mask)
            intent_out[rows] = intent.float().cpu().numpy()
            sentiment_out[rows] = sentiment.float().cpu().numpy()
        return intent_out, sentiment_out

    def predict_intents(self, texts: list[str], oos_label: str = "oos") -> list[str]:
        """Top intent per text, or ``oos_label`` when its score is below the out-of-scope threshold."""
        return self.intents_from_logits(self.logits(texts)[0], oos_label)

    def intents_from_logits(self, intent_logits: np.ndarray, oos_label: str = "oos", threshold: float | None = None) -> list[str]:
        """Top intent per row of intent logits, or ``oos_label`` when out of scope.

        Args:
            intent_logits: Raw logits, as :meth:`logits` returns them.
            oos_label: What out-of-scope rows get.
            threshold: Out-of-scope threshold; the trained one when None. A top out-of-scope class
                is out of scope whatever the threshold.
        """
        threshold = self.oos_threshold if threshold is None else threshold
        score = self.in_scope_score(intent_logits)
        return [
            self.intents[int(row.argmax())] if s > -np.inf and s >= threshold else oos_label
            for row, s in zip(intent_logits, score)
        ]

    def predict_sentiments(self, texts: list[str]) -> list[str]:
        """Top sentiment per text."""
        _, sentiment_logits = self.logits(texts)
        return [self.sentiments[int(i)] for i in sentiment_logits.argmax(axis=1)]

