"""NLU benchmark at default settings: what a new tenant gets, on draws nobody tuned on.

    make bench-nlu-defaults                          # or: python -m bench.nlu_defaults --data ../shared/data
    python -m bench.nlu_defaults --shots 10 --draws 1 --tasks banking77 bot   # a quicker subset

For every task and draw it trains the product's default recipe (``ProbeFirstTrainer`` with a default
``TrainingConfig``: probe, fine-tuned model, the better of the two on the same held-out folds), and in
the same run the frozen MiniLM + logistic regression baseline (C = 20, balanced classes: the
benchmark's baseline since its first run). The draws reported here use seeds the defaults were
never chosen on (``REPORT_SEEDS``). A second part measures the sentiment head of the default bot as
the frustration trigger sees it. Writes ``bench/results/nlu_defaults.{json,md}`` after every run.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.nlu_data import banking77_full, clinc150, tweeteval_sentiment, uss_dissatisfaction
from nlu_models.data import Example, load_examples

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RESULTS = PROJECT_ROOT / "bench" / "results"
#: Seeds of the reported draws. The recipe's settings came from the held-out measurements of the issue
#: and exploratory runs on other draws (the fixed DNNC 10-shot split, draws seeded 100 * k + d), never these.
REPORT_SEEDS = (101, 102, 103)
SHOTS = (5, 10, 20)
CLINC_SUBSET = 50  # intents per CLINC150 draw


def kshot(examples: list[Example], k: int, rng: random.Random, labels: list[str] | None = None) -> list[Example]:
    """``k`` examples of each label (of ``labels`` when given), drawn with ``rng``."""
    by: dict[str, list[Example]] = {}
    for e in examples:
        if labels is None or e.label in labels:
            by.setdefault(e.label, []).append(e)
    return [x for label in sorted(by) for x in rng.sample(by[label], min(k, len(by[label])))]


def draws(data: Path, tasks: list[str], shots: tuple[int, ...], seeds: tuple[int, ...]) -> list[dict[str, Any]]:
    """The (task, k, seed, train, test) draws to run."""
    out: list[dict[str, Any]] = []
    if "banking77" in tasks:
        full = banking77_full(data)
        for k in shots:
            for seed in seeds:
                out.append({"task": "banking77", "k": k, "seed": seed,
                            "train": kshot(full.train, k, random.Random(seed * 1000 + k)), "test": full.test})
    if "clinc150" in tasks:
        clinc = clinc150(data)
        intents = sorted({e.label for e in clinc.train if e.label != "oos"})
        for k in shots:
            for seed in seeds:
                chosen = sorted(random.Random(seed).sample(intents, CLINC_SUBSET))
                out.append({"task": f"clinc150-{CLINC_SUBSET}", "k": k, "seed": seed,
                            "train": kshot(clinc.train, k, random.Random(seed * 1000 + k), chosen),
                            "test": [e for e in clinc.test if e.label in chosen]})
    if "bot" in tasks:  # the default bot's own data: a stratified 70 / 30 split per seed
        examples = load_examples(PROJECT_ROOT / "bot" / "data" / "nlu.yml")
        for seed in seeds:
            rng, train, test = random.Random(seed), [], []
            by: dict[str, list[Example]] = {}
            for e in examples:
                by.setdefault(e.label, []).append(e)
            for label in sorted(by):
                group = by[label][:]
                rng.shuffle(group)
                cut = max(1, int(round(len(group) * 0.3)))
                test += group[:cut]
                train += group[cut:]
            out.append({"task": "bot", "k": None, "seed": seed, "train": train, "test": test})
    return out


def frozen_lr(train: np.ndarray, train_labels: list[str], test: np.ndarray, test_labels: list[str]) -> float:
    """The baseline: logistic regression (C = 20, balanced) on normalised frozen embeddings."""
    from sklearn.linear_model import LogisticRegression

    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    model = LogisticRegression(C=20.0, max_iter=3000, class_weight="balanced")
    model.fit(unit(train), train_labels)
    return float(np.mean(model.predict(unit(test)) == np.array(test_labels)))


class EmbeddedProbe:
    """A probe model whose test texts are embedded once (the served, probe and baseline scores share them).

    Args:
        probe: The trained probe.
        texts: The texts to score.
        encoder: Another encoder file's ``SharedEncoder`` to compute the features with (default: the
            probe's own).
    """

    def __init__(self, probe: Any, texts: list[str], encoder: Any = None) -> None:
        self.probe, self.intents = probe, probe.intents
        if encoder is None:
            pooled, features = probe.encoded(texts)
        else:
            parts = [encoder.encode(texts[i:i + 128], probe.middle_weight) for i in range(0, len(texts), 128)]
            pooled, features = np.concatenate([p for p, _ in parts]), np.concatenate([f for _, f in parts])
        self.pooled, self.features = dict(zip(texts, pooled)), dict(zip(texts, features))

    def logits(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        pooled = np.stack([self.pooled[t] for t in texts])
        features = np.stack([self.features[t] for t in texts])
        return self.probe.intent_head.logits(features), self.probe.sentiment_head.logits(pooled)

    def intents_from_logits(self, logits: np.ndarray, oos_label: str = "oos") -> list[str]:
        return self.probe.intents_from_logits(logits, oos_label)


def run_draw(draw: dict[str, Any], finetune: str) -> dict[str, Any]:
    """Train the default recipe and the baseline on one draw; score both on its test set."""
    from nlu_models.probe_first import ProbeFirstTrainer
    from nlu_models.train import evaluate
    from nlu_models.trainer import TrainingConfig

    config = TrainingConfig(finetune=finetune)
    started = time.perf_counter()
    selection = ProbeFirstTrainer(config).fit(draw["train"], [])
    seconds = time.perf_counter() - started
    test_texts = [e.text for e in draw["test"]]
    probe = EmbeddedProbe(selection.probe, test_texts)
    probe_scores = evaluate(probe, draw["test"], config.oos_labels)
    served = probe_scores if selection.served == "probe" else evaluate(selection.model, draw["test"], config.oos_labels)
    lr = frozen_lr(selection.probe.pooled([e.text for e in draw["train"]]), [e.label for e in draw["train"]],
                   np.stack([probe.pooled[t] for t in test_texts]), [e.label for e in draw["test"]])
    return {"task": draw["task"], "k": draw["k"], "seed": draw["seed"], "train_examples": len(draw["train"]),
            "test_examples": len(draw["test"]), "served": selection.served, "finetune": finetune,
            "probe_vote_weight": selection.probe.metrics.get("probe_vote_weight", 0.0),
            "selection": selection.comparison, "intent_names": selection.probe.metrics.get("probe_intent_names"),
            "served_top1": served["top1_accuracy"],
            "served_with_fallback": served["accuracy_with_fallback"], "served_fallback_rate": served["fallback_rate"],
            "probe_top1": probe_scores["top1_accuracy"], "frozen_lr_top1": lr, "train_seconds": round(seconds, 1)}


def sentiment_trigger(data: Path, model_folder: Path) -> dict[str, Any]:
    """How often the default bot's sentiment would offer a person, on ordinary and on dissatisfied turns.

    The trigger (``gateway.sentiment_trigger``): one message with negative probability >= 0.9, or two
    negative messages in a row. Single texts (TweetEval, the bot's conversation tests) can only fire
    the first rule; USS dialogues are replayed turn by turn with both rules.
    """
    import yaml

    from nlu_models.onnx_predictor import OnnxIntentSentimentPredictor

    predictor = OnnxIntentSentimentPredictor(model_folder)

    def negative(texts: list[str]) -> np.ndarray:
        scores = []
        for i in range(0, len(texts), 64):
            scores += [p.sentiment_scores.get("negative", 0.0) for p in predictor.predict(texts[i:i + 64])]
        return np.array(scores)

    result: dict[str, Any] = {}
    tweets = tweeteval_sentiment(data).test
    ordinary = negative([e.text for e in tweets if e.label != "negative"])
    result["tweeteval_ordinary"] = {"turns": len(ordinary), "labelled_negative": float(np.mean(ordinary >= 0.5)),
                                    "very_negative": float(np.mean(ordinary >= 0.9))}
    from gateway.sentiment_trigger import ALREADY_OFFERING

    stories = yaml.safe_load((PROJECT_ROOT / "bot" / "tests" / "test_stories.yml").read_text())
    # Ordinary turns: not the complaints and requests for a person, whose own answer offers one anyway.
    user_turns = [str(step["user"]).strip() for story in stories.get("stories", []) for step in story.get("steps", [])
                  if isinstance(step, dict) and "user" in step and step.get("intent") not in ALREADY_OFFERING]
    bot_scores = negative(user_turns)
    result["bot_conversation_tests"] = {"turns": len(user_turns), "labelled_negative": float(np.mean(bot_scores >= 0.5)),
                                        "very_negative": float(np.mean(bot_scores >= 0.9))}
    uss = uss_dissatisfaction(data)
    turns = uss.train + uss.test  # the bot never trained on USS: every dialogue turn is unseen
    scores = negative([e.text for e in turns])
    fired = np.zeros(len(turns), dtype=bool)
    for i in range(len(turns)):  # dialogues are contiguous; a turn and its predecessor, in order
        fired[i] = scores[i] >= 0.9 or (i > 0 and scores[i] >= 0.5 and scores[i - 1] >= 0.5)
    dissatisfied = np.array([e.label == "dissatisfied" for e in turns])
    tp = int((fired & dissatisfied).sum())
    result["uss"] = {"turns": len(turns), "dissatisfied_turns": int(dissatisfied.sum()),
                     "ordinary_triggered": float(np.mean(fired[~dissatisfied])),
                     "dissatisfied_caught": float(np.mean(fired[dissatisfied])),
                     "f1": 2 * tp / max(1, int(fired.sum()) + int(dissatisfied.sum()))}
    return result


def summary(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean, lowest and highest of each (task, k) over its draws."""
    groups: dict[tuple[str, Any], list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault((run["task"], run["k"]), []).append(run)
    rows = []
    for (task, k), group in sorted(groups.items(), key=lambda item: (item[0][0], item[0][1] or 0)):
        row: dict[str, Any] = {"task": task, "k": k, "draws": len(group)}
        for metric in ("served_top1", "probe_top1", "frozen_lr_top1", "served_fallback_rate"):
            values = [100 * r[metric] for r in group]
            row[metric] = {"mean": float(np.mean(values)), "min": min(values), "max": max(values)}
        row["margin"] = [100 * (r["served_top1"] - r["frozen_lr_top1"]) for r in group]
        # "+vote": the probe kept its nearest-neighbour vote (its folds scored no worse with it).
        row["served"] = [r["served"] + ("+vote" if r["served"] == "probe" and r.get("probe_vote_weight") else "")
                         for r in group]
        rows.append(row)
    return rows


def write_report(results: dict[str, Any], out: Path = RESULTS, name: str = "nlu_defaults") -> None:
    """``<name>.json`` and ``<name>.md``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(results, indent=2, default=str))
    cell = lambda s: f"{s['mean']:.2f} ({s['min']:.2f}-{s['max']:.2f})"  # noqa: E731
    lines = ["# NLU at default settings", "",
             f"Commit `{results.get('commit', '?')}`; `finetune: {results['finetune']}`; draws with seeds "
             f"{', '.join(map(str, results['seeds']))} (the recipe's settings were chosen on other draws, never these). "
             "Served = what the product's default recipe serves (the probe, or the fine-tuned model where it won "
             "on the same held-out folds; probe+vote: with its nearest-neighbour vote, kept where the probe's folds scored no "
             "worse with it); frozen + LR = all-MiniLM-L6-v2 embeddings + logistic regression "
             "(C = 20, balanced), trained in the same run on the same draw. Top-1 in %, mean (lowest-highest).", "",
             "| task | k-shot | draws | served top-1 | probe top-1 | frozen + LR top-1 | served - LR per draw | "
             "in-scope fallback rate | served |", "|---|---|---|---|---|---|---|---|---|"]
    for row in summary(results["runs"]):
        margins = ", ".join(f"{m:+.2f}" for m in row["margin"])
        lines.append(f"| {row['task']} | {row['k'] or 'all (70 %)'} | {row['draws']} | {cell(row['served_top1'])} | "
                     f"{cell(row['probe_top1'])} | {cell(row['frozen_lr_top1'])} | {margins} | "
                     f"{cell(row['served_fallback_rate'])} | {', '.join(row['served'])} |")
    runs = results["runs"]
    if runs:
        mean_margin = float(np.mean([100 * (r["served_top1"] - r["frozen_lr_top1"]) for r in runs]))
        worst = min(100 * (r["served_top1"] - r["frozen_lr_top1"]) for r in runs)
        lines += ["", f"Over all {len(runs)} draws: served - frozen + LR = {mean_margin:+.2f} points on average, "
                  f"{worst:+.2f} at worst. Mean training time {np.mean([r['train_seconds'] for r in runs]):.0f} s."]
    trigger = results.get("sentiment_trigger")
    if trigger:
        t, b, u = trigger["tweeteval_ordinary"], trigger["bot_conversation_tests"], trigger["uss"]
        lines += ["", "## Frustration trigger (the default bot's sentiment head)", "",
                  "A person is offered after one message with negative probability >= 0.9 or two negative messages "
                  "in a row (`gateway/sentiment_trigger.py`).", "",
                  "| turns | count | labelled negative | would trigger |", "|---|---|---|---|",
                  f"| TweetEval neutral + positive (val) | {t['turns']} | {100 * t['labelled_negative']:.2f} % | "
                  f"{100 * t['very_negative']:.2f} % (single message) |",
                  f"| the bot's conversation tests (customer turns but complaints and requests for a person) | {b['turns']} | {100 * b['labelled_negative']:.2f} % | "
                  f"{100 * b['very_negative']:.2f} % (single message) |",
                  f"| USS turns not dissatisfied, replayed in order | {u['turns'] - u['dissatisfied_turns']} | | "
                  f"{100 * u['ordinary_triggered']:.2f} % |",
                  f"| USS dissatisfied turns (mean rating < 2.5) | {u['dissatisfied_turns']} | | "
                  f"{100 * u['dissatisfied_caught']:.2f} % caught (F1 {100 * u['f1']:.1f}) |"]
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    import subprocess

    parser = argparse.ArgumentParser(prog="python -m bench.nlu_defaults", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=PROJECT_ROOT.parent / "shared" / "data")
    parser.add_argument("--tasks", nargs="+", default=["banking77", "clinc150", "bot"])
    parser.add_argument("--shots", type=int, nargs="+", default=list(SHOTS))
    parser.add_argument("--draws", type=int, default=len(REPORT_SEEDS), help="draws per task and k (seeds 101, 102, ...)")
    parser.add_argument("--finetune", choices=("auto", "never"), default="auto",
                        help="the recipe's setting (auto is the product default)")
    parser.add_argument("--bot-model", type=Path,
                        help="exported classifier for the trigger part (default: the one in models/northwind.tar.gz)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--name", default=None, help="results file name (default: nlu_defaults, or "
                                                     "nlu_defaults_probe_only with --finetune never)")
    args = parser.parse_args(argv)
    seeds = tuple(REPORT_SEEDS[0] + i for i in range(args.draws))
    name = args.name or ("nlu_defaults" if args.finetune == "auto" else "nlu_defaults_probe_only")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                            text=True).stdout.strip()
    results: dict[str, Any] = {"commit": commit, "finetune": args.finetune, "seeds": list(seeds), "runs": []}
    planned = draws(args.data, args.tasks, tuple(args.shots), seeds)
    for i, draw in enumerate(planned, start=1):
        print(f"[{i}/{len(planned)}] {draw['task']} k={draw['k']} seed {draw['seed']}: "
              f"{len(draw['train'])} training examples", file=sys.stderr, flush=True)
        run = run_draw(draw, args.finetune)
        results["runs"].append(run)
        print(f"    served {run['served']} {100 * run['served_top1']:.2f}, frozen + LR {100 * run['frozen_lr_top1']:.2f} "
              f"({run['train_seconds']} s)", file=sys.stderr, flush=True)
        write_report(results, args.out, name)
    archive = PROJECT_ROOT / "models" / "northwind.tar.gz"
    if args.bot_model or archive.exists():
        import tempfile

        from gateway.learning.model_evaluator import unpack_classifier

        with tempfile.TemporaryDirectory(prefix="bench-bot-") as tmp:
            folder = args.bot_model or unpack_classifier(archive, Path(tmp))
            results["sentiment_trigger"] = sentiment_trigger(args.data, folder)
        write_report(results, args.out, name)
    print((args.out / f"{name}.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
