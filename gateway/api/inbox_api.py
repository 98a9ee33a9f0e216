"""Review inbox API and page.

    GET  /api/v1/admin/tenants/{t}/inbox?limit=50             candidates, best first, with the bot's intents
    POST /api/v1/admin/tenants/{t}/inbox/{message_id}          {"action": "accept"|"correct"|"discard", "intent"?}
    GET  /api/v1/admin/tenants/{t}/training-data.yml          accepted examples as Rasa NLU YAML (redacted)
    POST /api/v1/admin/tenants/{t}/training-data/versions     freeze the accepted examples as a version
    GET  /admin/inbox                                          the reviewers' page
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import yaml
from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse, PlainTextResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from gateway.api.agent_auth import AgentPrincipal
from gateway.api.tenant_admin_auth import require_tenant_admin
from gateway.api.deps import get_services, require_tenant
from gateway.api.errors import ApiError
from gateway.api.kb_admin_page import SECURITY_HEADERS, STATIC
from gateway.learning.review_inbox import RESERVED_INTENTS, ReviewError, ReviewInbox
from gateway.services import GatewayServices
from gateway.settings import PROJECT_ROOT

router = APIRouter(prefix="/api/v1/admin/tenants", tags=["admin: review inbox"], dependencies=[Depends(require_tenant_admin)])
page_router = APIRouter(include_in_schema=False)


@lru_cache(maxsize=1)
def bot_intents() -> frozenset[str]:
    """The intents of the default bot's domain (the ones reviewers choose from; new ones are allowed)."""
    domain = yaml.safe_load((PROJECT_ROOT / "bot" / "domain.yml").read_text())
    return frozenset(i if isinstance(i, str) else next(iter(i)) for i in domain.get("intents", [])) - RESERVED_INTENTS


class Decision(BaseModel):
    """One click of a reviewer."""

    action: str = Field(pattern="^(accept|correct|discard)$")
    intent: str | None = Field(default=None, max_length=64)


def tenant_intents(services: GatewayServices, tenant: str) -> frozenset[str]:
    """The intents of the tenant's assistant in production (the skills' domain before it has one)."""
    from gateway.learning.model_registry import ModelRegistry

    production = ModelRegistry(services.sessions, services.settings.model_registry_dir).production(tenant)
    if production is not None and production.intents:
        return frozenset(production.intents) - RESERVED_INTENTS
    return bot_intents()


def _inbox(services: GatewayServices, tenant: str) -> ReviewInbox:
    return ReviewInbox(services.sessions, set(tenant_intents(services, tenant)))


@router.get("/{tenant}/inbox")
async def inbox(tenant: str, limit: int = Query(default=50, ge=1, le=500),
                services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """Messages worth labelling, best first."""
    await require_tenant(services, tenant)
    items = await run_in_threadpool(_inbox(services, tenant).items, tenant, limit)
    return {"items": [item.to_public() for item in items], "intents": sorted(tenant_intents(services, tenant))}


@router.post("/{tenant}/inbox/{message_id}")
async def decide(tenant: str, message_id: int, body: Decision, admin: AgentPrincipal = Depends(require_tenant_admin),
                 services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """Accept the suggestion, correct it, or discard the message (covers its identical texts)."""
    await require_tenant(services, tenant)
    try:
        return await run_in_threadpool(lambda: _inbox(services, tenant).decide(tenant, message_id, body.action, admin.agent.email,
                                                                       body.intent))
    except ReviewError as exc:
        status = 409 if exc.code == "already_decided" else 404 if exc.code == "unknown_message" else 422
        raise ApiError(status, exc.code, exc.detail) from exc


@router.get("/{tenant}/training-data.yml")
async def training_data(tenant: str, services: GatewayServices = Depends(get_services)) -> PlainTextResponse:
    """Accepted examples as Rasa NLU YAML."""
    await require_tenant(services, tenant)
    return PlainTextResponse(await run_in_threadpool(_inbox(services, tenant).nlu_yaml, tenant), media_type="application/x-yaml")


@router.post("/{tenant}/training-data/versions", status_code=201)
async def freeze(tenant: str, admin: AgentPrincipal = Depends(require_tenant_admin),
                 services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """Freeze the accepted examples as a training-data version (the same version when nothing changed)."""
    await require_tenant(services, tenant)
    return await run_in_threadpool(_inbox(services, tenant).freeze, tenant, admin.agent.email)


@page_router.get("/admin/inbox")
async def inbox_page() -> FileResponse:
    """The reviewers' page."""
    return FileResponse(STATIC / "inbox.html", media_type="text/html", headers=SECURITY_HEADERS)
