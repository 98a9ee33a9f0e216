"""A tenant admin's view of its assistant, and the ``/admin`` overview page.

    GET /api/v1/admin/tenants/{t}/assistant            template, settings, revision, skills, model in production,
                                                       widget keys and the embed snippet
    PUT /api/v1/admin/tenants/{t}/assistant/settings   new settings (a new revision; the next training uses them)
    GET /admin                                         the overview page every admin page links back to
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from gateway.api.deps import get_services
from gateway.api.errors import ApiError
from gateway.api.kb_admin_page import SECURITY_HEADERS, STATIC
from gateway.api.agent_auth import AgentPrincipal
from gateway.api.tenant_admin_auth import require_tenant_admin
from gateway.assistants.assistant_service import AssistantService
from gateway.assistants.assistant_settings import AssistantSettings
from gateway.assistants.assistant_store import AssistantError
from gateway.assistants.templates import template_names
from gateway.learning.model_registry import ModelRegistry
from gateway.services import GatewayServices

router = APIRouter(prefix="/api/v1/admin/tenants", tags=["admin: assistant"],
                   dependencies=[Depends(require_tenant_admin)])
page_router = APIRouter(include_in_schema=False)


def _overview(services: GatewayServices, tenant: str, base_url: str) -> dict[str, Any]:
    assistants = AssistantService(services.sessions)
    current = assistants.store.current(tenant)
    production = ModelRegistry(services.sessions, services.settings.model_registry_dir).production(tenant)
    keys = services.tenants.widget_keys(tenant)
    tenant_row = services.tenants.get(tenant)
    snippet = (f'<script src="{base_url}/widget.js" data-widget-key="{keys[0]}" defer></script>' if keys else None)
    return {
        "tenant": {"id": tenant, "name": tenant_row.name if tenant_row else tenant},
        "assistant": current.to_public() if current else None,
        "skills": {name: skill.description for name, skill in assistants.builder.catalog.skills.items()},
        "templates": template_names(),
        "production": None if production is None else {
            "version": production.version, "model_id": production.rasa_model_id, "promoted_at": production.promoted_at},
        "widget_keys": keys,
        "embed_snippet": snippet,
    }


@router.get("/{tenant}/assistant")
async def assistant_overview(tenant: str, request: Request,
                             services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """What the admin pages' overview shows."""
    return await run_in_threadpool(_overview, services, tenant, str(request.base_url).rstrip("/"))


@router.put("/{tenant}/assistant/settings")
async def change_settings(tenant: str, body: dict[str, Any], admin: AgentPrincipal = Depends(require_tenant_admin),
                          services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """Store new settings (names, greeting, skills, own texts, policies) as a new revision."""
    try:
        settings = AssistantSettings.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ApiError(422, "invalid_settings", f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
    try:
        view = await run_in_threadpool(AssistantService(services.sessions).update_settings, tenant, settings,
                                      admin.agent.email)
    except AssistantError as exc:
        raise ApiError(409 if exc.code == "no_assistant" else 422, exc.code, exc.detail) from exc
    return view.to_public()


@page_router.get("/admin")
async def admin_home() -> FileResponse:
    """The overview: the assistant, its model, the embed snippet, links to every admin page."""
    return FileResponse(STATIC / "admin_home.html", media_type="text/html", headers=SECURITY_HEADERS)
