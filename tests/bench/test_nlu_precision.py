"""The encoder-precision benchmark's report (no training: hand-made runs)."""

from __future__ import annotations

from bench.nlu_precision import markdown


def _run(seed: int, fp32: float, int8: float, agreement: float, channel: float) -> dict:
    return {"task": "banking77", "k": 10, "seed": seed, "test_examples": 3080, "frozen_lr_top1": 0.852,
            "fp32": {"top1": fp32, "with_fallback": fp32},
            "int8": {"top1": int8, "with_fallback": int8, "training_text_agreement": agreement,
                     "old_gate_serves": agreement >= 0.995},
            "int8_per_channel": {"top1": channel, "with_fallback": channel, "training_text_agreement": 1.0,
                                 "old_gate_serves": True}}


def test_report_shows_each_draws_loss_and_what_the_old_check_saw() -> None:
    text = markdown({"commit": "abc", "seeds": [101, 102],
                     "runs": [_run(101, 0.86, 0.85, 1.0, 0.855), _run(102, 0.80, 0.80, 0.99, 0.80)]})
    assert "| banking77 | 10 | 101 | 85.20 | 86.00 | 85.00 (below LR) | -1.00 | 100.00 % | yes | 85.50 | -0.50 |" in text
    assert "| banking77 | 10 | 102 | 85.20 | 80.00 | 80.00 (below LR) | +0.00 | 99.00 % | no | 80.00 | +0.00 |" in text
    assert "fp32 83.00, int8 82.50 (-0.50), int8 per channel 82.75 (-0.25)" in text
    assert "served int8 on 1 of 2 draws" in text
    assert "Below the frozen baseline: fp32 on 1, int8 on 2, int8 per channel on 1." in text


def test_report_adds_the_fine_tuned_models_int8_table_when_measured() -> None:
    finetuned = {"task": "banking77", "k": 10, "seed": 101, "held_out_texts": 77, "served": "fp32",
                 "held_out_agreement": 0.974, "training_text_agreement": 0.9925,
                 "fp32": {"top1": 0.8071}, "int8": {"top1": 0.8016}}
    results = {"commit": "abc", "seeds": [101], "runs": [_run(101, 0.86, 0.85, 1.0, 0.855)]}
    assert "fine-tuned" not in markdown(results)
    text = markdown({**results, "finetuned_runs": [finetuned]})
    assert "## A fine-tuned model's own int8 graph" in text
    assert "| banking77 | 10 | 101 | 80.71 | 80.16 | -0.55 | 99.25 % | 97.40 % (77) | fp32 |" in text
