"""Pages `make run` prints render with the network off (nothing but the gateway is reachable)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from playwright.sync_api import Browser, BrowserContext, Route, expect

from gateway.stack import Stack
from tests.e2e.conftest import ThreadedGateway

TIMEOUT_MS = 15_000


def offline_context(browser: Browser, own_url: str) -> tuple[BrowserContext, list[str]]:
    """A browser context that reaches only ``own_url``'s host; every other request is aborted and listed."""
    context = browser.new_context()
    own = urlparse(own_url).netloc
    outside: list[str] = []

    def offline(route: Route) -> None:
        if urlparse(route.request.url).netloc == own:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", offline)
    return context, outside


def test_api_docs_and_the_site_icon_need_no_internet(browser: Browser, tmp_path: Path) -> None:
    from gateway.migrate import upgrade_database
    from tests.conftest import make_settings
    from tests.gateway.conftest import ScriptedDialogueEngine

    settings = make_settings(tmp_path)
    upgrade_database(settings.database_url)
    gateway = ThreadedGateway(settings, ScriptedDialogueEngine())
    gateway.start()
    try:
        context, outside = offline_context(browser, gateway.url)
        page = context.new_page()
        page.goto(f"{gateway.url}/docs")
        expect(page.locator(".swagger-ui .title")).to_contain_text("Switchboard gateway", timeout=TIMEOUT_MS)
        expect(page.locator(".swagger-ui")).to_contain_text("/api/v1/messages")
        assert outside == []
        assert page.request.get(f"{gateway.url}/favicon.ico").status == 200
        context.close()
    finally:
        gateway.stop()


def test_every_page_make_run_prints_renders_with_the_network_off(browser: Browser, running_stack: Stack) -> None:
    from gateway.run import banner
    from tests.e2e.conftest import log_in_on_admin_page, make_admin

    settings = running_stack.settings
    printed = [line.split(": ", 1)[1].strip() for line in banner(settings).splitlines()
               if ": " in line and "http" in line]
    assert {urlparse(u).path for u in printed} == {"/demo", "/docs", "/healthz", "/console", "/admin"}
    context, outside = offline_context(browser, settings.gateway_url)
    page = context.new_page()
    expected = {  # what each page shows once it has rendered
        "/demo": lambda: expect(page.locator(".sb-launcher svg")).to_be_visible(timeout=TIMEOUT_MS),
        "/docs": lambda: expect(page.locator(".swagger-ui")).to_contain_text("/api/v1/messages", timeout=TIMEOUT_MS),
        "/healthz": lambda: expect(page.locator("body")).to_contain_text('"database":true', timeout=TIMEOUT_MS),
        "/console": lambda: expect(page.get_by_role("button", name="Log in")).to_be_visible(timeout=TIMEOUT_MS),
        "/admin": lambda: expect(page.get_by_role("button", name="Log in")).to_be_visible(timeout=TIMEOUT_MS),
    }
    for url in printed:
        page.goto(url)
        expected[urlparse(url).path]()
    # Signed in, the admin overview shows the tenant's own content (rendered by its scripts, offline too).
    log_in_on_admin_page(page, f"{settings.gateway_url}/admin", settings.demo_tenant,
                         make_admin(settings.database_url, settings.demo_tenant))
    expect(page.locator("#business")).to_have_text("Northwind Goods", timeout=TIMEOUT_MS)
    assert outside == [], outside
    context.close()
