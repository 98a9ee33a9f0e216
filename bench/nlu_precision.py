"""Encoder precision of a probe model: fp32 against dynamic int8, on held-out draws.

    make bench-nlu-precision          # or: python -m bench.nlu_precision --data ../shared/data

For every draw (``bench.nlu_defaults``: the same tasks, k-shot samples and report seeds) it trains the
default probe (``finetune: never``) on the fp32 encoder, as the product does, then scores its heads on
the test set with the features of three encoder files: fp32, int8 per tensor (the export the product
used to serve where the check below passed) and int8 per channel. Beside each draw it reports what that
check saw: top-1 agreement of int8 with fp32 on up to 400 training texts (the export's parity texts),
which served int8 at 99.5 % or more; and the benchmark's baseline (frozen MiniLM + logistic regression,
``bench.nlu_defaults.frozen_lr``) on the same draw. A second table fine-tunes the default model on the
first ``--finetuned-draws`` draws of each k-shot task and scores its own fp32 and int8 graphs, with
the agreement the export's check reads (validation texts) beside the one it used to read. Writes ``bench/results/nlu_precision.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.nlu_defaults import PROJECT_ROOT, REPORT_SEEDS, RESULTS, EmbeddedProbe, draws, frozen_lr

#: The int8 files measured: name -> ``quantize_dynamic`` options.
VARIANTS: dict[str, dict[str, Any]] = {"int8": {}, "int8_per_channel": {"per_channel": True}}
#: The agreement on training texts at which the product used to serve int8.
OLD_GATE = 0.995


def quantised_files(encoder_folder: Path, out: Path) -> dict[str, Path]:
    """The fp32 encoder and its int8 variants (built in ``out``)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from nlu_models.encoder_export import ENCODER_FP32

    files = {"fp32": encoder_folder / ENCODER_FP32}
    for name, options in VARIANTS.items():
        files[name] = out / f"{name}.onnx"
        quantize_dynamic(str(files["fp32"]), str(files[name]), weight_type=QuantType.QInt8, **options)
    return files


def run_draw(draw: dict[str, Any], files: dict[str, Path]) -> dict[str, Any]:
    """Train the default probe on one draw; score its heads with every encoder file."""
    from nlu_models.encoder_pool import EncoderPool
    from nlu_models.onnx_export import TOKENIZER_FILE
    from nlu_models.probe_first import ProbeFirstTrainer
    from nlu_models.train import evaluate, parity_texts_for
    from nlu_models.trainer import TrainingConfig

    config = TrainingConfig(finetune="never")
    probe = ProbeFirstTrainer(config).fit(draw["train"], []).probe
    test_texts = [e.text for e in draw["test"]]
    train = draw["train"]
    parity_texts = parity_texts_for(probe, train)  # the texts the export's check used to read
    row: dict[str, Any] = {"task": draw["task"], "k": draw["k"], "seed": draw["seed"], "test_examples": len(test_texts)}
    # The benchmark's baseline (nlu_defaults): what a served model must beat on the same draw.
    row["frozen_lr_top1"] = frozen_lr(probe.pooled([e.text for e in train]), [e.label for e in train],
                                      probe.pooled(test_texts), [e.label for e in draw["test"]])
    parity_logits: dict[str, np.ndarray] = {}
    for name, file in files.items():
        key, encoder = EncoderPool.acquire(file, probe.encoder_folder / TOKENIZER_FILE, config.max_length)
        try:
            scores = evaluate(EmbeddedProbe(probe, test_texts, encoder), draw["test"], config.oos_labels)
            parity_logits[name] = EmbeddedProbe(probe, parity_texts, encoder).logits(parity_texts)[0].argmax(axis=1)
        finally:
            EncoderPool.release(key)
        row[name] = {"top1": scores["top1_accuracy"], "with_fallback": scores["accuracy_with_fallback"]}
        if name != "fp32":
            row[name]["training_text_agreement"] = float(np.mean(parity_logits[name] == parity_logits["fp32"]))
            row[name]["old_gate_serves"] = row[name]["training_text_agreement"] >= OLD_GATE
    return row


def run_finetuned_draw(draw: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Fine-tune the default model on one draw, export it as ``nlu_models.train`` does, score both graphs."""
    from nlu_models.data import data_hash
    from nlu_models.export import export_classifier, parity
    from nlu_models.onnx_predictor import OnnxIntentSentimentPredictor
    from nlu_models.train import parity_texts_for
    from nlu_models.trainer import JointTrainer, TrainingConfig

    train = draw["train"]
    trained = JointTrainer(TrainingConfig(finetune="always")).fit(train, [])
    folder = workdir / f"finetuned-{draw['task']}-{draw['seed']}"
    meta = export_classifier(trained, folder, data_hash(train, []), parity_texts_for(trained, train))
    training_texts = parity_texts_for(None, train)  # what the export's check read before
    row: dict[str, Any] = {"task": draw["task"], "k": draw["k"], "seed": draw["seed"],
                           "held_out_texts": meta["parity_texts"], "served": meta["served_precision"],
                           "held_out_agreement": meta["parity"]["int8"]["top1_agreement_intent"],
                           "training_text_agreement": parity(trained, folder, training_texts, True)["top1_agreement_intent"]}
    gold = np.array([e.label for e in draw["test"]])
    for name, quantized in (("fp32", False), ("int8", True)):
        predictor = OnnxIntentSentimentPredictor(folder, quantized=quantized)
        logits = predictor.logits([e.text for e in draw["test"]])[0]
        row[name] = {"top1": float(np.mean(np.array(predictor.intents)[logits.argmax(axis=1)] == gold))}
    return row


def _finetuned_lines(runs: list[dict[str, Any]]) -> list[str]:
    lines = ["", "## A fine-tuned model's own int8 graph", "",
             "The default fine-tuning recipe (`finetune: always`) on the first draws of each task, exported as "
             "`nlu_models.train` exports it: int8 is served where its top-1 agrees with fp32 on "
             f"{100 * OLD_GATE:.1f} % of the validation texts its weights never saw (before: of its training texts).", "",
             "| task | k-shot | seed | fp32 | int8 | int8 - fp32 | agreement, training texts | agreement, held-out "
             "texts (n) | served |", "|---|---|---|---:|---:|---:|---:|---:|---|"]
    for run in runs:
        fp32, int8 = 100 * run["fp32"]["top1"], 100 * run["int8"]["top1"]
        lines.append(f"| {run['task']} | {run['k']} | {run['seed']} | {fp32:.2f} | {int8:.2f} | {int8 - fp32:+.2f} | "
                     f"{100 * run['training_text_agreement']:.2f} % | {100 * run['held_out_agreement']:.2f} % "
                     f"({run['held_out_texts']}) | {run['served']} |")
    return lines


def markdown(results: dict[str, Any]) -> str:
    """The report: one row per draw, then the means."""
    names = ["fp32", *VARIANTS]
    lines = ["# Probe encoder precision: fp32 against dynamic int8", "",
             f"Commit `{results['commit']}`; the default probe (`finetune: never`) trained on the fp32 encoder, "
             f"its heads scored on each draw's test set with the features of each encoder file. Draws as in "
             f"`nlu_defaults.md` (seeds {', '.join(map(str, results['seeds']))}). Top-1 in %; "
             f"\"training-text agreement\": top-1 agreement with fp32 on the export's parity texts (up to 400 "
             f"training texts), which used to serve int8 at {100 * OLD_GATE:.1f} % or more.", "",
             "| task | k-shot | seed | frozen + LR | fp32 | int8 | int8 - fp32 | int8 training-text agreement "
             "| old check served int8 | int8 per channel | per channel - fp32 |",
             "|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|"]
    for run in results["runs"]:
        fp32, int8, channel = (100 * run[n]["top1"] for n in names)
        lr = 100 * run["frozen_lr_top1"]
        lines.append(f"| {run['task']} | {run['k'] or 'all (70 %)'} | {run['seed']} | {lr:.2f} | {fp32:.2f} | "
                     f"{int8:.2f}{' (below LR)' if int8 < lr else ''} | {int8 - fp32:+.2f} | "
                     f"{100 * run['int8']['training_text_agreement']:.2f} % | "
                     f"{'yes' if run['int8']['old_gate_serves'] else 'no'} | {channel:.2f} | {channel - fp32:+.2f} |")
    if results["runs"]:
        mean = {n: float(np.mean([100 * r[n]["top1"] for r in results["runs"]])) for n in names}
        served = sum(r["int8"]["old_gate_serves"] for r in results["runs"])
        below = {n: sum(r[n]["top1"] < r["frozen_lr_top1"] for r in results["runs"]) for n in names}
        lines += ["", f"Mean over {len(results['runs'])} draws: fp32 {mean['fp32']:.2f}, int8 {mean['int8']:.2f} "
                      f"({mean['int8'] - mean['fp32']:+.2f}), int8 per channel {mean['int8_per_channel']:.2f} "
                      f"({mean['int8_per_channel'] - mean['fp32']:+.2f}). The old check would have served int8 on "
                      f"{served} of {len(results['runs'])} draws. Below the frozen baseline: fp32 on {below['fp32']}, "
                      f"int8 on {below['int8']}, int8 per channel on {below['int8_per_channel']}. Probe models serve "
                      f"fp32 (`nlu_models/export.py`)."]
    if results.get("finetuned_runs"):
        lines += _finetuned_lines(results["finetuned_runs"])
    return "\n".join(lines) + "\n"


def _write(results: dict[str, Any], out: Path) -> None:
    (out / "nlu_precision.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "nlu_precision.md").write_text(markdown(results))


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    from nlu_models.encoder_export import export_encoder
    from nlu_models.trainer import TrainingConfig

    parser = argparse.ArgumentParser(prog="python -m bench.nlu_precision", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=PROJECT_ROOT.parent / "shared" / "data")
    parser.add_argument("--tasks", nargs="+", default=["banking77", "clinc150", "bot"])
    parser.add_argument("--shots", type=int, nargs="+", default=[10])
    parser.add_argument("--draws", type=int, default=len(REPORT_SEEDS), help="draws per task and k (seeds 101, 102, ...)")
    parser.add_argument("--finetuned-draws", type=int, default=2,
                        help="draws per k-shot task (the bot's own data excluded) also fine-tuned (minutes each; 0: none)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    seeds = tuple(REPORT_SEEDS[0] + i for i in range(args.draws))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                            text=True).stdout.strip()
    results: dict[str, Any] = {"commit": commit, "date": time.strftime("%Y-%m-%d"), "seeds": list(seeds), "runs": []}
    planned = draws(args.data, args.tasks, tuple(args.shots), seeds)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-precision-") as tmp:
        # The encoder every probe of the default recipe reads (the export is cached: training reuses it).
        files = quantised_files(export_encoder(TrainingConfig().resolved_encoder()), Path(tmp))
        for i, draw in enumerate(planned, start=1):
            print(f"[{i}/{len(planned)}] {draw['task']} k={draw['k']} seed {draw['seed']}", file=sys.stderr, flush=True)
            row = run_draw(draw, files)
            results["runs"].append(row)
            print("    " + ", ".join(f"{n} {100 * row[n]['top1']:.2f}" for n in ["fp32", *VARIANTS]), file=sys.stderr,
                  flush=True)
            _write(results, args.out)
        finetuned = [d for d in planned if d["k"] is not None and d["seed"] < seeds[0] + args.finetuned_draws]
        for i, draw in enumerate(finetuned, start=1):
            print(f"[fine-tuned {i}/{len(finetuned)}] {draw['task']} k={draw['k']} seed {draw['seed']}", file=sys.stderr,
                  flush=True)
            results.setdefault("finetuned_runs", []).append(run_finetuned_draw(draw, Path(tmp)))
            _write(results, args.out)
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
