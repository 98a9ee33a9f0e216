"""Train the intent + sentiment classifier and export it.

    python -m nlu_models.train --data bot/data/nlu.yml --sentiment bot/sentiment --out models/classifier
    python -m nlu_models.train --data train.csv --test test.csv --out /tmp/clf   # any text,label data set

Prints accuracy on ``--test`` when given and writes it into the exported metadata.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nlu_models.data import Example, data_hash, load_csv, load_examples
from nlu_models.export import export_classifier
from nlu_models.trainer import SOUP_RULES, JointTrainer, TrainingConfig


def load_sentiment(paths: list[Path]) -> list[Example]:
    """Sentiment examples from CSV files or folders of CSV files."""
    examples: list[Example] = []
    for path in paths:
        files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
        for file in files:
            examples.extend(load_csv(file))
    return examples


def evaluate(trained, test: list[Example], oos_labels: tuple[str, ...]) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Accuracy on a test set; out-of-scope recall when it has out-of-scope examples."""
    oos_label = oos_labels[0] if oos_labels else "oos"
    predicted = trained.predict_intents([e.text for e in test], oos_label=oos_label)
    in_scope = [(p, e) for p, e in zip(predicted, test) if e.label not in oos_labels]
    oos = [(p, e) for p, e in zip(predicted, test) if e.label in oos_labels]
    result = {"test_examples": float(len(test))}
    if in_scope:
        result["accuracy"] = sum(p == e.label for p, e in in_scope) / len(in_scope)
    if oos:
        result["oos_recall"] = sum(p == oos_label for p, _ in oos) / len(oos)
    return result


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m nlu_models.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="intent data: CSV (text,label) or Rasa NLU YAML / folder")
    parser.add_argument("--sentiment", type=Path, action="append", default=[], help="sentiment CSV (text,label) or folder")
    parser.add_argument("--test", type=Path, help="test file (same formats) to report accuracy on")
    parser.add_argument("--out", type=Path, required=True, help="folder to export the model to")
    parser.add_argument("--encoder", help="local Hugging Face BERT-family folder (default: packaged all-MiniLM-L6-v2)")
    parser.add_argument("--epochs", type=int, default=TrainingConfig.max_epochs)
    parser.add_argument("--patience", type=int, default=TrainingConfig.patience)
    parser.add_argument("--batch-size", type=int, default=TrainingConfig.batch_size)
    parser.add_argument("--seed", type=int, default=TrainingConfig.seed)
    parser.add_argument("--oos-label", action="append", default=None, help="label of out-of-scope examples (default: oos)")
    parser.add_argument("--oos-score", choices=("probability", "max_logit"), default=TrainingConfig.oos_score,
                        help="what the out-of-scope threshold applies to: top probability or top logit")
    parser.add_argument("--ema-decay", type=float, default=TrainingConfig.ema_decay,
                        help="keep an exponential moving average of the weights with this decay (0 = off)")
    parser.add_argument("--intent-scale", type=float, default=TrainingConfig.intent_scale,
                        help="scale of the intent head's cosine logits")
    parser.add_argument("--soup-size", type=int, default=TrainingConfig.soup_size,
                        help="fine-tune this many times (seeds seed, seed+1, ...) and average the weights")
    parser.add_argument("--soup-rule", choices=SOUP_RULES, default=TrainingConfig.soup_rule,
                        help="average all runs (uniform) or a greedy soup chosen on validation")
    parser.add_argument("--distill-weight", type=float, default=TrainingConfig.distill_weight,
                        help="with a soup: train one more run towards the runs' ensemble with this weight, serve it")
    parser.add_argument("--distill-temperature", type=float, default=TrainingConfig.distill_temperature,
                        help="softening temperature of the distillation loss")
    parser.add_argument("--oos-prototypes", type=int, default=TrainingConfig.oos_prototypes,
                        help="extra prototypes of the out-of-scope class (cluster centres of its examples)")
    parser.add_argument("--oos-penalties", type=float, nargs="+", default=list(TrainingConfig.oos_penalties),
                        help="candidate weights of the out-of-scope logit subtracted from the top logit "
                             "(max_logit score); the one with the best validation AUROC is kept")
    args = parser.parse_args(argv)

    intent_examples = load_examples(args.data)
    sentiment_examples = load_sentiment(args.sentiment)
    config = TrainingConfig(
        encoder=args.encoder, max_epochs=args.epochs, patience=args.patience, batch_size=args.batch_size,
        seed=args.seed, oos_labels=tuple(args.oos_label or ("oos",)), oos_score=args.oos_score,
        ema_decay=args.ema_decay, intent_scale=args.intent_scale, soup_size=args.soup_size, soup_rule=args.soup_rule,
        distill_weight=args.distill_weight, distill_temperature=args.distill_temperature,
        oos_prototypes=args.oos_prototypes, oos_penalties=tuple(args.oos_penalties),
    )
    print(f"training on {len(intent_examples)} intent and {len(sentiment_examples)} sentiment examples "
          f"({config.resolved_encoder()})", file=sys.stderr)
    trained = JointTrainer(config).fit(intent_examples, sentiment_examples)
    extra = {}
    if args.test:
        extra["test"] = evaluate(trained, load_examples(args.test), config.oos_labels)
        print(json.dumps(extra["test"]))
    parity_texts = [e.text for e in intent_examples[:: max(1, len(intent_examples) // 64)]][:64]
    meta = export_classifier(trained, args.out, data_hash(intent_examples, sentiment_examples), parity_texts, extra)
    print(f"exported to {args.out} (best epoch {meta['metrics']['best_epoch']}, "
          f"oos threshold {meta['oos_threshold']:.3f}, int8 parity {meta['parity']['int8']['top1_agreement_intent']:.3f})",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
