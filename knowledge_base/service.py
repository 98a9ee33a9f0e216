"""The knowledge base of every tenant: ingest, delete, re-index and search with citations."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from knowledge_base.chunker import chunk_document, question_texts
from knowledge_base.document_store import DocumentLimitError, DocumentRecord, KnowledgeDocumentStore, UnknownTenantError
from knowledge_base.embedder import SentenceEmbedder
from knowledge_base.parsers import KINDS, MAX_FILE_BYTES, DocumentError, parse_bytes, read_file
from knowledge_base.retriever import HybridRetriever
from knowledge_base.tenant_index import TenantIndexStore, question_key

__all__ = ["Citation", "DocumentError", "IngestReport", "KnowledgeBase", "SearchAnswer", "UnknownTenantError"]


@dataclass(frozen=True)
class Citation:
    """A retrieved passage with what the customer needs to check it."""

    chunk_id: int
    document_id: str
    title: str
    text: str
    url: str | None
    source: str
    score: float
    dense_score: float | None
    lexical_score: float | None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True)
class SearchAnswer:
    """Search results and whether the knowledge base knows the answer."""

    query: str
    answerable: bool
    best_dense_score: float
    results: list[Citation] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {"query": self.query, "answerable": self.answerable, "best_dense_score": round(self.best_dense_score, 4),
                "results": [c.to_dict() for c in self.results]}


@dataclass(frozen=True)
class IngestReport:
    """What ingesting one file did (or why it was rejected)."""

    source: str
    status: str  # added | replaced | unchanged | rejected
    document_id: str | None = None
    chunks: int = 0
    duplicates: int = 0
    reason: str | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return asdict(self)


class KnowledgeBase:
    """Facade over parsing, the SQL store, embeddings and the per-tenant indexes.

    Args:
        store: SQL documents and chunks.
        indexes: Versioned FAISS + BM25 indexes per tenant.
        embedder: Sentence embedder for passages and queries.
        retriever: Hybrid ranking with the answerability threshold.
        max_file_bytes: Largest file accepted.
    """

    def __init__(
        self,
        store: KnowledgeDocumentStore,
        indexes: TenantIndexStore,
        embedder: SentenceEmbedder,
        retriever: HybridRetriever | None = None,
        max_file_bytes: int = MAX_FILE_BYTES,
    ) -> None:
        self.store = store
        self.indexes = indexes
        self.embedder = embedder
        self.retriever = retriever or HybridRetriever()
        self.max_file_bytes = max_file_bytes

    def warm_up(self) -> None:
        """Load the encoder now (it loads on first use otherwise): a server calls this at start-up."""
        self.embedder.embed(["warm up"])

    # ------------------------------------------------------------------------------------ writing
    def ingest_bytes(
        self, tenant: str, name: str, data: bytes, url: str | None = None, document_limit: int | None = None
    ) -> IngestReport:
        """Ingest one file's bytes; a broken file is rejected with its reason and changes nothing.

        Args:
            document_limit: The plan's document limit, enforced atomically for a new file.

        Raises:
            UnknownTenantError: The tenant does not exist.
            DocumentLimitError: The file is new and the tenant is at ``document_limit``.
        """
        if not self.store.tenant_exists(tenant):
            raise UnknownTenantError(tenant)
        report, upserts, deletes = self._store_file(tenant, name, data, url, document_limit)
        if upserts or deletes:
            self.indexes.apply(tenant, upserts, deletes)
        return report

    def ingest_paths(self, tenant: str, paths: list[Path], progress: bool = False,
                     document_limit: int | None = None) -> list[IngestReport]:
        """Ingest files and folders (recursively, supported types only), one report per file.

        The index is updated once for the whole batch, so a folder of many files costs one swap.
        With ``document_limit`` a new file past the plan's limit is rejected (checked inside its write,
        so concurrent ingests cannot pass it together); replacements always fit.
        """
        if not self.store.tenant_exists(tenant):
            raise UnknownTenantError(tenant)
        files: list[Path] = []
        for path in paths:
            if path.is_dir():
                files.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in KINDS))
            else:
                files.append(path)
        reports: list[IngestReport] = []
        upserts: dict[int, tuple[np.ndarray, str]] = {}
        deletes: set[int] = set()
        iterator = files
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(files, desc=f"ingesting into {tenant}", unit="file")
        try:
            for file in iterator:
                try:
                    data = read_file(file, self.max_file_bytes)
                except DocumentError as exc:
                    reports.append(IngestReport(file.name, "rejected", reason=str(exc)))
                    continue
                try:
                    report, added, removed = self._store_file(tenant, file.name, data, None, document_limit)
                except DocumentLimitError as exc:
                    reports.append(IngestReport(file.name, "rejected", reason=f"{file.name}: {exc}"))
                    continue
                reports.append(report)
                deletes |= removed
                for chunk_id in removed:
                    upserts.pop(chunk_id, None)
                upserts.update(added)
        finally:
            if upserts or deletes:  # publish what was stored, even if a later file failed hard
                self.indexes.apply(tenant, upserts, deletes - set(upserts))
        return reports

    def _store_file(
        self, tenant: str, name: str, data: bytes, url: str | None, document_limit: int | None = None
    ) -> tuple[IngestReport, dict[int, tuple[np.ndarray, str]], set[int]]:
        """Parse, embed and store one file in SQL; returns its report and the index changes."""
        source = Path(name).name
        try:
            document = parse_bytes(source, data, self.max_file_bytes)
        except DocumentError as exc:
            return IngestReport(source, "rejected", reason=str(exc)), {}, set()
        content_hash = hashlib.sha256(data).hexdigest()
        existing = self.store.get_document(tenant, source)
        if existing is not None and existing.content_hash == content_hash:
            return IngestReport(source, "unchanged", existing.id, existing.chunk_count), {}, set()
        chunks = chunk_document(document)
        # Embed before touching SQL: if this fails, nothing stored changes. FAQ entries also get their
        # question and each alternative phrasing embedded alone (more keys of the same chunk).
        keyed = [(c.content_hash, q) for c in chunks for q in question_texts(document.kind, c.title, c.alternatives)]
        vectors = self.embedder.embed([c.search_text for c in chunks] + [q for _, q in keyed])
        by_hash = {c.content_hash: v for c, v in zip(chunks, vectors)}
        question_vectors: dict[str, list[tuple[np.ndarray, str]]] = {}
        for (chunk_hash, question), vector in zip(keyed, vectors[len(chunks):]):
            question_vectors.setdefault(chunk_hash, []).append((vector, question))
        result = self.store.replace_document(tenant, source, document.title, url or document.url, document.kind,
                                             content_hash, chunks, document_limit)
        if result.unchanged:
            return IngestReport(source, "unchanged", result.document.id, result.document.chunk_count), {}, set()
        status = "replaced" if existing is not None else "added"
        report = IngestReport(source, status, result.document.id, len(result.added), result.duplicates)
        upserts = {cid: (by_hash[c.content_hash], c.search_text) for cid, c in result.added}
        for cid, chunk in result.added:
            for j, (vector, question) in enumerate(question_vectors.get(chunk.content_hash, [])):
                upserts[question_key(cid, j)] = (vector, question)
        return report, upserts, set(result.removed)

    def delete(self, tenant: str, document: str) -> DocumentRecord | None:
        """Delete a document by id or source; it is gone from results at once."""
        deleted = self.store.delete_document(tenant, document)
        if deleted is None:
            return None
        record, chunk_ids = deleted
        if chunk_ids:
            self.indexes.apply(tenant, deletes=set(chunk_ids))
        return record

    def reindex(self, tenant: str, progress: bool = False) -> int:
        """Re-embed every chunk of a tenant from SQL and swap in a fresh index; returns the count."""
        chunks = self.store.chunks(tenant)
        keys = [(question_key(c.id, j), question) for c in chunks for j, question in enumerate(c.questions)]
        texts = [c.search_text for c in chunks] + [question for _, question in keys]
        ids = [c.id for c in chunks] + [key for key, _ in keys]
        vectors = self.embedder.embed(texts, progress=progress)
        self.indexes.replace_all(tenant, ids, vectors, texts)
        return len(chunks)

    def list_documents(self, tenant: str) -> list[DocumentRecord]:
        """A tenant's documents."""
        return self.store.list_documents(tenant)

    # ------------------------------------------------------------------------------------ reading
    def search(self, tenant: str, query: str, k: int = 5, mode: str = "hybrid") -> SearchAnswer:
        """Best passages of the tenant's knowledge base for ``query``, with citations.

        Only chunks that still exist in SQL are returned, so a deleted document disappears from
        results even before its index update lands.
        """
        query = (query or "").strip()[:2000]
        snapshot = self.indexes.snapshot(tenant)
        if not query or snapshot is None or snapshot.size == 0:
            return SearchAnswer(query, False, 0.0)
        vector = self.embedder.embed([query])[0]
        ranking = self.retriever.rank(snapshot, vector, query, k * 2, mode)
        rows = {c.id: c for c in self.store.chunks(tenant, [r.chunk_id for r in ranking.chunks])}
        results = [
            Citation(r.chunk_id, rows[r.chunk_id].document_id, rows[r.chunk_id].title, rows[r.chunk_id].text,
                     rows[r.chunk_id].url, rows[r.chunk_id].source, round(r.score, 6),
                     None if r.dense_score is None else round(r.dense_score, 4),
                     None if r.lexical_score is None else round(r.lexical_score, 4))
            for r in ranking.chunks if r.chunk_id in rows
        ][:k]
        return SearchAnswer(query, ranking.answerable and bool(results), ranking.best_dense_score, results)
