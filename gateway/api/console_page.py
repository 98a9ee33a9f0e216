"""The agent console: a static page that uses the agent API and the ``/ws/agent`` socket."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from gateway.api.errors import ApiError
from gateway.api.kb_admin_page import SECURITY_HEADERS, STATIC

router = APIRouter(include_in_schema=False)
_FILES = {"console.js": "application/javascript", "console.css": "text/css"}
# The console talks to its own origin only, over HTTP and WebSocket.
_HEADERS = {**SECURITY_HEADERS,
            "Content-Security-Policy": "default-src 'self'; style-src 'self'; script-src 'self'; "
                                       "connect-src 'self' ws: wss:; frame-ancestors 'none'"}


@router.get("/console")
async def console_page() -> FileResponse:
    """Login, live queue, transcript with context, reply, notes, transfer and resolve."""
    return FileResponse(STATIC / "console.html", media_type="text/html", headers=_HEADERS)


@router.get("/console/static/{name}")
async def console_static(name: str) -> FileResponse:
    """The console's script and style sheet."""
    if name not in _FILES:
        raise ApiError(404, "not_found", "no such file")
    return FileResponse(STATIC / name, media_type=_FILES[name], headers=_HEADERS)
