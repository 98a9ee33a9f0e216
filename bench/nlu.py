"""NLU benchmark: fine-tuned classifier vs frozen MiniLM + logistic regression vs Rasa's DIET.

    make bench-nlu                      # or: python -m bench.nlu --data ../shared/data

Writes ``bench/results/nlu.json`` and ``bench/results/nlu.md`` after every task, so a partial run
still leaves results. Baselines run in the same process on the same machine.
"""


from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.nlu_baselines import CACHE, PROJECT_ROOT, RASA_PYTHON, data_key, rasa_env, run_diet, run_frozen_lr
from bench.nlu_data import BenchSet
from bench.nlu_metrics import score, tradeoff
from bench.nlu_plans import PLANS, TaskPlan
from bench.nlu_report import RESULTS, earlier_run, write_report
from nlu_models.timing import LATENCY_TEXTS, time_call

__all__ = ["carried_over", "combine_seeds", "data_key", "main"]


def run_finetuned(bench: BenchSet, plan: TaskPlan, seed: int, export_to: Path | None) -> tuple[dict[str, Any], Any]:
    """Fine-tune the joint model's encoder + intent head on the task with one seed."""
    from nlu_models.trainer import JointTrainer, TrainingConfig

    oos = (bench.oos_label,) if bench.oos_label else ()
    train = bench.train
    # Large sets need only a small held-out share for early stopping and calibration.
    config = TrainingConfig(max_epochs=plan.epochs, patience=plan.patience, oos_labels=oos or ("\0",), seed=seed,
                            **{"validation_fraction": 0.05, **plan.trainer})
    started = time.perf_counter()
    trained = JointTrainer(config).fit(train, [], bench.validation or None)
    train_s = time.perf_counter() - started
    # Same protocol as the baselines: the out-of-scope threshold applies only to tasks that have
    # out-of-scope test queries; elsewhere every system answers with its top class.
    gold = [e.label for e in bench.test]
    test_logits = trained.logits([e.text for e in bench.test])[0]
    predicted = trained.intents_from_logits(test_logits, bench.oos_label or "\0",
                                            None if bench.oos_label else float("-inf"))
    if bench.oos_label:
        # Raw logits for offline study of out-of-scope rules (no retraining needed to compare them).
        CACHE.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(CACHE / f"logits_{bench.name}_seed{seed}.npz", intents=np.array(trained.intents),
                            val=trained.logits([e.text for e in bench.validation])[0],
                            val_gold=np.array([e.label for e in bench.validation]),
                            test=test_logits, test_gold=np.array(gold),
                            temperature=trained.intent_temperature)
    result = score(predicted, gold, bench.oos_label)
    if bench.oos_label:
        top = [trained.intents[int(i)] for i in test_logits.argmax(axis=1)]
        result["tradeoff"] = tradeoff(trained.in_scope_score(test_logits), top, gold, bench.oos_label)
    result.update(seed=seed, train_seconds=round(train_s, 1), epochs_run=len(trained.metrics["history"]),
                  best_epoch=trained.metrics["best_epoch"], oos_threshold=trained.oos_threshold,
                  oos_penalty=trained.oos_penalty,
                  validation_score=trained.metrics["validation_score"])
    for key in ("soup", "soup_rule", "soup_validation_score", "distilled"):
        if key in trained.metrics:
            result[key] = trained.metrics[key]
    if export_to is not None:
        from nlu_models.data import data_hash
        from nlu_models.export import export_classifier

        export_classifier(trained, export_to, data_hash(train), [e.text for e in bench.test[:64]])
    return result, trained


SCORES = ("accuracy", "oos_recall", "macro_recall", "f1_dissatisfied")


def combine_seeds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One fine-tuned result from runs with different seeds: the mean of each score and curve point.

    Each run keeps its own validation-chosen threshold (one threshold per model); ``runs`` keeps
    every run's figures, and ``range`` the lowest and highest of each score.
    """
    combined: dict[str, Any] = {"seeds": [r["seed"] for r in runs], "runs": runs}
    for key in SCORES:
        if all(key in r for r in runs):
            values = [r[key] for r in runs]
            combined[key] = float(np.mean(values))
            combined.setdefault("range", {})[key] = [min(values), max(values)]
    if all("tradeoff" in r for r in runs):
        combined["tradeoff"] = {k: float(np.mean([r["tradeoff"][k] for r in runs])) for k in runs[0]["tradeoff"]}
    combined["epochs_run"] = [r["epochs_run"] for r in runs]
    combined["train_seconds"] = round(sum(r["train_seconds"] for r in runs), 1)
    return combined


# ---------------------------------------------------------------------------------------------- latency
def latency(trained: Any, export: Path) -> dict[str, Any]:
    """p50 / p99 per utterance and per batch of 32: torch fp32, ONNX fp32, ONNX int8 (in .venv-rasa)."""
    import torch

    texts = LATENCY_TEXTS
    trained.model.to("cpu").eval()

    with torch.inference_mode():
        torch_single = time_call(lambda: trained.logits(texts[:1]), 200)
        torch_batch = time_call(lambda: trained.logits(texts), 30)
    probe = PROJECT_ROOT / "nlu_models" / "rasa_probe.py"
    out = CACHE / "latency.json"
    CACHE.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(RASA_PYTHON), str(probe), "latency", str(export), str(out)], check=True, env=rasa_env())
    onnx = json.loads(out.read_text())
    return {
        "torch_fp32": {"single": torch_single, "batch32": torch_batch, "threads": torch.get_num_threads()},
        **onnx,
        "size_mb": {
            "onnx_fp32": round((export / "model.onnx").stat().st_size / 1e6, 1),
            "onnx_int8": round((export / "model.int8.onnx").stat().st_size / 1e6, 1),
        },
    }


def rasa_memory(model: Path) -> dict[str, Any]:
    """Peak resident memory of a Rasa process that loaded the bot model and parsed a message."""
    probe = PROJECT_ROOT / "nlu_models" / "rasa_probe.py"
    CACHE.mkdir(parents=True, exist_ok=True)
    out = CACHE / "memory.json"
    subprocess.run([str(RASA_PYTHON), str(probe), "memory", str(model), str(out)], check=True, env=rasa_env(),
                   stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def carried_over(earlier: dict[str, Any], tasks: list[str]) -> dict[str, Any]:
    """What a partial run keeps from the previous report.

    That is the other tasks' results, the latency (measured with BANKING77 full) unless that task
    re-runs, the Rasa memory figure (re-measured only when the bot model exists) with the commit it
    was measured on, and the list of earlier runs.
    """
    kept: dict[str, Any] = {"tasks": earlier.get("tasks", {})}
    if "banking77_full" not in tasks and "latency" in earlier:
        kept["latency"] = earlier["latency"]
    if "rasa_memory" in earlier:
        kept["rasa_memory"] = {"measured_on": earlier.get("commit"), **earlier["rasa_memory"]}
    runs = [*map(earlier_run, earlier.get("earlier_runs", [])),
            {"commit": earlier.get("commit"), "measured_at": earlier.get("measured_at")}]
    kept["earlier_runs"] = sorted({(r["commit"], r["measured_at"]): r for r in runs}.values(),
                                  key=lambda r: str(r["measured_at"]))
    return kept


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark tasks and write the results."""
    parser = argparse.ArgumentParser(prog="python -m bench.nlu")
    parser.add_argument("--data", type=Path, default=PROJECT_ROOT.parent / "shared" / "data")
    parser.add_argument("--tasks", nargs="*", default=list(PLANS))
    parser.add_argument("--skip-diet", action="store_true")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of nlu.json / nlu.md")
    args = parser.parse_args(argv)
    if not args.data.exists():
        print(f"benchmark data not found at {args.data} (use --data)", file=sys.stderr)
        return 2
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True).stdout.strip()
    results: dict[str, Any] = {
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": commit or "unknown",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, no GPU",
        "tasks": {},
    }
    previous = args.results / "nlu.json"
    earlier: dict[str, Any] = json.loads(previous.read_text()) if previous.exists() else {}
    # Earlier DIET results by task, whichever tasks this run re-runs (see run_diet).
    earlier_diet = {n: t["diet"] for n, t in earlier.get("tasks", {}).items() if "diet" in t}
    if earlier and set(args.tasks) != set(PLANS):
        results.update(carried_over(earlier, args.tasks))
    export = CACHE / "banking77_export"
    for name in args.tasks:
        plan = PLANS[name]
        bench = plan.loader(args.data)
        print(f"== {name}: {len(bench.train)} train / {len(bench.test)} test", file=sys.stderr, flush=True)
        task: dict[str, Any] = {"metric": plan.metric, "plan_epochs": plan.epochs, "trainer": plan.trainer,
                                "commit": results["commit"],
                                "sizes": {"train": len(bench.train), "test": len(bench.test)}}
        results["tasks"][name] = task
        task["frozen_lr"] = run_frozen_lr(bench)
        write_report(results, args.results)
        runs = []
        for i, seed in enumerate(plan.seeds):
            print(f"== {name}: fine-tuning with seed {seed} ({i + 1} of {len(plan.seeds)})", file=sys.stderr, flush=True)
            measures_latency = name == "banking77_full" and i == 0  # the first seed's model is exported
            run, trained = run_finetuned(bench, plan, seed, export if measures_latency else None)
            runs.append(run)
            if measures_latency:
                results["latency"] = latency(trained, export)
            del trained
            task["finetuned"] = combine_seeds(runs)
            write_report(results, args.results)
        if not args.skip_diet:
            task["diet"] = run_diet(bench, plan, results["commit"], earlier_diet.get(name))
            write_report(results, args.results)
    bot_model = PROJECT_ROOT / "models" / "northwind.tar.gz"
    if bot_model.exists():
        results["rasa_memory"] = {**rasa_memory(bot_model), "measured_on": results["commit"]}
        write_report(results, args.results)
    print((args.results / "nlu.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
