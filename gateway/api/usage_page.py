"""The usage page: a tenant's usage per unit and day against its plan, with warnings (admin token)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from gateway.api.kb_admin_page import SECURITY_HEADERS, STATIC

router = APIRouter(include_in_schema=False)


@router.get("/admin/usage")
async def usage_page() -> FileResponse:
    """Charts of the current period's usage (data from ``GET /api/v1/admin/tenants/{t}/usage``)."""
    return FileResponse(STATIC / "usage.html", media_type="text/html", headers=SECURITY_HEADERS)
