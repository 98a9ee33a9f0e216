"""The NLU benchmark's report: ``nlu.json`` and the markdown tables of ``nlu.md``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from bench.nlu_plans import ANCHORS, INT8_P50_TARGET_MS, TARGETS

RESULTS = Path(__file__).resolve().parent / "results"


def earlier_run(run: dict[str, str] | str) -> dict[str, str]:
    """An earlier run as ``{"commit", "measured_at"}`` (older result files wrote "commit at time")."""
    if isinstance(run, dict):
        return run
    commit, _, measured_at = run.partition(" at ")
    return {"commit": commit, "measured_at": measured_at}


def seed_runs(finetuned: dict[str, Any]) -> list[dict[str, Any]]:
    """The runs behind a fine-tuned result trained with several seeds; empty for a single run."""
    runs = finetuned.get("runs", [])
    return runs if len(runs) > 1 else []


def finetuned_cell(result: dict[str, Any], metric: str) -> str:
    """A fine-tuned score: one run's, or the mean of several seeds with their range."""
    if metric not in result:
        return "n/a"
    low_high = result.get("range", {}).get(metric)
    if not low_high or not seed_runs(result):
        return f"{100 * result[metric]:.2f}"
    return f"{100 * result[metric]:.2f} ({100 * low_high[0]:.2f}–{100 * low_high[1]:.2f})"


def epochs_cell(epochs_run: int | list[int] | None) -> str:
    """Epochs run: one number, or one per seed."""
    return ", ".join(map(str, epochs_run)) if isinstance(epochs_run, list) else str(epochs_run)


def seed_section(results: dict[str, Any]) -> list[str]:
    """Markdown lines: every fine-tuning run of the tasks trained with several seeds."""
    rows = []
    for name, task in results["tasks"].items():
        for run in seed_runs(task.get("finetuned", {})):
            figures = ", ".join(f"{key} {100 * run[key]:.2f}" for key in (task["metric"], "oos_recall") if key in run)
            rows.append(f"| {name} | {run['seed']} | {figures} | {run['best_epoch']} of {run['epochs_run']} | "
                        f"{run['train_seconds']:.0f} |")
    if not rows:
        return []
    return ["", "## Fine-tuning runs per seed", "",
            "| task | seed | figures | best epoch of epochs run | training s |", "|---|---|---|---|---|", *rows]


def soup_section(results: dict[str, Any]) -> list[str]:
    """Markdown lines: the fine-tuning runs behind each weight soup, and the soup, on validation data."""
    rows = []
    for name, task in results["tasks"].items():
        ft = task.get("finetuned", {})
        for run in ft.get("runs", [ft]):
            members = run.get("soup", [])
            for member in members:
                left_out = "" if member.get("in_soup", True) else " (left out of the soup)"
                rows.append(f"| {name} | run, seed {member['seed']}{left_out} | "
                            f"{100 * member['validation_score']:.2f} | {member['best_epoch']} of {member['epochs_run']} |")
            kept = sum(m.get("in_soup", True) for m in members)
            soup_name = f"greedy soup of {kept} of {len(members)}" if run.get("soup_rule") == "greedy" else f"soup of {kept}"
            distilled = run.get("distilled")
            if members and distilled:
                soup_score = run.get("soup_validation_score")
                rows.append(f"| {name} | {soup_name} | "
                            f"{'' if soup_score is None else f'{100 * soup_score:.2f}'} | |")
                rows.append(f"| {name} | **distilled from the ensemble of {len(run['soup'])}** (served; seed "
                            f"{distilled['seed']}, weight {distilled['weight']:g}, T {distilled['temperature']:g}) | "
                            f"**{100 * distilled['validation_score']:.2f}** | "
                            f"{distilled['best_epoch']} of {distilled['epochs_run']} |")
            elif members and "validation_score" in run:
                rows.append(f"| {name} | **{soup_name}** (served) | "
                            f"**{100 * run['validation_score']:.2f}** | |")
    if not rows:
        return []
    return ["", "## Weight soups: the runs averaged into each served model", "",
            "Each run fine-tunes from the same probed model and split with its own batch order and dropout; "
            "the served model is the average of their weights (a greedy soup keeps a run only when it does "
            "not lower the soup's validation score), or, where the settings say distill_weight, "
            "one more run trained towards the runs' ensemble (mean softened probabilities) as well as the "
            "labels (validation score: intent accuracy on the held-out split or the task's validation set).", "",
            "| task | model | validation score | best epoch of epochs run |", "|---|---|---|---|", *rows]


def target_section(results: dict[str, Any]) -> list[str]:
    """Markdown lines: each target of the classifier issue against the mean, and how many seeds reach it."""
    lines = ["", "## Targets", "",
             "| target | reached (mean of the runs) | runs reaching it | status |", "|---|---|---|---|"]
    for target in TARGETS:
        task = results["tasks"].get(target.task)
        if not task or "finetuned" not in task or "frozen_lr" not in task:
            continue
        values = target.values(task)
        mean = float(np.mean(values))
        reached = sum(map(target.reached, values))
        status = "met" if target.reached(mean) else "missed"
        lines.append(f"| {target.describe()} | {mean:.2f} | {reached} of {len(values)} | {status} |")
    lat = results.get("latency")
    if lat:
        p50 = lat["onnx_int8"]["single"]["p50_ms"]
        lines.append(f"| ONNX int8 single-utterance p50 ≤ {INT8_P50_TARGET_MS:g} ms | {p50:.2f} ms | | "
                     f"{'met' if p50 <= INT8_P50_TARGET_MS else 'missed'} |")
    beaten = [(n, all(t["finetuned"][m] > t["diet"][m] for m in (t["metric"], "oos_recall") if m in t["diet"]))
              for n, t in results["tasks"].items() if "finetuned" in t and "diet" in t]
    if beaten:
        lost = [n for n, won in beaten if not won]
        lines.append(f"| DIET beaten on every task | {len(beaten) - len(lost)} of {len(beaten)} tasks | | "
                     f"{'met' if not lost else 'missed: ' + ', '.join(lost)} |")
    return lines if len(lines) > 5 else []


def write_report(results: dict[str, Any], out: Path = RESULTS) -> None:
    """nlu.json and a markdown table next to it, in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "nlu.json").write_text(json.dumps(results, indent=2))
    # Name only the earlier runs that some row still comes from.
    row_commits = {t.get("commit") for t in results["tasks"].values()}
    runs = map(earlier_run, results.get("earlier_runs", []))
    times: dict[str, list[str]] = {}  # one commit can have several runs (different tasks)
    for run in runs:
        if run["commit"] in row_commits:
            times.setdefault(run["commit"], []).append(run["measured_at"])
    earlier = [f"{commit} at {' and '.join(at)}" for commit, at in times.items()]
    lines = [
        "# NLU benchmark",
        "",
        f"Measured {results['measured_at']} on commit `{results['commit']}`, {results['machine']}"
        + (f" (tasks not re-run come from {', '.join(earlier)})." if earlier else "."),
        "Fine-tuned = all-MiniLM-L6-v2 encoder fine-tuned with the classification head (this project; where the",
        "settings say soup_size, one served model averaging the weights of that many fine-tuning runs);",
        "frozen + LR = the same encoder frozen, logistic regression on its sentence embeddings; DIET = Rasa 3.6's",
        "default NLU pipeline (sparse features + DIETClassifier). All three run in the same benchmark run.",
        "",
        "| task | metric | fine-tuned | frozen + LR | DIET (epochs) | published anchor | commit |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, task in results["tasks"].items():
        metric = task["metric"]
        ft, lr, diet = task.get("finetuned", {}), task.get("frozen_lr", {}), task.get("diet", {})
        fmt = lambda r, m=metric: f"{100 * r[m]:.2f}" if m in r else "n/a"  # noqa: E731
        diet_cell = f"{fmt(diet)} ({diet.get('epochs', '?')})" if diet else "n/a"
        commit = task.get("commit", results["commit"])
        lines.append(f"| {name} | {metric} | {finetuned_cell(ft, metric)} | {fmt(lr)} | {diet_cell} | "
                     f"{ANCHORS.get(name, '')} | `{commit}` |")
        if "oos_recall" in ft:
            lines.append(f"| {name} | oos_recall | {finetuned_cell(ft, 'oos_recall')} | {fmt(lr, 'oos_recall')} | "
                         f"{fmt(diet, 'oos_recall')} ({diet.get('epochs', '?')}) | | `{commit}` |")
    if any(seed_runs(t.get("finetuned", {})) for t in results["tasks"].values()):
        lines += ["", "Fine-tuned figures with a range are the mean of several seeds (lowest–highest in brackets; "
                  "each seed's model chooses its own out-of-scope threshold on validation data); the runs are listed below."]
    lines += ["", "Fine-tuning epochs actually run (early stopping): " + ", ".join(
        f"{n}: {epochs_cell(t['finetuned'].get('epochs_run'))}/{t['plan_epochs']}"
        for n, t in results["tasks"].items() if "finetuned" in t)]
    overrides = {n: t["trainer"] for n, t in results["tasks"].items() if t.get("trainer")}
    if overrides:
        lines.append("Trainer settings that differ from the defaults: " + "; ".join(
            f"{n}: " + ", ".join(f"{k}={v}" for k, v in o.items()) for n, o in overrides.items()))
    cached = [f"{n} (measured on {t['diet'].get('measured_on', 'an earlier run')})"
              for n, t in results["tasks"].items() if t.get("diet", {}).get("cached")]
    if cached:
        lines.append("DIET results reused from the benchmark cache (same data hash, settings and Rasa version): "
                     + ", ".join(cached) + ".")
    lines += seed_section(results) + soup_section(results) + target_section(results)
    curves = [(n, t) for n, t in results["tasks"].items() if "tradeoff" in t.get("finetuned", {})]
    for name, task in curves:
        recalls = list(task["finetuned"]["tradeoff"])
        lines += ["", f"## {name}: out-of-scope trade-off on the test set (reference, not a result)", "",
                  "Best in-scope accuracy at each out-of-scope recall over all thresholds, read off the test set "
                  "itself: what the model allows, apart from choosing the threshold on validation data "
                  "(the table above).", "",
                  "| system | " + " | ".join(f"in-scope at {r} % recall" for r in recalls) + " |",
                  "|---|" + "---|" * len(recalls)]
        for label, key in (("fine-tuned", "finetuned"), ("frozen + LR", "frozen_lr")):
            curve = task.get(key, {}).get("tradeoff", {})
            lines.append(f"| {label} | " + " | ".join(f"{100 * curve[r]:.2f}" if r in curve else "n/a"
                                                      for r in recalls) + " |")
    lat = results.get("latency")
    if lat:
        banking = results["tasks"].get("banking77_full", {}).get("commit", results["commit"])
        lines += ["", "## Latency per utterance (CPU, this machine)", "",
                  f"Measured with the banking77_full model (commit `{banking}`).", "",
                  "| runtime | single p50 ms | single p99 ms | batch of 32 p50 ms | batch of 32 p99 ms | size MB |",
                  "|---|---|---|---|---|---|"]
        for runtime, size_key in (("torch_fp32", "onnx_fp32"), ("onnx_fp32", "onnx_fp32"), ("onnx_int8", "onnx_int8")):
            r = lat[runtime]
            lines.append(f"| {runtime} | {r['single']['p50_ms']:.2f} | {r['single']['p99_ms']:.2f} | "
                         f"{r['batch32']['p50_ms']:.1f} | {r['batch32']['p99_ms']:.1f} | {lat['size_mb'][size_key]} |")
        lines.append("")
        lines.append("ONNX figures are measured in the Rasa environment (Python 3.10, onnxruntime "
                     f"{lat.get('onnxruntime', '?')}, 1 intra-op thread, tokenisation included); torch uses "
                     f"{lat['torch_fp32']['threads']} threads.")
    if "rasa_memory" in results:
        lines += ["", f"Peak memory of a Rasa process with the bot model (classifier included) loaded and one message parsed: "
                  f"{results['rasa_memory']['peak_rss_mb']:.0f} MB"
                  + (f" (measured on `{results['rasa_memory']['measured_on']}`)." if "measured_on" in results["rasa_memory"]
                     else ".")]
    (out / "nlu.md").write_text("\n".join(lines) + "\n")
