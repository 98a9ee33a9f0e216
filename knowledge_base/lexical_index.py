"""BM25 over chunk texts (bm25s, English stop words, Snowball stemming)."""

from __future__ import annotations

import bm25s
import numpy as np
import Stemmer

_STEMMER = Stemmer.Stemmer("english")


def _tokens(texts: list[str]) -> bm25s.tokenization.Tokenized:
    return bm25s.tokenize(texts, stopwords="en", stemmer=_STEMMER, show_progress=False)


class Bm25LexicalIndex:
    """Lexical retrieval: finds exact terms (order numbers, product names) dense vectors blur.

    Args:
        ids: Chunk ids, parallel to ``texts``.
        texts: What to index.
    """

    def __init__(self, ids: list[int], texts: list[str]) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)
        self._retriever: bm25s.BM25 | None = None
        tokens = _tokens(texts) if texts else None
        if tokens is not None and tokens.vocab:  # texts made only of stop words have nothing to index
            self._retriever = bm25s.BM25()
            self._retriever.index(tokens, show_progress=False)

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """(chunk id, BM25 score) of the best matches, positive scores only, best first."""
        if self._retriever is None or not query.strip() or k <= 0:
            return []
        tokens = _tokens([query])
        if not any(len(t) for t in tokens.ids):
            return []
        k = min(k, len(self.ids))
        documents, scores = self._retriever.retrieve(tokens, k=k, show_progress=False, n_threads=1)
        return [(int(self.ids[d]), float(s)) for d, s in zip(documents[0], scores[0]) if s > 0]
