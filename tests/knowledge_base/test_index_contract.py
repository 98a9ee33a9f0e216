"""Contract tests every index implementation passes (exact flat and approximate HNSW).

The same suite runs against each kind through ``TenantIndexStore``: add, replace, delete,
search, tenant isolation, persistence across a restart, and atomic swaps under concurrent queries.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from knowledge_base.tenant_index import TenantIndexStore
from knowledge_base.vector_index import FaissVectorIndex

DIM = 16


def unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return vector / np.linalg.norm(vector)


@pytest.fixture(params=["flat", "hnsw", "ivf"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store(tmp_path: Path, kind: str) -> TenantIndexStore:
    return TenantIndexStore(tmp_path / "kb", DIM, kind=kind)


def top_ids(store: TenantIndexStore, tenant: str, vector: np.ndarray, k: int = 3) -> list[int]:
    snapshot = store.snapshot(tenant)
    assert snapshot is not None
    _, ids = snapshot.dense.search(vector, k)
    return [int(i) for i in ids[0] if i >= 0]


def test_add_and_search(store: TenantIndexStore, kind: str) -> None:
    store.apply("acme", {i: (unit(i), f"text {i}") for i in range(1, 21)})
    snapshot = store.snapshot("acme")
    assert snapshot is not None and snapshot.size == 20 and snapshot.dense.kind == kind
    assert top_ids(store, "acme", unit(7))[0] == 7
    assert snapshot.lexical.search("text", 5)  # BM25 side indexed the same chunks


def test_replace_keeps_the_id_and_moves_the_vector(store: TenantIndexStore) -> None:
    store.apply("acme", {1: (unit(1), "one"), 2: (unit(2), "two")})
    store.apply("acme", {1: (unit(99), "one, rewritten")})
    snapshot = store.snapshot("acme")
    assert snapshot is not None and snapshot.size == 2
    assert top_ids(store, "acme", unit(99))[0] == 1
    assert snapshot.texts[1] == "one, rewritten"


def test_delete_removes_from_results(store: TenantIndexStore) -> None:
    store.apply("acme", {i: (unit(i), f"t{i}") for i in range(1, 6)})
    store.apply("acme", deletes={3})
    assert 3 not in top_ids(store, "acme", unit(3), k=5)
    assert store.snapshot("acme").size == 4  # type: ignore[union-attr]


def test_tenants_never_see_each_other(store: TenantIndexStore) -> None:
    store.apply("acme", {1: (unit(1), "acme secret")})
    store.apply("globex", {2: (unit(1), "globex secret")})
    assert top_ids(store, "acme", unit(1), k=10) == [1]
    assert top_ids(store, "globex", unit(1), k=10) == [2]
    assert store.snapshot("initech") is None
    with pytest.raises(ValueError):
        store.snapshot("../acme")


def test_survives_a_restart(store: TenantIndexStore, tmp_path: Path, kind: str) -> None:
    store.apply("acme", {i: (unit(i), f"t{i}") for i in range(1, 11)})
    reopened = TenantIndexStore(tmp_path / "kb", DIM, kind=kind)
    assert top_ids(reopened, "acme", unit(4))[0] == 4
    assert reopened.snapshot("acme").texts[4] == "t4"  # type: ignore[union-attr]


def test_another_process_swap_is_picked_up_without_restart(store: TenantIndexStore, tmp_path: Path, kind: str) -> None:
    reader = TenantIndexStore(tmp_path / "kb", DIM, kind=kind)  # e.g. the action server
    store.apply("acme", {1: (unit(1), "v1")})
    assert reader.snapshot("acme").size == 1  # type: ignore[union-attr]
    store.apply("acme", {2: (unit(2), "v2")})
    assert reader.snapshot("acme").size == 2  # type: ignore[union-attr]


def test_atomic_swap_under_concurrent_queries(store: TenantIndexStore, tmp_path: Path, kind: str) -> None:
    """Readers searching while a writer publishes 15 versions never fail and never see a torn index."""
    reader = TenantIndexStore(tmp_path / "kb", DIM, kind=kind)
    store.apply("acme", {i: (unit(i), f"t{i}") for i in range(1, 11)})
    errors: list[BaseException] = []
    seen_sizes: set[int] = set()
    stop = threading.Event()

    def search_forever() -> None:
        while not stop.is_set():
            try:
                snapshot = reader.snapshot("acme")
                assert snapshot is not None
                _, ids = snapshot.dense.search(unit(1), 5)
                assert set(int(i) for i in ids[0] if i >= 0) <= set(snapshot.ids.tolist())
                assert len(snapshot.texts) == snapshot.size == snapshot.dense.size
                seen_sizes.add(snapshot.size)
            except BaseException as exc:  # noqa: BLE001 - collected and re-raised in the test thread
                errors.append(exc)
                return

    threads = [threading.Thread(target=search_forever) for _ in range(3)]
    for thread in threads:
        thread.start()
    for version in range(15):
        store.apply("acme", {100 + version: (unit(100 + version), f"new {version}")})
    stop.set()
    for thread in threads:
        thread.join()
    assert not errors, errors[0]
    assert reader.snapshot("acme").size == 25  # type: ignore[union-attr]
    assert len(seen_sizes) >= 1


def test_old_versions_are_collected(store: TenantIndexStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("knowledge_base.tenant_index.GRACE_SECONDS", 0.0)
    for i in range(6):
        store.apply("acme", {i: (unit(i), "t")})
    versions = list((tmp_path / "kb" / "acme").glob("v-*"))
    assert len(versions) <= 3
    assert not list((tmp_path / "kb" / "acme").glob(".staging-*"))


def test_empty_index_answers_nothing(tmp_path: Path, kind: str) -> None:
    index = FaissVectorIndex.build(np.zeros(0, np.int64), np.zeros((0, DIM), np.float32), kind)
    scores, ids = index.search(unit(1), 5)
    assert ids.shape == (1, 0)


def test_size_picks_exact_or_approximate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("knowledge_base.vector_index.APPROXIMATE_ABOVE", 10)
    vectors = np.stack([unit(i) for i in range(20)])
    assert FaissVectorIndex.build(np.arange(5), vectors[:5]).kind == "flat"
    assert FaissVectorIndex.build(np.arange(20), vectors).kind == "ivf"
