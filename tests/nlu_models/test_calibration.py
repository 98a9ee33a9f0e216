"""Temperature scaling and the out-of-scope threshold."""

from __future__ import annotations

import numpy as np

from nlu_models.calibration import choose_oos_threshold, fit_temperature, softmax


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
