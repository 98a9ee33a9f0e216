"""Model registry contract, on SQLite and on the machine's PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from gateway.db.session import create_db_engine, create_session_factory
from gateway.learning.model_registry import ModelRegistry, RegistryError
from gateway.migrate import upgrade_database
from gateway.stores.tenant_store import TenantStore
from tests.conftest import postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ModelRegistry]:
    urls: Iterator[str] = iter([f"sqlite:///{tmp_path / 'registry.db'}"]) if request.param == "sqlite" \
        else postgres_database("sb_registry")
    url = next(urls)
    upgrade_database(url)
    engine = create_db_engine(url)
    sessions: sessionmaker[Session] = create_session_factory(engine)
    for tenant in ("acme", "globex"):
        TenantStore(sessions).ensure_tenant(tenant, tenant.title())
    yield ModelRegistry(sessions, tmp_path / "models")
    engine.dispose()
    next(urls, None)


def archive(tmp_path: Path, content: bytes) -> Path:
    """A tar.gz shaped like a Rasa model: ``metadata.json`` with a model id derived from ``content``."""
    import gzip
    import hashlib
    import io
    import json
    import tarfile

    model_id = hashlib.sha256(content).hexdigest()[:32]
    path = tmp_path / f"{model_id}.tar.gz"
    # Byte-identical for the same content (gzip header and members carry no time): the registry hashes archives.
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as zipped, \
            tarfile.open(fileobj=zipped, mode="w") as tar:
        for name, data in (("metadata.json", json.dumps({"model_id": model_id}).encode()), ("content", content)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_base_model_is_registered_once_and_goes_live(registry: ModelRegistry, tmp_path: Path) -> None:
    first, new = registry.register_base("acme", archive(tmp_path, b"one"), "make train")
    assert new and first.version == 1 and first.status == "production" and first.source == "base"
    assert Path(first.archive_path or "").read_bytes() == archive(tmp_path, b"one").read_bytes()
    assert first.rasa_model_id is not None and len(first.rasa_model_id) == 32
    again, new = registry.register_base("acme", archive(tmp_path, b"one"), "make train")
    assert not new and again.version == 1
    second, new = registry.register_base("acme", archive(tmp_path, b"two"), "make train")
    assert new and second.version == 2
    assert [(v.version, v.status) for v in registry.list("acme")] == [(2, "production"), (1, "retired")]
    assert registry.production("globex") is None  # tenants are apart


def test_exactly_one_production_version_and_an_audit_trail(registry: ModelRegistry, tmp_path: Path) -> None:
    registry.register_base("acme", archive(tmp_path, b"base"), "make train")
    candidate = registry.begin_retraining("acme", "reviewer", data_version_id=None)
    assert candidate.version == 2 and candidate.status == "training"
    target = registry.archive_path("acme", 2)
    target.write_bytes(b"v2")
    registry.update("acme", 2, archive_path=str(target), status="candidate", gate={"passed": True})
    registry.mark_production("acme", 2, "alice", "promote")
    assert registry.previous_production("acme").version == 1  # type: ignore[union-attr]
    registry.mark_production("acme", 1, "bob", "rollback")
    assert [v.status for v in registry.list("acme")] == ["retired", "production"]
    assert registry.previous_production("acme").version == 2  # type: ignore[union-attr]
    trail = registry.deployments("acme")
    assert [(d["version"], d["action"], d["actor"], d["previous_version"]) for d in trail] == [
        (1, "rollback", "bob", 2), (2, "promote", "alice", 1), (1, "deploy", "make train", None)]


def test_one_retraining_at_a_time_and_no_version_number_twice(registry: ModelRegistry, tmp_path: Path) -> None:
    registry.begin_retraining("acme", "a", None)
    with pytest.raises(RegistryError) as busy:
        registry.begin_retraining("acme", "b", None)
    assert busy.value.code == "busy"
    registry.begin_retraining("globex", "c", None)  # another tenant is not blocked
    registry.update("acme", 1, status="failed")

    versions: list[int] = []
    errors: list[Exception] = []

    def register(i: int) -> None:
        try:
            versions.append(registry.register_base("acme", archive(tmp_path, f"parallel {i}".encode()), "t")[0].version)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and sorted(versions) == [2, 3, 4, 5, 6, 7]
    assert sum(v.status == "production" for v in registry.list("acme")) == 1


def test_unknown_versions_and_missing_archives_are_refused(registry: ModelRegistry) -> None:
    with pytest.raises(RegistryError) as unknown:
        registry.get("acme", 9)
    assert unknown.value.code == "unknown_version"
    registry.begin_retraining("acme", "a", None)
    with pytest.raises(RegistryError) as no_archive:
        registry.mark_production("acme", 1, "a", "promote")
    assert no_archive.value.code == "no_archive"
    assert registry.production("acme") is None
