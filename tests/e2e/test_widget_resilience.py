"""The widget in Chromium against a gateway that drops, refuses and sends hostile content."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import free_port
from tests.e2e.conftest import ThreadedGateway
from tests.e2e.conftest import log_in_on_admin_page, make_admin

TIMEOUT_MS = 30_000


def _open(browser: Browser, url: str) -> Page:
    page = browser.new_context().new_page()
    page.goto(url)
    page.locator(".sb-launcher").click()
    return page


def _send(page: Page, text: str) -> None:
    page.locator(".sb-input").fill(text)
    page.locator(".sb-input").press("Enter")


def test_the_widget_takes_the_tenants_look(browser: Browser, threaded_gateway: ThreadedGateway) -> None:
    page = _open(browser, f"{threaded_gateway.url}/demo")
    expect(page.locator(".sb-status")).to_have_text("online", timeout=TIMEOUT_MS)
    expect(page.locator(".sb-header h2")).to_have_text("Northwind help")
    expect(page.locator(".sb-avatar")).to_have_text("NW")
    assert page.locator(".sb-launcher").evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(170, 51, 0)"
    page.context.close()


def test_a_dropped_connection_reconnects_and_queued_messages_are_answered_once_in_order(
        browser: Browser, threaded_gateway: ThreadedGateway) -> None:
    engine = threaded_gateway.engine
    page = _open(browser, f"{threaded_gateway.url}/demo")
    expect(page.locator(".sb-status")).to_have_text("online", timeout=TIMEOUT_MS)
    _send(page, "first")
    expect(page.locator(".sb-msg.bot").filter(has_text="echo: first")).to_have_count(1, timeout=TIMEOUT_MS)

    threaded_gateway.stop()  # the connection drops
    expect(page.locator(".sb-status")).to_have_text("reconnecting\u2026", timeout=TIMEOUT_MS)
    _send(page, "second")
    _send(page, "third")
    expect(page.locator(".sb-msg.customer.pending")).to_have_count(2)

    threaded_gateway.start()  # a new process on the same database
    expect(page.locator(".sb-msg.bot").filter(has_text="echo: third")).to_have_count(1, timeout=TIMEOUT_MS)
    expect(page.locator(".sb-msg.customer.pending")).to_have_count(0)
    bot_texts = page.locator(".sb-msg.bot").all_inner_texts()
    assert [t for t in bot_texts if t.startswith("echo:")] == ["echo: first", "echo: second", "echo: third"]
    assert page.locator(".sb-msg.customer").all_inner_texts() == ["first", "second", "third"]
    assert [call[1] for call in engine.calls] == ["first", "second", "third"]  # each processed once

    page.reload()  # and the history survives a reload
    expect(page.locator(".sb-msg.customer")).to_have_text(["first", "second", "third"], timeout=TIMEOUT_MS)
    page.context.close()


def test_hostile_bot_content_renders_as_text_and_runs_nothing(browser: Browser,
                                                              threaded_gateway: ThreadedGateway) -> None:
    threaded_gateway.engine.replies["show me"] = [{
        "text": ("<script>window.__pwned=1</script> <img src=x onerror=\"window.__pwned=2\"> "
                 "[click me](javascript:window.__pwned=3) javascript:window.__pwned=5 **bold** "
                 "[safe](https://help.example/a)"),
        "custom": {"kb": {"citations": [{"title": "<b>evil</b>", "url": "javascript:window.__pwned=4"}]}},
        "buttons": [{"title": "<img src=y onerror=\"window.__pwned=6\">", "payload": "/affirm"}],
    }]
    page = _open(browser, f"{threaded_gateway.url}/demo")
    expect(page.locator(".sb-status")).to_have_text("online", timeout=TIMEOUT_MS)
    _send(page, "show me")
    bubble = page.locator(".sb-msg.bot").last
    expect(bubble).to_contain_text("<script>window.__pwned=1</script>", timeout=TIMEOUT_MS)
    expect(bubble).to_contain_text('<img src=x onerror="window.__pwned=2">')
    expect(bubble).to_contain_text("Source: <b>evil</b>")
    expect(bubble.locator("strong")).to_have_text("bold")
    hrefs = bubble.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert hrefs == ["https://help.example/a"]  # javascript: never becomes a link
    expect(page.locator(".sb-buttons button")).to_have_text('<img src=y onerror="window.__pwned=6">')
    page.locator(".sb-buttons button").click()
    expect(page.locator(".sb-msg.bot").filter(has_text="echo: /affirm")).to_have_count(1, timeout=TIMEOUT_MS)
    assert page.evaluate("window.__pwned") is None
    assert page.locator("script, img").evaluate_all("nodes => nodes.filter(n => n.closest && "
                                                    "n.getRootNode() !== document).length") == 0
    page.context.close()


@pytest.fixture
def foreign_site(threaded_gateway: ThreadedGateway) -> Iterator[str]:
    """A page on another origin that embeds the gateway's widget with the demo key."""
    page = (f'<!doctype html><title>elsewhere</title><p>not the shop</p>'
            f'<script src="{threaded_gateway.url}/widget.js" '
            f'data-widget-key="{threaded_gateway.settings.demo_widget_key}" defer></script>').encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_a_foreign_origin_is_refused(browser: Browser, threaded_gateway: ThreadedGateway, foreign_site: str) -> None:
    page = _open(browser, foreign_site)
    expect(page.locator(".sb-status")).to_have_text("unavailable", timeout=TIMEOUT_MS)
    _send(page, "hello?")
    expect(page.locator(".sb-msg.system").first).to_have_text("this site may not use the widget")
    expect(page.locator(".sb-msg.system").last).to_contain_text("not available")
    page.wait_for_timeout(500)
    assert threaded_gateway.engine.calls == []
    page.context.close()


def test_a_resolved_conversation_asks_for_a_rating_that_is_stored(browser: Browser,
                                                                  threaded_gateway: ThreadedGateway) -> None:
    import httpx
    from sqlalchemy import select

    from gateway.db.models import Feedback
    from gateway.db.session import create_db_engine, create_session_factory
    from gateway.stores.agent_store import AgentStore

    engine = threaded_gateway.engine
    engine.replies["a person please"] = [{"text": "Connecting you."},
                                         {"custom": {"handoff": {"reason": "customer_request"}}}]
    db = create_db_engine(threaded_gateway.settings.database_url)
    sessions = create_session_factory(db)
    AgentStore(sessions).create("northwind", "sam@northwind.test", "Sam", "correct horse battery staple",
                                teams=["general"])
    page = _open(browser, f"{threaded_gateway.url}/demo")
    expect(page.locator(".sb-status")).to_have_text("online", timeout=TIMEOUT_MS)
    _send(page, "a person please")
    expect(page.locator(".sb-status")).to_contain_text("waiting for a person", timeout=TIMEOUT_MS)

    with httpx.Client(base_url=threaded_gateway.url) as api:
        token = api.post("/api/v1/agent/login", json={"tenant": "northwind", "email": "sam@northwind.test",
                                                      "password": "correct horse battery staple"}).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        queue = api.get("/api/v1/agent/queue", headers=auth).json()
        handoff = (queue["waiting"] + queue["active"])[0]
        handoff_id = handoff["id"]
        if handoff["state"] == "queued":  # Sam is online now: the monitor may already have assigned it
            assert api.post(f"/api/v1/agent/handoffs/{handoff_id}/claim", headers=auth).status_code in (200, 409)
        assert api.post(f"/api/v1/agent/handoffs/{handoff_id}/resolve", json={"label": "other"},
                        headers=auth).status_code == 200

    rating = page.locator(".sb-csat")
    expect(rating).to_be_visible(timeout=TIMEOUT_MS)
    rating.get_by_role("button", name="4 out of 5").click()
    expect(rating).to_have_text("Thanks for your rating!")
    page.reload()  # rated once: the prompt does not come back
    expect(page.locator(".sb-msg.system").filter(has_text="resolved")).to_have_count(1, timeout=TIMEOUT_MS)
    expect(page.locator(".sb-csat")).to_have_count(0)
    with sessions() as session:
        feedback = session.execute(select(Feedback)).scalar_one()
        assert (feedback.kind, feedback.score, feedback.target, feedback.channel) == ("csat", 4, handoff_id, "web")
    db.dispose()
    page.context.close()


def test_the_widget_works_from_the_keyboard(browser: Browser, threaded_gateway: ThreadedGateway) -> None:
    page = browser.new_context().new_page()
    page.goto(f"{threaded_gateway.url}/demo")
    launcher = page.locator(".sb-launcher")
    expect(launcher).to_have_attribute("aria-expanded", "false")
    launcher.focus()
    page.keyboard.press("Enter")
    expect(launcher).to_have_attribute("aria-expanded", "true")
    expect(page.locator(".sb-input")).to_be_focused()
    expect(page.locator(".sb-panel")).to_have_attribute("role", "dialog")
    expect(page.locator(".sb-log")).to_have_attribute("role", "log")
    page.keyboard.type("hello")
    page.keyboard.press("Enter")
    expect(page.locator(".sb-msg.bot").filter(has_text="echo: hello")).to_have_count(1, timeout=TIMEOUT_MS)
    page.keyboard.press("Escape")
    expect(launcher).to_have_attribute("aria-expanded", "false")
    expect(launcher).to_be_focused()
    # "New conversation" starts over with an empty log.
    page.keyboard.press("Enter")
    page.locator(".sb-restart").click()
    expect(page.locator(".sb-msg")).to_have_count(0)
    _send(page, "fresh start")
    expect(page.locator(".sb-msg.bot").filter(has_text="echo: fresh start")).to_have_count(1, timeout=TIMEOUT_MS)
    conversations = {call[0] for call in threaded_gateway.engine.calls}
    assert len(conversations) == 2
    page.context.close()


def test_a_second_tab_continues_and_follows_the_same_conversation(browser: Browser,
                                                                  threaded_gateway: ThreadedGateway) -> None:
    context = browser.new_context()
    first, second = context.new_page(), context.new_page()
    first.goto(f"{threaded_gateway.url}/demo")
    first.locator(".sb-launcher").click()
    _send(first, "from tab one")
    expect(first.locator(".sb-msg.bot").filter(has_text="echo: from tab one")).to_have_count(1, timeout=TIMEOUT_MS)

    second.goto(f"{threaded_gateway.url}/demo")  # same browser, same stored conversation
    expect(second.locator(".sb-msg.customer")).to_have_text(["from tab one"], timeout=TIMEOUT_MS)
    _send(second, "from tab two")
    expect(first.locator(".sb-msg.customer")).to_have_text(["from tab one", "from tab two"], timeout=TIMEOUT_MS)
    expect(first.locator(".sb-msg.bot").filter(has_text="echo: from tab two")).to_have_count(1, timeout=TIMEOUT_MS)
    expect(second.locator(".sb-msg.bot").filter(has_text="echo: from tab two")).to_have_count(1)
    assert len({call[0] for call in threaded_gateway.engine.calls}) == 1
    context.close()


def test_the_usage_page_charts_usage_against_the_limit_and_warns(browser: Browser, tmp_path: "object") -> None:
    """The usage page in Chromium: a chart per unit with its limit line, and the 80 % banner."""
    from decimal import Decimal

    from gateway.billing.plans import Plan, Unit
    from gateway.billing.usage_service import UsageService
    from gateway.db.session import create_db_engine, create_session_factory
    from gateway.migrate import upgrade_database
    from gateway.stores.tenant_store import TenantStore
    from tests.conftest import make_settings
    from tests.gateway.conftest import ScriptedDialogueEngine

    token = "admin-" + "u" * 40
    settings = make_settings(tmp_path, admin_token=token)  # type: ignore[arg-type]
    upgrade_database(settings.database_url)
    db = create_db_engine(settings.database_url)
    usage = UsageService(create_session_factory(db))
    TenantStore(create_session_factory(db)).ensure_tenant("northwind", "Northwind")
    usage.plans.put(Plan(id="small", name="Small", monthly_fee=Decimal("5"),
                         limits={Unit.CUSTOMER_MESSAGES: 10, Unit.CONVERSATIONS: 10000, Unit.AGENT_SEATS: 4}))
    usage.change_plan("northwind", "small")
    for n in range(9):
        usage.meter("northwind", Unit.CUSTOMER_MESSAGES, f"message:{n}")
    for n in range(30):
        usage.meter("northwind", Unit.CONVERSATIONS, f"conversation:{n}")
    db.dispose()
    gateway = ThreadedGateway(settings, ScriptedDialogueEngine())
    gateway.start()
    try:
        page = browser.new_context().new_page()
        log_in_on_admin_page(page, f"{gateway.url}/admin/usage", "northwind",
                             make_admin(settings.database_url, "northwind"))
        chart = page.locator("figure.chart[data-unit='customer_messages']")
        expect(chart).to_be_visible(timeout=TIMEOUT_MS)
        expect(chart.locator("figcaption")).to_have_text("customer messages \u00b7 9 / 10")
        expect(chart.locator("line.limit")).to_have_count(1)
        # A limit far above the usage is named, not drawn: the day's bar stays tall enough to read.
        far = page.locator("figure.chart[data-unit='conversations']")
        expect(far.locator("text.limit-note")).to_contain_text("limit 10000 (off the scale")
        assert far.locator("line.limit").count() == 0
        bar = far.locator("rect").first.bounding_box()
        assert bar is not None and bar["height"] > 40, bar
        # Seats are a level in use now: a meter against the plan's limit (the admin who signed in is one).
        seats = page.locator("figure.gauge[data-unit='agent_seats']")
        expect(seats.locator("figcaption")).to_have_text("agent seats \u00b7 1 / 4")
        expect(page.locator("#banner")).to_have_text("Usage warning: customer messages at 90 %.")
        expect(page.locator("#status")).to_contain_text("ledger and counters agree")
        page.context.close()
    finally:
        gateway.stop()


def test_the_analytics_dashboard_shows_figures_and_charts(browser: Browser, tmp_path: "object") -> None:
    from gateway.db.models import Sender
    from gateway.db.session import create_db_engine, create_session_factory
    from gateway.migrate import upgrade_database
    from gateway.stores.tenant_store import TenantStore
    from tests.conftest import make_settings
    from tests.gateway.analytics.test_analytics_report import Month, at
    from tests.gateway.conftest import ScriptedDialogueEngine

    token = "admin-" + "d" * 40
    settings = make_settings(tmp_path, admin_token=token)  # type: ignore[arg-type]
    upgrade_database(settings.database_url)
    db = create_db_engine(settings.database_url)
    sessions = create_session_factory(db)
    TenantStore(sessions).ensure_tenant("acme", "Acme")
    month = Month(sessions)
    for n, day in enumerate((2, 2, 3)):
        cid = month.conversation(f"c{n}", at(day, 10 + n))
        month.say(cid, Sender.CUSTOMER, at(day, 10 + n), intent="complaint" if n == 2 else "greet")
    month.handoff("c2", "complaint", at(3, 12, 1), first_response_s=90, handle_s=600, csat=4)
    db.dispose()
    gateway = ThreadedGateway(settings, ScriptedDialogueEngine())
    gateway.start()
    try:
        page = browser.new_context().new_page()
        log_in_on_admin_page(page, f"{gateway.url}/admin/analytics", "acme", make_admin(settings.database_url, "acme"))
        page.locator("#from").fill("2026-11-01")
        page.locator("#to").fill("2026-11-30")
        page.get_by_role("button", name="Show").click()
        expect(page.locator("#kpis")).to_contain_text("Containment66.7 %", timeout=TIMEOUT_MS)
        expect(page.locator("#kpis")).to_contain_text("CSAT4 / 5 (1)")
        expect(page.locator("#kpis")).to_contain_text("First response (median)90 s")
        daily = page.locator("figure[data-chart='daily']")
        expect(daily.locator("rect.contained")).to_have_count(1)  # 2 November: two contained
        expect(daily.locator("rect.escalated")).to_have_count(1)  # 3 November: one escalated
        expect(page.locator("figure[data-chart='triggers'] text").first).to_have_text("complaint")
        page.context.close()
    finally:
        gateway.stop()
