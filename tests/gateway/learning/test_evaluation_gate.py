"""The evaluation gate and the held-out scoring it relies on."""

from __future__ import annotations

import pytest

from gateway.learning.evaluation_gate import GATED_METRICS, EvaluationGate
from gateway.learning.model_evaluator import score_predictions

PRODUCTION = {"intent_accuracy": 0.95, "intent_macro_f1": 0.94, "oos_recall": 0.9, "sentiment_accuracy": 0.92,
              "conversation_tests": 1.0}


def test_a_candidate_within_tolerance_on_every_metric_passes() -> None:
    candidate = {**PRODUCTION, "intent_accuracy": 0.931, "oos_recall": 1.0}
    decision = EvaluationGate(0.02).decide(candidate, PRODUCTION, production_version=3)
    assert decision.passed and decision.reasons == []
    assert decision.to_json()["production_version"] == 3
    assert [c["metric"] for c in decision.to_json()["checks"]] == list(GATED_METRICS)


def test_one_metric_dropping_beyond_tolerance_refuses_and_says_which() -> None:
    candidate = {**PRODUCTION, "conversation_tests": 0.9, "oos_recall": 0.95}
    decision = EvaluationGate(0.02).decide(candidate, PRODUCTION)
    assert not decision.passed
    assert decision.reasons == ["conversation_tests dropped 0.1000 (from 1.0000 to 0.9000; tolerance 0.0200)"]


def test_per_metric_tolerance_and_missing_metrics() -> None:
    candidate = {**PRODUCTION, "sentiment_accuracy": 0.85}
    assert EvaluationGate(0.02, per_metric={"sentiment_accuracy": 0.1}).decide(candidate, PRODUCTION).passed
    partial = {k: v for k, v in PRODUCTION.items() if k != "conversation_tests"}
    decision = EvaluationGate(0.02).decide(partial, PRODUCTION)
    assert not decision.passed and decision.reasons == ["conversation_tests was not measured for the candidate"]


def test_the_first_model_passes_without_a_production_model() -> None:
    assert EvaluationGate().decide(PRODUCTION, None).passed


def test_negative_tolerance_is_refused() -> None:
    with pytest.raises(ValueError):
        EvaluationGate(-0.1)


def test_scoring_counts_fallback_as_a_miss_in_scope_and_a_hit_out_of_scope() -> None:
    expected = ["greet", "greet", "order_status", "out_of_scope", "out_of_scope", "new_intent"]
    predicted = ["greet", "nlu_fallback", "greet", "nlu_fallback", "greet", "order_status"]
    accuracy, macro, oos_recall, per_intent = score_predictions(expected, predicted)
    assert accuracy == pytest.approx(1 / 4)
    assert oos_recall == pytest.approx(1 / 2)
    # greet: tp 1, fp 2 (order_status→greet, out_of_scope→greet), fn 1 → 2/(2+2+1)
    assert per_intent == {"greet": pytest.approx(0.4), "new_intent": 0.0, "order_status": 0.0}
    assert macro == pytest.approx(0.4 / 3, abs=1e-4)
