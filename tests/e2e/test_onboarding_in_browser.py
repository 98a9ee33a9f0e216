"""A business goes live: the operator creates it, its admin signs in and uploads two articles, the widget
goes on the business's own page, and a customer gets the business's greeting and a cited answer."""

from __future__ import annotations

import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from playwright.sync_api import Browser, expect

from gateway.stack import Stack, free_port
from tests.e2e.conftest import log_in_on_admin_page

TIMEOUT_MS = 60_000

ARTICLES = {
    "loan-periods.md": "# Loan periods\n\nBooks can be borrowed for three weeks and renewed twice online, unless "
                       "another reader has reserved them. Films and games are lent for one week.\n",
    "late-fees.md": "# Late fees\n\nThere are no late fees for children's books. Adult items cost 20 cents a day "
                    "after the due date, up to 5 euros per item.\n",
}


def serve(folder: Path) -> tuple[ThreadingHTTPServer, str]:
    """The business's own web site (another origin than the gateway)."""
    port = free_port()
    handler = lambda *a, **k: SimpleHTTPRequestHandler(*a, directory=str(folder), **k)  # noqa: E731
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{port}"


def test_operator_creates_a_tenant_and_its_customers_get_its_own_cited_answers(
        browser: Browser, running_stack: Stack, tmp_path: Path) -> None:
    s = running_stack.settings
    started = time.monotonic()
    created = httpx.post(f"{s.gateway_url}/api/v1/admin/tenants", timeout=60,
                         headers={"Authorization": f"Bearer {s.admin_token.get_secret_value()}"},
                         json={"id": "riverside", "name": "Riverside Library", "plan": "pro", "template": "blank",
                               "admin_email": "head@riverside.example"})
    assert created.status_code == 201, created.text
    admin = created.json()["admin"]
    assert created.json()["assistant"] == {"status": "training"}

    # The admin signs in on the admin pages (the console's account) and uploads the help centre.
    context = browser.new_context()
    page = context.new_page()
    log_in_on_admin_page(page, f"{s.gateway_url}/admin/kb", "riverside", admin["email"], admin["password"])
    for name, text in ARTICLES.items():
        (tmp_path / name).write_text(text)
    page.locator("#files").set_input_files([str(tmp_path / name) for name in ARTICLES])
    page.locator("#upload").get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#upload-results li.ok")).to_have_count(2, timeout=TIMEOUT_MS)
    expect(page.locator("#status")).to_contain_text("2 documents", timeout=TIMEOUT_MS)

    # The overview gives the tag for the site; the first assistant goes live by itself.
    page.goto(f"{s.gateway_url}/admin")
    snippet = page.locator("#snippet")
    expect(snippet).to_contain_text("data-widget-key=", timeout=TIMEOUT_MS)
    deadline = time.monotonic() + 600
    operator = {"Authorization": f"Bearer {s.admin_token.get_secret_value()}"}
    while httpx.get(f"{s.gateway_url}/api/v1/admin/tenants/riverside/onboarding", headers=operator,
                    timeout=10).json()["assistant"] != "live":
        assert time.monotonic() < deadline, "the first assistant never went live"
        time.sleep(2)
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(f"<!doctype html><html><head><title>Riverside Library</title></head><body>"
                                     f"<h1>Riverside Library</h1>{snippet.text_content()}</body></html>")
    server, site_url = serve(site)
    try:
        customer = browser.new_context().new_page()
        customer.goto(f"{site_url}/index.html")
        customer.locator(".sb-launcher").click()
        expect(customer.locator(".sb-status")).to_have_text("online", timeout=TIMEOUT_MS)
        customer.locator(".sb-input").fill("hello")
        customer.locator(".sb-input").press("Enter")
        greeting = customer.locator(".sb-msg.bot").last
        expect(greeting).to_contain_text("Riverside Library assistant", timeout=TIMEOUT_MS)
        expect(greeting).not_to_contain_text("Northwind")
        customer.locator(".sb-input").fill("how long can I keep a borrowed book?")
        customer.locator(".sb-input").press("Enter")
        answer = customer.locator(".sb-msg.bot").filter(has_text="three weeks")
        expect(answer).to_be_visible(timeout=TIMEOUT_MS)
        expect(answer).to_contain_text("Source: Loan periods")
        print(f"\nfrom tenant creation to the first cited answer: {time.monotonic() - started:.0f} s")
    finally:
        server.shutdown()
        context.close()
