"""Browser fixtures: Debian's Chromium driven by Playwright, headless."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
                 "--no-first-run", "--disable-component-update", "--disable-sync"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def browser() -> Iterator["object"]:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: `make test` installs it (scripts/setup.sh)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


class ThreadedGateway:
    """The gateway app served by uvicorn on a thread, stoppable and restartable on the same port and database.

    The dialogue engine is the scripted one (the real Rasa stack runs in the other e2e tests), so the
    widget's own behaviour (reconnects, rendering, origins) is what these tests exercise.
    """

    def __init__(self, settings: "object", engine: "object") -> None:
        self.settings = settings
        self.engine = engine
        self._server: "object | None" = None
        self._thread: "object | None" = None

    @property
    def url(self) -> str:
        return self.settings.gateway_url  # type: ignore[attr-defined, no-any-return]

    def start(self) -> None:
        import threading
        import time

        import uvicorn

        from gateway.app import create_app

        app = create_app(self.settings, dialogue=self.engine)  # type: ignore[arg-type]
        config = uvicorn.Config(app, host="127.0.0.1", port=self.settings.gateway_port,  # type: ignore[attr-defined]
                                log_level="warning", lifespan="on")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the gateway did not start")
            time.sleep(0.05)
        self._server, self._thread = server, thread

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True  # type: ignore[attr-defined]
            self._thread.join(timeout=20)  # type: ignore[attr-defined]
            self._server = self._thread = None


@pytest.fixture
def threaded_gateway(tmp_path: Path) -> Iterator[ThreadedGateway]:
    """A scripted-bot gateway whose demo tenant allows only its own origin."""
    from connectors.web.config import WidgetConfig
    from gateway.db.session import create_db_engine, create_session_factory
    from gateway.migrate import upgrade_database
    from gateway.stores.tenant_store import TenantStore
    from gateway.stores.widget_config_store import WidgetConfigStore
    from tests.conftest import make_settings
    from tests.gateway.conftest import ScriptedDialogueEngine

    settings = make_settings(tmp_path)
    upgrade_database(settings.database_url)
    engine = create_db_engine(settings.database_url)
    sessions = create_session_factory(engine)
    TenantStore(sessions).ensure_tenant("northwind", "Northwind")
    TenantStore(sessions).issue_widget_key("northwind", settings.demo_widget_key)
    WidgetConfigStore(sessions).put("northwind", WidgetConfig(
        title="Northwind help", accent="#aa3300", avatar="NW", allowed_origins=[settings.gateway_url]))
    engine.dispose()
    gateway = ThreadedGateway(settings, ScriptedDialogueEngine())
    gateway.start()
    yield gateway
    gateway.stop()


ADMIN_PASSWORD = "Correct-Horse-9-Battery"


def make_admin(database_url: str, tenant: str, email: str = "admin@example.test") -> str:
    """An admin account of ``tenant`` (password ``ADMIN_PASSWORD``); returns its e-mail."""
    from gateway.db.session import create_db_engine, create_session_factory
    from gateway.stores.agent_store import AgentStore

    engine = create_db_engine(database_url)
    try:
        AgentStore(create_session_factory(engine)).create(tenant, email, "Admin", ADMIN_PASSWORD, role="admin")
    finally:
        engine.dispose()
    return email


def log_in_on_admin_page(page, url: str, tenant: str, email: str, password: str = ADMIN_PASSWORD) -> None:  # type: ignore[no-untyped-def]
    """Open an admin page, sign in through its login form (the console's account) and wait for the reload."""
    page.goto(url)
    page.locator("#login-tenant").fill(tenant)
    page.locator("#login-email").fill(email)
    page.locator("#login-password").fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name="Log in").click()
