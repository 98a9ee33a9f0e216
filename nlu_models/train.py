"""Train the intent + sentiment classifier and export it.

    python -m nlu_models.train --data bot/data/nlu.yml --sentiment bot/sentiment --out models/classifier
    python -m nlu_models.train --data train.csv --test test.csv --out /tmp/clf   # any text,label data set

Probe first: a logistic regression on the frozen encoder (seconds), then, unless ``--finetune never``,
the fine-tuned model; the one that scores higher on the same held-out data is exported (k-fold
cross-validation with fewer than 30 examples per intent). ``--test`` prints top-1 accuracy, accuracy
with fallback and the fallback rate, and writes them into the exported metadata.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from nlu_models.data import DataError, Example, check_intent_examples, data_hash, load_csv, load_examples


def load_sentiment(paths: list[Path]) -> list[Example]:
    """Sentiment examples from CSV files or folders of CSV files."""
    examples: list[Example] = []
    for path in paths:
        files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
        for file in files:
            examples.extend(load_csv(file))
    return examples


def evaluate(model: Any, test: list[Example], oos_labels: tuple[str, ...]) -> dict[str, float]:
    """Top-1 accuracy, accuracy with fallback and the fallback rate on in-scope test examples.

    With out-of-scope examples in the test set, also their recall (share sent to fallback).
    """
    texts = [e.text for e in test]
    logits = model.logits(texts)[0]
    with_fallback = model.intents_from_logits(logits, oos_label="\0")
    top1 = [model.intents[int(i)] for i in logits.argmax(axis=1)]
    rows = [i for i, e in enumerate(test) if e.label not in oos_labels]
    oos_rows = [i for i, e in enumerate(test) if e.label in oos_labels]
    result: dict[str, float] = {"test_examples": float(len(test))}
    if rows:
        result["top1_accuracy"] = sum(top1[i] == test[i].label for i in rows) / len(rows)
        result["accuracy_with_fallback"] = sum(with_fallback[i] == test[i].label for i in rows) / len(rows)
        result["fallback_rate"] = sum(with_fallback[i] == "\0" for i in rows) / len(rows)
    if oos_rows:
        result["oos_recall"] = sum(with_fallback[i] == "\0" or top1[i] in oos_labels for i in oos_rows) / len(oos_rows)
    return result


def default_threads() -> int:
    """One thread per core, at most 4: more threads than cores slowed a busy machine's batches fivefold."""
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def build_parser() -> argparse.ArgumentParser:
    """The command line: data, output and every training setting."""
    from nlu_models.trainer import SOUP_RULES, TrainingConfig

    d = TrainingConfig
    parser = argparse.ArgumentParser(prog="python -m nlu_models.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="intent data: CSV (text,label) or Rasa NLU YAML / folder")
    parser.add_argument("--sentiment", type=Path, action="append", default=[], help="sentiment CSV (text,label) or folder")
    parser.add_argument("--validation", type=Path, help="validation file (same formats) instead of holding out a split")
    parser.add_argument("--test", type=Path, help="test file (same formats) to report accuracy on")
    parser.add_argument("--out", type=Path, required=True, help="folder to export the model to")
    parser.add_argument("--encoder", help="local Hugging Face BERT-family folder (default: packaged all-MiniLM-L6-v2)")
    parser.add_argument("--finetune", choices=("auto", "never", "always"), default=d.finetune,
                        help="auto: fine-tune too and serve whichever wins on held-out data; never: the probe alone")
    parser.add_argument("--fallback-rate", type=float, default=d.fallback_rate,
                        help="without out-of-scope examples: share of held-out in-scope messages below the threshold")
    parser.add_argument("--probe-middle-weight", type=float, default=d.probe_middle_weight,
                        help="weight of the encoder's middle layer in the probe's intent features (0: last layer only)")
    parser.add_argument("--probe-vote-weight", type=float, default=d.probe_vote_weight,
                        help="weight of the nearest-neighbour vote beside the probe's linear head (0: the head alone)")
    parser.add_argument("--threads", type=int, default=None, help="torch / ONNX Runtime threads (default: cores, max 4)")
    parser.add_argument("--epochs", type=int, default=d.max_epochs)
    parser.add_argument("--patience", type=int, default=d.patience)
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--encoder-lr", type=float, default=d.encoder_lr)
    parser.add_argument("--head-lr", type=float, default=d.head_lr)
    parser.add_argument("--max-length", type=int, default=d.max_length)
    parser.add_argument("--validation-fraction", type=float, default=d.validation_fraction)
    parser.add_argument("--sentiment-weight", type=float, default=d.sentiment_weight)
    parser.add_argument("--probe-steps", type=int, default=d.probe_steps)
    parser.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--oos-label", action="append", default=None, help="label of out-of-scope examples (default: oos)")
    parser.add_argument("--oos-score", choices=("probability", "max_logit"), default=d.oos_score,
                        help="what the out-of-scope threshold applies to: top probability or top logit")
    parser.add_argument("--ema-decay", type=float, default=d.ema_decay,
                        help="keep an exponential moving average of the weights with this decay (0 = off)")
    parser.add_argument("--intent-scale", type=float, default=d.intent_scale, help="scale of the intent head's cosine logits")
    parser.add_argument("--soup-size", type=int, default=d.soup_size,
                        help="fine-tune this many times (seeds seed, seed+1, ...) and average the weights")
    parser.add_argument("--soup-rule", choices=SOUP_RULES, default=d.soup_rule,
                        help="average all runs (uniform) or a greedy soup chosen on validation")
    parser.add_argument("--distill-weight", type=float, default=d.distill_weight,
                        help="with a soup: train one more run towards the runs' ensemble with this weight, serve it")
    parser.add_argument("--distill-temperature", type=float, default=d.distill_temperature,
                        help="softening temperature of the distillation loss")
    parser.add_argument("--oos-prototypes", type=int, default=d.oos_prototypes,
                        help="extra prototypes of the out-of-scope class (cluster centres of its examples)")
    parser.add_argument("--oos-penalties", type=float, nargs="+", default=list(d.oos_penalties),
                        help="candidate weights of the out-of-scope logit subtracted from the top logit "
                             "(max_logit score); the one with the best validation AUROC is kept")
    return parser


def parity_texts_for(model: Any, intent_examples: list[Example], limit: int = 400) -> list[str]:
    """Up to ``limit`` texts on which the export compares its served graph with training's.

    A fine-tuned model agrees with itself in int8 more often on what it memorised than on new
    messages, so its int8 graph is judged on the validation texts its weights never saw; a probe
    (served in fp32 only), or a model whose data was too small to hold any out, on its training texts.
    """
    texts = list(getattr(model, "held_out_texts", None) or [e.text for e in intent_examples])
    return texts[:: max(1, len(texts) // limit)][:limit]


def _int8_note(meta: dict[str, Any]) -> str:
    """How the int8 graph of a fine-tuned export fared (a probe serves fp32 and has none)."""
    from nlu_models.export import MIN_INT8_PARITY

    int8 = meta.get("parity", {}).get("int8")
    if int8 is None:
        return ""
    return f", int8 parity {int8['top1_agreement_intent']:.4f}; int8 needs {MIN_INT8_PARITY}"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (exit 2 on data that cannot be trained on, nothing exported)."""
    args = build_parser().parse_args(argv)
    threads = args.threads or default_threads()
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        intent_examples = load_examples(args.data)
        check_intent_examples(intent_examples)
        sentiment_examples = load_sentiment(args.sentiment)
        validation = load_examples(args.validation) if args.validation else None
        test = load_examples(args.test) if args.test else None
    except (DataError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    import torch  # after the data checks: a refused file costs no torch import

    from nlu_models.export import export_classifier, export_probe
    from nlu_models.probe_first import ProbeFirstTrainer
    from nlu_models.trainer import TrainingConfig

    torch.set_num_threads(threads)
    config = TrainingConfig(
        encoder=args.encoder, max_epochs=args.epochs, patience=args.patience, batch_size=args.batch_size,
        encoder_lr=args.encoder_lr, head_lr=args.head_lr, max_length=args.max_length,
        validation_fraction=args.validation_fraction, sentiment_weight=args.sentiment_weight,
        probe_steps=args.probe_steps, label_smoothing=args.label_smoothing,
        seed=args.seed, oos_labels=tuple(args.oos_label or ("oos",)), oos_score=args.oos_score,
        ema_decay=args.ema_decay, intent_scale=args.intent_scale, soup_size=args.soup_size, soup_rule=args.soup_rule,
        distill_weight=args.distill_weight, distill_temperature=args.distill_temperature,
        oos_prototypes=args.oos_prototypes, oos_penalties=tuple(args.oos_penalties),
        finetune=args.finetune, fallback_rate=args.fallback_rate, threads=threads,
        probe_middle_weight=args.probe_middle_weight, probe_vote_weight=args.probe_vote_weight,
    )
    print(f"training on {len(intent_examples)} intent and {len(sentiment_examples)} sentiment examples "
          f"({config.resolved_encoder()}, {threads} thread(s), finetune: {config.finetune})", file=sys.stderr)
    try:
        selection = ProbeFirstTrainer(config).fit(intent_examples, sentiment_examples, validation)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    model = selection.model
    extra: dict[str, Any] = {"served": selection.served, "selection": selection.comparison}
    if test:
        extra["test"] = evaluate(model, test, config.oos_labels)
        print(json.dumps(extra["test"]))
    parity_texts = parity_texts_for(model, intent_examples)
    digest = data_hash(intent_examples, sentiment_examples)
    if selection.served == "probe":
        meta = export_probe(model, args.out, digest, parity_texts, extra)  # type: ignore[arg-type]
    else:
        meta = export_classifier(model, args.out, digest, parity_texts, extra)  # type: ignore[arg-type]
    comparison = selection.comparison
    scores = (f"probe {comparison['probe_score']:.4f}, fine-tuned {comparison['finetuned_score']:.4f}, "
              f"{comparison['method']}" if "probe_score" in comparison else comparison.get("method", ""))
    print(f"exported the {selection.served} model to {args.out} ({scores}; oos threshold {meta['oos_threshold']:.3f}; "
          f"serves {meta['served_precision']}{_int8_note(meta)})",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
