"""Erasure requests and privacy policies."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.models.base import Base, utcnow


class Erasure(Base):
    """The record that one end user's data was erased (who asked, what, how much); never the data itself."""

    __tablename__ = "erasures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(20))  # "conversation" | "customer" | "retention"
    subject_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 of the id: proves which, reveals nothing
    conversations: Mapped[int] = mapped_column(Integer)
    messages: Mapped[int] = mapped_column(Integer)
    tracker_events: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PrivacyPolicyRow(Base):
    """A tenant's retention: conversations untouched for ``retention_days`` are erased by the retention job."""

    __tablename__ = "privacy_policies"

    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    retention_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
