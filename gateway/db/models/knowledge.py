"""A tenant's help-centre documents and their chunks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.models.base import Base, new_id, utcnow


class KnowledgeDocument(Base):
    """One source document of a tenant's knowledge base (a file, a page, an FAQ list)."""

    __tablename__ = "kb_documents"
    __table_args__ = (UniqueConstraint("tenant_id", "source", name="uq_kb_documents_tenant_source"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    # Where it came from (file name or path as given at upload); re-ingesting the same source replaces it.
    source: Mapped[str] = mapped_column(String(500))
    title: Mapped[str] = mapped_column(String(500))
    url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    kind: Mapped[str] = mapped_column(String(16))  # markdown | html | text | pdf | faq
    content_hash: Mapped[str] = mapped_column(String(64))
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class KnowledgeChunk(Base):
    """A retrievable passage of a document, with the heading path it sits under."""

    __tablename__ = "kb_chunks"
    __table_args__ = (UniqueConstraint("tenant_id", "content_hash", name="uq_kb_chunks_tenant_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(ForeignKey("kb_documents.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(500))
    text: Mapped[str] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    # An FAQ entry's other phrasings of its question (None: none); each is embedded as a search key.
    alternatives: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
