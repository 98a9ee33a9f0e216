"""Conversations, their messages and events, customer feedback, and the demo shop's orders."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, DateTime, Enum, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from gateway.db.models.base import Base, Sender, new_id, utcnow


class Conversation(Base):
    """One conversation between a customer and the tenant (bot or agents)."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("tenant_id", "channel", "external_ref", name="uq_conversations_external_ref"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    # Who owns the conversation: "bot", or the state of its open handoff (queued / assigned / human).
    handoff_state: Mapped[str] = mapped_column(String(16), default="bot")
    active_handoff_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    # What the host page said about the customer (name, email, plan); shown to agents, never trusted for auth.
    customer: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The channel's own address of the conversation (Slack: "team:channel:thread_ts"); unique per channel.
    external_ref: Mapped[str | None] = mapped_column(String(200), nullable=True)


class Message(Base):
    """One message of a conversation, in order (``seq``) within it."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq", name="uq_messages_conversation_seq"),
        UniqueConstraint("conversation_id", "client_id", name="uq_messages_conversation_client"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(Integer)
    sender: Mapped[Sender] = mapped_column(Enum(Sender, native_enum=False, length=16))
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Buttons, custom payloads, images: whatever Rasa sent besides the text.
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Set by the client on customer messages so a resend is recognised; NULLs never collide.
    client_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # For customer messages: what the bot understood (intent, ranking, entities, sentiment).
    nlu: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The Rasa model that handled the turn (customer message and its replies).
    model_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # For bot/system replies: the customer message they answer.
    in_reply_to: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ConversationEvent(Base):
    """One Rasa tracker event as published by Rasa's event broker (RabbitMQ) and written by the log consumer.

    ``event_key`` is a hash of the event itself, so a redelivered or replayed message is stored once.
    """

    __tablename__ = "conversation_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_key: Mapped[str] = mapped_column(String(64), unique=True)
    tenant_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    conversation_id: Mapped[str] = mapped_column(String(100), index=True)
    event: Mapped[str] = mapped_column(String(64))
    timestamp: Mapped[float] = mapped_column(Float)
    model_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Feedback(Base):
    """A customer's rating: CSAT for a resolved handoff, or helpful / not helpful for one bot answer."""

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("conversation_id", "kind", "target", name="uq_feedback_target"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "csat" | "helpful"
    target: Mapped[str] = mapped_column(String(64))  # handoff id (csat) or message id (helpful)
    score: Mapped[int] = mapped_column(Integer)  # csat 1-5; helpful 1 / 0
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    channel: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Order(Base):
    """A tenant's customer order, looked up by the order-status action."""

    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("tenant_id", "number", name="uq_orders_tenant_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    items: Mapped[str] = mapped_column(String(500))
    carrier: Mapped[str | None] = mapped_column(String(64), nullable=True)
    tracking_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    estimated_delivery: Mapped[date | None] = mapped_column(Date, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
