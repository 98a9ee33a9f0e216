"""Hybrid retrieval: dense (FAISS) and lexical (BM25) evidence fused into one ranking.

Two fusions are available. ``hybrid`` (the default) adds the BM25 score, scaled by the query's best
BM25 score, to the cosine: ``cos + w · bm25 / max bm25``. ``rrf`` is reciprocal rank fusion. On
paraphrased customer questions BM25 alone is far weaker than dense retrieval, and RRF gives it an
equal vote, which costs accuracy; the weighted score fusion lets exact terms break near-ties instead.
The weight was chosen on BANKING77 *training* queries; bench/results/kb.md reports the test set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from knowledge_base.tenant_index import IndexSnapshot

RRF_K = 60  # the constant of Cormack et al. (2009); damps the influence of the very top ranks
MODES = ("hybrid", "rrf", "dense", "lexical")
LEXICAL_WEIGHT = 0.12


@dataclass(frozen=True)
class RankedChunk:
    """A chunk id with its fused score and the scores behind it."""

    chunk_id: int
    score: float
    dense_score: float | None
    lexical_score: float | None


@dataclass
class Ranking:
    """Ranked chunk ids for one query and whether the best is good enough to answer from."""

    chunks: list[RankedChunk] = field(default_factory=list)
    answerable: bool = False
    best_dense_score: float = 0.0


def reciprocal_rank_fusion(rankings: list[list[int]], k: int = RRF_K) -> dict[int, float]:
    """Σ 1 / (k + rank) over the rankings each id appears in (rank starts at 1)."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, chunk_id in enumerate(ranking, start=1):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (k + rank)
    return fused


class HybridRetriever:
    """Ranks a tenant's chunks for a query.

    Answerability needs agreement, because MiniLM cosines of unrelated texts that share a topic
    word ("can I order by phone?" vs an article on orders) reach 0.4: the top passage is used
    when its cosine is at least ``strong_threshold`` (0.40: on BANKING77 vs CLINC150 out-of-scope
    queries the best single cosine threshold, bench/results/kb.md), or at least ``answer_threshold``
    *and* BM25 also ranks it in its top ``lexical_support`` (paraphrases that share key terms).

    Args:
        answer_threshold: Cosine the top passage needs when BM25 supports it.
        strong_threshold: Cosine that is enough on its own.
        lexical_support: BM25 rank the top passage must reach to count as supported.
        depth: How many candidates each ranker contributes before fusion.
    """

    def __init__(
        self, answer_threshold: float = 0.30, strong_threshold: float = 0.40, lexical_support: int = 3, depth: int = 50,
        lexical_weight: float = LEXICAL_WEIGHT,
    ) -> None:
        self.lexical_weight = lexical_weight
        self.answer_threshold = answer_threshold
        self.strong_threshold = strong_threshold
        self.lexical_support = lexical_support
        self.depth = depth

    def rank(self, snapshot: IndexSnapshot, query_vector: np.ndarray, query: str, k: int, mode: str = "hybrid") -> Ranking:
        """Top ``k`` chunks of one snapshot for a query (vector and text)."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {MODES}")
        if snapshot.size == 0 or k <= 0:
            return Ranking()
        depth = max(self.depth, k)
        dense: dict[int, float] = {}
        scores, ids = snapshot.dense.search(query_vector.reshape(1, -1), depth)
        for chunk_id, score in zip(ids[0].tolist(), scores[0].tolist()):
            if chunk_id >= 0:
                dense[int(chunk_id)] = float(score)
        lexical = dict(snapshot.lexical.search(query, depth)) if mode != "dense" else {}
        if mode == "dense":
            fused = dict(dense)
        elif mode == "lexical":
            fused = dict(lexical)
        elif mode == "rrf":
            fused = reciprocal_rank_fusion([list(dense), list(lexical)])
        else:
            top_lexical = max(lexical.values(), default=0.0) or 1.0
            floor = min(dense.values(), default=0.0)  # lexical-only candidates: no better than the worst dense one
            fused = {cid: dense.get(cid, floor) + self.lexical_weight * lexical.get(cid, 0.0) / top_lexical
                     for cid in set(dense) | set(lexical)}
        best_dense = max(dense.values(), default=0.0)
        top = sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:k]
        chunks = [RankedChunk(cid, score, dense.get(cid), lexical.get(cid)) for cid, score in top]
        return Ranking(chunks, self._answerable(chunks, list(lexical)), best_dense)

    def _answerable(self, chunks: list[RankedChunk], lexical_order: list[int]) -> bool:
        if not chunks:
            return False
        top = chunks[0]
        if top.dense_score is None:
            return False
        if top.dense_score >= self.strong_threshold:
            return True
        return top.dense_score >= self.answer_threshold and top.chunk_id in lexical_order[: self.lexical_support]
