"""Admin API of a tenant's web widget: look, allowed origins, widget keys.

    GET /api/v1/admin/tenants/{tenant}/widget
    PUT /api/v1/admin/tenants/{tenant}/widget      body = WidgetConfig (every field optional)
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from connectors.web.config import WidgetConfig
from gateway.api.tenant_admin_auth import require_tenant_admin
from gateway.api.deps import get_services, require_tenant
from gateway.api.errors import ApiError
from gateway.services import GatewayServices

router = APIRouter(prefix="/api/v1/admin/tenants", tags=["admin: widget"], dependencies=[Depends(require_tenant_admin)])


@router.get("/{tenant}/widget")
async def get_widget_config(tenant: str, services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """The tenant's widget settings."""
    await require_tenant(services, tenant)
    return (await run_in_threadpool(services.widget_configs.get, tenant)).model_dump()


@router.put("/{tenant}/widget")
async def put_widget_config(tenant: str, body: dict[str, Any],
                            services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """Change some or all widget settings; unknown fields and bad values are refused whole (422)."""
    await require_tenant(services, tenant)
    current = await run_in_threadpool(services.widget_configs.get, tenant)
    try:
        config = WidgetConfig.model_validate({**current.model_dump(), **body})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        raise ApiError(422, "invalid_widget_config", f"{where}: {first.get('msg')}") from exc
    return (await run_in_threadpool(services.widget_configs.put, tenant, config)).model_dump()
