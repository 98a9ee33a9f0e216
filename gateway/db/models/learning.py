"""The learning loop: training examples and data versions, model versions and their deployments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.models.base import Base, utcnow


class TrainingExample(Base):
    """A reviewer's decision on a logged customer message: an accepted (or corrected) example, or a discard.

    Accepted examples are the learning loop's training data (stored, versioned by ``TrainingDataVersion``,
    exported as Rasa NLU YAML); the text is stored redacted.
    """

    __tablename__ = "training_examples"
    __table_args__ = (UniqueConstraint("tenant_id", "message_id", name="uq_training_examples_message"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    message_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    conversation_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    text: Mapped[str] = mapped_column(Text)
    intent: Mapped[str | None] = mapped_column(String(100), nullable=True)
    status: Mapped[str] = mapped_column(String(16))  # "accepted" | "corrected" | "discarded"
    predicted_intent: Mapped[str | None] = mapped_column(String(100), nullable=True)
    reasons: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    reviewer: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TrainingDataVersion(Base):
    """A frozen set of accepted examples (what one training run used), identified by its content hash."""

    __tablename__ = "training_data_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    examples: Mapped[int] = mapped_column(Integer)
    intents: Mapped[list[str]] = mapped_column(JSON)
    example_ids: Mapped[list[int]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ModelVersion(Base):
    """One trained bot version of a tenant: its Rasa archive, the data it was trained on, its metrics and gate.

    ``status`` moves training → candidate → production (or refused / failed); a production version
    becomes retired when another is promoted, and can be brought back by a rollback.
    """

    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("tenant_id", "version", name="uq_model_versions_version"),
        Index("uq_model_versions_production", "tenant_id", unique=True,
              sqlite_where=text("status = 'production'"), postgresql_where=text("status = 'production'")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    stage: Mapped[str | None] = mapped_column(String(32), nullable=True)  # step of a running retraining
    source: Mapped[str] = mapped_column(String(16))  # "base" (make train) | "retrain" | "refine"
    archive_path: Mapped[str | None] = mapped_column(String(500), nullable=True)
    archive_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    rasa_model_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    data_version_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    bot_data_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    intents: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    gate: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[str] = mapped_column(String(100))
    promoted_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    promoted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ModelDeployment(Base):
    """Audit trail of what was put into production, when, by whom: promotions, rollbacks, base deploys."""

    __tablename__ = "model_deployments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    previous_version_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    action: Mapped[str] = mapped_column(String(16))  # "deploy" | "promote" | "rollback"
    actor: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
