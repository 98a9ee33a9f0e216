"""The defaults benchmark's draws and report (no training: hand-made runs)."""

from __future__ import annotations

import random
from pathlib import Path

from bench.nlu_defaults import kshot, summary, write_report
from nlu_models.data import Example


def test_kshot_draws_k_of_each_label_reproducibly() -> None:
    examples = [Example(f"{label} {i}", label) for label in "abc" for i in range(30)]
    draw = kshot(examples, 5, random.Random(1))
    assert sorted({e.label for e in draw}) == ["a", "b", "c"] and len(draw) == 15
    assert draw == kshot(examples, 5, random.Random(1)) != kshot(examples, 5, random.Random(2))
    assert {e.label for e in kshot(examples, 3, random.Random(1), ["b"])} == {"b"}


def _run(task: str, k: int, seed: int, served: float, lr: float) -> dict:
    return {"task": task, "k": k, "seed": seed, "served": "probe", "served_top1": served, "probe_top1": served,
            "frozen_lr_top1": lr, "served_fallback_rate": 0.02, "train_seconds": 3.0}


def test_report_shows_mean_range_and_margin_per_draw(tmp_path: Path) -> None:
    runs = [_run("banking77", 5, 101, 0.80, 0.79), _run("banking77", 5, 102, 0.70, 0.72)]
    rows = summary(runs)
    assert rows[0]["served_top1"]["mean"] == 75.0 and rows[0]["served_top1"]["min"] == 70.0
    assert [round(m, 2) for m in rows[0]["margin"]] == [1.0, -2.0]
    write_report({"commit": "abc", "finetune": "auto", "seeds": [101, 102], "runs": runs}, tmp_path)
    text = (tmp_path / "nlu_defaults.md").read_text()
    assert "| banking77 | 5 | 2 | 75.00 (70.00-80.00) |" in text
    assert "+1.00, -2.00" in text and "-0.50 points on average, -2.00 at worst" in text
