"""FastAPI application factory of the gateway."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from gateway.api import (
    agent_api,
    agent_socket,
    api_docs,
    analytics_api,
    assistant_api,
    billing_admin,
    usage_page,
    console_page,
    health,
    inbox_api,
    kb_admin,
    kb_admin_page,
    models_api,
    pages,
    privacy_api,
    widget_api,
    widget_admin,
    widget_socket,
)
from gateway.api.agent_auth import LoginThrottle
from gateway.rate_limits import RateLimiter, RateLimits
from gateway.stores.feedback_store import FeedbackStore
from gateway.billing.usage_service import UsageService
from gateway.privacy.erasure import ErasureService, RasaTrackerEraser
from gateway.stores.widget_config_store import WidgetConfigStore
from gateway.api.errors import BodySizeLimitMiddleware, install_error_handlers
from gateway.conversation_tokens import ConversationTokenSigner
from gateway.db.session import create_db_engine, create_session_factory
from gateway.message_router import MessageRouter
from gateway.rasa_client import DialogueEngine, RasaClient
from gateway.handoff.event_hub import EventHub
from gateway.handoff.policy import HandoffPolicyStore
from gateway.handoff.service import HandoffService
from gateway.webhooks import WebhookDispatcher, WebhookStore
from gateway.services import GatewayServices
from gateway.stores.agent_store import AgentStore
from gateway.handoff.handoff_store import HandoffStore
from gateway.settings import Settings, get_settings
from gateway.stores.conversation_store import ConversationStore
from gateway.stores.tenant_store import TenantStore

logger = logging.getLogger(__name__)


def build_services(settings: Settings, dialogue: DialogueEngine | None = None) -> GatewayServices:
    """Wire the stores, the Rasa client, handoff and the router for one process."""
    engine = create_db_engine(settings.database_url)
    sessions = create_session_factory(engine)
    conversations = ConversationStore(sessions)
    dialogue = dialogue or RasaClient(
        settings.rasa_url, settings.rasa_token.get_secret_value(), settings.rasa_timeout_s,
        max_in_flight=settings.rasa_max_in_flight, queue_timeout_s=settings.rasa_queue_timeout_s,
        replica_urls=settings.rasa_urls,
    )
    if settings.redis_url:
        from gateway.events.redis_hub import RedisEventHub

        hub: EventHub = RedisEventHub(settings.redis_url)
    else:
        hub = EventHub()
    agents = AgentStore(sessions, idle_timeout=timedelta(minutes=settings.agent_idle_minutes),
                        max_age=timedelta(hours=settings.agent_session_hours))
    handoff = HandoffService(conversations, HandoffStore(sessions), agents, HandoffPolicyStore(sessions), hub, dialogue)
    feedback = FeedbackStore(sessions)
    usage = UsageService(sessions)
    handoff.usage = usage
    return GatewayServices(
        settings=settings,
        db_engine=engine,
        sessions=sessions,
        tenants=TenantStore(sessions),
        conversations=conversations,
        tokens=ConversationTokenSigner(settings.secret_key.get_secret_value()),
        dialogue=dialogue,
        router=MessageRouter(conversations, dialogue, settings.max_message_chars, handoff=handoff, feedback=feedback,
                             usage=usage),
        hub=hub,
        agents=agents,
        handoff=handoff,
        webhooks=WebhookStore(sessions, allow_private=settings.webhooks_allow_private),
        widget_configs=WidgetConfigStore(sessions),
        feedback=feedback,
        usage=usage,
        privacy=ErasureService(sessions, RasaTrackerEraser(settings.tracker_store_url)),
        rate_limits=RateLimits(
            per_conversation=RateLimiter(settings.rate_conversation_per_min, settings.rate_conversation_burst),
            per_ip=RateLimiter(settings.rate_ip_per_min, settings.rate_ip_burst),
            new_conversations_per_ip=RateLimiter(settings.rate_new_conversations_per_min,
                                                 max(1, int(settings.rate_new_conversations_per_min))),
        ),
    )


async def _retention_job(services: GatewayServices) -> None:
    """Erase conversations past their tenant's retention, on a timer."""
    while True:
        await asyncio.sleep(services.settings.retention_interval_s)
        try:
            erased = await asyncio.to_thread(services.privacy.apply_retention)
            if erased:
                logger.info("retention erased %s", erased)
        except Exception:  # noqa: BLE001 - a database blip must not stop the job
            logger.exception("retention job failed")


async def _resume_pending_turns(services: GatewayServices, window_s: float = 600.0) -> int:
    """After a restart: run the turns of customer messages a gateway stored but never answered (it died
    mid-turn), from the last ``window_s``; the replies reach open widgets live and every history."""
    from datetime import timedelta

    from gateway.db.models import utcnow
    from gateway.handoff.event_hub import conversation_topic

    resumed = 0
    try:
        pending = await asyncio.to_thread(services.conversations.pending_turns, utcnow() - timedelta(seconds=window_s))
    except Exception:  # noqa: BLE001 - a database that is not there yet: nothing to resume
        logger.exception("could not look for unfinished turns")
        return 0
    for tenant_id, channel, customer in pending:
        try:
            turn = await services.router.resume(tenant_id, channel, customer)
        except Exception:  # noqa: BLE001 - one conversation must not stop the others
            logger.exception("could not resume the turn of message %s", customer.id)
            continue
        if turn is None:
            continue
        resumed += 1
        for reply in turn.replies:
            services.hub.publish(conversation_topic(customer.conversation_id), {"type": "message",
                                                                                "message": reply.to_public()})
    if resumed:
        logger.info("answered %d turns left unfinished by the previous gateway", resumed)
    return resumed


async def _handoff_monitor(services: GatewayServices) -> None:
    """Assign waiting customers, apply the no-agent timeout and refresh queue positions."""
    while True:
        await asyncio.sleep(services.settings.handoff_tick_s)
        try:
            await services.handoff.tick(await services.handoff.tenants_waiting())
        except Exception:  # noqa: BLE001 - a database blip must not stop the monitor
            logger.exception("handoff monitor tick failed")


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
        services.usage.plans.seed()
        logger.info("gateway started (database %s)", settings.database_url.split(":", 1)[0])
        dispatcher = WebhookDispatcher(services.webhooks, poll_s=settings.webhook_poll_s)
        services.handoff.on_transition.append(dispatcher.wake)
        tasks = [asyncio.create_task(services.hub.run(), name="event-hub"),
                 asyncio.create_task(dispatcher.run(), name="webhooks"),
                 asyncio.create_task(_handoff_monitor(services), name="handoff-monitor"),
                 asyncio.create_task(_retention_job(services), name="retention"),
                 asyncio.create_task(_resume_pending_turns(services), name="resume-turns")]
        if slack is not None:
            tasks.append(asyncio.create_task(slack.run_relay(), name="slack-relay"))
        yield
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await dispatcher.aclose()
        await services.hub.aclose()
        close = getattr(services.dialogue, "aclose", None)
        if close is not None:
            await close()
        services.db_engine.dispose()
        services.privacy.close()

    slack = None
    if settings.slack_signing_secret is not None:
        from connectors.slack.channel import SlackChannel

        slack = SlackChannel(services, settings.slack_api_url)

    # /docs is served by api_docs (Swagger UI's files from this server, not a CDN); ReDoc needed a CDN too.
    app = FastAPI(title="Switchboard gateway", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.services = services
    app.state.slack = slack
    app.state.login_throttle = LoginThrottle()
    install_error_handlers(app)
    app.add_middleware(
        BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes,
        larger={kb_admin.PREFIX: settings.kb_max_file_bytes + 64 * 1024},  # file uploads
    )
    app.include_router(health.router)
    app.include_router(api_docs.router)
    app.include_router(widget_api.router)
    app.include_router(widget_socket.router)
    app.include_router(widget_admin.router)
    app.include_router(billing_admin.router)
    app.include_router(billing_admin.tenant_router)
    app.include_router(assistant_api.router)
    app.include_router(assistant_api.page_router)
    app.include_router(usage_page.router)
    app.include_router(analytics_api.router)
    app.include_router(analytics_api.page_router)
    app.include_router(privacy_api.router)
    app.include_router(inbox_api.router)
    app.include_router(inbox_api.page_router)
    app.include_router(models_api.router)
    app.include_router(models_api.page_router)
    app.include_router(pages.router)
    app.include_router(kb_admin.router)
    app.include_router(kb_admin_page.router)
    app.include_router(agent_api.router)
    app.include_router(agent_socket.router)
    app.include_router(console_page.router)
    from connectors.slack import routes as slack_routes

    app.include_router(slack_routes.router)
    app.include_router(slack_routes.admin_router)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/demo")

    return app
