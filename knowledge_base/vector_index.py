"""FAISS indexes over unit vectors (inner product = cosine): exact, approximate, chosen by size.

An index here is immutable once built; the tenant store (``tenant_index.py``) builds a new one
aside and swaps it in, so readers never see a half-written index.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import faiss
import numpy as np

# Below this many vectors an exact search is fast enough and perfectly accurate; above it an IVF index
# keeps latency flat. bench/results/kb.md: exact search of 384-d vectors on one core costs ~1 ms at 10k
# and ~13-19 ms at 100k (linear), so it crosses a 5 ms budget near 25k. IVF (nprobe 64) beat HNSW on
# clustered data at every size (1M: recall@10 0.978 at p99 4.8 ms vs 0.27 for HNSW at ef 512) and
# builds 4-10x faster, which matters because every update publishes a rebuilt index.
APPROXIMATE_ABOVE = 25_000
APPROXIMATE_KIND = "ivf"
DEFAULT_NPROBE = 64
KINDS = ("flat", "hnsw", "ivf")


def gpu_available() -> bool:
    """Whether FAISS was built with CUDA (the optional faiss-gpu extra) and sees a GPU."""
    get = getattr(faiss, "get_num_gpus", None)
    return bool(get and get() > 0)


class VectorIndex(Protocol):
    """What every index implementation offers."""

    kind: str

    @property
    def size(self) -> int:
        """Number of vectors."""
        ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of the ``k`` nearest vectors per query; missing slots have id -1."""
        ...

    def save(self, path: Path) -> None:
        """Write the index to ``path`` (one file)."""
        ...


class FaissVectorIndex:
    """A FAISS index with 64-bit ids (chunk ids): exact (flat) or approximate (HNSW graph, or
    IVF inverted lists: clusters by k-means, search visits the ``nprobe`` nearest clusters).

    Args:
        index: A built FAISS index (``IndexIDMap2`` around flat / HNSW, or an IVF index).
        kind: ``flat``, ``hnsw`` or ``ivf``.
    """

    def __init__(self, index: faiss.Index, kind: str) -> None:
        self._index = index
        self.kind = kind
        self._searchable = index
        if kind == "flat" and gpu_available():  # pragma: no cover - same code, on the GPU when present
            self._searchable = faiss.index_cpu_to_all_gpus(index)

    @classmethod
    def build(
        cls, ids: np.ndarray, vectors: np.ndarray, kind: str | None = None, ef_search: int = 128, nprobe: int = DEFAULT_NPROBE,
        ef_construction: int = 80,
    ) -> "FaissVectorIndex":
        """Build an index of ``vectors`` (n, d) labelled with ``ids`` (n,).

        Args:
            ids: Chunk ids (int64).
            vectors: Unit vectors (float32).
            kind: ``flat``, ``hnsw`` or ``ivf``; chosen by ``APPROXIMATE_ABOVE`` when None.
            ef_search: HNSW search breadth (recall vs latency).
            nprobe: IVF clusters visited per query (recall vs latency).
            ef_construction: HNSW build breadth (graph quality vs build time).
        """
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if vectors.ndim != 2 or len(ids) != len(vectors):
            raise ValueError(f"ids ({len(ids)}) and vectors {vectors.shape} do not match")
        dimension = vectors.shape[1]
        kind = kind or (APPROXIMATE_KIND if len(ids) > APPROXIMATE_ABOVE else "flat")
        if kind == "ivf":
            return cls(_build_ivf(ids, vectors, nprobe), kind)
        if kind == "flat":
            inner = faiss.IndexFlatIP(dimension)
        elif kind == "hnsw":
            inner = faiss.IndexHNSWFlat(dimension, 32, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = ef_construction
            inner.hnsw.efSearch = ef_search
        else:
            raise ValueError(f"unknown index kind {kind!r}; one of {KINDS}")
        index = faiss.IndexIDMap2(inner)
        index.own_fields = True
        inner.this.disown()  # the id map owns the inner index from here on
        if len(ids):
            index.add_with_ids(vectors, ids)
        return cls(index, kind)

    @classmethod
    def load(cls, path: Path, kind: str) -> "FaissVectorIndex":
        """Read an index written by ``save`` (its kind comes from the manifest next to it)."""
        return cls(faiss.read_index(str(path)), kind)

    @property
    def size(self) -> int:
        """Number of vectors."""
        return int(self._index.ntotal)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of the ``k`` nearest vectors per query; missing slots have id -1."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if self.size == 0 or k <= 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        return self._searchable.search(queries, min(k, self.size))

    def save(self, path: Path) -> None:
        """Write the index to ``path`` (one file)."""
        faiss.write_index(self._index, str(path))


def _build_ivf(ids: np.ndarray, vectors: np.ndarray, nprobe: int) -> faiss.Index:
    """IVF-Flat with about 4·√n lists (each trained list needs ~39 points), trained on ≤ 100k vectors."""
    n, dimension = vectors.shape
    nlist = max(1, min(int(4 * np.sqrt(max(n, 1))), max(n // 39, 1)))
    quantizer = faiss.IndexFlatIP(dimension)
    index = faiss.IndexIVFFlat(quantizer, dimension, nlist, faiss.METRIC_INNER_PRODUCT)
    index.own_fields = True
    quantizer.this.disown()
    if n:
        sample = vectors if n <= 100_000 else vectors[np.random.default_rng(0).choice(n, 100_000, replace=False)]
        index.train(sample)
        index.add_with_ids(vectors, ids)
    index.nprobe = min(nprobe, nlist)
    return index
