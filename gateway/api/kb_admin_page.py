"""The knowledge-base admin page (static HTML + JS calling the admin API with the admin token)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from gateway.settings import PROJECT_ROOT

router = APIRouter(include_in_schema=False)
STATIC = PROJECT_ROOT / "gateway" / "static"
# Nothing on the page comes from anywhere but this origin; messages are inserted as text only.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@router.get("/admin/kb")
async def kb_admin_page() -> FileResponse:
    """Upload, list, search, re-index and delete a tenant's help-centre documents."""
    return FileResponse(STATIC / "kb_admin.html", media_type="text/html", headers=SECURITY_HEADERS)


@router.get("/admin/static/{name}")
async def admin_static(name: str) -> FileResponse:
    """The page's script and style sheet."""
    files = {"kb_admin.js": "application/javascript", "usage.js": "application/javascript",
             "analytics.js": "application/javascript", "inbox.js": "application/javascript",
             "models.js": "application/javascript", "admin_home.js": "application/javascript",
             "admin_access.js": "application/javascript",
             "admin.css": "text/css"}
    if name not in files:
        from gateway.api.errors import ApiError

        raise ApiError(404, "not_found", "no such file")
    return FileResponse(STATIC / name, media_type=files[name], headers=SECURITY_HEADERS)
