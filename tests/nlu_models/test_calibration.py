"""Temperature scaling and the out-of-scope threshold."""

from __future__ import annotations

import numpy as np

from nlu_models.calibration import auroc, choose_oos_penalty, choose_oos_threshold, fit_temperature, in_scope_scores, softmax


def test_fit_temperature_recovers_the_generating_temperature() -> None:
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 3, size=(4000, 5))
    labels = np.array([rng.choice(5, p=p) for p in softmax(true_logits)])
    # A model that is overconfident by a factor of 2.5 needs T ≈ 2.5.
    assert abs(fit_temperature(true_logits * 2.5, labels) - 2.5) < 0.25


def test_threshold_with_oos_examples_separates_them() -> None:
    in_scope = np.array([0.9, 0.95, 0.8, 0.85, 0.7])
    correct = np.array([True, True, True, True, False])
    oos = np.array([0.3, 0.4, 0.5, 0.75])
    threshold = choose_oos_threshold(in_scope, correct, oos)
    assert 0.5 < threshold <= 0.8


def test_threshold_without_oos_keeps_most_correct_predictions() -> None:
    confidence = np.linspace(0.5, 1.0, 101)
    threshold = choose_oos_threshold(confidence, np.ones(101, dtype=bool), None, target_in_scope_recall=0.9)
    assert np.mean(confidence >= threshold) >= 0.9


def test_auroc_counts_ordered_pairs_and_half_ties() -> None:
    assert auroc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert auroc(np.array([1.0]), np.array([2.0])) == 0.0
    assert auroc(np.array([1.0, 2.0]), np.array([2.0, 0.0])) == 0.625  # 2 wins, 1 tie of 4 pairs
    assert auroc(np.array([-np.inf, 3.0]), np.array([-np.inf])) == 0.75
    assert auroc(np.array([]), np.array([1.0])) == 0.5


def test_oos_penalty_subtracts_the_out_of_scope_logit_from_the_top_logit() -> None:
    logits = np.array([[8.0, 6.0, 1.0], [5.0, 1.0, 4.0], [1.0, 9.0, 2.0]])  # class 1 is out of scope
    assert in_scope_scores(logits, 1.0, "max_logit", [1]).tolist() == [8.0, 5.0, -np.inf]
    assert in_scope_scores(logits, 1.0, "max_logit", [1], 0.5).tolist() == [5.0, 4.5, -np.inf]
    assert in_scope_scores(logits, 1.0, "max_logit", [], 0.5).tolist() == [8.0, 5.0, 9.0]  # nothing to subtract


def test_oos_penalty_is_chosen_where_it_separates_held_out_texts() -> None:
    # In-scope texts all have a top logit of 8 or 9; out-of-scope ones reach the same top logit
    # but sit closer to the out-of-scope class, so only a penalty tells them apart.
    in_scope = np.array([[9.0, 1.0, 0.0], [8.0, 2.0, 0.0], [0.0, 1.0, 9.0], [0.0, 2.0, 8.0]])
    oos = np.array([[9.0, 6.0, 0.0], [8.5, 7.0, 0.0], [0.0, 6.5, 8.0]])
    assert choose_oos_penalty(in_scope, oos, (0.0, 0.5, 1.0), 1.0, "max_logit", [1]) in (0.5, 1.0)
    assert choose_oos_penalty(in_scope, oos, (0.0,), 1.0, "max_logit", [1]) == 0.0
    # When no penalty helps, ties keep the first candidate.
    assert choose_oos_penalty(in_scope[:, [0, 2, 1]] * 0 + 1, oos * 0 + 1, (0.0, 1.0), 1.0, "max_logit", [1]) == 0.0
