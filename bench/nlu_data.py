"""Readers for the public benchmark sets in ``../shared/data`` (never copied into the repo)."""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from pathlib import Path

from nlu_models.data import Example, load_csv


@dataclass
class BenchSet:
    """Train / validation / test examples of one benchmark task."""

    name: str
    train: list[Example]
    test: list[Example]
    validation: list[Example]
    oos_label: str | None = None


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def banking77_full(root: Path) -> BenchSet:
    """BANKING77 with its official train / test split."""
    return BenchSet("banking77_full", load_csv(root / "banking77" / "train.csv"), load_csv(root / "banking77" / "test.csv"), [])


def banking77_10shot(root: Path) -> BenchSet:
    """BANKING77, the fixed 10-shot split of the DNNC paper (10 examples per intent)."""
    base = root / "banking77" / "dnnc_splits"

    def read(split: str) -> list[Example]:
        texts, labels = _lines(base / split / "seq.in"), _lines(base / split / "label")
        return [Example(t.strip(), l.strip()) for t, l in zip(texts, labels) if t.strip()]

    return BenchSet("banking77_10shot", read("train_10"), read("test"), read("valid"))


def clinc150(root: Path) -> BenchSet:
    """CLINC150 ``data_full``, out-of-scope queries labelled ``oos``.

    Training includes the 100 ``oos_train`` queries, as the bot's own data has an out-of-scope
    intent (the "oos-train" setting of Larson et al.); validation (with ``oos_val``) chooses the
    threshold; test has 4,500 in-scope and 1,000 out-of-scope queries.
    """
    data = json.loads((root / "clinc150" / "data_full.json").read_text())

    def pairs(key: str) -> list[Example]:
        return [Example(text, label) for text, label in data[key]]

    return BenchSet(
        "clinc150", pairs("train") + pairs("oos_train"), pairs("test") + pairs("oos_test"), pairs("val") + pairs("oos_val"), oos_label="oos"
    )


def tweeteval_sentiment(root: Path) -> BenchSet:
    """TweetEval sentiment: the original *test* split trains, *val* evaluates (see its SOURCE.txt)."""
    base = root / "tweeteval_sentiment"
    names = {"0": "negative", "1": "neutral", "2": "positive"}

    def read(split: str) -> list[Example]:
        return [Example(t, names[l.strip()]) for t, l in zip(_lines(base / f"{split}_text.txt"), _lines(base / f"{split}_labels.txt"))]

    return BenchSet("tweeteval_sentiment", read("test"), read("val"), [])


def uss_dissatisfaction(root: Path, seed: int = 13) -> BenchSet:
    """USS (SGD + MultiWOZ) user turns: ``dissatisfied`` when the mean rating is below 2.5 (ratings 1-2).

    Split by dialogue, 80 / 20, with a fixed seed.
    """
    dialogues: list[list[Example]] = []
    for name in ("SGD.txt", "MWOZ.txt"):
        current: list[Example] = []
        for line in _lines(root / "uss_satisfaction" / name):
            if not line.strip():
                if current:
                    dialogues.append(current)
                current = []
                continue
            parts = line.split("\t")
            if len(parts) >= 4 and parts[0] == "USER" and parts[3].strip():
                ratings = [int(r) for r in parts[3].split(",") if r.strip().isdigit()]
                if ratings:
                    mean = sum(ratings) / len(ratings)
                    current.append(Example(parts[1].strip(), "dissatisfied" if mean < 2.5 else "other"))
        if current:
            dialogues.append(current)
    random.Random(seed).shuffle(dialogues)
    cut = int(len(dialogues) * 0.8)
    flatten = lambda ds: [e for d in ds for e in d if e.text]  # noqa: E731
    return BenchSet("uss_dissatisfaction", flatten(dialogues[:cut]), flatten(dialogues[cut:]), [])


def write_rasa_nlu(examples: list[Example], path: Path) -> None:
    """Examples as a Rasa NLU YAML file (brackets escaped so no text reads as an entity)."""
    import yaml

    by_label: dict[str, list[str]] = {}
    for example in examples:
        text = example.text.replace("[", "(").replace("]", ")").replace("\n", " ")
        by_label.setdefault(example.label, []).append(text)
    blocks = [{"intent": label, "examples": "".join(f"- {t}\n" for t in texts)} for label, texts in sorted(by_label.items())]
    path.write_text(yaml.safe_dump({"version": "3.1", "nlu": blocks}, allow_unicode=True, sort_keys=False))


def write_csv(examples: list[Example], path: Path) -> None:
    """Examples as ``text,label`` CSV."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows([e.text, e.label] for e in examples)
