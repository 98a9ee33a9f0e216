"""Temperature scaling and the out-of-scope threshold (numpy at import: shared by trainer and server)."""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature``."""
    scaled = logits / temperature
    scaled = scaled - scaled.max(axis=-1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=-1, keepdims=True)


def log_softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise log-softmax of ``logits / temperature``."""
    scaled = logits / temperature
    scaled = scaled - scaled.max(axis=-1, keepdims=True)
    return scaled - np.log(np.exp(scaled).sum(axis=-1, keepdims=True))


def in_scope_scores(
    intent_logits: np.ndarray, temperature: float, oos_score: str, oos_classes: list[int], oos_penalty: float = 0.0
) -> np.ndarray:
    """The score the out-of-scope threshold applies to, per row (the trainer and the server share it).

    ``oos_score`` is ``max_logit`` (the top logit, less ``oos_penalty`` times the best
    out-of-scope class's logit when there is one) or ``probability`` (the calibrated top
    probability); rows whose top class is one of ``oos_classes`` score -inf.
    """
    if oos_score == "max_logit":
        score = intent_logits.max(axis=-1).astype(np.float64)
        if oos_classes and oos_penalty:
            score = score - oos_penalty * intent_logits[:, oos_classes].max(axis=-1).astype(np.float64)
    else:
        score = softmax(intent_logits.astype(np.float64), temperature).max(axis=-1)
    if oos_classes:
        score = np.where(np.isin(intent_logits.argmax(axis=-1), oos_classes), -np.inf, score)
    return score


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative (ties count half).

    scikit-learn's ROC AUC, with -inf scores (top class out of scope) ranked lowest, tied.
    """
    if len(positive) == 0 or len(negative) == 0:
        return 0.5
    # Imported here: only training chooses a penalty, and the server imports this module too.
    from sklearn.metrics import roc_auc_score

    values = np.nan_to_num(np.concatenate([positive, negative]).astype(np.float64), neginf=np.finfo(np.float64).min)
    return float(roc_auc_score(np.arange(len(values)) < len(positive), values))


def choose_oos_penalty(
    in_scope_logits: np.ndarray, oos_logits: np.ndarray, candidates: tuple[float, ...], temperature: float,
    oos_score: str, oos_classes: list[int],
) -> float:
    """The out-of-scope penalty (see ``in_scope_scores``) that best separates held-out data.

    Chosen by AUROC of in-scope against out-of-scope validation texts: it ranks every pair
    rather than counting errors at one threshold, so a hundred out-of-scope examples choose it
    more steadily than they choose the threshold. Ties keep the earlier candidate.
    """
    if not candidates:
        return 0.0
    best, best_auroc = float(candidates[0]), -1.0
    for penalty in candidates:
        value = auroc(in_scope_scores(in_scope_logits, temperature, oos_score, oos_classes, penalty),
                      in_scope_scores(oos_logits, temperature, oos_score, oos_classes, penalty))
        if value > best_auroc + 1e-12:
            best, best_auroc = float(penalty), value
    return best


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature minimising the negative log-likelihood on held-out data (grid + refinement).

    A 1-D search is exact enough and needs no optimiser state; T is searched on a log scale.
    """
    if len(labels) == 0:
        return 1.0

    def nll(t: float) -> float:
        probs = softmax(logits, t)
        return float(-np.log(probs[np.arange(len(labels)), labels] + 1e-12).mean())

    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 121))
    best = float(min(grid, key=nll))
    fine = np.exp(np.linspace(np.log(best / 1.1), np.log(best * 1.1), 41))
    return float(min(fine, key=nll))


def threshold_without_oos(scores: np.ndarray, rate: float) -> float:
    """Threshold that sends ``rate`` of held-out in-scope messages to fallback (0 with no finite score).

    Used when there are no out-of-scope examples to choose it: scores of -inf (an out-of-scope
    class on top) are left out.
    """
    finite = scores[np.isfinite(scores)]
    return float(np.quantile(finite, rate)) if len(finite) else 0.0


def choose_oos_threshold(
    in_scope_confidence: np.ndarray,
    in_scope_correct: np.ndarray,
    oos_confidence: np.ndarray | None = None,
    target_in_scope_recall: float = 0.97,
) -> float:
    """Score (a confidence or a similarity) below which a message is treated as out of scope.

    With out-of-scope validation examples, the threshold maximises the mean of in-scope accuracy
    (accepted and correct) and out-of-scope recall. Without them, it keeps
    ``target_in_scope_recall`` of the correctly classified in-scope examples.
    """
    if oos_confidence is not None and len(oos_confidence) > 0:
        candidates = np.unique(np.concatenate([in_scope_confidence, oos_confidence]))
        best_threshold, best_score = 0.0, -1.0
        for threshold in candidates:
            accepted_correct = float(np.mean((in_scope_confidence >= threshold) & in_scope_correct))
            oos_recall = float(np.mean(oos_confidence < threshold))
            score = (accepted_correct + oos_recall) / 2
            if score > best_score:
                best_threshold, best_score = float(threshold), score
        return best_threshold
    correct = in_scope_confidence[in_scope_correct]
    if len(correct) == 0:
        return 0.0
    return float(np.quantile(correct, 1.0 - target_in_scope_recall))
