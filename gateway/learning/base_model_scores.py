"""Scores of a model built outside the learning loop (``make train``), so its first version has metrics.

The loop scores every version it trains; the base model was never scored, so the models page showed
"-" for v1 and a first retrain had nothing to be compared with there. ``make train`` now scores the
archive on its project's held-out sets and writes the metrics beside it; registering the archive stores
them. The sets are the same files the loop keeps for the tenant, so the fingerprints match.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gateway.learning.model_evaluator import EvaluationSets, ModelEvaluator
from gateway.learning.model_registry import file_sha256


def metrics_path(archive: Path) -> Path:
    """Where ``make train`` writes an archive's metrics: ``models/northwind.tar.gz`` → ``models/northwind.metrics.json``."""
    return archive.parent / (archive.name.removesuffix(".tar.gz") + ".metrics.json")


def score_archive(archive: Path, project: Path) -> dict[str, Any]:
    """Every metric of ``archive`` on the held-out sets of the built ``project``, with the archive's hash."""
    tests = project / "tests"
    sets = EvaluationSets(nlu_holdout=project / "evaluation" / "nlu_holdout.yml",
                          conversation_tests=tests if tests.is_dir() else None)
    metrics = ModelEvaluator(sets).evaluate(archive)
    return {**metrics, "archive_sha256": file_sha256(archive)}


def scores_for(archive: Path, archive_sha256: str | None = None) -> dict[str, Any] | None:
    """The metrics ``make train`` wrote for exactly this archive (None: none, or for another build).

    Args:
        archive: The model archive.
        archive_sha256: Its hash when the caller has it already (the registry does); hashed here otherwise.
    """
    path = metrics_path(archive)
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(metrics, dict) or metrics.pop("archive_sha256", None) != (archive_sha256 or file_sha256(archive)):
        return None
    return metrics
