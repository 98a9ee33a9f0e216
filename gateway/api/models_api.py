"""Model registry API and page: retrain with one button, promote, roll back.

    GET  /api/v1/admin/tenants/{t}/models                      versions (newest first), deployments, production
    GET  /api/v1/admin/tenants/{t}/models/{version}            one version with metrics and gate
    POST /api/v1/admin/tenants/{t}/models/retrain              {"promote": true} → 202, runs in the background
    POST /api/v1/admin/tenants/{t}/models/{version}/promote    a candidate that passed the gate goes live
    POST /api/v1/admin/tenants/{t}/models/rollback             {"to_version": N?} → the previous / an earlier version
    GET  /admin/models                                          the page
"""

from __future__ import annotations

import threading
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from gateway.api.agent_auth import AgentPrincipal
from gateway.api.tenant_admin_auth import require_tenant_admin
from gateway.api.deps import get_services, require_tenant
from gateway.api.errors import ApiError
from gateway.api.kb_admin_page import SECURITY_HEADERS, STATIC
from gateway.learning.model_registry import RegistryError
from gateway.learning.retraining import RetrainingError, RetrainingPipeline
from gateway.services import GatewayServices

router = APIRouter(prefix="/api/v1/admin/tenants", tags=["admin: models"], dependencies=[Depends(require_tenant_admin)])
page_router = APIRouter(include_in_schema=False)

_STATUS = {"quota_exceeded": 402, "busy": 409, "unknown_version": 404, "not_promotable": 409,
           "nothing_to_roll_back": 409, "no_archive": 409, "deployment_failed": 502}


class RetrainRequest(BaseModel):
    """Options of one retraining."""

    promote: bool = True
    #: After the fast (probe) model, fine-tune on the same data and gate that too (default: the setting).
    refine: bool | None = None


class RollbackRequest(BaseModel):
    """Where to roll back to (the previous production version when omitted)."""

    to_version: int | None = Field(default=None, ge=1)


def _pipeline(services: GatewayServices) -> RetrainingPipeline:
    return RetrainingPipeline(services.settings, services.sessions)


def _error(exc: RetrainingError | RegistryError) -> ApiError:
    return ApiError(_STATUS.get(exc.code, 409), exc.code, exc.detail)


@router.get("/{tenant}/models")
async def list_models(tenant: str, services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """Every version of the tenant's bot, what went live when, and the one in production."""
    await require_tenant(services, tenant)
    pipeline = _pipeline(services)
    versions = await run_in_threadpool(pipeline.registry.list, tenant)
    deployments = await run_in_threadpool(pipeline.registry.deployments, tenant)
    production = next((v.version for v in versions if v.status == "production"), None)
    return {"production": production, "tolerance": services.settings.gate_tolerance,
            "versions": [v.to_public() for v in versions], "deployments": deployments}


@router.get("/{tenant}/models/{version}")
async def get_model(tenant: str, version: int, services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """One version."""
    await require_tenant(services, tenant)
    try:
        return (await run_in_threadpool(_pipeline(services).registry.get, tenant, version)).to_public()
    except RegistryError as exc:
        raise _error(exc) from exc


@router.post("/{tenant}/models/retrain", status_code=202)
async def retrain(tenant: str, body: RetrainRequest | None = None, admin: AgentPrincipal = Depends(require_tenant_admin),
                  services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """Start a retraining; poll ``GET …/models/{version}`` for its stage and result."""
    await require_tenant(services, tenant)
    pipeline = _pipeline(services)
    promote = True if body is None else body.promote
    try:
        row = await run_in_threadpool(pipeline.start, tenant, admin.agent.email)
    except RetrainingError as exc:
        raise _error(exc) from exc
    refine = services.settings.refine_after_retrain if body is None or body.refine is None else body.refine
    # Training takes minutes: it runs on its own thread; the registry rows are its progress report.
    threading.Thread(target=pipeline.run_then_refine, args=(tenant, row.version, admin.agent.email, promote, refine),
                     name=f"retrain-{tenant}-v{row.version}", daemon=True).start()
    return {"version": row.version, "status": row.status, "stage": row.stage}


@router.post("/{tenant}/models/{version}/promote")
async def promote(tenant: str, version: int, admin: AgentPrincipal = Depends(require_tenant_admin),
                  services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """Put a candidate that passed the gate into production (hot swap)."""
    await require_tenant(services, tenant)
    try:
        return (await run_in_threadpool(_pipeline(services).promote, tenant, version, admin.agent.email)).to_public()
    except RetrainingError as exc:
        raise _error(exc) from exc


@router.post("/{tenant}/models/rollback")
async def rollback(tenant: str, body: RollbackRequest | None = None, admin: AgentPrincipal = Depends(require_tenant_admin),
                   services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """Put the previous (or the given) version back into production (hot swap)."""
    await require_tenant(services, tenant)
    to_version = None if body is None else body.to_version
    try:
        return (await run_in_threadpool(_pipeline(services).rollback, tenant, admin.agent.email, to_version)).to_public()
    except RetrainingError as exc:
        raise _error(exc) from exc


@page_router.get("/admin/models")
async def models_page() -> FileResponse:
    """The models page: versions, metrics, gate, retrain / promote / roll back buttons."""
    return FileResponse(STATIC / "models.html", media_type="text/html", headers=SECURITY_HEADERS)
