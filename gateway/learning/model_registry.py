"""The model registry: every bot version of a tenant, what it was trained on, how it scored, who put it live.

Archives are kept under ``<models_dir>/<tenant>/v<N>.tar.gz`` so any earlier version can be loaded
again (rollback). Exactly one version per tenant is ``production``; promotions and rollbacks move
that mark in one transaction and leave a row in ``model_deployments``. After each move the registry
publishes ``<models_dir>/<tenant>/production.json``, which every Rasa replica reads to find the tenant's
agent (``connectors/tenant_agents.py``).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from gateway.db.locks import lock_tenant
from gateway.db.models import ModelDeployment, ModelVersion, aware, utcnow
from gateway.errors import CodedError

#: A retraining still "training" after this long is taken as crashed and no longer blocks new runs.
STALE_TRAINING = timedelta(hours=2)


class RegistryError(CodedError, RuntimeError):
    """A registry operation that cannot be done (unknown version, nothing to roll back to, busy, …)."""


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class VersionView:
    """A registry row, detached from its session."""

    id: int
    tenant_id: str
    version: int
    status: str
    stage: str | None
    source: str
    archive_path: str | None
    archive_sha256: str | None
    rasa_model_id: str | None
    data_version_id: int | None
    bot_data_hash: str | None
    intents: list[str] | None
    metrics: dict[str, Any] | None
    gate: dict[str, Any] | None
    error: str | None
    created_by: str
    promoted_by: str | None
    promoted_at: str | None
    created_at: str
    finished_at: str | None

    @classmethod
    def of(cls, row: ModelVersion) -> "VersionView":
        """Copy a row."""
        def iso(value: Any) -> str | None:
            return aware(value).isoformat() if value is not None else None

        return cls(row.id, row.tenant_id, row.version, row.status, row.stage, row.source, row.archive_path,
                   row.archive_sha256, row.rasa_model_id, row.data_version_id, row.bot_data_hash, row.intents,
                   row.metrics, row.gate, row.error, row.created_by, row.promoted_by, iso(row.promoted_at),
                   iso(row.created_at) or "", iso(row.finished_at))

    def to_public(self) -> dict[str, Any]:
        """JSON shape of the API (the archive path stays private)."""
        data = dict(self.__dict__)
        data.pop("archive_path")
        return data


class ModelRegistry:
    """Stores versions and deployments.

    Args:
        sessions: Gateway database.
        store_dir: Folder of the archives (one sub-folder per tenant).
    """

    def __init__(self, sessions: sessionmaker[Session], store_dir: Path) -> None:
        self._sessions = sessions
        self.store_dir = store_dir

    def pointer_path(self, tenant_id: str) -> Path:
        """The production file Rasa reads for the tenant (``connectors/tenant_agents.py``)."""
        return self.store_dir / tenant_id / "production.json"

    def publish(self, tenant_id: str) -> VersionView | None:
        """Write the tenant's production file from the database (removed when it has no production model).

        Runs under a file lock and reads the database inside it, so two racing promotions leave the file
        saying what the database says. Write-then-rename: a reader sees the old or the new file, whole.
        """
        folder = self.store_dir / tenant_id
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / ".production.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            production = self.production(tenant_id)
            target = self.pointer_path(tenant_id)
            if production is None or not production.archive_path:
                target.unlink(missing_ok=True)
                return production
            body = {"tenant_id": tenant_id, "version": production.version, "model_id": production.rasa_model_id,
                    "model_file": str(Path(production.archive_path).resolve()), "sha256": production.archive_sha256}
            staging = folder / f".production.{os.getpid()}.tmp"
            staging.write_text(json.dumps(body, indent=1), encoding="utf-8")
            os.replace(staging, target)
            return production

    def archive_path(self, tenant_id: str, version: int) -> Path:
        """Where version ``version`` of a tenant's bot is kept."""
        return self.store_dir / tenant_id / f"v{version}.tar.gz"

    # ---------------------------------------------------------------- reading
    def list(self, tenant_id: str) -> list[VersionView]:
        """Every version, newest first."""
        with self._sessions() as session:
            rows = session.execute(select(ModelVersion).where(ModelVersion.tenant_id == tenant_id)
                                   .order_by(ModelVersion.version.desc())).scalars().all()
            return [VersionView.of(r) for r in rows]

    def get(self, tenant_id: str, version: int) -> VersionView:
        """One version.

        Raises:
            RegistryError: No such version.
        """
        with self._sessions() as session:
            row = session.execute(select(ModelVersion).where(ModelVersion.tenant_id == tenant_id,
                                                             ModelVersion.version == version)).scalar_one_or_none()
            if row is None:
                raise RegistryError("unknown_version", f"{tenant_id} has no model version {version}")
            return VersionView.of(row)

    def production(self, tenant_id: str) -> VersionView | None:
        """The version in production, if any."""
        with self._sessions() as session:
            row = session.execute(select(ModelVersion).where(ModelVersion.tenant_id == tenant_id,
                                                             ModelVersion.status == "production")).scalar_one_or_none()
            return VersionView.of(row) if row else None

    def tenants_in_production(self) -> list[str]:
        """Every tenant with a version in production."""
        with self._sessions() as session:
            return list(session.execute(select(ModelVersion.tenant_id).where(ModelVersion.status == "production")
                                        .distinct()).scalars())

    def deployments(self, tenant_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """What went live when, newest first."""
        with self._sessions() as session:
            rows = session.execute(
                select(ModelDeployment, ModelVersion.version).join(ModelVersion, ModelVersion.id == ModelDeployment.version_id)
                .where(ModelDeployment.tenant_id == tenant_id).order_by(ModelDeployment.id.desc()).limit(limit)).all()
            previous = {r.id: r.version for r in session.execute(
                select(ModelVersion.id, ModelVersion.version).where(ModelVersion.tenant_id == tenant_id))}
        return [{"version": version, "action": d.action, "actor": d.actor,
                 "previous_version": previous.get(d.previous_version_id) if d.previous_version_id else None,
                 "at": aware(d.created_at).isoformat()} for d, version in rows]

    # ---------------------------------------------------------------- writing
    def _next_version(self, session: Session, tenant_id: str) -> int:
        # Without the lock, concurrent writers all read the same maximum and all but one lose the
        # insert; six at once could exhaust _insert's retries.
        lock_tenant(session, tenant_id)
        return int(session.execute(select(func.coalesce(func.max(ModelVersion.version), 0))
                                   .where(ModelVersion.tenant_id == tenant_id)).scalar_one()) + 1

    def _insert(self, make: Any) -> ModelVersion:
        """Insert a row with the next version number (retried when two writers race for it)."""
        for _ in range(5):
            try:
                with self._sessions.begin() as session:
                    row = make(session)
                    session.add(row)
                    session.flush()
                    session.expunge(row)
                    return row
            except IntegrityError:
                continue
        raise RegistryError("busy", "could not allocate a version number")

    def register_base(self, tenant_id: str, archive: Path, actor: str) -> tuple[VersionView, bool]:
        """Register a model built outside the loop (``make train``) and make it production.

        An archive already registered (same SHA-256) is not registered again; when it is not the version in
        production, production is left alone (a rollback or promotion since then wins).

        Returns:
            The version and whether it was new.
        """
        sha = file_sha256(archive)
        with self._sessions() as session:
            known = session.execute(select(ModelVersion).where(ModelVersion.tenant_id == tenant_id,
                                                               ModelVersion.archive_sha256 == sha)
                                    .order_by(ModelVersion.version.desc()).limit(1)).scalar_one_or_none()
            if known is not None:
                return VersionView.of(known), False

        def make(session: Session) -> ModelVersion:
            version = self._next_version(session, tenant_id)
            target = self.archive_path(tenant_id, version)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(archive, target)
            return ModelVersion(tenant_id=tenant_id, version=version, status="candidate", source="base",
                                archive_path=str(target), archive_sha256=sha, created_by=actor[:100],
                                finished_at=utcnow())

        from gateway.learning.model_evaluator import read_model_id

        row = self._insert(make)
        self.update(tenant_id, row.version, rasa_model_id=read_model_id(archive))
        return self.mark_production(tenant_id, row.version, actor, "deploy"), True

    def begin_retraining(self, tenant_id: str, actor: str, data_version_id: int | None,
                         source: str = "retrain") -> VersionView:
        """A new version in status ``training``.

        Args:
            source: ``retrain`` (probe-first run) or ``refine`` (fine-tuning run on the same data).

        Raises:
            RegistryError: Another retraining of this tenant is still running.
        """
        with self._sessions() as session:
            running = session.execute(select(ModelVersion).where(ModelVersion.tenant_id == tenant_id,
                                                                 ModelVersion.status == "training")).scalars().all()
            for row in running:
                if utcnow() - aware(row.created_at) < STALE_TRAINING:
                    raise RegistryError("busy", f"version {row.version} of {tenant_id} is still training")
        if running:
            with self._sessions.begin() as session:
                session.execute(update(ModelVersion).where(ModelVersion.id.in_([r.id for r in running]))
                                .values(status="failed", error="abandoned (no result after 2 hours)"))

        def make(session: Session) -> ModelVersion:
            return ModelVersion(tenant_id=tenant_id, version=self._next_version(session, tenant_id), status="training",
                                stage="queued", source=source, data_version_id=data_version_id,
                                created_by=actor[:100])

        return VersionView.of(self._insert(make))

    def update(self, tenant_id: str, version: int, **values: Any) -> VersionView:
        """Set columns of one version."""
        with self._sessions.begin() as session:
            row = session.execute(select(ModelVersion).where(ModelVersion.tenant_id == tenant_id,
                                                             ModelVersion.version == version)).scalar_one_or_none()
            if row is None:
                raise RegistryError("unknown_version", f"{tenant_id} has no model version {version}")
            for key, value in values.items():
                setattr(row, key, value)
            session.flush()
            return VersionView.of(row)

    def mark_production(self, tenant_id: str, version: int, actor: str, action: str) -> VersionView:
        """Make ``version`` the one in production (the previous one becomes ``retired``), with an audit row.

        Raises:
            RegistryError: Unknown version, or one without an archive.
        """
        for attempt in range(5):
            try:
                view = self._mark_production(tenant_id, version, actor, action)
                self.publish(tenant_id)
                return view
            except (IntegrityError, OperationalError):
                # Two promotions raced (the partial unique index refused the second): try again on fresh state.
                if attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def _mark_production(self, tenant_id: str, version: int, actor: str, action: str) -> VersionView:
        with self._sessions.begin() as session:
            # Production changes of one tenant are serialised; a partial unique index backs this up.
            lock_tenant(session, tenant_id)
            row = session.execute(select(ModelVersion).where(ModelVersion.tenant_id == tenant_id,
                                                             ModelVersion.version == version)).scalar_one_or_none()
            if row is None:
                raise RegistryError("unknown_version", f"{tenant_id} has no model version {version}")
            if not row.archive_path or not Path(row.archive_path).exists():
                raise RegistryError("no_archive", f"version {version} has no model archive to serve")
            current = session.execute(select(ModelVersion).where(ModelVersion.tenant_id == tenant_id,
                                                                 ModelVersion.status == "production")).scalars().all()
            for other in current:
                if other.id != row.id:
                    other.status = "retired"
            session.flush()  # retire first: the partial unique index allows one production row
            previous = next((c.id for c in current if c.id != row.id), None)
            row.status = "production"
            row.promoted_by = actor[:100]
            row.promoted_at = utcnow()
            session.add(ModelDeployment(tenant_id=tenant_id, version_id=row.id, previous_version_id=previous,
                                        action=action, actor=actor[:100]))
            session.flush()
            return VersionView.of(row)

    def previous_production(self, tenant_id: str) -> VersionView | None:
        """The version that was in production before the current one (what a plain rollback restores)."""
        current = self.production(tenant_id)
        with self._sessions() as session:
            deployments = session.execute(select(ModelDeployment).where(ModelDeployment.tenant_id == tenant_id)
                                          .order_by(ModelDeployment.id.desc())).scalars().all()
            for deployment in deployments:
                if current is not None and deployment.version_id == current.id and deployment.previous_version_id:
                    row = session.get(ModelVersion, deployment.previous_version_id)
                    return VersionView.of(row) if row else None
        return None
