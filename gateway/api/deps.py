"""Request dependencies shared by the API routes."""

from __future__ import annotations

from fastapi import Header, Request
from starlette.concurrency import run_in_threadpool

from connectors.web.config import WidgetConfig
from gateway.api.errors import ApiError
from gateway.services import GatewayServices


def services_of(request: Request) -> GatewayServices:
    """The process-wide services."""
    return request.app.state.services


async def get_services(request: Request) -> GatewayServices:
    """Dependency: the process-wide services (async: FastAPI runs a plain function's dependency on a worker
    thread, one thread hop per request for an attribute read)."""
    return request.app.state.services


def resolve_tenant(services: GatewayServices, widget_key: str | None) -> str:
    """Map a widget key to its tenant.

    Raises:
        ApiError: 401 when the key is missing, unknown or revoked.
    """
    if not widget_key:
        raise ApiError(401, "missing_widget_key", "send the tenant's widget key in X-Widget-Key")
    tenant_id = services.tenants.tenant_for_key(widget_key)
    if tenant_id is None:
        raise ApiError(401, "unknown_widget_key", "the widget key is unknown or revoked")
    return tenant_id


def _tenant_and_config(services: GatewayServices, widget_key: str | None) -> tuple[str, WidgetConfig]:
    tenant_id = resolve_tenant(services, widget_key)
    return tenant_id, services.widget_configs.get(tenant_id)


async def tenant_id_from_header(request: Request, x_widget_key: str | None = Header(default=None)) -> str:
    """Dependency: the tenant identified by the ``X-Widget-Key`` header, called from an allowed origin.

    A key and settings read in the last few seconds are checked in memory; otherwise a worker thread
    reads them (every widget message comes through here).

    Raises:
        ApiError: 401 for a bad key, 403 when a browser calls from an origin the tenant does not allow.
    """
    services = services_of(request)
    tenant_id = services.tenants.cached_tenant_for_key(x_widget_key) if x_widget_key else None
    config = services.widget_configs.cached(tenant_id) if tenant_id else None
    if tenant_id is None or config is None:
        tenant_id, config = await run_in_threadpool(_tenant_and_config, services, x_widget_key)
    if not config.allows_origin(request.headers.get("origin")):
        raise ApiError(403, "origin_not_allowed", "this site may not use the widget")
    return tenant_id


def client_ip(request: Request) -> str | None:
    """The caller's address (the proxy's, behind one: rate limits then apply per proxy)."""
    return request.client.host if request.client else None


def check_conversation_token(services: GatewayServices, tenant_id: str, conversation_id: str,
                             token: str | None) -> None:
    """Ensure the caller holds this conversation's token (no database read).

    Raises:
        ApiError: 403 for a missing / wrong token.
    """
    if not services.tokens.verify(tenant_id, conversation_id, token):
        raise ApiError(403, "bad_conversation_token", "the conversation token does not match this conversation")


def check_conversation(services: GatewayServices, tenant_id: str, conversation_id: str, token: str | None) -> None:
    """Ensure the caller may use this conversation.

    Raises:
        ApiError: 403 for a missing / wrong token, 404 for an unknown conversation.
    """
    check_conversation_token(services, tenant_id, conversation_id, token)
    if not services.conversations.exists(tenant_id, conversation_id):
        raise ApiError(404, "unknown_conversation", "no such conversation")


async def require_tenant(services: GatewayServices, tenant_id: str) -> None:
    """Ensure an admin route's tenant exists.

    Raises:
        ApiError: 404 for an unknown tenant.
    """
    if not await run_in_threadpool(services.tenants.exists, tenant_id):
        raise ApiError(404, "unknown_tenant", f"no tenant {tenant_id!r}")
