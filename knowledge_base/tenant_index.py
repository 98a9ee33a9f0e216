"""Per-tenant, versioned search indexes on disk with atomic swaps and live reloads.

Layout under ``root``::

    <tenant>/CURRENT              name of the live version (replaced atomically with os.replace)
    <tenant>/v-<ns>/index.faiss   the FAISS index
    <tenant>/v-<ns>/vectors.npy   the vectors and ids, so updates never re-embed unchanged chunks
    <tenant>/v-<ns>/ids.npy
    <tenant>/v-<ns>/texts.json    chunk texts for BM25
    <tenant>/v-<ns>/manifest.json kind, size, dimension, created

A writer builds a complete new version folder aside, then flips CURRENT; a reader (gateway, action
server, CLI: any process) notices the new CURRENT on its next search and loads it, while searches
in flight keep using the snapshot they started with. Old versions are removed after a grace period.
Each tenant has its own folder and its own index, so no search can reach another tenant's chunks.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from knowledge_base.lexical_index import Bm25LexicalIndex
from knowledge_base.vector_index import FaissVectorIndex

_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: Index ids at or above this are extra keys of a chunk: an FAQ entry's question (and each of its
#: alternative phrasings) embedded on its own, so a customer's paraphrase is matched question to
#: question. Key ``j`` of chunk ``c`` has id ``c + (j + 1) · QUESTION_KEY_OFFSET``.
QUESTION_KEY_OFFSET = 1 << 40


def question_key(chunk_id: int, index: int = 0) -> int:
    """Index id of a chunk's ``index``-th question key (0: the FAQ question itself)."""
    return chunk_id + (index + 1) * QUESTION_KEY_OFFSET


def chunk_of(index_id: int) -> int:
    """The chunk an index id belongs to (itself, or the chunk of a question key)."""
    return index_id % QUESTION_KEY_OFFSET


KEEP_VERSIONS = 3
GRACE_SECONDS = 60.0


@dataclass(frozen=True)
class IndexSnapshot:
    """One loaded version of a tenant's index (immutable: safe to share between threads)."""

    version: str
    dense: FaissVectorIndex
    lexical: Bm25LexicalIndex
    ids: np.ndarray
    vectors: np.ndarray
    texts: dict[int, str]

    @property
    def size(self) -> int:
        """Number of chunks."""
        return len(self.ids)


def _check_tenant(tenant: str) -> str:
    if not _TENANT.match(tenant or ""):
        raise ValueError(f"invalid tenant id {tenant!r}")
    return tenant


class TenantIndexStore:
    """Versioned FAISS + BM25 indexes, one per tenant.

    Args:
        root: Folder holding one sub-folder per tenant.
        dimension: Vector dimension (384 for all-MiniLM-L6-v2).
        kind: Force ``flat`` or ``hnsw``; chosen by collection size when None.
    """

    def __init__(self, root: Path, dimension: int, kind: str | None = None) -> None:
        self.root = Path(root)
        self.dimension = dimension
        self.kind = kind
        self._cache: dict[str, IndexSnapshot] = {}
        self._cache_lock = threading.Lock()

    # ------------------------------------------------------------------------------------ writing
    def apply(
        self, tenant: str, upserts: dict[int, tuple[np.ndarray, str]] | None = None, deletes: set[int] | None = None
    ) -> str:
        """Add or replace chunks and delete others, as one new version; returns its name.

        Args:
            tenant: Tenant id.
            upserts: chunk id → (unit vector, text).
            deletes: Chunk ids to remove.
        """
        upserts, deletes = upserts or {}, deletes or set()
        with self._writer_lock(tenant):
            current = self._load_version(tenant, self._current_name(tenant), searchable=False)
            # Deleting or replacing a chunk removes its question key too.
            gone = deletes | set(upserts)
            keep = [i for i, cid in enumerate(current.ids.tolist()) if cid not in gone and chunk_of(cid) not in gone] \
                if current else []
            ids = [int(current.ids[i]) for i in keep] if current else []
            vectors = [current.vectors[keep]] if current and keep else []
            texts = {cid: current.texts[cid] for cid in ids} if current else {}
            if upserts:
                new_ids = sorted(upserts)
                ids += new_ids
                vectors.append(np.vstack([np.asarray(upserts[c][0], np.float32).reshape(1, -1) for c in new_ids]))
                texts.update({c: upserts[c][1] for c in new_ids})
            matrix = np.vstack(vectors) if vectors else np.zeros((0, self.dimension), np.float32)
            return self._write_version(tenant, np.asarray(ids, np.int64), matrix, texts)

    def replace_all(self, tenant: str, ids: list[int], vectors: np.ndarray, texts: list[str]) -> str:
        """Rebuild a tenant's index from scratch (re-index); returns the new version's name."""
        with self._writer_lock(tenant):
            return self._write_version(tenant, np.asarray(ids, np.int64), np.asarray(vectors, np.float32).reshape(-1, self.dimension),
                                       dict(zip(map(int, ids), texts)))

    def drop(self, tenant: str) -> None:
        """Remove a tenant's indexes entirely."""
        with self._writer_lock(tenant):
            shutil.rmtree(self.root / _check_tenant(tenant), ignore_errors=True)
        with self._cache_lock:
            self._cache.pop(tenant, None)

    def _write_version(self, tenant: str, ids: np.ndarray, vectors: np.ndarray, texts: dict[int, str]) -> str:
        folder = self.root / _check_tenant(tenant)
        name = f"v-{time.time_ns()}"
        staging = folder / f".staging-{name}"
        staging.mkdir(parents=True)
        try:
            index = FaissVectorIndex.build(ids, vectors, self.kind)
            index.save(staging / "index.faiss")
            np.save(staging / "ids.npy", ids)
            np.save(staging / "vectors.npy", vectors)
            (staging / "texts.json").write_text(json.dumps({str(k): v for k, v in texts.items()}))
            (staging / "manifest.json").write_text(json.dumps(
                {"kind": index.kind, "size": int(len(ids)), "dimension": self.dimension, "created": time.time()}))
            staging.rename(folder / name)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        pointer = folder / f".CURRENT-{name}"
        pointer.write_text(name)
        os.replace(pointer, folder / "CURRENT")  # the swap: readers see the old or the new name, never half
        self._collect_garbage(folder, name)
        return name

    def _collect_garbage(self, folder: Path, live: str) -> None:
        """Delete versions beyond the newest few once they are older than the grace period."""
        versions = sorted((p for p in folder.glob("v-*") if p.is_dir()), key=lambda p: p.name, reverse=True)
        now = time.time()
        for old in versions[KEEP_VERSIONS:]:
            if old.name != live and now - old.stat().st_mtime > GRACE_SECONDS:
                shutil.rmtree(old, ignore_errors=True)

    @contextmanager
    def _writer_lock(self, tenant: str) -> Iterator[None]:
        """One writer per tenant across processes (gateway, CLI, jobs)."""
        folder = self.root / _check_tenant(tenant)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # ------------------------------------------------------------------------------------ reading
    def _current_name(self, tenant: str) -> str | None:
        try:
            return (self.root / _check_tenant(tenant) / "CURRENT").read_text().strip() or None
        except FileNotFoundError:
            return None

    def _load_version(self, tenant: str, name: str | None, searchable: bool = True) -> IndexSnapshot | None:
        """Load a version; writers only need its ids, vectors and texts (``searchable=False``)."""
        if name is None:
            return None
        folder = self.root / tenant / name
        manifest = json.loads((folder / "manifest.json").read_text())
        ids = np.load(folder / "ids.npy")
        raw_texts = json.loads((folder / "texts.json").read_text())
        texts = {int(k): v for k, v in raw_texts.items()}
        return IndexSnapshot(
            version=name,
            dense=FaissVectorIndex.load(folder / "index.faiss", manifest["kind"]) if searchable else None,  # type: ignore[arg-type]
            # Question keys are dense-only: their words are already in their chunk's text.
            lexical=Bm25LexicalIndex([int(i) for i in ids if i < QUESTION_KEY_OFFSET],
                                     [texts[int(i)] for i in ids if i < QUESTION_KEY_OFFSET])
            if searchable else None,  # type: ignore[arg-type]
            ids=ids,
            vectors=np.load(folder / "vectors.npy"),
            texts=texts,
        )

    def snapshot(self, tenant: str) -> IndexSnapshot | None:
        """The live version of a tenant's index, reloaded when another process swapped it."""
        name = self._current_name(tenant)
        cached = self._cache.get(tenant)
        if cached is not None and cached.version == name:
            return cached
        if name is None:
            return None
        for _ in range(3):
            try:
                loaded = self._load_version(tenant, name)
                break
            except FileNotFoundError:  # collected between reading CURRENT and loading: read it again
                name = self._current_name(tenant)
                if name is None:
                    return None
        else:
            return cached
        with self._cache_lock:
            self._cache[tenant] = loaded  # type: ignore[assignment]
        return loaded
