"""The SQL document store's plan limit holds under concurrent writers, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from knowledge_base.chunker import Chunk
from knowledge_base.document_store import DocumentLimitError, KnowledgeDocumentStore
from tests.conftest import migrated_sessions


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """A migrated gateway database with tenants acme and globex, on each backend."""
    yield from migrated_sessions(request.param, tmp_path, "sb_kbstore")


def _chunk(n: int) -> Chunk:
    return Chunk(title=f"Topic {n}", text=f"All about topic {n}.", url=None, position=0)


def _put(store: KnowledgeDocumentStore, tenant: str, n: int, limit: int | None) -> None:
    store.replace_document(tenant, f"topic{n}.md", f"Topic {n}", None, "markdown", f"file{n}", [_chunk(n)], limit)


def test_racing_new_documents_never_pass_the_limit(sessions: sessionmaker[Session]) -> None:
    store = KnowledgeDocumentStore(sessions)
    _put(store, "globex", 99, None)  # another tenant's document does not count
    barrier = threading.Barrier(8)

    def attempt(n: int) -> str:
        barrier.wait()
        try:
            _put(store, "acme", n, 3)
            return "stored"
        except DocumentLimitError as exc:
            assert exc.limit == 3 and exc.in_use == 3
            return "refused"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    assert outcomes.count("stored") == 3 and outcomes.count("refused") == 5, outcomes
    assert len(store.list_documents("acme")) == 3
    # A refused document left nothing behind: no chunk rows of it.
    stored = {d.source for d in store.list_documents("acme")}
    assert {c.source for c in store.chunks("acme")} == stored


def test_replacing_a_document_at_the_limit_is_allowed(sessions: sessionmaker[Session]) -> None:
    store = KnowledgeDocumentStore(sessions)
    for n in range(2):
        _put(store, "acme", n, 2)
    with pytest.raises(DocumentLimitError):
        _put(store, "acme", 2, 2)
    result = store.replace_document("acme", "topic1.md", "Topic 1", None, "markdown", "file1-v2",
                                    [_chunk(11)], document_limit=2)
    assert not result.unchanged and len(result.added) == 1
    assert len(store.list_documents("acme")) == 2
