"""The evaluation gate: a candidate replaces the model in production only if no metric drops too far."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Metrics the gate compares (all in 0..1, higher is better).
GATED_METRICS = ("intent_accuracy", "intent_macro_f1", "oos_recall", "sentiment_accuracy", "conversation_tests")


@dataclass(frozen=True)
class GateCheck:
    """One metric of the candidate next to production's."""

    metric: str
    candidate: float
    production: float | None
    tolerance: float

    @property
    def drop(self) -> float:
        """How much lower the candidate is (negative: it is better)."""
        return 0.0 if self.production is None else round(self.production - self.candidate, 4)

    @property
    def passed(self) -> bool:
        """Within tolerance (a metric production never had passes)."""
        return self.production is None or self.drop <= self.tolerance + 1e-9

    def to_json(self) -> dict[str, Any]:
        """Stored with the version."""
        return {"metric": self.metric, "candidate": self.candidate, "production": self.production,
                "drop": self.drop, "tolerance": self.tolerance, "passed": self.passed}


@dataclass(frozen=True)
class GateDecision:
    """Whether a candidate may be promoted, and why."""

    checks: list[GateCheck]
    production_version: int | None
    missing: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Every metric within tolerance and none missing from the candidate."""
        return not self.missing and all(c.passed for c in self.checks)

    @property
    def reasons(self) -> list[str]:
        """One line per failed check."""
        lines = [f"{c.metric} dropped {c.drop:.4f} (from {c.production:.4f} to {c.candidate:.4f}; "
                 f"tolerance {c.tolerance:.4f})" for c in self.checks if not c.passed]
        lines += [f"{m} was not measured for the candidate" for m in self.missing]
        return lines

    def to_json(self) -> dict[str, Any]:
        """Stored with the version and shown on the models page."""
        return {"passed": self.passed, "production_version": self.production_version,
                "checks": [c.to_json() for c in self.checks], "reasons": self.reasons}


class EvaluationGate:
    """Compares a candidate's metrics with production's.

    Args:
        tolerance: Largest allowed drop of any metric (absolute, e.g. 0.02 = two points).
        per_metric: Overrides of the tolerance for single metrics.
    """

    def __init__(self, tolerance: float = 0.02, per_metric: dict[str, float] | None = None) -> None:
        if tolerance < 0:
            raise ValueError("the tolerance cannot be negative")
        self.tolerance = tolerance
        self.per_metric = per_metric or {}

    def decide(self, candidate: dict[str, Any], production: dict[str, Any] | None,
               production_version: int | None = None) -> GateDecision:
        """The decision for ``candidate`` against ``production`` (no production model: it passes)."""
        checks = []
        missing = []
        for metric in GATED_METRICS:
            value = candidate.get(metric)
            if value is None:
                missing.append(metric)
                continue
            before = None if production is None else production.get(metric)
            checks.append(GateCheck(metric, float(value), None if before is None else float(before),
                                    self.per_metric.get(metric, self.tolerance)))
        return GateDecision(checks, production_version, missing)
