"""Labelled examples from Rasa NLU YAML or CSV files (no torch, no Rasa needed)."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

SENTIMENT_LABELS = ("negative", "neutral", "positive")

# `[A1234](order_number)` or `[A1234]{"entity": ...}` → `A1234`
_ENTITY_ANNOTATION = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")


@dataclass(frozen=True)
class Example:
    """One text with its label."""

    text: str
    label: str


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
                    examples.append(Example(text, str(intent)))
    return examples


def load_csv(path: Path, text_column: str = "text", label_column: str = "label") -> list[Example]:
    """Examples of a CSV file with a header (``text,label`` by default; ``category`` also accepted)."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        fields = reader.fieldnames or []
        if label_column not in fields:
            label_column = next((f for f in ("category", "intent", "label") if f in fields), label_column)
        if text_column not in fields or label_column not in fields:
            raise ValueError(f"{path}: needs '{text_column}' and a label column, found {fields}")
        return [Example(row[text_column].strip(), row[label_column].strip()) for row in reader if row[text_column].strip()]


def load_examples(path: Path) -> list[Example]:
    """Examples from a ``.csv``, a Rasa ``.yml`` / ``.yaml`` file, or a folder of Rasa files."""
    if path.is_dir() or path.suffix in (".yml", ".yaml"):
        return load_rasa_nlu(path)
    if path.suffix == ".csv":
        return load_csv(path)
    raise ValueError(f"{path}: expected a .csv, a Rasa .yml file or a folder")


def data_hash(*groups: list[Example]) -> str:
    """Stable SHA-256 of the training data, recorded with every exported model."""
    digest = hashlib.sha256()
    for group in groups:
        digest.update(json.dumps([[e.text, e.label] for e in group], ensure_ascii=False).encode())
    return digest.hexdigest()
