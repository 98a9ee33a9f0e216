"""Analytics API and dashboard page.

    GET /api/v1/admin/tenants/{t}/analytics?from=YYYY-MM-DD&to=YYYY-MM-DD   (default: the current month)
    GET /admin/analytics                                                    charts of the same numbers
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from gateway.analytics.report import AnalyticsReport
from gateway.api.tenant_admin_auth import require_tenant_admin
from gateway.api.deps import get_services, require_tenant
from gateway.api.errors import ApiError
from gateway.api.kb_admin_page import SECURITY_HEADERS, STATIC
from gateway.billing.periods import bounds, period_of
from gateway.db.models import utcnow
from gateway.services import GatewayServices

router = APIRouter(prefix="/api/v1/admin/tenants", tags=["admin: analytics"], dependencies=[Depends(require_tenant_admin)])
page_router = APIRouter(include_in_schema=False)
MAX_DAYS = 366


def _day(value: str, name: str) -> datetime:
    try:
        return datetime.combine(date.fromisoformat(value), time(), tzinfo=timezone.utc)
    except ValueError as exc:
        raise ApiError(422, "bad_date", f"{name} must be a date, YYYY-MM-DD") from exc


@router.get("/{tenant}/analytics")
async def analytics(tenant: str, services: GatewayServices = Depends(get_services),
                    from_: str | None = Query(default=None, alias="from"),
                    to: str | None = Query(default=None)) -> dict[str, Any]:
    """Containment, escalations, fallback, knowledge base, CSAT and human service times of a period."""
    await require_tenant(services, tenant)
    month_start, month_end = bounds(period_of(utcnow()))
    start = _day(from_, "from") if from_ else month_start
    end = _day(to, "to") + timedelta(days=1) if to else month_end  # "to" is inclusive
    if not start < end or (end - start).days > MAX_DAYS:
        raise ApiError(422, "bad_range", f"from must be before to, at most {MAX_DAYS} days apart")
    return await run_in_threadpool(AnalyticsReport(services.sessions).build, tenant, start, end)


@page_router.get("/admin/analytics")
async def analytics_page() -> FileResponse:
    """The analytics dashboard (admin token)."""
    return FileResponse(STATIC / "analytics.html", media_type="text/html", headers=SECURITY_HEADERS)
