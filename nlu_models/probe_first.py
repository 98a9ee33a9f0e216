"""Probe first, fine-tune second, serve the better on the same held-out data.

    probe      frozen encoder + logistic regression, C and threshold by k-fold cross-validation (seconds)
    fine-tune  the joint encoder + heads model (minutes), unless ``finetune`` is ``never``
    compare    on the same held-out data: one validation split with enough examples per intent
               (``SMALL_DATA``), k-fold cross-validation below that (one small split would decide
               on a handful of votes); the fine-tuned model is served only when its macro F1 (every
               intent counts the same) is higher

A tenant's first model can therefore go live on the probe at once; the fine-tuned model follows
through the registry's gate when it wins.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nlu_models.calibration import choose_oos_threshold, fit_temperature, log_softmax, threshold_without_oos
from nlu_models.data import SENTIMENT_LABELS, Example
from nlu_models.encoder_export import export_encoder
from nlu_models.neighbour_vote import NeighbourVoteHead, out_of_fold_votes
from nlu_models.probe import ProbeFit, ProbeHead, ProbeTrainer, stratified_folds
from nlu_models.probe_classifier import ProbeClassifier
from nlu_models.trainer import JointTrainer, TrainedClassifier, TrainingConfig, stratified_split

logger = logging.getLogger(__name__)

#: ``finetune`` settings: compare and serve the better (auto), probe only (never), or the fine-tuned
#: model without a comparison (always).
FINETUNE_MODES = ("auto", "never", "always")
#: Below this many examples for the median intent, choices use k-fold cross-validation.
SMALL_DATA = 30
#: Folds of the fine-tuned-versus-probe comparison on small data (each costs one fine-tuning run).
COMPARISON_FOLDS = 3


@dataclass
class _ProbeInputs:
    """A fitted probe's training embeddings, its intent-name rows and whether cross-validation kept them."""

    vectors: np.ndarray
    anchors: tuple[np.ndarray, list[str]] | None
    anchors_used: bool


@dataclass
class Selection:
    """The outcome of a probe-first training run.

    Attributes:
        served: ``probe`` or ``finetuned``.
        probe: The probe model (always trained).
        finetuned: The fine-tuned model, when one was trained for serving.
        comparison: Held-out scores of both and how they were measured.
    """

    served: str
    probe: ProbeClassifier
    finetuned: TrainedClassifier | None
    comparison: dict[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> ProbeClassifier | TrainedClassifier:
        """The model to serve."""
        return self.finetuned if self.served == "finetuned" and self.finetuned is not None else self.probe


def label_text(label: str) -> str | None:
    """An intent's name as a sentence ("order_status" → "order status"), or None when it says nothing.

    With few examples per intent the name is worth one more example (exploratory BANKING77 and CLINC150
    draws, 5 to 20 per intent: +0.62 points on average, +2.9 at best, -0.03 at worst); names such as
    ``intent_17`` or ``0`` carry no words and are left out.
    """
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", label)
    words = [w for w in re.split(r"[\s_\-./:]+", spaced.lower()) if w]
    meaningful = [w for w in words if re.fullmatch(r"[a-z]{3,}", w) and w not in ("intent", "label", "class")]
    return " ".join(words) if meaningful else None


def median_examples_per_label(labels: list[str]) -> int:
    """Examples of the median label."""
    counts = sorted(Counter(labels).values())
    return counts[len(counts) // 2] if counts else 0


class ProbeFirstTrainer:
    """Trains the probe, optionally the fine-tuned model, and selects the one to serve.

    Args:
        config: Training settings (``finetune``, ``fallback_rate`` and the fine-tuning ones).
    """

    def __init__(self, config: TrainingConfig) -> None:
        if config.finetune not in FINETUNE_MODES:
            raise ValueError(f"finetune must be one of {FINETUNE_MODES}, got {config.finetune!r}")
        if config.probe_vote_weight < 0:
            raise ValueError(f"probe_vote_weight must be 0 or more, got {config.probe_vote_weight}")
        self.config = config
        # What the last fitted probe was trained from (the k-fold comparison refits it on folds).
        self._inputs: _ProbeInputs | None = None

    # ----------------------------------------------------------------- probe
    def fit_probe(self, intent_examples: list[Example], sentiment_examples: list[Example],
                  validation_examples: list[Example] | None = None) -> ProbeClassifier:
        """The probe model on all intent examples: C, temperature and threshold by cross-validation.

        Args:
            validation_examples: Optional given validation set; its out-of-scope examples choose
                the threshold with the in-scope ones (otherwise out-of-fold scores do).
        """
        cfg, started = self.config, time.perf_counter()
        folder = export_encoder(cfg.resolved_encoder())
        intents = sorted({e.label for e in intent_examples})
        sentiments = list(SENTIMENT_LABELS)
        probe = ProbeClassifier(intents, sentiments, _neutral_head(intents, 1), _neutral_head(sentiments, 1),
                                1.0, 1.0, 0.0, cfg, folder, middle_weight=cfg.probe_middle_weight)
        trainer = ProbeTrainer(seed=cfg.seed)
        # The intent head reads the last and middle layers; the sentiment head the last layer alone.
        pooled, vectors = probe.encoded([e.text for e in intent_examples])
        probe.sentiment_head = _neutral_head(sentiments, pooled.shape[1])
        anchors = self._name_anchors(probe, [e.label for e in intent_examples])
        fit = trainer.fit(vectors, [e.label for e in intent_examples], intents, anchors=anchors)
        self._inputs = _ProbeInputs(vectors, anchors, fit.anchors_used)
        probe.intent_head = fit.head
        index = {label: i for i, label in enumerate(intents)}
        targets = np.array([index[e.label] for e in intent_examples])
        oof = fit.oof_logits if fit.oof_logits is not None else fit.head.logits(vectors)
        probe.intent_temperature = fit_temperature(oof, targets)
        vote_info: dict[str, Any] = {"probe_vote_weight": 0.0}
        if cfg.probe_vote_weight > 0 and fit.oof_logits is not None:
            oof, vote_info = self._add_vote(probe, fit, trainer, vectors, targets, [e.label for e in intent_examples])
        probe.oos_threshold, threshold_info = self._threshold(probe, oof, targets, validation_examples)
        sentiment_fit: ProbeFit | None = None
        ordinary: list[Example] = []
        if sentiment_examples:
            sentiment_fit, ordinary = self._fit_sentiment(probe, trainer, sentiment_examples, intent_examples, pooled)
        probe.metrics = {
            "kind": "probe",
            "probe_c": fit.c,
            "probe_middle_weight": probe.middle_weight,
            "probe_cv_folds": fit.folds,
            "probe_cv_accuracy": fit.cv_accuracy,
            "probe_cv_grid": {str(c): a for c, a in fit.grid.items()},
            "probe_intent_names": fit.anchors_used,
            "probe_intent_names_cv": fit.anchor_scores,
            **vote_info,
            "sentiment_cv_accuracy": sentiment_fit.cv_accuracy if sentiment_fit else None,
            "train_examples": len(intent_examples),
            "sentiment_examples": len(sentiment_examples),
            "sentiment_ordinary_examples": len(ordinary),
            "sentiment_priors": dict(zip(sentiments, self.config.sentiment_priors)),
            "intent_temperature": probe.intent_temperature,
            "sentiment_temperature": probe.sentiment_temperature,
            "oos_threshold": probe.oos_threshold,
            **threshold_info,
            "probe_seconds": round(time.perf_counter() - started, 1),
        }
        logger.info("probe trained in %.1f s (cross-validated accuracy %s)", time.perf_counter() - started,
                    f"{fit.cv_accuracy:.4f}" if fit.cv_accuracy is not None else "n/a")
        return probe

    def _add_vote(self, probe: ProbeClassifier, fit: ProbeFit, trainer: ProbeTrainer, vectors: np.ndarray,
                  targets: np.ndarray, labels: list[str]) -> tuple[np.ndarray, dict[str, Any]]:
        """Put the nearest-neighbour vote on the probe's intent head unless cross-validation says it hurts.

        The vote of each example comes from the examples outside its fold (the folds C was chosen on),
        so the temperature and the threshold are calibrated on scores of models that did not see it.
        Returns the out-of-fold scores of the head served (fused or not) and what was measured.
        """
        weight, base_temperature = self.config.probe_vote_weight, probe.intent_temperature
        assert fit.oof_logits is not None
        votes = out_of_fold_votes(vectors, targets, len(probe.intents), stratified_folds(labels, fit.folds, trainer.seed))
        fused = log_softmax(fit.oof_logits, base_temperature) + weight * votes
        head_accuracy = float(np.mean(fit.oof_logits.argmax(axis=1) == targets))
        fused_accuracy = float(np.mean(fused.argmax(axis=1) == targets))
        info = {"probe_vote_cv_accuracy": fused_accuracy, "probe_head_cv_accuracy": head_accuracy}
        if fused_accuracy < head_accuracy:
            logger.info("no nearest-neighbour vote: cross-validated accuracy %.4f with it, %.4f without",
                        fused_accuracy, head_accuracy)
            return fit.oof_logits, {"probe_vote_weight": 0.0, **info}
        probe.intent_head = NeighbourVoteHead.over(fit.head, base_temperature, vectors, targets, weight)
        probe.intent_temperature = fit_temperature(fused, targets)
        return fused, {"probe_vote_weight": weight, **info, "probe_vote_memory_rows": int(len(targets))}

    def _name_anchors(self, probe: ProbeClassifier, labels: list[str]) -> tuple[np.ndarray, list[str]] | None:
        """Embedded intent names as extra training rows, with few examples per intent (see ``label_text``)."""
        if median_examples_per_label(labels) >= SMALL_DATA:
            return None
        named = [(label, text) for label in sorted(set(labels)) if label not in self.config.oos_labels
                 and (text := label_text(label)) is not None]
        if not named:
            return None
        return probe.features([text for _, text in named]), [label for label, _ in named]

    def _fit_sentiment(self, probe: ProbeClassifier, trainer: ProbeTrainer, sentiment_examples: list[Example],
                       intent_examples: list[Example], intent_vectors: np.ndarray) -> tuple[ProbeFit, list[Example]]:
        """The sentiment head, taught what ordinary turns look like and set to realistic label shares.

        ``intent_vectors`` are the intent examples' pooled (last-layer) vectors: what this head reads.

        A few hundred labelled sentences, a third of them angry, teach a head that anything short and
        unlike a request is negative ("goodbye" 0.98). Two corrections:

        * the tenant's own intent examples are ordinary customer turns: they join as ``neutral``,
          except intents that a head trained on the sentiment data alone calls mostly negative
          (complaints);
        * the head is fitted with balanced classes, then its biases are moved from those equal
          shares to ``sentiment_priors`` (the share of each label in real traffic; a prior shift,
          Saerens et al. 2002), so a message is called negative when it is, not when it is unusual.
        """
        sentiments = probe.sentiments
        sent_vectors = probe.pooled([e.text for e in sentiment_examples])
        first = trainer.fit(sent_vectors, [e.label for e in sentiment_examples], sentiments)
        negative = sentiments.index("negative")
        predicted = first.head.logits(intent_vectors).argmax(axis=1)
        by_intent: dict[str, list[int]] = {}
        for i, example in enumerate(intent_examples):
            by_intent.setdefault(example.label, []).append(i)
        kept = [i for rows in by_intent.values() if np.mean(predicted[rows] == negative) < 0.5 for i in rows]
        ordinary = [Example(intent_examples[i].text, "neutral") for i in kept]
        examples = sentiment_examples + ordinary
        vectors = np.concatenate([sent_vectors, intent_vectors[kept]]) if kept else sent_vectors
        fit = trainer.fit(vectors, [e.label for e in examples], sentiments)
        index = {label: i for i, label in enumerate(sentiments)}
        targets = np.array([index[e.label] for e in examples])
        oof = fit.oof_logits if fit.oof_logits is not None else fit.head.logits(vectors)
        probe.sentiment_temperature = fit_temperature(oof, targets)
        shift = np.log(np.asarray(self.config.sentiment_priors, dtype=np.float64) * len(sentiments))
        fit.head.bias = (fit.head.bias + probe.sentiment_temperature * shift).astype(np.float32)
        probe.sentiment_head = fit.head
        return fit, ordinary

    def _threshold(self, probe: ProbeClassifier, oof: np.ndarray, targets: np.ndarray,
                   validation: list[Example] | None) -> tuple[float, dict[str, Any]]:
        """Out-of-scope threshold: on out-of-scope examples when there are any, else ``fallback_rate``."""
        scores = probe.in_scope_score(oof)
        in_scope = ~np.isin(targets, probe._oos_classes)
        correct = oof.argmax(axis=1) == targets
        oos_val = [e for e in validation or [] if e.label in self.config.oos_labels]
        if oos_val:  # a given validation set: its in-scope and out-of-scope examples choose
            in_val = [e for e in validation or [] if e.label in probe.intents and e.label not in self.config.oos_labels]
            if in_val:
                val_logits = probe.logits([e.text for e in in_val])[0]
                scores, correct = probe.in_scope_score(val_logits), val_logits.argmax(axis=1) == np.array(
                    [probe.intents.index(e.label) for e in in_val])
                in_scope = np.ones(len(in_val), dtype=bool)
            oos_scores = probe.in_scope_score(probe.logits([e.text for e in oos_val])[0])
            rule = "in-scope accuracy + out-of-scope recall on the validation set"
        elif not in_scope.all():  # out-of-scope training examples: their out-of-fold scores choose
            oos_scores = scores[~in_scope]
            rule = "in-scope accuracy + out-of-scope recall, out of fold"
        else:
            threshold = threshold_without_oos(scores, self.config.fallback_rate)
            return threshold, {"threshold_rule": f"{self.config.fallback_rate:.0%} of out-of-fold in-scope scores",
                               "heldout_fallback_rate": float(np.mean(scores < threshold))}
        threshold = choose_oos_threshold(scores[in_scope], correct[in_scope], oos_scores)
        return threshold, {"threshold_rule": rule,
                           "heldout_fallback_rate": float(np.mean(scores[in_scope] < threshold)),
                           "heldout_oos_recall": float(np.mean(oos_scores < threshold))}

    # ------------------------------------------------------------- selection
    def fit(self, intent_examples: list[Example], sentiment_examples: list[Example],
            validation_examples: list[Example] | None = None) -> Selection:
        """Probe, then (unless ``finetune: never``) fine-tune and serve the better."""
        cfg = self.config
        probe = self.fit_probe(intent_examples, sentiment_examples, validation_examples)
        if cfg.finetune == "never":
            return Selection("probe", probe, None, {"method": "probe only (finetune: never)"})
        if cfg.finetune == "always":  # no comparison to pay for: the user asked for the fine-tuned model
            finetuned = JointTrainer(cfg).fit(intent_examples, sentiment_examples, validation_examples)
            return Selection("finetuned", probe, finetuned, {
                "method": "fine-tuned model served without comparison (finetune: always)",
                "probe_cv_accuracy": probe.metrics["probe_cv_accuracy"]})
        in_scope_labels = [e.label for e in intent_examples if e.label not in cfg.oos_labels]
        small = validation_examples is None and median_examples_per_label(in_scope_labels) < SMALL_DATA
        comparison = self._compare_kfold(intent_examples, sentiment_examples, probe) if small else \
            self._compare_split(intent_examples, sentiment_examples, validation_examples, probe)
        finetuned = comparison.pop("_finetuned", None)
        if comparison["finetuned_score"] <= comparison["probe_score"]:
            logger.info("serving the probe: %.4f against fine-tuned %.4f (%s)", comparison["probe_score"],
                        comparison["finetuned_score"], comparison["method"])
            return Selection("probe", probe, None, comparison)
        if finetuned is None:  # k-fold comparison: the served model is trained on all the data
            finetuned = JointTrainer(cfg).fit(intent_examples, sentiment_examples)
        logger.info("serving the fine-tuned model: %.4f against probe %.4f (%s)", comparison["finetuned_score"],
                    comparison["probe_score"], comparison["method"])
        return Selection("finetuned", probe, finetuned, comparison)

    def _compare_split(self, intent_examples: list[Example], sentiment_examples: list[Example],
                       validation_examples: list[Example] | None, probe: ProbeClassifier) -> dict[str, Any]:
        """Both models trained on the same training part and scored on the same validation part."""
        cfg = self.config
        if validation_examples is None:
            train, validation = stratified_split(intent_examples, cfg.validation_fraction, cfg.seed)
        else:
            train, validation = intent_examples, validation_examples
        scored = [e for e in validation if e.label in probe.intents and e.label not in cfg.oos_labels]
        if not scored:
            return {"method": "no held-out data", "probe_score": 1.0, "finetuned_score": 0.0}
        split_probe = self.fit_probe(train, [], None) if validation_examples is None else probe
        # The fine-tuned model early-stops on this split too (as it always has): its score is slightly
        # optimistic, which only matters when the two are within noise of each other.
        finetuned = JointTrainer(cfg).fit(train, sentiment_examples, validation_examples=validation)
        gold = [e.label for e in scored]
        return {"method": f"validation split ({len(scored)} examples)",
                **_scores("probe", _predict(split_probe, scored), gold),
                **_scores("finetuned", _predict(finetuned, scored), gold), "_finetuned": finetuned}

    def _compare_kfold(self, intent_examples: list[Example], sentiment_examples: list[Example],
                       probe: ProbeClassifier) -> dict[str, Any]:
        """Both models trained on the same folds; every example scored once, by models that did not see it.

        The fine-tuned runs early-stop on a split of their own training folds, never on the scored fold.
        """
        cfg = self.config
        labels = [e.label for e in intent_examples]
        parts = stratified_folds(labels, COMPARISON_FOLDS, cfg.seed)
        inputs = self._inputs  # fit_probe on these very examples ran just before: no second encoder pass
        assert inputs is not None and len(inputs.vectors) == len(intent_examples)
        vectors = inputs.vectors
        trainer = ProbeTrainer(c_grid=(probe.metrics["probe_c"],), seed=cfg.seed)
        served_head = probe.intent_head
        index = {label: i for i, label in enumerate(probe.intents)}
        gold: list[str] = []
        probe_predicted: list[str] = []
        finetuned_predicted: list[str] = []
        for fold, held in enumerate(parts):
            keep = np.setdiff1d(np.arange(len(intent_examples)), held)
            known = {labels[i] for i in keep}
            rows = [i for i in held if labels[i] not in cfg.oos_labels and labels[i] in known]
            if not rows:
                continue
            train = [intent_examples[i] for i in keep]
            scored = [intent_examples[i] for i in rows]
            head = trainer.fit(vectors[keep], [labels[i] for i in keep], probe.intents, cross_validate=False,
                               anchors=inputs.anchors, use_anchors=inputs.anchors_used).head
            if isinstance(served_head, NeighbourVoteHead):  # the probe compared is the one served: with its vote
                head = NeighbourVoteHead.over(head, served_head.base_temperature, vectors[keep],
                                              np.array([index[labels[i]] for i in keep]), served_head.weight)
            probe_predicted += [probe.intents[int(p)] for p in head.logits(vectors[rows]).argmax(axis=1)]
            logger.info("comparison fold %d of %d: fine-tuning on %d examples", fold + 1, len(parts), len(train))
            finetuned_predicted += _predict(JointTrainer(cfg).fit(train, sentiment_examples), scored)
            gold += [e.label for e in scored]
        if not gold:
            return {"method": "no held-out data", "probe_score": 1.0, "finetuned_score": 0.0}
        return {"method": f"{len(parts)}-fold cross-validation ({len(gold)} examples)",
                **_scores("probe", probe_predicted, gold), **_scores("finetuned", finetuned_predicted, gold)}


def _neutral_head(classes: list[str], hidden: int) -> ProbeHead:
    """A head that always says ``neutral`` (a sentiment head without sentiment data)."""
    bias = np.array([1.0 if label == "neutral" else 0.0 for label in classes], dtype=np.float32)
    return ProbeHead(classes, np.zeros((len(classes), hidden), dtype=np.float32), bias)


def _predict(model: ProbeClassifier | TrainedClassifier, examples: list[Example]) -> list[str]:
    """Top intent per example, no threshold (the threshold is chosen afterwards for the served model)."""
    logits = model.logits([e.text for e in examples])[0]
    return [model.intents[int(i)] for i in logits.argmax(axis=1)]


def macro_f1(predicted: list[str], gold: list[str]) -> float:
    """Mean F1 over the gold labels (every intent counts the same, however many examples it has)."""
    scores = []
    for label in sorted(set(gold)):
        tp = sum(p == label and g == label for p, g in zip(predicted, gold))
        fp = sum(p == label and g != label for p, g in zip(predicted, gold))
        fn = sum(p != label and g == label for p, g in zip(predicted, gold))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(scores)) if scores else 0.0


def _scores(name: str, predicted: list[str], gold: list[str]) -> dict[str, float]:
    """``<name>_score`` (macro F1: what the choice is made on) and ``<name>_accuracy``."""
    return {f"{name}_score": macro_f1(predicted, gold),
            f"{name}_accuracy": float(np.mean([p == g for p, g in zip(predicted, gold)]))}
