"""Joint fine-tuning of the encoder with the intent and sentiment heads (torch, ``.venv`` only)."""

from __future__ import annotations

import copy
import logging
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import AutoTokenizer

from nlu_models.batching import collate, encode, length_bucketed_batches, seed_everything
from nlu_models.calibration import choose_oos_penalty, choose_oos_threshold, fit_temperature, threshold_without_oos
from nlu_models.data import SENTIMENT_LABELS, Example
from nlu_models.head_init import class_prototypes, inverse_frequency_weights, probe_head, spherical_kmeans
from nlu_models.losses import ClassWeightedCrossEntropy, distillation_loss
from nlu_models.model import IntentSentimentModel
from nlu_models.splits import MIN_EXAMPLES_TO_HOLD_OUT, macro_recall, stratified_split
from nlu_models.trained_classifier import TrainedClassifier
from nlu_models.training_config import SOUP_RULES, TrainingConfig, default_encoder_path
from nlu_models.weight_averaging import WeightAverage, average_states

# Re-exported: these lived here before the split, and callers import them from the trainer.
__all__ = ["JointTrainer", "TrainedClassifier", "TrainingConfig", "SOUP_RULES", "MIN_EXAMPLES_TO_HOLD_OUT",
           "WeightAverage", "average_states", "collate", "default_encoder_path", "encode", "length_bucketed_batches",
           "macro_recall", "save_checkpoint", "seed_everything", "stratified_split"]

logger = logging.getLogger(__name__)


@dataclass
class _FitData:
    """What every fine-tuning run of one ``fit`` shares: tokenised data, losses, validation sets."""

    train_ids: list[list[int]]
    train_targets: torch.Tensor
    sent_ids: list[list[int]]
    sent_targets: torch.Tensor
    pad_id: int
    intent_loss: nn.Module
    sentiment_loss: nn.Module
    validation: list[Example]
    sent_validation: list[Example]


@dataclass
class _MemberResult:
    """One fine-tuning run: its seed, best weights, their validation score and the epochs run."""

    seed: int
    state: dict[str, torch.Tensor]
    score: float
    best_epoch: int
    history: list[dict[str, float]]



class JointTrainer:
    """Fine-tunes encoder + heads on intent examples mixed with sentiment examples."""

    def __init__(self, config: TrainingConfig) -> None:
        self.config = config
        self.device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))

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
        if not any(e.label not in cfg.oos_labels for e in intent_examples):
            raise ValueError("no intent examples to train on")
        if cfg.soup_size < 1:
            raise ValueError(f"soup_size must be at least 1, got {cfg.soup_size}")
        if cfg.soup_rule not in SOUP_RULES:
            raise ValueError(f"soup_rule must be one of {SOUP_RULES}, got {cfg.soup_rule!r}")
        if not 0.0 <= cfg.distill_weight <= 1.0 or cfg.distill_temperature <= 0:
            raise ValueError(f"distill_weight must be in [0, 1] and distill_temperature > 0, got "
                             f"{cfg.distill_weight} and {cfg.distill_temperature}")
        in_scope = intent_examples  # out-of-scope examples train their own class
        intents = sorted({e.label for e in in_scope})
        intent_index = {label: i for i, label in enumerate(intents)}
        sentiments = list(SENTIMENT_LABELS)
        sentiment_index = {label: i for i, label in enumerate(sentiments)}
        unknown_sentiments = {e.label for e in sentiment_examples} - set(sentiments)
        if unknown_sentiments:
            raise ValueError(f"unknown sentiment labels {sorted(unknown_sentiments)}; expected {sentiments}")

        if validation_examples is not None:
            train = in_scope
            validation = [e for e in validation_examples if e.label in intent_index or e.label in cfg.oos_labels]
        else:
            train, validation = stratified_split(in_scope, cfg.validation_fraction, cfg.seed)
        sent_train, sent_validation = stratified_split(sentiment_examples, cfg.validation_fraction, cfg.seed)
        # Held-out out-of-scope examples choose the threshold; the rest calibrate and score.
        oos_validation = [e for e in validation if e.label in cfg.oos_labels]
        validation = [e for e in validation if e.label in intent_index and e.label not in cfg.oos_labels]

        encoder = cfg.resolved_encoder()
        tokenizer = AutoTokenizer.from_pretrained(encoder)
        pad_id = tokenizer.pad_token_id or 0
        oos_trained = [intent_index[label] for label in cfg.oos_labels if label in intent_index]
        extra = cfg.oos_prototypes if oos_trained else 0
        model = IntentSentimentModel(encoder, len(intents), len(sentiments), intent_scale=cfg.intent_scale,
                                     extra_prototypes=extra, extra_class=oos_trained[0] if extra else 0).to(self.device)
        train_ids = encode(tokenizer, [e.text for e in train], cfg.max_length)
        sent_ids = encode(tokenizer, [e.text for e in sent_train], cfg.max_length)
        train_targets = torch.tensor([intent_index[e.label] for e in train], device=self.device)
        sent_targets_all = torch.tensor([sentiment_index[e.label] for e in sent_train], dtype=torch.long, device=self.device)

        intent_weights = inverse_frequency_weights([e.label for e in train], intents).to(self.device)
        sentiment_weights = inverse_frequency_weights([e.label for e in sent_train], sentiments).to(self.device)
        # Not nn.CrossEntropyLoss: with class weights its label smoothing favours rare classes (see losses).
        intent_loss = ClassWeightedCrossEntropy(intent_weights, cfg.label_smoothing)
        sentiment_loss = ClassWeightedCrossEntropy(sentiment_weights)

        # Linear probing: heads first, on frozen embeddings (cheap: one encoder pass).
        train_vectors = self._embed_all(model, train_ids, pad_id)
        extra_init = spherical_kmeans(train_vectors[train_targets == oos_trained[0]], extra, cfg.seed) if extra else None
        model.intent_head.init_from_prototypes(class_prototypes(train_vectors, train_targets, len(intents)), extra_init)
        probe_head(model.intent_head, train_vectors, train_targets, intent_loss, cfg.probe_steps)
        if sent_ids:
            probe_head(model.sentiment_head, self._embed_all(model, sent_ids, pad_id), sent_targets_all, sentiment_loss,
                       cfg.probe_steps)

        trained = TrainedClassifier(model, tokenizer, intents, sentiments, 1.0, 1.0, 0.0, cfg)
        data = _FitData(train_ids, train_targets, sent_ids, sent_targets_all, pad_id, intent_loss, sentiment_loss,
                        validation, sent_validation)
        probe_score, _ = self._validation_score(trained, validation, sent_validation)
        logger.info("linear probe: validation score %.4f", probe_score)
        # Every soup member fine-tunes from the probed model; the first one continues the random
        # streams seeded above, so a soup of one is exactly the plain run.
        start_state = copy.deepcopy(model.state_dict()) if cfg.soup_size > 1 else None
        members: list[_MemberResult] = []
        for member in range(cfg.soup_size):
            member_seed = cfg.seed + member
            if start_state is not None and member:
                model.load_state_dict(start_state)
                seed_everything(member_seed)
            members.append(self._fine_tune(trained, data, probe_score, random.Random(member_seed), member_seed))
        distilled: _MemberResult | None = None
        soup_score: float | None = None
        in_soup = members
        if len(members) == 1:
            model.load_state_dict(members[0].state)
            best_score = members[0].score
        else:
            in_soup, soup_score = self._choose_soup(trained, members, validation, sent_validation)
            model.load_state_dict(average_states([m.state for m in in_soup]))
            if soup_score is None:
                soup_score, _ = self._validation_score(trained, validation, sent_validation)
            best_score = soup_score
            logger.info("soup of %d of %d runs: validation score %.4f (runs: %s)", len(in_soup), len(members), best_score,
                        ", ".join(f"{m.score:.4f}" for m in members))
            if cfg.distill_weight > 0:
                teacher = self._ensemble_probabilities(model, [m.state for m in members], train_ids, pad_id)
                student_seed = cfg.seed + len(members)
                model.load_state_dict(start_state)
                seed_everything(student_seed)
                distilled = self._fine_tune(trained, data, probe_score, random.Random(student_seed), student_seed,
                                            teacher=teacher)
                model.load_state_dict(distilled.state)
                best_score = distilled.score
                logger.info("distilled from the ensemble of %d: validation score %.4f", len(members), best_score)
        # A soup reports its first run's epochs here (a distilled model its own) and every run under "soup".
        shown = distilled or members[0]
        best_epoch, history = shown.best_epoch, shown.history

        # Calibration and threshold on the held-out data (training data when nothing was held out).
        calib = validation or train
        intent_logits, _ = trained.logits([e.text for e in calib])
        calib_labels = np.array([intent_index[e.label] for e in calib])
        trained.intent_temperature = fit_temperature(intent_logits, calib_labels)
        oos_score = None
        if oos_validation:
            oos_logits = trained.logits([e.text for e in oos_validation])[0]
            if len(cfg.oos_penalties) > 1:
                trained.oos_penalty = choose_oos_penalty(intent_logits, oos_logits, cfg.oos_penalties,
                                                         trained.intent_temperature, cfg.oos_score, trained._oos_classes)
            oos_score = trained.in_scope_score(oos_logits)
        if oos_score is not None:
            trained.oos_threshold = choose_oos_threshold(
                trained.in_scope_score(intent_logits), intent_logits.argmax(axis=1) == calib_labels, oos_score
            )
        else:  # no out-of-scope examples: keep all but fallback_rate of held-out in-scope messages
            trained.oos_threshold = threshold_without_oos(trained.in_scope_score(intent_logits), cfg.fallback_rate)
        sent_calib = sent_validation or sent_train
        if sent_calib:
            _, sentiment_logits = trained.logits([e.text for e in sent_calib])
            trained.sentiment_temperature = fit_temperature(
                sentiment_logits, np.array([sentiment_index[e.label] for e in sent_calib])
            )
        trained.held_out_texts = [e.text for e in validation + oos_validation]
        trained.metrics = {
            "best_epoch": best_epoch,
            "validation_score": best_score,
            "probe_validation_score": probe_score,
            "history": history,
            **({"soup": [{"seed": m.seed, "best_epoch": m.best_epoch, "epochs_run": len(m.history),
                          "validation_score": m.score, "in_soup": any(m is k for k in in_soup)} for m in members],
                "soup_rule": cfg.soup_rule,
                "soup_validation_score": soup_score} if len(members) > 1 else {}),
            **({"distilled": {"seed": distilled.seed, "best_epoch": distilled.best_epoch,
                              "epochs_run": len(distilled.history), "validation_score": distilled.score,
                              "weight": cfg.distill_weight, "temperature": cfg.distill_temperature}}
               if distilled else {}),
            "train_examples": len(train),
            "validation_examples": len(validation),
            "sentiment_examples": len(sentiment_examples),
            "oos_validation_examples": len(oos_validation),
            "intent_temperature": trained.intent_temperature,
            "sentiment_temperature": trained.sentiment_temperature,
            "oos_threshold": trained.oos_threshold,
            "oos_penalty": trained.oos_penalty,
            "device": self.device.type,
        }
        return trained

    def _choose_soup(self, trained: TrainedClassifier, members: list[_MemberResult], validation: list[Example],
                     sent_validation: list[Example]) -> tuple[list[_MemberResult], float | None]:
        """The runs to average: all of them, or a greedy soup chosen on validation (``soup_rule``).

        Returns the runs and, for a greedy soup, the validation score of their average (already
        measured while choosing; None for a uniform soup). Leaves the model holding some
        candidate's weights; the caller loads the soup.
        """
        if self.config.soup_rule == "uniform":
            return members, None
        ranked = sorted(members, key=lambda m: -m.score)  # stable: ties keep seed order
        chosen, best = [ranked[0]], ranked[0].score
        for candidate in ranked[1:]:
            trained.model.load_state_dict(average_states([m.state for m in [*chosen, candidate]]))
            score, _ = self._validation_score(trained, validation, sent_validation)
            logger.info("greedy soup: with seed %d %.4f (without %.4f)", candidate.seed, score, best)
            if score >= best:
                chosen, best = [*chosen, candidate], score
        return chosen, best

    def _fine_tune(self, trained: TrainedClassifier, data: _FitData, probe_score: float, rng: random.Random,
                   seed: int, teacher: torch.Tensor | None = None) -> _MemberResult:
        """Fine-tune encoder and heads from their current weights; early-stop on validation.

        Args:
            teacher: Soft intent targets per training example (softened at ``distill_temperature``);
                when given, the intent loss mixes in distillation towards them (``distill_weight``).

        Returns the best state seen (the starting one when no epoch beats ``probe_score``).
        """
        cfg, model = self.config, trained.model
        optimizer = torch.optim.AdamW(
            [
                {"params": model.encoder.parameters(), "lr": cfg.encoder_lr},
                {"params": list(model.intent_head.parameters()) + list(model.sentiment_head.parameters()), "lr": cfg.head_lr},
            ],
            weight_decay=0.01,
        )
        steps_per_epoch = max(1, (len(data.train_ids) + cfg.batch_size - 1) // cfg.batch_size)
        total_steps = steps_per_epoch * cfg.max_epochs
        warmup = max(1, int(0.06 * total_steps))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total_steps - step) / max(1, total_steps - warmup)))
        )
        use_amp = self.device.type == "cuda"
        scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
        average = WeightAverage(list(model.parameters()), cfg.ema_decay) if cfg.ema_decay > 0 else None
        train_lengths = [len(r) for r in data.train_ids]
        sent_lengths = [len(r) for r in data.sent_ids]
        pad_id = data.pad_id

        best_score = probe_score
        best_state, best_epoch, stale = copy.deepcopy(model.state_dict()), 0, 0
        history: list[dict[str, float]] = []
        epochs = tqdm(range(1, cfg.max_epochs + 1), desc="epochs" if cfg.soup_size == 1 else f"epochs (seed {seed})",
                      unit="epoch")
        for epoch in epochs:
            model.train()
            batches = length_bucketed_batches(train_lengths, cfg.batch_size, rng)
            sent_batches = length_bucketed_batches(sent_lengths, cfg.batch_size, rng) if data.sent_ids else []
            total = 0.0
            for step, rows in enumerate(tqdm(batches, desc=f"epoch {epoch}", unit="batch", leave=False)):
                input_ids, mask = collate([data.train_ids[i] for i in rows], pad_id, self.device)
                with torch.autocast(self.device.type, dtype=torch.float16, enabled=use_amp):
                    intent_logits, _ = model(input_ids, mask)
                    loss = data.intent_loss(intent_logits.float(), data.train_targets[rows])
                    if teacher is not None:
                        loss = (1 - cfg.distill_weight) * loss + cfg.distill_weight * distillation_loss(
                            intent_logits.float(), teacher[rows], cfg.distill_temperature)
                    if sent_batches:
                        sent_rows = sent_batches[step % len(sent_batches)]
                        sent_input, sent_mask = collate([data.sent_ids[i] for i in sent_rows], pad_id, self.device)
                        _, sentiment_logits = model(sent_input, sent_mask)
                        loss = loss + cfg.sentiment_weight * data.sentiment_loss(
                            sentiment_logits.float(), data.sent_targets[sent_rows])
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                if average is not None:
                    average.update()
                total += float(loss.detach())

            if average is not None:
                average.swap()  # validate (and keep) the averaged weights
            score, summary = self._validation_score(trained, data.validation, data.sent_validation)
            summary.update(epoch=epoch, loss=total / len(batches))
            history.append(summary)
            epochs.set_postfix(loss=f"{summary['loss']:.3f}", val=f"{score:.4f}")
            logger.info("epoch %d: %s", epoch, summary)
            improved = score > best_score + 1e-4
            if improved:
                best_score, best_state, best_epoch, stale = score, copy.deepcopy(model.state_dict()), epoch, 0
            if average is not None:
                average.swap()  # training continues from the live weights
            if not improved:
                stale += 1
                if stale >= cfg.patience:
                    break
        return _MemberResult(seed, best_state, best_score, best_epoch, history)

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
    def _ensemble_probabilities(self, model: IntentSentimentModel, states: list[dict[str, torch.Tensor]],
                                ids: list[list[int]], pad_id: int) -> torch.Tensor:
        """Mean softened intent probabilities of several weight sets on pre-tokenised rows (eval mode).

        Leaves the model holding the last state; the caller loads what it needs next.
        """
        temperature = self.config.distill_temperature
        total = torch.zeros(len(ids), model.intent_head.num_classes, device=self.device)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for state in tqdm(states, desc="teacher ensemble", unit="model"):
            model.load_state_dict(state)
            model.eval()
            for start in range(0, len(order), 128):
                rows = order[start : start + 128]
                logits, _ = model(*collate([ids[i] for i in rows], pad_id, self.device))
                total[rows] += torch.softmax(logits.float() / temperature, dim=-1)
        return total / len(states)

    @torch.no_grad()
    def _embed_all(self, model: IntentSentimentModel, ids: list[list[int]], pad_id: int) -> torch.Tensor:
        """Mean-pooled embeddings of pre-tokenised rows with the current encoder (eval mode)."""
        model.eval()
        out = torch.zeros(len(ids), model.intent_head.weight.shape[1], device=self.device)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), 128):
            rows = order[start : start + 128]
            out[rows] = model.embed(*collate([ids[i] for i in rows], pad_id, self.device)).float()
        return out


def save_checkpoint(trained: TrainedClassifier, folder: Path) -> None:
    """Torch state dict (for parity checks and further training) next to the export."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(trained.model.state_dict(), folder / "torch_state.pt")
