"""The widget on the demo page, in a real browser, against the running stack."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from gateway.stack import Stack

TIMEOUT_MS = 60_000


def open_demo(browser: Browser, stack: Stack, **context_options: object) -> Page:
    context = browser.new_context(**context_options)
    page = context.new_page()
    page.goto(f"{stack.settings.gateway_url}/demo")
    return page


def send(page: Page, text: str) -> None:
    page.locator(".sb-input").fill(text)
    page.locator(".sb-input").press("Enter")


def test_order_status_in_the_widget_survives_a_reload(browser: Browser, running_stack: Stack) -> None:
    page = open_demo(browser, running_stack)
    page.locator(".sb-launcher").click()
    expect(page.locator(".sb-status")).to_have_text("online", timeout=TIMEOUT_MS)
    send(page, "where is my order A1234?")
    reply = page.locator(".sb-msg.bot").filter(has_text="A1234")
    expect(reply).to_contain_text("has shipped", timeout=TIMEOUT_MS)

    page.reload()
    # The widget reopens on the same conversation and shows its history.
    expect(page.locator(".sb-msg.customer")).to_have_text(["where is my order A1234?"], timeout=TIMEOUT_MS)
    expect(page.locator(".sb-msg.bot").filter(has_text="A1234")).to_contain_text("has shipped")
    page.context.close()


def test_quick_reply_buttons_drive_the_conversation(browser: Browser, running_stack: Stack) -> None:
    page = open_demo(browser, running_stack)
    page.locator(".sb-launcher").click()
    send(page, "hello")
    button = page.locator(".sb-buttons button", has_text="Where is my order?")
    expect(button).to_be_visible(timeout=TIMEOUT_MS)
    button.click()
    expect(page.locator(".sb-msg.customer").last).to_have_text("Where is my order?")
    expect(page.locator(".sb-msg.bot").last).to_contain_text("order number", timeout=TIMEOUT_MS)
    send(page, "C7302")
    expect(page.locator(".sb-msg.bot").last).to_contain_text("was delivered", timeout=TIMEOUT_MS)
    page.context.close()


def test_hostile_html_is_shown_as_text_and_never_runs(browser: Browser, running_stack: Stack) -> None:
    page = open_demo(browser, running_stack)
    page.locator(".sb-launcher").click()
    expect(page.locator(".sb-status")).to_have_text("online", timeout=TIMEOUT_MS)
    hostile = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
    send(page, hostile)
    expect(page.locator(".sb-msg.customer").last).to_have_text(hostile, timeout=TIMEOUT_MS)
    expect(page.locator(".sb-msg.bot").last).to_be_visible(timeout=TIMEOUT_MS)
    page.reload()
    expect(page.locator(".sb-msg.customer").last).to_have_text(hostile, timeout=TIMEOUT_MS)
    assert page.evaluate("window.__pwned") is None
    assert page.locator("img[src='x']").count() == 0
    page.context.close()


def test_widget_works_on_a_phone_sized_viewport(browser: Browser, running_stack: Stack) -> None:
    page = open_demo(browser, running_stack, viewport={"width": 375, "height": 667})
    page.locator(".sb-launcher").click()
    panel = page.locator(".sb-panel")
    expect(panel).to_be_visible()
    box = panel.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375
    send(page, "hi")
    expect(page.locator(".sb-msg.bot").first).to_be_visible(timeout=TIMEOUT_MS)
    page.context.close()


def test_help_centre_answer_shows_its_citation_as_a_link(browser: Browser, running_stack: Stack) -> None:
    page = open_demo(browser, running_stack)
    page.locator(".sb-launcher").click()
    expect(page.locator(".sb-status")).to_have_text("online", timeout=TIMEOUT_MS)
    send(page, "do you sell gift cards?")
    link = page.locator(".sb-msg.bot a[href='https://help.northwind.example/gift-cards']")
    expect(link).to_be_visible(timeout=TIMEOUT_MS)
    assert link.get_attribute("rel") == "noopener noreferrer nofollow"
    helpful = page.locator(".sb-buttons button", has_text="Yes, that helped")
    expect(helpful).to_be_visible()
    helpful.click()
    expect(page.locator(".sb-msg.bot").last).to_contain_text("Glad that helped", timeout=TIMEOUT_MS)
    page.context.close()


def test_the_panel_greets_in_the_business_name_with_a_drawn_icon_and_a_tidy_header(browser: Browser,
                                                                                   running_stack: Stack) -> None:
    page = open_demo(browser, running_stack)
    launcher = page.locator(".sb-launcher")
    # An inline SVG, not an emoji a machine without an emoji font draws as a box.
    assert launcher.locator("svg").count() == 1 and launcher.inner_text().strip() == ""
    launcher.click()
    # The tenant set no title or greeting: the business's name and its assistant's greeting.
    expect(page.locator(".sb-header h2")).to_have_text("Northwind Goods", timeout=TIMEOUT_MS)
    expect(page.locator(".sb-greeting")).to_contain_text("Hi! I'm the Northwind Goods assistant", timeout=TIMEOUT_MS)
    # The focused message box shows no yellow outline bar.
    expect(page.locator(".sb-input")).to_be_focused()
    assert page.locator(".sb-input").evaluate("e => getComputedStyle(e).outlineStyle") == "none"
    # A long status does not wrap "New conversation" onto two lines.
    page.locator(".sb-status").evaluate("e => { e.textContent = 'waiting for a person: number 12 in the queue, about 25 minutes'; }")
    one_line = page.locator(".sb-restart").evaluate("e => parseFloat(getComputedStyle(e).lineHeight) || 20")
    box = page.locator(".sb-restart").bounding_box()
    assert box is not None and box["height"] < 2 * one_line, box
    page.context.close()
