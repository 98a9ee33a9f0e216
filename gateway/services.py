"""The objects one gateway process shares between its routes."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from gateway.conversation_tokens import ConversationTokenSigner
from gateway.message_router import MessageRouter
from gateway.rasa_client import DialogueEngine
from gateway.settings import Settings
from gateway.stores.conversation_store import ConversationStore
from gateway.stores.tenant_store import TenantStore


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
