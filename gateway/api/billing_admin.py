"""Admin API of tenants, widget keys, plans, usage and invoices.

The operator (platform-wide token):

    GET  /api/v1/admin/plans
    POST /api/v1/admin/tenants                                {"id", "name", "plan", "template", "admin_email"}
                                                              → tenant, widget key, first admin (password once);
                                                              its first assistant trains in the background
    PUT  /api/v1/admin/tenants/{t}/subscription               {"plan"} → plan change (prorated)
    POST /api/v1/admin/tenants/{t}/invoices/{period}/close    meter the period's end, write the invoice

The tenant's own admins (``tenant_admin_auth``):

    POST /api/v1/admin/tenants/{t}/widget-keys                → a new widget key
    GET  /api/v1/admin/tenants/{t}/usage?period=YYYY-MM       usage per unit and day against the plan
    GET  /api/v1/admin/tenants/{t}/invoices/{period}.csv      the invoice as CSV
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from gateway.api.admin_auth import require_admin
from gateway.api.tenant_admin_auth import require_tenant_admin
from gateway.api.deps import get_services, require_tenant
from gateway.api.errors import ApiError
from gateway.onboarding import OnboardingError, TenantOnboarding
from gateway.billing.invoices import InvoiceError, PeriodCloser, invoice_csv
from gateway.billing.periods import bounds
from gateway.billing.plans import UnknownPlanError
from gateway.billing.subscriptions import SubscriptionError
from gateway.db.models import Invoice
from gateway.services import GatewayServices

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1/admin", tags=["operator: tenants and plans"], dependencies=[Depends(require_admin)])
tenant_router = APIRouter(prefix="/api/v1/admin/tenants", tags=["admin: usage and invoices"],
                          dependencies=[Depends(require_tenant_admin)])


class NewTenant(BaseModel):
    """A tenant to create (with its first admin and assistant)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,63}$")
    name: str = Field(min_length=1, max_length=200)
    plan: str = "free"
    template: str | None = Field(default=None, max_length=64)
    admin_email: str | None = Field(default=None, max_length=254)


class PlanChange(BaseModel):
    """The plan to move to."""

    plan: str


def closer(services: GatewayServices) -> PeriodCloser:
    """The period-close job over this deployment's database."""
    return PeriodCloser(services.sessions, services.usage, services.settings.invoices_dir)


def _period(period: str) -> str:
    try:
        bounds(period)
    except ValueError as exc:
        raise ApiError(422, "bad_period", str(exc)) from exc
    return period


@router.get("/plans")
async def list_plans(services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """Every plan with its prices and limits."""
    plans = await run_in_threadpool(services.usage.plans.list)
    return {"plans": [plan.model_dump(mode="json") for plan in plans]}


@router.post("/tenants", status_code=201)
async def create_tenant(body: NewTenant, services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """Create a tenant: plan, widget key, first admin (its password is in this answer only) and, with a
    ``template``, its assistant.

    The first assistant trains in the background (probe first: about a minute); until it is live the
    widget says the assistant is not set up yet. ``GET /api/v1/admin/tenants/{t}/onboarding`` follows it.
    """
    onboarding = TenantOnboarding(services.settings, services.sessions, services.usage)
    try:
        created = await run_in_threadpool(onboarding.create, body.id, body.name, body.plan, body.template,
                                          body.admin_email, "operator")
    except OnboardingError as exc:
        status = {"tenant_exists": 409}.get(exc.code, 422)
        raise ApiError(status, exc.code, exc.detail) from exc
    if created.template is None:
        return {**created.to_public(), "assistant": {"status": "none"}}
    threading.Thread(target=_train_first, args=(onboarding, created.tenant_id), name=f"onboard-{created.tenant_id}",
                     daemon=True).start()
    return {**created.to_public(), "assistant": {"status": "training"}}


def _train_first(onboarding: TenantOnboarding, tenant_id: str) -> None:
    try:
        onboarding.train_first(tenant_id, "onboarding")
    except Exception:  # noqa: BLE001 - the version row (failed) and the log say why; the tenant stays
        logger.exception("the first assistant of %s did not train", tenant_id)


@router.get("/tenants/{tenant}/onboarding")
async def onboarding_status(tenant: str, services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """Whether the tenant's first assistant is live yet (and the versions so far)."""
    await require_tenant(services, tenant)
    from gateway.learning.model_registry import ModelRegistry

    registry = ModelRegistry(services.sessions, services.settings.model_registry_dir)
    versions = await run_in_threadpool(registry.list, tenant)
    production = next((v for v in versions if v.status == "production"), None)
    latest = versions[0] if versions else None
    status = "live" if production else ("failed" if latest and latest.status in ("failed", "refused") else "training")
    return {"tenant": tenant, "assistant": status, "production_version": production.version if production else None,
            "stage": latest.stage if latest else None, "error": latest.error if latest else None}


@tenant_router.post("/{tenant}/widget-keys", status_code=201)
async def issue_widget_key(tenant: str, services: GatewayServices = Depends(get_services)) -> dict[str, str]:
    """A new widget key for the tenant (the old ones keep working until revoked)."""
    await require_tenant(services, tenant)
    return {"widget_key": await run_in_threadpool(services.tenants.issue_widget_key, tenant)}


@router.put("/tenants/{tenant}/subscription")
async def change_subscription(tenant: str, body: PlanChange,
                              services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """Move the tenant to another plan from now; the period's invoice prorates both."""
    await require_tenant(services, tenant)
    try:
        plan = await run_in_threadpool(lambda: services.usage.change_plan(tenant, body.plan, actor="admin"))
    except (UnknownPlanError, SubscriptionError) as exc:
        raise ApiError(422, "unknown_plan", str(exc)) from exc
    return {"tenant": tenant, "plan": plan.model_dump(mode="json")}


@tenant_router.get("/{tenant}/usage")
async def tenant_usage(tenant: str, period: str | None = None,
                       services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """Usage of a period (the current one by default) against the plan."""
    await require_tenant(services, tenant)
    return await run_in_threadpool(services.usage.summary, tenant, _period(period) if period else None)


@router.post("/tenants/{tenant}/invoices/{period}/close")
async def close_period(tenant: str, period: str, services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """Meter the ended period's end and write its invoice (JSON, CSV, Stripe meter events), once.

    A period that has not ended, or was closed before, answers 409 (``period_open`` / ``already_closed``
    with the invoice); of racing closes exactly one succeeds.
    """
    await require_tenant(services, tenant)
    try:
        return await run_in_threadpool(closer(services).close, tenant, _period(period))
    except InvoiceError as exc:
        extra = {"invoice": exc.existing} if exc.existing is not None else {}
        raise ApiError(409, exc.code, exc.detail, **extra) from exc


@tenant_router.get("/{tenant}/invoices/{period}.csv")
async def invoice_as_csv(tenant: str, period: str, services: GatewayServices = Depends(get_services)) -> PlainTextResponse:
    """A closed period's invoice as CSV."""
    def load() -> dict[str, Any] | None:
        with services.sessions() as session:
            row = session.get(Invoice, (tenant, period))
            return None if row is None else row.body

    body = await run_in_threadpool(load)
    if body is None:
        raise ApiError(404, "no_invoice", "close the period first")
    return PlainTextResponse(invoice_csv(body), media_type="text/csv")
