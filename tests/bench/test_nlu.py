"""The benchmark's scoring and report (no training: results are given)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.nlu import carried_over, combine_seeds
from bench.nlu_metrics import score, tradeoff
from bench.nlu_report import earlier_run, write_report


def test_score_counts_out_of_scope_recall_apart_from_in_scope_accuracy() -> None:
    gold = ["a", "b", "oos", "oos"]
    result = score(["a", "oos", "oos", "b"], gold, "oos")
    assert result["accuracy"] == 0.5
    assert result["oos_recall"] == 0.5


def test_earlier_run_reads_records_and_the_older_string_form() -> None:
    assert earlier_run("abc1234 at 2026-11-28 07:00 UTC") == {"commit": "abc1234", "measured_at": "2026-11-28 07:00 UTC"}
    record = {"commit": "abc1234", "measured_at": "x"}
    assert earlier_run(record) == record


def test_a_partial_run_keeps_the_other_figures_with_the_commit_they_were_measured_on(tmp_path: Path) -> None:
    earlier = {"commit": "old", "measured_at": "2026-11-27 10:00 UTC", "tasks": {"t": {"commit": "old"}},
               "latency": {"size_mb": {}}, "rasa_memory": {"peak_rss_mb": 1700.0}}
    kept = carried_over(earlier, ["clinc150"])
    assert kept["tasks"] == {"t": {"commit": "old"}} and kept["latency"] == {"size_mb": {}}
    assert kept["rasa_memory"] == {"measured_on": "old", "peak_rss_mb": 1700.0}
    assert kept["earlier_runs"] == [{"commit": "old", "measured_at": "2026-11-27 10:00 UTC"}]
    # A figure carried over twice keeps its first commit; re-running BANKING77 full drops the latency.
    again = carried_over({**earlier, "commit": "newer", "rasa_memory": kept["rasa_memory"]}, ["banking77_full"])
    assert again["rasa_memory"]["measured_on"] == "old" and "latency" not in again
    write_report({"measured_at": "now", "commit": "new", "machine": "test", **again, "tasks": {}}, tmp_path)
    assert "loaded and one message parsed: 1700 MB (measured on `old`)." in (tmp_path / "nlu.md").read_text()


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


    # in-scope: a (0.9, right), b (0.5, right), c (0.3, wrong); out of scope: 0.4, 0.2, top class oos (-inf), 0.6
    scores = np.array([0.9, 0.5, 0.3, 0.4, 0.2, -np.inf, 0.6])
    top = ["a", "b", "x", "b", "a", "oos", "a"]
    gold = ["a", "b", "c", "oos", "oos", "oos", "oos"]
    curve = tradeoff(scores, top, gold, "oos", recalls=(0.5, 0.75, 1.0))
    assert curve["50"] == 2 / 3  # reject <= 0.2: a and b stay
    assert curve["75"] == 2 / 3  # reject <= 0.4: a and b stay
    assert curve["100"] == 1 / 3  # reject <= 0.6: only a stays


def _run(seed: int, accuracy: float, recall: float) -> dict:
    return {"seed": seed, "accuracy": accuracy, "oos_recall": recall, "tradeoff": {"90": accuracy - 0.01},
            "epochs_run": 5, "best_epoch": 4, "train_seconds": 10.0}


def test_combine_seeds_reports_the_mean_the_range_and_every_run() -> None:

    combined = combine_seeds([_run(13, 0.95, 0.88), _run(14, 0.94, 0.92), _run(15, 0.96, 0.90)])
    assert combined["seeds"] == [13, 14, 15]
    assert abs(combined["accuracy"] - 0.95) < 1e-12
    assert abs(combined["oos_recall"] - 0.90) < 1e-12
    assert combined["range"]["oos_recall"] == [0.88, 0.92]
    assert abs(combined["tradeoff"]["90"] - 0.94) < 1e-12
    assert combined["epochs_run"] == [5, 5, 5]
    assert combined["train_seconds"] == 30.0
    assert len(combined["runs"]) == 3


def test_report_shows_seed_means_with_their_range_and_checks_the_targets(tmp_path: Path) -> None:

    clinc = {"metric": "accuracy", "plan_epochs": 5, "commit": "c",
             "finetuned": combine_seeds([_run(13, 0.9533, 0.885), _run(14, 0.9509, 0.915), _run(15, 0.952, 0.90)]),
             "frozen_lr": {"accuracy": 0.9151, "oos_recall": 0.876}, "diet": {"accuracy": 0.74, "oos_recall": 0.80, "epochs": 5}}
    banking = {"metric": "accuracy", "plan_epochs": 5, "commit": "c",
               "finetuned": {"seed": 13, "accuracy": 0.9416, "epochs_run": 4, "best_epoch": 2, "train_seconds": 1.0},
               "frozen_lr": {"accuracy": 0.9328}, "diet": {"accuracy": 0.90, "epochs": 5}}
    results = {"measured_at": "now", "commit": "c", "machine": "test", "tasks": {"clinc150": clinc, "banking77_full": banking},
               "latency": {**{runtime: {"single": {"p50_ms": p50, "p99_ms": 1.0}, "batch32": {"p50_ms": 1.0, "p99_ms": 1.0}}
                              for runtime, p50 in (("torch_fp32", 6.0), ("onnx_fp32", 3.0), ("onnx_int8", 0.7))},
                           "size_mb": {"onnx_fp32": 90.0, "onnx_int8": 23.0}}}
    results["latency"]["torch_fp32"]["threads"] = 2
    write_report(results, tmp_path)
    report = (tmp_path / "nlu.md").read_text()
    assert "| clinc150 | accuracy | 95.21 (95.09–95.33) |" in report
    assert "| clinc150 | oos_recall | 90.00 (88.50–91.50) |" in report
    assert "| clinc150 | 14 | accuracy 95.09, oos_recall 91.50 | 4 of 5 | 10 |" in report
    assert "clinc150: 5, 5, 5/5" in report and "banking77_full: 4/5" in report
    # A single run is one figure, and is one run of one against a target.
    assert "| banking77_full | accuracy | 94.16 |" in report
    assert "| banking77_full accuracy over frozen + LR ≥ 1 | 0.88 | 0 of 1 | missed |" in report
    assert "| banking77_full accuracy ≥ 94 | 94.16 | 1 of 1 | met |" in report
    assert "| clinc150 oos_recall ≥ 90 | 90.00 | 2 of 3 | met |" in report
    assert "| ONNX int8 single-utterance p50 ≤ 4 ms | 0.70 ms | | met |" in report
    assert "| DIET beaten on every task | 2 of 2 tasks | | met |" in report
    # DIET must be beaten on out-of-scope recall too, not only in-scope accuracy.
    clinc["diet"]["oos_recall"] = 0.95
    write_report(results, tmp_path)
    assert "| DIET beaten on every task | 1 of 2 tasks | | missed: clinc150 |" in (tmp_path / "nlu.md").read_text()


def _tiny_bench():  # type: ignore[no-untyped-def]
    from bench.nlu_data import BenchSet
    from nlu_models.data import Example

    return BenchSet("tiny", [Example("hi", "greet")], [Example("hello", "greet")], [])


def test_diet_result_of_the_previous_report_is_reused_only_for_the_same_data(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import subprocess

    from bench import nlu_baselines as bench
    from bench.nlu_data import BenchSet, Example
    from bench.nlu_plans import PLANS

    monkeypatch.setattr(bench, "CACHE", tmp_path / "cache")
    calls: list[object] = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a) or (_ for _ in ()).throw(RuntimeError("rasa ran")))
    tiny = _tiny_bench()
    plan = PLANS["tweeteval_sentiment"]
    key = bench.data_key(tiny, f"diet-{plan.diet_epochs}")
    earlier = {"accuracy": 0.5, "epochs": plan.diet_epochs, "measured_on": "abc1234", "data_key": key, "cached": True}

    reused = bench.run_diet(tiny, plan, "new", earlier)
    assert reused["accuracy"] == 0.5 and reused["measured_on"] == "abc1234" and reused["cached"]
    assert not calls
    # Now in the cache: no earlier result needed any more.
    assert bench.run_diet(tiny, plan, "new")["measured_on"] == "abc1234"

    # Other data (or settings) must not reuse it: DIET is trained, here refused by the fake.
    other = BenchSet("tiny", [Example("bye", "goodbye")], [Example("hello", "greet")], [])
    try:
        bench.run_diet(other, plan, "new", earlier)
    except RuntimeError as error:
        assert str(error) == "rasa ran"
    else:
        raise AssertionError("a DIET result of other data was reused")


TWO_RUNS = [{"seed": 13, "best_epoch": 2, "epochs_run": 4, "validation_score": 0.931},
            {"seed": 14, "best_epoch": 3, "epochs_run": 5, "validation_score": 0.928}]


def soup_report(finetuned: dict, tmp_path: Path) -> str:
    """The report of one BANKING77-like task with the given fine-tuned result (frozen + LR at 93 %)."""
    results = {"measured_at": "now", "commit": "new", "machine": "test",
               "tasks": {"b77": {"metric": "accuracy", "plan_epochs": 5, "commit": "new",
                                 "finetuned": finetuned, "frozen_lr": {"accuracy": 0.93}}}}
    write_report(results, tmp_path)
    return (tmp_path / "nlu.md").read_text()


def test_report_lists_the_runs_behind_a_weight_soup(tmp_path: Path) -> None:
    soup = TWO_RUNS
    finetuned = {"accuracy": 0.944, "epochs_run": 4, "validation_score": 0.936, "soup": soup}
    report = soup_report(finetuned, tmp_path)
    assert "| b77 | run, seed 13 | 93.10 | 2 of 4 |" in report
    assert "| b77 | run, seed 14 | 92.80 | 3 of 5 |" in report
    assert "| b77 | **soup of 2** (served) | **93.60** | |" in report
    assert "| b77 | accuracy | 94.40 | 93.00 |" in report


def test_report_names_a_distilled_model_as_the_served_one_next_to_its_soup(tmp_path: Path) -> None:
    soup = TWO_RUNS
    distilled = {"seed": 15, "best_epoch": 3, "epochs_run": 5, "validation_score": 0.941, "weight": 0.5,
                 "temperature": 2.0}
    finetuned = {"accuracy": 0.944, "epochs_run": 5, "validation_score": 0.941, "soup": soup,
                 "soup_validation_score": 0.936, "distilled": distilled}
    report = soup_report(finetuned, tmp_path)
    assert "| b77 | soup of 2 | 93.60 | |" in report
    assert ("| b77 | **distilled from the ensemble of 2** (served; seed 15, weight 0.5, T 2) | **94.10** | 3 of 5 |"
            in report)
    assert "**soup of 2** (served)" not in report


def test_report_names_a_greedy_soup_and_the_runs_it_left_out(tmp_path: Path) -> None:
    soup = [{"seed": 13, "best_epoch": 2, "epochs_run": 4, "validation_score": 0.931, "in_soup": True},
            {"seed": 14, "best_epoch": 3, "epochs_run": 5, "validation_score": 0.928, "in_soup": True},
            {"seed": 15, "best_epoch": 1, "epochs_run": 3, "validation_score": 0.901, "in_soup": False}]
    finetuned = {"accuracy": 0.944, "epochs_run": 4, "validation_score": 0.936, "soup": soup, "soup_rule": "greedy"}
    report = soup_report(finetuned, tmp_path)
    assert "| b77 | run, seed 15 (left out of the soup) | 90.10 | 1 of 3 |" in report
    assert "| b77 | run, seed 13 | 93.10 | 2 of 4 |" in report
    assert "| b77 | **greedy soup of 2 of 3** (served) | **93.60** | |" in report
