"""The nearest-neighbour vote beside the probe's linear head: scores, folds and its saved form."""

from __future__ import annotations

import numpy as np
import pytest

from nlu_models.neighbour_vote import NeighbourVoteHead, load_head, neighbour_log_votes, out_of_fold_votes
from nlu_models.probe import ProbeHead


def _head(classes: list[str], dims: int) -> ProbeHead:
    return ProbeHead(classes, np.zeros((len(classes), dims), dtype=np.float32), np.zeros(len(classes), dtype=np.float32))


def test_the_vote_follows_the_nearest_example_where_the_linear_head_has_no_opinion() -> None:
    memory = np.eye(4, dtype=np.float32)
    targets = np.array([0, 0, 0, 1])
    head = NeighbourVoteHead(_head(["a", "b"], 4), 1.0, memory.astype(np.float16), targets, 0.5)
    scores = head.logits(np.array([[0.1, 0.0, 0.0, 1.0], [1.0, 0.1, 0.0, 0.0]], dtype=np.float32))
    assert scores.argmax(axis=1).tolist() == [1, 0]


def test_a_weight_of_zero_ranks_as_the_linear_head_does() -> None:
    rng = np.random.default_rng(0)
    base = ProbeHead(["a", "b", "c"], rng.normal(size=(3, 8)).astype(np.float32), rng.normal(size=3).astype(np.float32))
    memory = rng.normal(size=(6, 8)).astype(np.float16)
    head = NeighbourVoteHead(base, 2.0, memory, np.array([0, 1, 2, 0, 1, 2]), 0.0)
    queries = rng.normal(size=(20, 8)).astype(np.float32)
    assert (head.logits(queries).argmax(axis=1) == base.logits(queries).argmax(axis=1)).all()


def test_an_example_never_votes_for_itself_out_of_fold() -> None:
    # Four unrelated examples: with itself in the memory, example 0 would vote for its own class.
    vectors, targets = np.eye(4, dtype=np.float32), np.array([0, 0, 1, 1])
    votes = out_of_fold_votes(vectors, targets, 2, [np.array([0]), np.array([1]), np.array([2]), np.array([3])])
    assert votes[0].argmax() == 1 and votes[2].argmax() == 0
    in_sample = neighbour_log_votes(vectors, vectors, targets, 2)
    assert in_sample[0].argmax() == 0


def test_saved_head_loads_with_the_same_scores_and_old_heads_load_without_a_vote() -> None:
    rng = np.random.default_rng(1)
    base = ProbeHead(["a", "b"], rng.normal(size=(2, 5)).astype(np.float32), np.zeros(2, dtype=np.float32))
    head = NeighbourVoteHead(base, 1.5, rng.normal(size=(4, 5)).astype(np.float16), np.array([0, 1, 1, 0]), 0.5)
    arrays = head.arrays("intent")
    loaded = load_head(arrays, "intent", ["a", "b"])
    queries = rng.normal(size=(7, 5)).astype(np.float32)
    assert isinstance(loaded, NeighbourVoteHead)
    np.testing.assert_allclose(loaded.logits(queries), head.logits(queries), rtol=1e-5, atol=1e-5)
    assert isinstance(load_head(base.arrays("intent"), "intent", ["a", "b"]), ProbeHead)


@pytest.mark.parametrize("key, value, message", [
    ("intent_memory", np.zeros((4, 3), dtype=np.float16), "does not fit"),
    ("intent_memory_targets", np.array([0, 1, 2, 0], dtype=np.int32), "outside its 2 labels"),
    ("intent_vote", np.array([0.0, 0.5, 0.05], dtype=np.float32), "bad vote settings"),
])
def test_a_damaged_vote_is_refused_by_name(key: str, value: np.ndarray, message: str) -> None:
    base = ProbeHead(["a", "b"], np.ones((2, 5), dtype=np.float32), np.zeros(2, dtype=np.float32))
    arrays = NeighbourVoteHead(base, 1.0, np.ones((4, 5), dtype=np.float16), np.array([0, 1, 1, 0]), 0.5).arrays("intent")
    arrays[key] = value
    with pytest.raises(ValueError, match=message):
        load_head(arrays, "intent", ["a", "b"])
