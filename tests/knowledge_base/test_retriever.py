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
    weak = HybridRetriever(strong_threshold=0.95).rank(snap, query, "refunds please", 2, mode="dense")
    assert weak.chunks[0].chunk_id == 2 and not weak.answerable  # chunk 2 has no lexical support
    supported = HybridRetriever(strong_threshold=0.95).rank(snap, query, "shipping costs", 2)
    assert supported.chunks[0].chunk_id == 2 and supported.answerable


def test_nothing_relevant_is_not_answerable(tmp_path: Path) -> None:
    snap = snapshot(tmp_path, {1: "refunds", 2: "shipping"}, {1: [1, 0], 2: [0, 1]})
    ranking = HybridRetriever().rank(snap, np.array([-1, -1], np.float32) / np.sqrt(2), "weather tomorrow", 2)
    assert not ranking.answerable


def test_unknown_mode_is_refused(tmp_path: Path) -> None:
    snap = snapshot(tmp_path, {1: "a b"}, {1: [1, 0]})
    with pytest.raises(ValueError):
        HybridRetriever().rank(snap, np.array([1, 0], np.float32), "a", 1, mode="psychic")
