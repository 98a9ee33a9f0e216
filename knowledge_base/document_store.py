"""Documents and chunks of every tenant's knowledge base, in the gateway's SQL database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from gateway.db.models import KnowledgeChunk, KnowledgeDocument, Tenant, utcnow
from gateway.db.session import single_read_sessions
from gateway.stores.tenant_store import TenantStore
from knowledge_base.chunker import Chunk, question_texts, search_text


@dataclass(frozen=True)
class DocumentRecord:
    """A document as listed to admins."""

    id: str
    tenant_id: str
    source: str
    title: str
    url: str | None
    kind: str
    chunk_count: int
    content_hash: str
    updated_at: datetime


@dataclass(frozen=True)
class ChunkRecord:
    """A chunk with what a citation needs."""

    id: int
    document_id: str
    title: str
    text: str
    url: str | None
    source: str
    kind: str = ""  # of its document: "faq" chunks get question keys
    alternatives: tuple[str, ...] = ()  # an FAQ entry's other phrasings of its question

    @property
    def questions(self) -> list[str]:
        """The search keys of an FAQ chunk besides its text: its question, then its alternatives."""
        return question_texts(self.kind, self.title, self.alternatives)

    @property
    def search_text(self) -> str:
        """The text its index entry was built from (the same as the chunk it came from)."""
        return search_text(self.title, self.text)


@dataclass(frozen=True)
class ReplaceResult:
    """What replacing a document's chunks changed."""

    document: DocumentRecord
    added: list[tuple[int, Chunk]]
    removed: list[int]
    duplicates: int
    unchanged: bool


def _record(row: KnowledgeDocument) -> DocumentRecord:
    return DocumentRecord(row.id, row.tenant_id, row.source, row.title, row.url, row.kind, row.chunk_count,
                          row.content_hash, row.updated_at)


class UnknownTenantError(LookupError):
    """The tenant does not exist."""


class DocumentLimitError(Exception):
    """A new document would take the tenant past its plan's document limit.

    Attributes:
        limit: The plan's limit.
        in_use: Documents the tenant already has.
    """

    def __init__(self, limit: int, in_use: int) -> None:
        super().__init__(f"the plan includes {limit} knowledge-base documents and {in_use} are in use")
        self.limit, self.in_use = limit, in_use


class KnowledgeDocumentStore:
    """SQL side of the knowledge base: every read and write is scoped to one tenant."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._reads = single_read_sessions(sessions)  # one-statement reads: autocommit on PostgreSQL
        self._tenants = TenantStore(sessions)

    def replace_document(
        self, tenant_id: str, source: str, title: str, url: str | None, kind: str, content_hash: str, chunks: list[Chunk],
        document_limit: int | None = None,
    ) -> ReplaceResult:
        """Create or replace the document ``source`` of a tenant with ``chunks``, in one transaction.

        Chunks whose text another document of the tenant already has are skipped (de-duplication
        by content hash). An unchanged file (same content hash) changes nothing.

        Args:
            document_limit: The most documents the tenant may have; a new document past it is refused
                inside the same transaction, so concurrent uploads cannot together exceed it.

        Raises:
            UnknownTenantError: The tenant does not exist.
            DocumentLimitError: ``source`` is new and the tenant already has ``document_limit`` documents.
        """
        with self._sessions.begin() as session:
            # The tenant row's lock (PostgreSQL) serialises a tenant's document writes so the count
            # below is exact; SQLite gets the same from its single writer, held from the first INSERT.
            if session.get(Tenant, tenant_id, with_for_update=document_limit is not None) is None:
                raise UnknownTenantError(tenant_id)
            document = session.execute(
                select(KnowledgeDocument).where(KnowledgeDocument.tenant_id == tenant_id, KnowledgeDocument.source == source)
            ).scalar_one_or_none()
            if document is not None and document.content_hash == content_hash:
                return ReplaceResult(_record(document), [], [], 0, True)
            removed: list[int] = []
            if document is None:
                document = KnowledgeDocument(tenant_id=tenant_id, source=source, title=title, url=url, kind=kind,
                                             content_hash=content_hash, chunk_count=0)
                session.add(document)
                session.flush()
                if document_limit is not None:
                    count = session.execute(select(func.count()).select_from(KnowledgeDocument)
                                            .where(KnowledgeDocument.tenant_id == tenant_id)).scalar_one()
                    if count > document_limit:
                        raise DocumentLimitError(document_limit, count - 1)  # rolls the insert back
            else:
                removed = list(session.execute(select(KnowledgeChunk.id).where(KnowledgeChunk.document_id == document.id)).scalars())
                session.execute(delete(KnowledgeChunk).where(KnowledgeChunk.document_id == document.id))
                document.title, document.url, document.kind, document.content_hash = title, url, kind, content_hash
                document.updated_at = utcnow()
                session.flush()
            existing = set(session.execute(select(KnowledgeChunk.content_hash).where(KnowledgeChunk.tenant_id == tenant_id)).scalars())
            added: list[tuple[int, Chunk]] = []
            duplicates = 0
            for chunk in chunks:
                if chunk.content_hash in existing:
                    duplicates += 1
                    continue
                existing.add(chunk.content_hash)
                row = KnowledgeChunk(document_id=document.id, tenant_id=tenant_id, position=chunk.position, title=chunk.title,
                                     text=chunk.text, url=chunk.url, content_hash=chunk.content_hash,
                                     alternatives=list(chunk.alternatives) or None)
                session.add(row)
                session.flush()
                added.append((row.id, chunk))
            document.chunk_count = len(added)
            return ReplaceResult(_record(document), added, removed, duplicates, False)

    def delete_document(self, tenant_id: str, document_id_or_source: str) -> tuple[DocumentRecord, list[int]] | None:
        """Delete a document (by id or source) and its chunks; returns it and the removed chunk ids."""
        with self._sessions.begin() as session:
            document = self._find(session, tenant_id, document_id_or_source)
            if document is None:
                return None
            record = _record(document)
            chunk_ids = list(session.execute(select(KnowledgeChunk.id).where(KnowledgeChunk.document_id == document.id)).scalars())
            session.execute(delete(KnowledgeChunk).where(KnowledgeChunk.document_id == document.id))
            session.delete(document)
            return record, chunk_ids

    def get_document(self, tenant_id: str, document_id_or_source: str) -> DocumentRecord | None:
        """One document of a tenant by id or source."""
        with self._reads() as session:
            document = self._find(session, tenant_id, document_id_or_source)
            return _record(document) if document else None

    def list_documents(self, tenant_id: str) -> list[DocumentRecord]:
        """A tenant's documents, by source."""
        with self._reads() as session:
            rows = session.execute(
                select(KnowledgeDocument).where(KnowledgeDocument.tenant_id == tenant_id).order_by(KnowledgeDocument.source)
            ).scalars()
            return [_record(r) for r in rows]

    def chunks(self, tenant_id: str, ids: list[int] | None = None) -> list[ChunkRecord]:
        """Chunks of a tenant (all, or those of ``ids`` that still exist), with their source."""
        with self._reads() as session:
            query = (
                select(KnowledgeChunk, KnowledgeDocument.source, KnowledgeDocument.kind)
                .join(KnowledgeDocument, KnowledgeDocument.id == KnowledgeChunk.document_id)
                .where(KnowledgeChunk.tenant_id == tenant_id)
            )
            if ids is not None:
                if not ids:
                    return []
                query = query.where(KnowledgeChunk.id.in_(ids))
            return [ChunkRecord(c.id, c.document_id, c.title, c.text, c.url, source, kind, tuple(c.alternatives or ()))
                    for c, source, kind in session.execute(query.order_by(KnowledgeChunk.id))]

    def tenant_exists(self, tenant_id: str) -> bool:
        """Whether the tenant exists."""
        return self._tenants.exists(tenant_id)

    @staticmethod
    def _find(session: Session, tenant_id: str, key: str) -> KnowledgeDocument | None:
        return session.execute(
            select(KnowledgeDocument).where(
                KnowledgeDocument.tenant_id == tenant_id, (KnowledgeDocument.id == key) | (KnowledgeDocument.source == key)
            )
        ).scalar_one_or_none()
