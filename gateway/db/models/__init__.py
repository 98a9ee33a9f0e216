"""SQLAlchemy 2 models of the gateway database, one module per part of the product.

Importing this package registers every table on ``Base.metadata`` (Alembic and ``create_all`` read it there);
callers import models from here.
"""

from __future__ import annotations

from gateway.db.models.base import Base, Sender, aware, new_id, utcnow
from gateway.db.models.tenancy import AssistantRevision, Tenant, WidgetConfigRow, WidgetKey
from gateway.db.models.conversations import Conversation, ConversationEvent, Feedback, Message, Order
from gateway.db.models.knowledge import KnowledgeChunk, KnowledgeDocument
from gateway.db.models.handoff import (Agent, AgentSession, Handoff, HandoffNote, HandoffPolicyRow,
                                       HandoffTransition)
from gateway.db.models.integrations import (SlackEscalation, SlackEventReceipt, SlackOAuthState, SlackPost,
                                            SlackWorkspace, WebhookDelivery, WebhookEndpoint)
from gateway.db.models.billing import Invoice, PlanRow, Subscription, UsageAlert, UsageCounter, UsageRecord
from gateway.db.models.privacy import Erasure, PrivacyPolicyRow
from gateway.db.models.learning import ModelDeployment, ModelVersion, TrainingDataVersion, TrainingExample

__all__ = [
    "Agent", "AgentSession", "AssistantRevision", "aware", "Base", "Conversation", "ConversationEvent",
    "Erasure", "Feedback", "Handoff", "HandoffNote", "HandoffPolicyRow", "HandoffTransition", "Invoice",
    "KnowledgeChunk", "KnowledgeDocument", "Message", "ModelDeployment", "ModelVersion", "new_id", "Order",
    "PlanRow", "PrivacyPolicyRow", "Sender", "SlackEscalation", "SlackEventReceipt", "SlackOAuthState",
    "SlackPost", "SlackWorkspace", "Subscription", "Tenant", "TrainingDataVersion", "TrainingExample",
    "UsageAlert", "UsageCounter", "UsageRecord", "utcnow", "WebhookDelivery", "WebhookEndpoint",
    "WidgetConfigRow", "WidgetKey",
]
