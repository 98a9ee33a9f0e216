"""Scores of the NLU benchmark: accuracy, out-of-scope recall, macro recall, dissatisfied F1, thresholds."""

from __future__ import annotations

import numpy as np

from nlu_models.calibration import choose_oos_threshold


def score(predicted: list[str], gold: list[str], oos_label: str | None) -> dict[str, float]:
    """Accuracy (in-scope), out-of-scope recall, macro recall and the dissatisfied F1."""
    result: dict[str, float] = {}
    in_scope = [(p, g) for p, g in zip(predicted, gold) if g != oos_label]
    result["accuracy"] = float(np.mean([p == g for p, g in in_scope])) if in_scope else 0.0
    if oos_label:
        oos = [p for p, g in zip(predicted, gold) if g == oos_label]
        result["oos_recall"] = float(np.mean([p == oos_label for p in oos])) if oos else 0.0
    labels = sorted(set(gold))
    result["macro_recall"] = float(np.mean([np.mean([p == l for p, g in zip(predicted, gold) if g == l]) for l in labels]))
    tp = sum(p == g == "dissatisfied" for p, g in zip(predicted, gold))
    fp = sum(p == "dissatisfied" != g for p, g in zip(predicted, gold))
    fn = sum(g == "dissatisfied" != p for p, g in zip(predicted, gold))
    result["f1_dissatisfied"] = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return result


def oos_threshold(gold: np.ndarray, top: np.ndarray, confidence: np.ndarray, oos_label: str) -> float:
    """A baseline's out-of-scope threshold on validation data, chosen as the fine-tuned model's is.

    Predicting the out-of-scope class counts as confidence 0 (caught by any threshold).
    """
    confidence = np.where(top == oos_label, 0.0, confidence)
    is_oos = gold == oos_label
    return choose_oos_threshold(confidence[~is_oos], (top == gold)[~is_oos], confidence[is_oos])


def tradeoff(scores: np.ndarray, top: list[str], gold: list[str], oos_label: str,
             recalls: tuple[float, ...] = (0.85, 0.90, 0.95)) -> dict[str, float]:
    """Best in-scope accuracy on the test set at each out-of-scope recall, over all thresholds.

    A reference curve, not a result: the threshold is read off the test set itself, which shows how
    much of the gap to a target lies in the model and how much in choosing the threshold on
    validation data. ``scores`` is -inf where the top class is out of scope (caught by any threshold).
    """
    top_a, gold_a = np.array(top), np.array(gold)
    is_oos = gold_a == oos_label
    oos_scores = np.sort(scores[is_oos])
    correct = (top_a == gold_a)[~is_oos]
    curve: dict[str, float] = {}
    for recall in recalls:
        caught = int(np.ceil(recall * len(oos_scores) - 1e-9))
        # Messages scoring at or below the caught-th lowest out-of-scope score are rejected.
        bar = oos_scores[caught - 1] if caught > 0 else -np.inf
        curve[f"{round(100 * recall)}"] = float(np.mean((scores[~is_oos] > bar) & correct))
    return curve


def decide(top: list[str], confidence: np.ndarray, threshold: float, oos_label: str | None) -> list[str]:
    """Top label, or the out-of-scope label below the threshold (tasks without one: always the top)."""
    if not oos_label:
        return top
    return [label if c >= threshold else oos_label for label, c in zip(top, confidence)]
