"""The objects one gateway process shares between its routes."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from gateway.conversation_tokens import ConversationTokenSigner
from gateway.handoff.event_hub import EventHub
from gateway.handoff.service import HandoffService
from gateway.webhooks import WebhookStore
from gateway.stores.agent_store import AgentStore
from gateway.message_router import MessageRouter
from gateway.rasa_client import DialogueEngine
from gateway.settings import Settings
from gateway.stores.conversation_store import ConversationStore
from gateway.stores.tenant_store import TenantStore
from gateway.stores.feedback_store import FeedbackStore
from gateway.stores.widget_config_store import WidgetConfigStore
from gateway.rate_limits import RateLimits
from gateway.billing.usage_service import UsageService
from gateway.privacy.erasure import ErasureService

if TYPE_CHECKING:
    from knowledge_base.service import KnowledgeBase


@dataclass
class GatewayServices:
    """Everything a request handler may need, built once per process."""

    settings: Settings
    db_engine: Engine
    sessions: sessionmaker[Session]
    tenants: TenantStore
    conversations: ConversationStore
    tokens: ConversationTokenSigner
    dialogue: DialogueEngine
    router: MessageRouter
    hub: EventHub
    agents: AgentStore
    handoff: HandoffService
    webhooks: WebhookStore
    widget_configs: WidgetConfigStore
    feedback: FeedbackStore
    rate_limits: RateLimits
    usage: UsageService
    privacy: ErasureService
    _knowledge_base: "KnowledgeBase | None" = field(default=None, repr=False)
    _kb_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def knowledge_base(self) -> "KnowledgeBase":
        """The knowledge base, loaded on first use (the embedder takes seconds and memory)."""
        with self._kb_lock:
            if self._knowledge_base is None:
                from knowledge_base.factory import build_knowledge_base

                self._knowledge_base = build_knowledge_base(self.settings, self.sessions)
            return self._knowledge_base
