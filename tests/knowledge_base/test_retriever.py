"""Reciprocal rank fusion and the answerability rule, on hand-made vectors (no model needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from knowledge_base.retriever import HybridRetriever, reciprocal_rank_fusion
from knowledge_base.tenant_index import IndexSnapshot, TenantIndexStore


def test_rrf_rewards_agreement_between_rankings() -> None:
    fused = reciprocal_rank_fusion([[1, 2, 3], [3, 1, 4]])
    assert max(fused, key=fused.get) == 1  # 1st and 2nd beats 3rd and 1st
    assert fused[4] == pytest.approx(1 / 63)
    assert set(fused) == {1, 2, 3, 4}


def snapshot(tmp_path: Path, texts: dict[int, str], vectors: dict[int, list[float]]) -> IndexSnapshot:
    store = TenantIndexStore(tmp_path, 2)
    store.apply("t", {cid: (np.array(vectors[cid], np.float32) / np.linalg.norm(vectors[cid]), texts[cid]) for cid in texts})
    loaded = store.snapshot("t")
    assert loaded is not None
    return loaded


def test_strong_dense_match_is_answerable_alone(tmp_path: Path) -> None:
    snap = snapshot(tmp_path, {1: "refunds take five days", 2: "shipping costs"}, {1: [1, 0], 2: [0, 1]})
    ranking = HybridRetriever().rank(snap, np.array([1, 0.1], np.float32) / np.linalg.norm([1, 0.1]), "zzz", 2)
    assert ranking.answerable and ranking.chunks[0].chunk_id == 1


def test_weak_dense_match_needs_bm25_support(tmp_path: Path) -> None:
    snap = snapshot(tmp_path, {1: "refunds take five days", 2: "shipping costs"}, {1: [1, 0], 2: [0, 1]})
    query = np.array([0.4, 0.9165], np.float32)  # cosine 0.4 with chunk 1, 0.92 with chunk 2
    weak = HybridRetriever(strong_threshold=0.95, lexical_support=3).rank(snap, query, "refunds please", 2, mode="dense")
    assert weak.chunks[0].chunk_id == 2 and not weak.answerable  # chunk 2 has no lexical support
    supported = HybridRetriever(strong_threshold=0.95, lexical_support=3).rank(snap, query, "shipping costs", 2)
    assert supported.chunks[0].chunk_id == 2 and supported.answerable


def test_nothing_relevant_is_not_answerable(tmp_path: Path) -> None:
    snap = snapshot(tmp_path, {1: "refunds", 2: "shipping"}, {1: [1, 0], 2: [0, 1]})
    ranking = HybridRetriever().rank(snap, np.array([-1, -1], np.float32) / np.sqrt(2), "weather tomorrow", 2)
    assert not ranking.answerable


def test_unknown_mode_is_refused(tmp_path: Path) -> None:
    snap = snapshot(tmp_path, {1: "a b"}, {1: [1, 0]})
    with pytest.raises(ValueError):
        HybridRetriever().rank(snap, np.array([1, 0], np.float32), "a", 1, mode="psychic")


def test_shared_words_cannot_pull_a_far_passage_to_the_top(tmp_path: Path) -> None:
    # Chunk 2 shares every word of the query but is far below chunk 1 in the dense ranking.
    snap = snapshot(tmp_path, {1: "money back timing", 2: "refund card days refund card days"},
                    {1: [1, 0.05], 2: [0.6, 0.8]})
    query = np.array([1, 0], np.float32)
    ranking = HybridRetriever(lexical_weight=1.0).rank(snap, query, "refund card days", 2)
    assert ranking.chunks[0].chunk_id == 1  # dense-anchored: BM25 only reorders near-ties


def test_words_break_a_near_tie(tmp_path: Path) -> None:
    snap = snapshot(tmp_path, {1: "delivery times", 2: "refund to card"}, {1: [1, 0.02], 2: [1, 0.05]})
    ranking = HybridRetriever().rank(snap, np.array([1, 0], np.float32), "refund card", 2)
    assert ranking.chunks[0].chunk_id == 2 and ranking.chunks[0].lexical_score


def test_a_question_key_lifts_its_faq_entry(tmp_path: Path) -> None:
    from knowledge_base.tenant_index import QUESTION_KEY_OFFSET

    store = TenantIndexStore(tmp_path, 2)
    unit = lambda v: np.array(v, np.float32) / np.linalg.norm(v)  # noqa: E731
    store.apply("t", {1: (unit([0.8, 0.6]), "entry one"), 2: (unit([0.7, 0.71]), "entry two"),
                      2 + QUESTION_KEY_OFFSET: (unit([1, 0]), "question of entry two")})
    snap = store.snapshot("t")
    assert snap is not None
    ranking = HybridRetriever().rank(snap, unit([1, 0]), "zzz", 2, mode="dense")
    assert [c.chunk_id for c in ranking.chunks] == [2, 1]  # one result per chunk, its question counted
    assert ranking.chunks[0].dense_score == pytest.approx((0.7 / np.hypot(0.7, 0.71) + 1) / 2, abs=1e-5)
    # Replacing or deleting the chunk removes its question key with it.
    store.apply("t", deletes={2})
    after = store.snapshot("t")
    assert after is not None and set(after.ids.tolist()) == {1}


def test_an_faq_entry_counts_its_best_question_key_once(tmp_path: Path) -> None:
    from knowledge_base.tenant_index import chunk_of, question_key

    store = TenantIndexStore(tmp_path, 2)
    unit = lambda v: np.array(v, np.float32) / np.linalg.norm(v)  # noqa: E731
    # Entry 2's question is far from the query, its second alternative (key 2) matches it exactly.
    store.apply("t", {1: (unit([0.8, 0.6]), "entry one"), 2: (unit([0.7, 0.71]), "entry two"),
                      question_key(2, 0): (unit([0, 1]), "question"), question_key(2, 1): (unit([0.5, 0.5]), "alt one"),
                      question_key(2, 2): (unit([1, 0]), "alt two")})
    snap = store.snapshot("t")
    assert snap is not None and {chunk_of(i) for i in snap.ids.tolist()} == {1, 2}
    ranking = HybridRetriever().rank(snap, unit([1, 0]), "zzz", 3, mode="dense")
    assert [c.chunk_id for c in ranking.chunks] == [2, 1]
    assert ranking.chunks[0].dense_score == pytest.approx((0.7 / np.hypot(0.7, 0.71) + 1) / 2, abs=1e-5)
    store.apply("t", deletes={2})  # every key goes with its chunk
    after = store.snapshot("t")
    assert after is not None and set(after.ids.tolist()) == {1}
