"""Tenants, their widget keys and widget settings, and the revisions of each tenant's assistant."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.models.base import Base, utcnow


class Tenant(Base):
    """A business using the platform."""

    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WidgetKey(Base):
    """A public key that identifies the tenant of a web widget or API client."""

    __tablename__ = "widget_keys"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    revoked: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WidgetConfigRow(Base):
    """A tenant's web-widget look and security settings (``connectors.web.config.WidgetConfig``)."""

    __tablename__ = "widget_configs"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AssistantRevision(Base):
    """One saved state of a tenant's assistant: its template, settings layer and language data.

    The newest revision is the assistant; every training run records the revision it was built from,
    and older revisions stay for audit and export.
    """

    __tablename__ = "assistant_revisions"
    __table_args__ = (UniqueConstraint("tenant_id", "revision", name="uq_assistant_revisions_revision"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    template: Mapped[str] = mapped_column(String(64))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    language_data: Mapped[str] = mapped_column(Text)  # Rasa NLU YAML: the tenant's intents and examples
    content_hash: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))  # "template" | "import" | "settings"
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
