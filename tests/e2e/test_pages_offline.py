"""Pages `make run` prints render with the network off (nothing but the gateway is reachable)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from playwright.sync_api import Browser, expect

from tests.e2e.conftest import ThreadedGateway

TIMEOUT_MS = 15_000


def test_api_docs_and_the_site_icon_need_no_internet(browser: Browser, tmp_path: Path) -> None:
    from gateway.migrate import upgrade_database
    from tests.conftest import make_settings
    from tests.gateway.conftest import ScriptedDialogueEngine

    settings = make_settings(tmp_path)
    upgrade_database(settings.database_url)
    gateway = ThreadedGateway(settings, ScriptedDialogueEngine())
    gateway.start()
    try:
        context = browser.new_context()
        own = urlparse(gateway.url).netloc
        outside: list[str] = []

        def offline(route) -> None:  # type: ignore[no-untyped-def]
            if urlparse(route.request.url).netloc == own:
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        context.route("**/*", offline)
        page = context.new_page()
        page.goto(f"{gateway.url}/docs")
        expect(page.locator(".swagger-ui .title")).to_contain_text("Switchboard gateway", timeout=TIMEOUT_MS)
        expect(page.locator(".swagger-ui")).to_contain_text("/api/v1/messages")
        assert outside == []
        assert page.request.get(f"{gateway.url}/favicon.ico").status == 200
        context.close()
    finally:
        gateway.stop()
