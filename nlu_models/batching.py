"""Seeding, tokenising once and batching by length (torch)."""

from __future__ import annotations

import random

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase


def seed_everything(seed: int) -> None:
    """Fix every random generator the run uses."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def encode(tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int) -> list[list[int]]:
    """Token ids of each text (truncated, unpadded): tokenised once, batched many times."""
    if not texts:
        return []
    return tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]


def collate(rows: list[list[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad token-id rows to the longest one: (input_ids, attention_mask)."""
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return input_ids.to(device), mask.to(device)


def length_bucketed_batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Random batches of similar-length examples.

    Shuffle, sort within windows of 50 batches by length, cut into batches, shuffle the batches:
    still random, but with a fraction of the padding (a 2x speed-up on short customer messages).
    """
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


# A label needs this many examples before one is held out, as long as other labels can fill the
# validation split: a handful of reviewer-labelled examples for a new intent is worth more in training
# (the learning loop promises that exactly those messages are understood afterwards) than as one or two
