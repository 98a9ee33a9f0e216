"""The admin overview in Chromium: sign-in, the assistant's settings, the widget look, the agents."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.e2e.conftest import ThreadedGateway, log_in_on_admin_page, make_admin

TIMEOUT_MS = 15_000


def test_an_admin_manages_assistant_widget_and_agents_and_sees_only_its_tenant(browser: Browser, tmp_path: Path) -> None:
    from gateway.assistants.assistant_service import AssistantService
    from gateway.assistants.assistant_store import AssistantStore
    from gateway.db.session import create_db_engine, create_session_factory
    from gateway.migrate import upgrade_database
    from gateway.stores.tenant_store import TenantStore
    from tests.conftest import make_settings
    from tests.gateway.conftest import ScriptedDialogueEngine

    settings = make_settings(tmp_path)
    upgrade_database(settings.database_url)
    db = create_db_engine(settings.database_url)
    sessions = create_session_factory(db)
    for tenant, name in (("acme", "Acme Outdoor"), ("globex", "Globex")):
        TenantStore(sessions).ensure_tenant(tenant, name)
        TenantStore(sessions).issue_widget_key(tenant)
        AssistantService(sessions).create(tenant, "retail", "ops")
    email = make_admin(settings.database_url, "acme", "boss@acme.example")
    gateway = ThreadedGateway(settings, ScriptedDialogueEngine())
    gateway.start()
    try:
        page = browser.new_context().new_page()
        page.goto(f"{gateway.url}/admin/models")
        page.locator("#login-tenant").fill("acme")
        page.locator("#login-email").fill(email)
        page.locator("#login-password").fill("wrong password")
        page.get_by_role("button", name="Log in").click()
        expect(page.locator("#status")).to_contain_text("wrong tenant, e-mail or password", timeout=TIMEOUT_MS)
        log_in_on_admin_page(page, f"{gateway.url}/admin", "acme", email)

        expect(page.locator("#business")).to_have_text("Acme Outdoor", timeout=TIMEOUT_MS)
        expect(page.locator("#snippet")).to_contain_text('data-widget-key="wk_')
        expect(page.get_by_role("navigation", name="Admin pages")).to_contain_text("Help centre")
        assert "Globex" not in page.content()

        page.locator("#assistant_name").fill("Ada")
        page.locator("input[name=skill][value=order_status]").uncheck()
        page.get_by_role("button", name="Save settings").click()
        expect(page.locator("#status")).to_contain_text("revision 2", timeout=TIMEOUT_MS)
        saved = AssistantStore(sessions).current("acme").settings
        assert saved.assistant_name == "Ada" and "order_status" not in saved.skills and "returns" in saved.skills
        assert AssistantStore(sessions).current("globex").revision == 1

        page.locator("#w-title").fill("Acme help")
        page.get_by_role("button", name="Save look").click()
        expect(page.locator("#status")).to_contain_text("Widget look saved", timeout=TIMEOUT_MS)

        page.locator("#a-name").fill("Kim")
        page.locator("#a-email").fill("kim@acme.example")
        page.locator("#a-password").fill("Correct-Horse-9-Battery")
        page.get_by_role("button", name="Add", exact=True).click()
        expect(page.locator("#agents")).to_contain_text("kim@acme.example", timeout=TIMEOUT_MS)

        page.get_by_role("button", name="Log out").click()
        expect(page.locator("#login-email")).to_be_visible(timeout=TIMEOUT_MS)
        page.context.close()
    finally:
        gateway.stop()
        db.dispose()
