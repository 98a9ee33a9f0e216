"""The widget script and the demo page that embeds it."""

from __future__ import annotations

import html

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from gateway.api.deps import get_services
from gateway.services import GatewayServices
from gateway.settings import PROJECT_ROOT

router = APIRouter(include_in_schema=False)

WIDGET_JS = PROJECT_ROOT / "connectors" / "web" / "widget.js"

DEMO_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Northwind Goods: support demo</title>
  <style>
    body {{ font-family: system-ui, sans-serif; margin: 0; background: #f6f7fb; color: #1d2433; }}
    main {{ max-width: 720px; margin: 0 auto; padding: 48px 24px; }}
    code {{ background: #e9ecf5; padding: 2px 6px; border-radius: 4px; }}
  </style>
</head>
<body>
  <main>
    <h1>Northwind Goods</h1>
    <p>This page embeds the Switchboard chat widget with one script tag. Open the chat in the
    corner and try <code>where is my order A1234?</code>, <code>how do returns work?</code> or
    <code>I want to talk to a person</code>.</p>
    <p>Demo orders: <code>A1234</code>, <code>B5521</code>, <code>C7302</code>.</p>
  </main>
  <script src="{script_src}" data-widget-key="{widget_key}" defer></script>
</body>
</html>
"""


#: A speech bubble, drawn (no emoji font or image file needed); every page's browser asks for it.
FAVICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" '
           'fill="#2f5bea"/><path d="M8 9h16a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2h-9l-5 4v-4H8a2 2 0 0 1-2-2v-8a2 2 0 0 1 '
           '2-2z" fill="#fff"/></svg>')


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> Response:
    """The site icon (SVG; browsers accept it at this address)."""
    return Response(FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})


@router.get("/widget.js")
async def widget_script() -> FileResponse:
    """The embeddable widget (plain JavaScript, no build step)."""
    return FileResponse(
        WIDGET_JS,
        media_type="application/javascript",
        headers={"Cache-Control": "public, max-age=300"},
    )


@router.get("/demo", response_class=HTMLResponse)
async def demo_page(request: Request, services: GatewayServices = Depends(get_services)) -> HTMLResponse:
    """A host page for the demo tenant, embedding the widget."""
    script_src = str(request.url_for("widget_script"))
    return HTMLResponse(
        DEMO_PAGE.format(
            script_src=html.escape(script_src, quote=True),
            widget_key=html.escape(services.settings.demo_widget_key, quote=True),
        )
    )
