"""Hybrid retrieval: dense (FAISS) and lexical (BM25) evidence fused into one ranking.

Two fusions are available. ``hybrid`` (the default) is anchored on the dense ranking: BM25, scaled by
the query's best BM25 score, is added to the cosine only for passages whose cosine is within
``tie_margin`` of the best one, ``cos + w · bm25 / max bm25``. Exact terms (an order number, a product
name) then break near-ties, but a passage the dense ranking puts far down cannot be pulled to the top
by shared words: on a held-out FAQ set the unanchored sum ranked below dense search alone, and no
help centre can be worse served by the hybrid than by its dense part beyond a near-tie. ``rrf`` is
reciprocal rank fusion (BM25 gets an equal vote, which costs accuracy on paraphrased questions).

FAQ entries carry more dense keys, their question alone and each alternative phrasing of it
(``tenant_index.question_key``): a paraphrase close to one of them raises the entry's cosine to the
mean of its text's and its best question key's when that is higher than the text's alone (the plain
maximum let single short questions outrank better-matching entries: CLINC150-based FAQ, validation
split, Recall@1 67.7 against 70.8).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from knowledge_base.tenant_index import IndexSnapshot, chunk_of

RRF_K = 60  # the constant of Cormack et al. (2009); damps the influence of the very top ranks
MODES = ("hybrid", "rrf", "dense", "lexical")
LEXICAL_WEIGHT = 0.12
#: Passages within this cosine of the best one are near-ties that BM25 may reorder.
TIE_MARGIN = 0.05


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

    Answerability has a precision target: at most 5 % of off-topic questions answered while 95 % of
    in-domain ones are. The top passage is used when its cosine is at least ``strong_threshold``
    (0.42: the cosine that keeps 95 % of in-domain questions on the choice data, BANKING77 questions
    against its 77 articles, where it answers 3.8 % of CLINC150's out-of-scope and other-domain
    validation questions; bench/results/kb_faq.md reports test). A lower cosine supported by BM25
    (at least ``answer_threshold`` and in BM25's top ``lexical_support``) is a second, optional
    tier: it answered 9.4 % of the same off-topic questions, so it is off by default.

    Args:
        answer_threshold: Cosine the top passage needs when BM25 supports it (with ``lexical_support``).
        strong_threshold: Cosine that is enough on its own.
        lexical_support: BM25 rank the top passage must reach to count as supported (0: no such tier).
        depth: How many candidates each ranker contributes before fusion.
    """

    def __init__(
        self, answer_threshold: float = 0.30, strong_threshold: float = 0.42, lexical_support: int = 0, depth: int = 50,
        lexical_weight: float = LEXICAL_WEIGHT, tie_margin: float = TIE_MARGIN,
    ) -> None:
        self.lexical_weight = lexical_weight
        self.tie_margin = tie_margin
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
        text_scores: dict[int, float] = {}
        question_scores: dict[int, float] = {}
        scores, ids = snapshot.dense.search(query_vector.reshape(1, -1), depth)
        for index_id, score in zip(ids[0].tolist(), scores[0].tolist()):
            if index_id >= 0:
                chunk_id = chunk_of(int(index_id))
                if chunk_id == index_id:
                    text_scores[chunk_id] = float(score)
                else:  # an FAQ entry's best-matching question key (its question or an alternative)
                    question_scores[chunk_id] = max(float(score), question_scores.get(chunk_id, -1.0))
        dense = dict(text_scores)
        for chunk_id, question in question_scores.items():
            text = text_scores.get(chunk_id)
            if text is None:  # the text key fell outside the candidates: it scores below all of them
                text = min(text_scores.values(), default=question)
            dense[chunk_id] = max(text, (text + question) / 2)
        lexical = dict(snapshot.lexical.search(query, depth)) if mode != "dense" else {}
        if mode == "dense":
            fused = dict(dense)
        elif mode == "lexical":
            fused = dict(lexical)
        elif mode == "rrf":
            fused = reciprocal_rank_fusion([list(dense), list(lexical)])
        else:
            top_lexical = max(lexical.values(), default=0.0) or 1.0
            best = max(dense.values(), default=0.0)
            fused = {cid: score + (self.lexical_weight * lexical.get(cid, 0.0) / top_lexical
                                   if score >= best - self.tie_margin else 0.0)
                     for cid, score in dense.items()}
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
