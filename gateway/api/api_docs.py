"""``/docs``: the API's Swagger UI with its script and style served from here, so it works offline.

FastAPI's default page loads Swagger UI from a CDN, which a machine without internet (or a strict
network) never reaches: the page stayed blank. The files (Swagger UI 5, which reads OpenAPI 3.1) come
from the ``swagger-ui-py`` package.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
import swagger_ui

from gateway.api.errors import ApiError

router = APIRouter(include_in_schema=False)
ASSETS = Path(swagger_ui.__file__).parent / "static"
_FILES = {"swagger-ui-bundle.js": "application/javascript", "swagger-ui.css": "text/css"}


@router.get("/docs")
async def api_docs() -> HTMLResponse:
    """Swagger UI for ``/openapi.json``."""
    return get_swagger_ui_html(openapi_url="/openapi.json", title="Switchboard API",
                               swagger_js_url="/docs/static/swagger-ui-bundle.js",
                               swagger_css_url="/docs/static/swagger-ui.css", swagger_favicon_url="/favicon.ico")


@router.get("/docs/static/{name}")
async def api_docs_asset(name: str) -> FileResponse:
    """Swagger UI's script and style sheet."""
    if name not in _FILES:
        raise ApiError(404, "not_found", "no such file")
    return FileResponse(ASSETS / name, media_type=_FILES[name], headers={"Cache-Control": "public, max-age=86400"})
