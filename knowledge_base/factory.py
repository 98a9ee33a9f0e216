"""Build the knowledge base from the platform's settings (one per process)."""

from __future__ import annotations

from functools import lru_cache

from gateway.db.session import create_db_engine, create_session_factory
from gateway.settings import Settings, get_settings
from knowledge_base.document_store import KnowledgeDocumentStore
from knowledge_base.embedder import shared_embedder
from knowledge_base.retriever import HybridRetriever
from knowledge_base.service import KnowledgeBase
from knowledge_base.tenant_index import TenantIndexStore


def build_knowledge_base(settings: Settings, sessions=None) -> KnowledgeBase:  # type: ignore[no-untyped-def]
    """A knowledge base on the gateway database and ``settings.kb_dir``.

    Args:
        settings: Platform settings.
        sessions: An existing session factory (the gateway's); a new engine when None.
    """
    sessions = sessions or create_session_factory(create_db_engine(settings.database_url))
    embedder = shared_embedder(settings.kb_encoder)
    return KnowledgeBase(
        KnowledgeDocumentStore(sessions),
        TenantIndexStore(settings.kb_dir, embedder.dimension),
        embedder,
        HybridRetriever(strong_threshold=settings.kb_answer_threshold),
        max_file_bytes=settings.kb_max_file_bytes,
    )


@lru_cache(maxsize=1)
def default_knowledge_base() -> KnowledgeBase:
    """The process-wide knowledge base (action server, CLI)."""
    return build_knowledge_base(get_settings())
