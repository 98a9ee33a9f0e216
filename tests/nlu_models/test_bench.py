"""The benchmark's scoring and report (no training: results are given)."""

from __future__ import annotations

import json
from pathlib import Path

from nlu_models.bench import earlier_run, score, write_report


def test_score_counts_out_of_scope_recall_apart_from_in_scope_accuracy() -> None:
    gold = ["a", "b", "oos", "oos"]
    result = score(["a", "oos", "oos", "b"], gold, "oos")
    assert result["accuracy"] == 0.5
    assert result["oos_recall"] == 0.5


def test_earlier_run_reads_records_and_the_older_string_form() -> None:
    assert earlier_run("abc1234 at 2026-11-28 07:00 UTC") == {"commit": "abc1234", "measured_at": "2026-11-28 07:00 UTC"}
    record = {"commit": "abc1234", "measured_at": "x"}
    assert earlier_run(record) == record


def test_report_names_only_the_earlier_runs_a_row_still_comes_from(tmp_path: Path) -> None:
    task = {"metric": "accuracy", "plan_epochs": 1, "finetuned": {"accuracy": 0.9, "epochs_run": 1}, "frozen_lr": {"accuracy": 0.8}}
    results = {
        "measured_at": "now", "commit": "new", "machine": "test",
        "tasks": {"t1": {**task, "commit": "new"}, "t2": {**task, "commit": "old1"}},
        "earlier_runs": ["old1 at 2026-11-27 10:00 UTC", {"commit": "old2", "measured_at": "2026-11-26 10:00 UTC"},
                         {"commit": "old1", "measured_at": "2026-11-27 11:00 UTC"}],
    }
    write_report(results, tmp_path)
    report = (tmp_path / "nlu.md").read_text()
    # Two runs on one commit (different tasks) are named once, with both times.
    assert "old1 at 2026-11-27 10:00 UTC and 2026-11-27 11:00 UTC" in report
    assert "old2" not in report
    assert "| t1 | accuracy | 90.00 | 80.00 |" in report
    assert json.loads((tmp_path / "nlu.json").read_text())["commit"] == "new"


def test_tradeoff_finds_the_best_in_scope_accuracy_at_each_recall() -> None:
    import numpy as np

    from nlu_models.bench import tradeoff

    # in-scope: a (0.9, right), b (0.5, right), c (0.3, wrong); out of scope: 0.4, 0.2, top class oos (-inf), 0.6
    scores = np.array([0.9, 0.5, 0.3, 0.4, 0.2, -np.inf, 0.6])
    top = ["a", "b", "x", "b", "a", "oos", "a"]
    gold = ["a", "b", "c", "oos", "oos", "oos", "oos"]
    curve = tradeoff(scores, top, gold, "oos", recalls=(0.5, 0.75, 1.0))
    assert curve["50"] == 2 / 3  # reject <= 0.2: a and b stay
    assert curve["75"] == 2 / 3  # reject <= 0.4: a and b stay
    assert curve["100"] == 1 / 3  # reject <= 0.6: only a stays
