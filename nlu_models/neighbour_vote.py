"""The probe's linear head plus a vote of the nearest training examples.

With 10-20 examples per intent a linear head on frozen embeddings averages each intent into one
direction; an intent whose customers ask in several distinct ways (BANKING77's card and transfer
intents) keeps only the average. A soft nearest-neighbour vote over the training examples keeps every
way of asking. The served score is the head's calibrated log-probabilities plus ``weight`` times the
log of the vote, where the probe's cross-validation folds score no worse with the vote than
without (``nlu_models.probe_first``). The vote of each training example for cross-validation comes from the examples
outside its fold, so the temperature and the out-of-scope threshold are calibrated on fused scores
of models that did not see the example.

Numpy only: the Rasa process serves it. What it adds to a tenant's head is the training examples'
intent features: with all-MiniLM-L6-v2 (last and middle layer, 768 wide) 1.5 KB per example on disk
(float16) and twice that in memory (float32).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence

import numpy as np

from nlu_models.calibration import log_softmax
from nlu_models.probe import ProbeHead, unit_rows

#: Weight of the vote's log-probabilities beside the head's. Chosen on exploration draws (seeds 1-6 of
#: BANKING77 and CLINC150-50 at 5 / 10 / 20 examples per intent, and the bot's data), never on the
#: reported ones, with the rule of ``ProbeFirstTrainer``: the vote is served only where the probe's
#: folds score no worse with it. There 0.25 left no draw below frozen + LR (+1.03 points on average
#: against +0.89 for the head alone, which was below on 4 of 42 draws); a weight chosen per data set
#: by the folds did worse: they are too small to choose a weight, only to veto one.
VOTE_WEIGHT = 0.25
#: Softmax temperature over cosine similarities: the nearest few examples carry the vote.
VOTE_TEMPERATURE = 0.05
#: Floor of a class's vote, so one missing neighbour never vetoes the head.
VOTE_FLOOR = 1e-3


def neighbour_log_votes(queries: np.ndarray, memory: np.ndarray, targets: np.ndarray, num_classes: int,
                        temperature: float = VOTE_TEMPERATURE, floor: float = VOTE_FLOOR) -> np.ndarray:
    """Log of each class's share of a softmax over the cosine similarities to the ``memory`` rows.

    Args:
        queries: ``(n, d)`` vectors (normalised here).
        memory: ``(m, d)`` unit rows of the training examples.
        targets: ``(m,)`` class index of each memory row.
        num_classes: Width of the output.
        temperature: Softmax temperature over cosines.
        floor: Added to every share before the log.
    """
    similarity = unit_rows(np.asarray(queries, dtype=np.float32)) @ np.asarray(memory, dtype=np.float32).T
    weights = np.exp((similarity - similarity.max(axis=1, keepdims=True)) / temperature)
    weights /= weights.sum(axis=1, keepdims=True)
    shares = np.zeros((len(queries), num_classes), dtype=np.float32)
    np.add.at(shares.T, targets, weights.T)  # shares[:, c] = sum of the weights of class c's rows
    return np.log(shares + floor)


def out_of_fold_votes(vectors: np.ndarray, targets: np.ndarray, num_classes: int,
                      folds: Sequence[np.ndarray]) -> np.ndarray:
    """Each example's vote from the examples outside its fold (the folds the probe's C was chosen on)."""
    unit = unit_rows(np.asarray(vectors, dtype=np.float32))
    votes = np.zeros((len(targets), num_classes), dtype=np.float32)
    for held in folds:
        keep = np.ones(len(targets), dtype=bool)
        keep[held] = False
        votes[held] = neighbour_log_votes(unit[held], unit[keep], targets[keep], num_classes)
    return votes


@dataclass
class NeighbourVoteHead:
    """``log_softmax(head / base_temperature) + weight · log(vote)``: a drop-in for :class:`ProbeHead`.

    Attributes:
        base: The linear head.
        base_temperature: Calibrating temperature of the linear head's logits.
        memory: ``(m, d)`` unit rows of the training examples (float16 values, held as float32).
        targets: ``(m,)`` class index of each row.
        weight: Weight of the vote.
        temperature: Softmax temperature of the vote.
    """

    base: ProbeHead
    base_temperature: float
    memory: np.ndarray
    targets: np.ndarray
    weight: float = VOTE_WEIGHT
    temperature: float = VOTE_TEMPERATURE

    def __post_init__(self) -> None:
        # Saved in float16, held and scored in float32: numpy converts float16 in software, which cost
        # 10 ms per message with 1,540 examples against 0.4 ms (one float32 copy, not both, in memory).
        self.memory = np.asarray(self.memory, dtype=np.float32)

    @classmethod
    def over(cls, base: ProbeHead, base_temperature: float, vectors: np.ndarray, targets: np.ndarray,
             weight: float = VOTE_WEIGHT) -> "NeighbourVoteHead":
        """The vote over raw training vectors: normalised and rounded to float16 as saved, so a head used
        in training scores exactly as the exported one serves."""
        return cls(base, base_temperature, unit_rows(np.asarray(vectors, dtype=np.float32)).astype(np.float16),
                   np.asarray(targets, dtype=np.int64), weight)

    @property
    def classes(self) -> List[str]:
        """Label of each output."""
        return self.base.classes

    def logits(self, pooled: np.ndarray) -> np.ndarray:
        """Scores of raw vectors: calibrated log-probabilities of the head plus the weighted log vote."""
        head = log_softmax(self.base.logits(pooled), self.base_temperature)
        votes = neighbour_log_votes(pooled, self.memory, self.targets, len(self.classes), self.temperature)
        return (head + self.weight * votes).astype(np.float32)

    def arrays(self, prefix: str) -> Dict[str, np.ndarray]:
        """The head as named arrays (the linear head's, plus the memory and the vote's settings)."""
        return {**self.base.arrays(prefix), f"{prefix}_memory": self.memory.astype(np.float16),
                f"{prefix}_memory_targets": self.targets.astype(np.int32),
                f"{prefix}_vote": np.array([self.base_temperature, self.weight, self.temperature], dtype=np.float32)}


def load_head(arrays: Dict[str, np.ndarray], prefix: str, classes: List[str]) -> "ProbeHead | NeighbourVoteHead":
    """The head saved under ``prefix``: with its neighbour vote when one was saved."""
    base = ProbeHead.from_arrays(arrays, prefix, classes)
    if f"{prefix}_memory" not in arrays:
        return base
    memory, targets = np.asarray(arrays[f"{prefix}_memory"]), np.asarray(arrays[f"{prefix}_memory_targets"])
    settings = np.asarray(arrays[f"{prefix}_vote"], dtype=np.float64)
    if memory.ndim != 2 or memory.shape[1] != base.weight.shape[1] or targets.shape != (memory.shape[0],):
        raise ValueError(f"{prefix} head: memory of shape {memory.shape} does not fit weights {base.weight.shape}")
    if targets.size and (targets.min() < 0 or targets.max() >= len(classes)):
        raise ValueError(f"{prefix} head: memory targets outside its {len(classes)} labels")
    if settings.shape != (3,) or settings[0] <= 0 or settings[2] <= 0:
        raise ValueError(f"{prefix} head: bad vote settings {settings.tolist()}")
    return NeighbourVoteHead(base, float(settings[0]), memory, targets.astype(np.int64), float(settings[1]),
                             float(settings[2]))
