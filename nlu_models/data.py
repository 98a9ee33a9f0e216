"""Labelled examples from Rasa NLU YAML or CSV files (no torch, no Rasa needed)."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

SENTIMENT_LABELS = ("negative", "neutral", "positive")


class DataError(ValueError):
    """Training data that cannot be trained on; the message names the files and rows to fix."""

# `[A1234](order_number)` or `[A1234]{"entity": ...}` → `A1234`
_ENTITY_ANNOTATION = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")


@dataclass(frozen=True)
class Example:
    """One text with its label."""

    text: str
    label: str
    source: str = field(default="", compare=False, hash=False)  # "file:row" where it was read, for messages


def strip_entity_annotations(text: str) -> str:
    """Plain text of a Rasa training example."""
    return _ENTITY_ANNOTATION.sub(r"\1", text).strip()


def load_rasa_nlu(path: Path) -> list[Example]:
    """Intent examples of a Rasa NLU YAML file, or of every ``*.yml`` in a folder."""
    files = sorted(path.glob("**/*.yml")) if path.is_dir() else [path]
    examples: list[Example] = []
    for file in files:
        document = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        for block in document.get("nlu", []) or []:
            intent = block.get("intent")
            if not intent:
                continue
            raw = block.get("examples", "")
            lines = raw.splitlines() if isinstance(raw, str) else [str(item.get("text", "")) for item in raw]
            for line in lines:
                line = line.strip()
                if line.startswith("- "):
                    line = line[2:]
                text = strip_entity_annotations(line)
                if text:
                    examples.append(Example(text, str(intent).strip(), f"{file} (intent {intent})"))
    return examples


def load_csv(path: Path, text_column: str = "text", label_column: str = "label") -> list[Example]:
    """Examples of a CSV file with a header (``text,label`` by default; ``category`` also accepted).

    Raises:
        DataError: The file is not UTF-8 (the message names the line) or lacks the columns.
    """
    raw = path.read_bytes()
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 (byte 0x{raw[exc.start]:02x}); save the file as UTF-8") from None
    reader = csv.DictReader(content.splitlines())
    fields = reader.fieldnames or []
    if label_column not in fields:
        label_column = next((f for f in ("category", "intent", "label") if f in fields), label_column)
    if text_column not in fields or label_column not in fields:
        raise DataError(f"{path}: needs '{text_column}' and a label column, found {fields}")
    return [Example(row[text_column].strip(), (row[label_column] or "").strip(), f"{path}:{reader.line_num}")
            for row in reader if (row[text_column] or "").strip()]


def load_examples(path: Path) -> list[Example]:
    """Examples from a ``.csv``, a Rasa ``.yml`` / ``.yaml`` file, or a folder of Rasa files."""
    if path.is_dir() or path.suffix in (".yml", ".yaml"):
        return load_rasa_nlu(path)
    if path.suffix == ".csv":
        return load_csv(path)
    raise ValueError(f"{path}: expected a .csv, a Rasa .yml file or a folder")


def check_intent_examples(examples: list[Example], min_per_label: int = 2, shown: int = 5) -> None:
    """Refuse data a classifier cannot learn from, naming the rows.

    Raises:
        DataError: No examples, an empty label, the same text under two labels, or fewer than
            ``min_per_label`` examples for every label (nothing could be held out to choose a model
            or a threshold). A single new label with one example, as a reviewer's first correction
            makes it, is fine: it is learned, only never held out.
    """
    if not examples:
        raise DataError("no intent examples")
    problems: list[str] = []
    empty = [e for e in examples if not e.label]
    if empty:
        problems.append(f"{len(empty)} example(s) with an empty label: " + "; ".join(
            f"{e.source or '?'} {e.text[:40]!r}" for e in empty[:shown]))
    by_text: dict[str, list[Example]] = {}
    for example in examples:
        if example.label:
            by_text.setdefault(example.text.casefold(), []).append(example)
    conflicts = [group for group in by_text.values() if len({e.label for e in group}) > 1]
    if conflicts:
        problems.append(f"{len(conflicts)} text(s) with conflicting labels: " + "; ".join(
            f"{group[0].text[:40]!r} as " + ", ".join(f"{e.label} ({e.source or '?'})" for e in group)
            for group in conflicts[:shown]))
    counts: dict[str, list[Example]] = {}
    for example in examples:
        if example.label:
            counts.setdefault(example.label, []).append(example)
    thin = sorted(label for label, group in counts.items() if len(group) < min_per_label)
    if thin and len(thin) == len(counts):
        problems.append(f"every label has fewer than {min_per_label} examples: " + "; ".join(
            f"{label} ({counts[label][0].source or '?'})" for label in thin[:shown]))
    if len(counts) < 2 and not problems:
        problems.append(f"only one label ({next(iter(counts), '')}); a classifier needs two or more")
    if problems:
        raise DataError("training data refused: " + " | ".join(problems))


def data_hash(*groups: list[Example]) -> str:
    """Stable SHA-256 of the training data, recorded with every exported model."""
    digest = hashlib.sha256()
    for group in groups:
        digest.update(json.dumps([[e.text, e.label] for e in group], ensure_ascii=False).encode())
    return digest.hexdigest()
