"""FastAPI application factory of the gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from gateway.api import health, kb_admin, kb_admin_page, pages, widget_api, widget_socket
from gateway.api.errors import BodySizeLimitMiddleware, install_error_handlers
from gateway.conversation_tokens import ConversationTokenSigner
from gateway.db.session import create_db_engine, create_session_factory
from gateway.message_router import MessageRouter
from gateway.rasa_client import DialogueEngine, RasaClient
from gateway.services import GatewayServices
from gateway.settings import Settings, get_settings
from gateway.stores.conversation_store import ConversationStore
from gateway.stores.tenant_store import TenantStore


def build_services(settings: Settings, dialogue: DialogueEngine | None = None) -> GatewayServices:
    """Wire the stores, the Rasa client and the router for one process."""
    engine = create_db_engine(settings.database_url)
    sessions = create_session_factory(engine)
    conversations = ConversationStore(sessions)
    dialogue = dialogue or RasaClient(
        settings.rasa_url, settings.rasa_token.get_secret_value(), settings.rasa_timeout_s
    )
    return GatewayServices(
        settings=settings,
        db_engine=engine,
        sessions=sessions,
        tenants=TenantStore(sessions),
        conversations=conversations,
        tokens=ConversationTokenSigner(settings.secret_key.get_secret_value()),
        dialogue=dialogue,
        router=MessageRouter(conversations, dialogue, settings.max_message_chars),
    )


def create_app(settings: Settings | None = None, dialogue: DialogueEngine | None = None) -> FastAPI:
    """Build the gateway app.

    Args:
        settings: Deployment settings (read from the environment when omitted).
        dialogue: Dialogue engine override (tests); the real Rasa client otherwise.
    """
    settings = settings or get_settings()
    services = build_services(settings, dialogue)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        close = getattr(services.dialogue, "aclose", None)
        if close is not None:
            await close()
        services.db_engine.dispose()

    app = FastAPI(title="Switchboard gateway", version="0.1.0", lifespan=lifespan)
    app.state.services = services
    install_error_handlers(app)
    app.add_middleware(
        BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes,
        larger={kb_admin.PREFIX: settings.kb_max_file_bytes + 64 * 1024},  # file uploads
    )
    app.include_router(health.router)
    app.include_router(widget_api.router)
    app.include_router(widget_socket.router)
    app.include_router(pages.router)
    app.include_router(kb_admin.router)
    app.include_router(kb_admin_page.router)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/demo")

    return app
