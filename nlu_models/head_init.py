"""Where the classification heads start before fine-tuning: prototypes, cluster centres, a linear probe.

Each intent's direction starts at the mean of its examples (a prototype head is already a good
classifier on frozen embeddings), the extra out-of-scope directions at spherical k-means centres of
the out-of-scope examples (too varied for one direction); then each head is probed on the frozen
embeddings, so fine-tuning does not start from a random head that would pull the encoder off course.
Class weights make small classes count as much as large ones in every loss.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch
from torch import nn


def class_prototypes(vectors: torch.Tensor, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Mean normalised embedding of each class (zeros for a class with no rows).

    Args:
        vectors: Embeddings, one row per example.
        targets: Class index of each row.
        num_classes: Number of classes (rows of the result).
    """
    sums = torch.zeros(num_classes, vectors.shape[1], device=vectors.device)
    counts = torch.zeros(num_classes, 1, device=vectors.device)
    sums.index_add_(0, targets, nn.functional.normalize(vectors, dim=-1))
    counts.index_add_(0, targets, torch.ones(len(targets), 1, device=vectors.device))
    return sums / counts.clamp(min=1)


def spherical_kmeans(vectors: torch.Tensor, k: int, seed: int, iterations: int = 20) -> torch.Tensor:
    """``k`` unit-length k-means centres of ``vectors`` under cosine similarity.

    Seeded, so a retrain starts from the same centres; with fewer vectors than ``k`` the centres repeat.
    """
    unit = nn.functional.normalize(vectors, dim=-1)
    generator = torch.Generator().manual_seed(seed)
    centres = unit[torch.randperm(len(unit), generator=generator)[:k].to(unit.device)]
    if len(centres) < k:
        centres = centres.repeat((k + len(centres) - 1) // len(centres), 1)[:k]
    for _ in range(iterations):
        assign = (unit @ centres.T).argmax(dim=1)
        for j in range(k):
            members = unit[assign == j]
            if len(members):
                centres[j] = nn.functional.normalize(members.mean(dim=0), dim=0)
    return centres


def inverse_frequency_weights(labels: list[str], classes: list[str]) -> torch.Tensor:
    """Loss weight of each class, inversely proportional to its count (mean 1): small classes count as much."""
    if not labels:
        return torch.ones(len(classes))
    counts = Counter(labels)
    raw = np.array([len(labels) / (len(classes) * max(counts.get(c, 0), 1)) for c in classes], dtype=np.float32)
    return torch.tensor(raw / raw.mean())


def probe_head(head: nn.Module, vectors: torch.Tensor, targets: torch.Tensor, loss_fn: nn.Module, steps: int) -> None:
    """Train one head alone on frozen embeddings, full batch (milliseconds per step), before fine-tuning.

    Args:
        head: The head, already initialised (e.g. from prototypes); trained in place.
        vectors: Frozen embeddings, one row per example.
        targets: Class index of each row.
        loss_fn: Loss on the head's logits.
        steps: Full-batch AdamW steps (0: leave the head as it is).
    """
    if steps <= 0 or len(targets) == 0:
        return
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-2, weight_decay=0.0)
    head.train()
    with torch.enable_grad():
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(head(vectors), targets)
            loss.backward()
            optimizer.step()
