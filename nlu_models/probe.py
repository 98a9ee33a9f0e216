"""The frozen-encoder probe: a well-regularised logistic regression on normalised sentence embeddings.

It is the simplest strong baseline of intent classification and, with few examples per intent, usually
the best model there is (on held-out 10-shot data it beat fine-tuning at default settings by 6 points).
Every training run fits it first (seconds), and the fine-tuned model is served only where it scores
higher on the same held-out data. Its regularisation strength is chosen by stratified k-fold
cross-validation, and the out-of-fold logits it produces on the way calibrate it and choose its
out-of-scope threshold: every training example votes once, on a model that did not see it.

Training needs scikit-learn (``.venv``); :class:`ProbeHead` itself is numpy only, so the Rasa process
serves it.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Sequence

import numpy as np

logger = logging.getLogger(__name__)

#: Inverse regularisation strengths tried by cross-validation (embeddings are unit vectors, so
#: useful values are large; the benchmark's frozen + LR baseline uses 20).
C_GRID = (5.0, 20.0, 80.0)
#: Folds of the cross-validation (fewer when the smallest intent has fewer examples).
MAX_FOLDS = 5


@dataclass
class ProbeHead:
    """A linear layer over unit-normalised pooled embeddings: ``logits = normalise(x) · Wᵀ + b``.

    Attributes:
        classes: Label of each output.
        weight: ``(classes, hidden)`` weights.
        bias: ``(classes,)`` biases.
    """

    classes: List[str]
    weight: np.ndarray
    bias: np.ndarray

    def logits(self, pooled: np.ndarray) -> np.ndarray:
        """Logits of raw mean-pooled vectors (normalised here, as in training)."""
        unit = pooled / np.clip(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-9, None)
        return unit.astype(np.float32) @ self.weight.T.astype(np.float32) + self.bias.astype(np.float32)

    def arrays(self, prefix: str) -> Dict[str, np.ndarray]:
        """The head as named arrays (``<prefix>_weight``, ``<prefix>_bias``) for an ``.npz`` file."""
        return {f"{prefix}_weight": self.weight.astype(np.float32), f"{prefix}_bias": self.bias.astype(np.float32)}

    @classmethod
    def from_arrays(cls, arrays: Dict[str, np.ndarray], prefix: str, classes: List[str]) -> "ProbeHead":
        """Inverse of :meth:`arrays`; checks the shapes against the labels."""
        weight, bias = np.asarray(arrays[f"{prefix}_weight"]), np.asarray(arrays[f"{prefix}_bias"])
        if weight.shape[0] != len(classes) or bias.shape != (len(classes),):
            raise ValueError(f"{prefix} head has {weight.shape[0]} rows for {len(classes)} labels")
        return cls(list(classes), weight, bias)


@dataclass
class ProbeFit:
    """A fitted probe and what cross-validation said about it.

    Attributes:
        head: Fitted on every example given.
        c: The regularisation strength chosen.
        cv_accuracy: Mean out-of-fold accuracy at ``c`` (None when there was too little data).
        folds: Number of folds used (0: none).
        oof_logits: Out-of-fold logits of every example at ``c`` (rows in input order; None without CV).
        grid: Out-of-fold accuracy of every ``c`` tried (with the anchor setting chosen).
        anchors_used: Whether the anchors (e.g. intent names) are in the fitted head's training rows.
        anchor_scores: Best out-of-fold accuracy without ("False") and with ("True") the anchors.
    """

    head: ProbeHead
    c: float
    cv_accuracy: float | None
    folds: int
    oof_logits: np.ndarray | None
    grid: Dict[float, float] = field(default_factory=dict)
    anchors_used: bool = False
    anchor_scores: Dict[str, float] = field(default_factory=dict)


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length."""
    return vectors / np.clip(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-9, None)


def stratified_folds(labels: Sequence[str], folds: int, seed: int) -> List[np.ndarray]:
    """Fold index of each example: every label's examples dealt round-robin after a seeded shuffle.

    Returns ``folds`` arrays of row indices. A label with fewer examples than folds appears in only
    some folds (its other folds train without it).
    """
    rng = random.Random(seed)
    by_label: Dict[str, List[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    assignment = [[] for _ in range(folds)]  # type: List[List[int]]
    offset = 0
    for label in sorted(by_label):
        rows = by_label[label][:]
        rng.shuffle(rows)
        for j, row in enumerate(rows):
            assignment[(offset + j) % folds].append(row)
        offset += len(rows)  # the next label starts where this one stopped: folds stay even in size
    return [np.array(sorted(rows), dtype=np.int64) for rows in assignment]


def fold_count(labels: Sequence[str], max_folds: int = MAX_FOLDS) -> int:
    """Folds that leave every label at least one training example in every fold (0: too little data)."""
    counts: Dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    if len(counts) < 2:
        return 0
    smallest = sorted(counts.values())[len(counts) // 2]  # the median label decides; tiny labels stay in training
    return min(max_folds, smallest) if smallest >= 2 else 0


class ProbeTrainer:
    """Fits :class:`ProbeHead` s with scikit-learn's logistic regression.

    Args:
        c_grid: Candidate inverse regularisation strengths (one means no search).
        max_folds: Upper bound on cross-validation folds.
        seed: Seed of the fold assignment.
        balanced: Weight classes inversely to their frequency (imbalanced data is the rule in
            reviewed customer messages).
    """

    def __init__(self, c_grid: Sequence[float] = C_GRID, max_folds: int = MAX_FOLDS, seed: int = 13,
                 balanced: bool = True) -> None:
        if not c_grid or any(c <= 0 for c in c_grid):
            raise ValueError(f"c_grid needs positive values, got {list(c_grid)}")
        self.c_grid = tuple(float(c) for c in c_grid)
        self.max_folds = max_folds
        self.seed = seed
        self.balanced = balanced

    def _fit(self, vectors: np.ndarray, targets: np.ndarray, num_classes: int, c: float) -> tuple[np.ndarray, np.ndarray]:
        from sklearn.linear_model import LogisticRegression

        present = np.unique(targets)
        model = LogisticRegression(C=c, max_iter=3000, class_weight="balanced" if self.balanced else None)
        model.fit(vectors, targets)
        weight = np.zeros((num_classes, vectors.shape[1]), dtype=np.float32)
        bias = np.full(num_classes, -1e4, dtype=np.float32)  # a class absent from this fold is never predicted
        if len(present) == 2:  # scikit-learn's binary case has one row: class 1 against class 0
            weight[present[1]], bias[present[1]] = model.coef_[0] / 2, model.intercept_[0] / 2
            weight[present[0]], bias[present[0]] = -model.coef_[0] / 2, -model.intercept_[0] / 2
        else:
            weight[present], bias[present] = model.coef_, model.intercept_
        return weight, bias

    def fit(self, vectors: np.ndarray, labels: Sequence[str], classes: Sequence[str] | None = None,
            cross_validate: bool = True, anchors: tuple[np.ndarray, Sequence[str]] | None = None,
            use_anchors: bool | None = None) -> ProbeFit:
        """Choose C (and whether to use ``anchors``) by cross-validation and fit on everything.

        Args:
            vectors: Raw pooled embeddings, one row per example.
            labels: Label of each row.
            classes: Output order (sorted labels when None); every label must be in it.
            cross_validate: False fits the first C of the grid on everything, nothing more.
            anchors: Extra (vectors, labels) that are always trained on and never scored, e.g. the
                embedded intent names; cross-validation decides whether they help.
            use_anchors: Force the anchors on or off (None: cross-validation decides).
        """
        classes = list(classes) if classes is not None else sorted(set(labels))
        index = {label: i for i, label in enumerate(classes)}
        if len(classes) < 2:
            raise ValueError("a classifier needs at least two labels")
        targets = np.array([index[label] for label in labels], dtype=np.int64)
        unit = unit_rows(np.asarray(vectors, dtype=np.float32))
        if anchors is not None and len(anchors[1]):
            anchor_unit = unit_rows(np.asarray(anchors[0], dtype=np.float32))
            anchor_targets = np.array([index[label] for label in anchors[1]], dtype=np.int64)
        else:
            anchor_unit, anchor_targets, use_anchors = np.zeros((0, unit.shape[1]), np.float32), np.zeros(0, np.int64), False
        options = [use_anchors] if use_anchors is not None else [False, True]
        # Large data sets need fewer folds to choose C steadily, and each fit costs more.
        folds = fold_count(labels, self.max_folds if len(labels) <= 3000 else 3) if cross_validate else 0
        scores: Dict[tuple[bool, float], float] = {}
        oofs: Dict[tuple[bool, float], np.ndarray] = {}
        if folds >= 2:
            parts = stratified_folds(labels, folds, self.seed)
            for option in options:
                for c in self.c_grid:
                    oof = np.zeros((len(targets), len(classes)), dtype=np.float32)
                    for held in parts:
                        keep = np.ones(len(targets), dtype=bool)
                        keep[held] = False
                        x, y = self._training_rows(unit[keep], targets[keep], anchor_unit, anchor_targets, option)
                        if len(np.unique(y)) < 2:
                            continue
                        weight, bias = self._fit(x, y, len(classes), c)
                        oof[held] = unit[held] @ weight.T + bias
                    scores[(option, c)] = float(np.mean(oof.argmax(axis=1) == targets))
                    oofs[(option, c)] = oof
            # Ties: without anchors first, then the C nearest the usual 20.
            best = max(scores, key=lambda key: (scores[key], not key[0], -abs(np.log(key[1] / 20.0))))
        elif not cross_validate:
            best = (options[0] if use_anchors is not None else False, self.c_grid[0])
        else:
            best = (bool(use_anchors), 20.0 if 20.0 in self.c_grid else self.c_grid[len(self.c_grid) // 2])
        option, best_c = best
        x, y = self._training_rows(unit, targets, anchor_unit, anchor_targets, option)
        weight, bias = self._fit(x, y, len(classes), best_c)
        grid = {c: a for (o, c), a in scores.items() if o == option}
        logger.info("probe: C=%g%s (cross-validation %s over %d folds)", best_c, " with anchors" if option else "",
                    ", ".join(f"{c:g}{'+anchors' if o else ''}: {a:.4f}" for (o, c), a in scores.items()) or "skipped",
                    folds)
        fit = ProbeFit(ProbeHead(classes, weight, bias), best_c, scores.get(best), folds if scores else 0,
                       oofs.get(best), grid)
        fit.anchors_used = bool(option)
        fit.anchor_scores = {str(o): max(a for (p, _), a in scores.items() if p == o) for o in options} if scores else {}
        return fit

    @staticmethod
    def _training_rows(x: np.ndarray, y: np.ndarray, anchor_x: np.ndarray, anchor_y: np.ndarray,
                       use: bool) -> tuple[np.ndarray, np.ndarray]:
        return (np.concatenate([x, anchor_x]), np.concatenate([y, anchor_y])) if use and len(anchor_y) else (x, y)


def save_heads(path: Path, heads: Dict[str, Any]) -> None:
    """Write named heads (anything with ``arrays(prefix)``: see ``nlu_models.neighbour_vote``) into one ``.npz`` file."""
    arrays: Dict[str, np.ndarray] = {}
    for name, head in heads.items():
        arrays.update(head.arrays(name))
    with Path(path).open("wb") as handle:
        np.savez(handle, **arrays)
