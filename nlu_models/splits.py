"""Held-out splits and the scores computed on them (no torch)."""

from __future__ import annotations

import random

import numpy as np

from nlu_models.data import Example


# A label needs this many examples before one is held out, as long as other labels can fill the
# validation split: a handful of reviewer-labelled examples for a new intent is worth more in training
# (the learning loop promises that exactly those messages are understood afterwards) than as one or two
# validation votes. When no label is this large (tiny data), labels of 3 or more still give one each.
MIN_EXAMPLES_TO_HOLD_OUT = 8


def stratified_split(examples: list[Example], fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Hold out ``fraction`` of each label (at least one); small labels stay whole in training.

    Labels with fewer than ``MIN_EXAMPLES_TO_HOLD_OUT`` examples are not split when some label has
    that many; otherwise (tiny data) labels with fewer than 3 are not split.
    """
    by_label: dict[str, list[Example]] = {}
    for example in examples:
        by_label.setdefault(example.label, []).append(example)
    smallest_split = 3
    if any(len(group) >= MIN_EXAMPLES_TO_HOLD_OUT for group in by_label.values()):
        smallest_split = MIN_EXAMPLES_TO_HOLD_OUT
    rng = random.Random(seed)
    train, held_out = [], []
    for label in sorted(by_label):
        group = by_label[label][:]
        # Shuffled even when kept whole: the random stream, and so the larger labels' splits, stay as they were.
        rng.shuffle(group)
        count = 0
        if len(group) >= smallest_split:
            count = min(max(int(round(len(group) * fraction)), 1), len(group) - 1)
        held_out.extend(group[:count])
        train.extend(group[count:])
    return train, held_out


def macro_recall(predicted: list[str], gold: list[str]) -> float:
    """Mean per-class recall."""
    labels = sorted(set(gold))
    if not labels:
        return 0.0
    recalls = []
    for label in labels:
        idx = [i for i, g in enumerate(gold) if g == label]
        recalls.append(sum(predicted[i] == label for i in idx) / len(idx))
    return float(np.mean(recalls))

