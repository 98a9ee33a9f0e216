"""Admin API of tenants, widget keys, plans, usage and invoices.

    GET  /api/v1/admin/plans
    POST /api/v1/admin/tenants                                {"id", "name", "plan"} → tenant + widget key
    POST /api/v1/admin/tenants/{t}/widget-keys                → a new widget key
    PUT  /api/v1/admin/tenants/{t}/subscription               {"plan"} → plan change (prorated)
    GET  /api/v1/admin/tenants/{t}/usage?period=YYYY-MM       usage per unit and day against the plan
    POST /api/v1/admin/tenants/{t}/invoices/{period}/close    meter the period's end, write the invoice
    GET  /api/v1/admin/tenants/{t}/invoices/{period}.csv      the invoice as CSV
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from gateway.api.admin_auth import require_admin
from gateway.api.deps import get_services, require_tenant
from gateway.api.errors import ApiError
from gateway.billing.invoices import PeriodCloser, invoice_csv
from gateway.billing.periods import bounds
from gateway.billing.plans import UnknownPlanError
from gateway.billing.subscriptions import SubscriptionError
from gateway.db.models import Invoice
from gateway.services import GatewayServices

router = APIRouter(prefix="/api/v1/admin", tags=["admin: tenants and billing"], dependencies=[Depends(require_admin)])


class NewTenant(BaseModel):
    """A tenant to create."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{1,63}$")
    name: str = Field(min_length=1, max_length=200)
    plan: str = "free"


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
    """Create a tenant on a plan and issue its first widget key."""
    if await run_in_threadpool(services.tenants.exists, body.id):
        raise ApiError(409, "tenant_exists", f"tenant {body.id!r} already exists")
    try:
        await run_in_threadpool(services.usage.plans.get, body.plan)
    except UnknownPlanError as exc:
        raise ApiError(422, "unknown_plan", str(exc)) from exc
    await run_in_threadpool(services.tenants.ensure_tenant, body.id, body.name)
    await run_in_threadpool(lambda: services.usage.change_plan(body.id, body.plan, actor="admin"))
    key = await run_in_threadpool(services.tenants.issue_widget_key, body.id)
    return {"id": body.id, "name": body.name, "plan": body.plan, "widget_key": key}


@router.post("/tenants/{tenant}/widget-keys", status_code=201)
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


@router.get("/tenants/{tenant}/usage")
async def tenant_usage(tenant: str, period: str | None = None,
                       services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """Usage of a period (the current one by default) against the plan."""
    await require_tenant(services, tenant)
    return await run_in_threadpool(services.usage.summary, tenant, _period(period) if period else None)


@router.post("/tenants/{tenant}/invoices/{period}/close")
async def close_period(tenant: str, period: str, services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """Meter the period's end and write its invoice (JSON, CSV, Stripe meter events); safe to repeat."""
    await require_tenant(services, tenant)
    return await run_in_threadpool(closer(services).close, tenant, _period(period))


@router.get("/tenants/{tenant}/invoices/{period}.csv")
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
