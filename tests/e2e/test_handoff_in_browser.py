"""Handoff with two browsers: the customer's widget and an agent's console, against the running stack."""

from __future__ import annotations

import httpx
from playwright.sync_api import Browser, Page, expect

from gateway.db.session import create_db_engine, create_session_factory
from gateway.stack import Stack
from gateway.stores.agent_store import AgentStore

TIMEOUT_MS = 60_000
PASSWORD = "a long agent password"


def send(page: Page, text: str) -> None:
    page.locator(".sb-input").fill(text)
    page.locator(".sb-input").press("Enter")


def rasa_user_turns(stack: Stack, conversation_id: str) -> int:
    """How many customer messages Rasa's tracker holds for the conversation."""
    response = httpx.get(f"{stack.settings.rasa_url}/conversations/{conversation_id}/tracker",
                         params={"token": stack.settings.rasa_token.get_secret_value()}, timeout=30)
    response.raise_for_status()
    return sum(1 for event in response.json()["events"] if event.get("event") == "user")


def test_customer_agent_handoff_and_back_to_the_bot(browser: Browser, running_stack: Stack) -> None:
    engine = create_db_engine(running_stack.settings.database_url)
    AgentStore(create_session_factory(engine)).create(
        "northwind", "sam@northwind.test", "Sam", PASSWORD, role="agent", teams=["general", "billing"])
    engine.dispose()

    # The agent logs in and steps away, so the conversation waits in the queue to be claimed by hand.
    agent = browser.new_context().new_page()
    agent.goto(f"{running_stack.settings.gateway_url}/console")
    agent.locator("#login-tenant").fill("northwind")
    agent.locator("#login-email").fill("sam@northwind.test")
    agent.locator("#login-password").fill(PASSWORD)
    agent.locator("#login-form button[type=submit]").click()
    expect(agent.locator("#agent-name")).to_contain_text("Sam", timeout=TIMEOUT_MS)
    with agent.expect_response(lambda r: r.url.endswith("/me/status")):
        agent.locator("#status-select").select_option("away")

    customer = browser.new_context().new_page()
    customer.goto(f"{running_stack.settings.gateway_url}/demo")
    customer.locator(".sb-launcher").click()
    expect(customer.locator(".sb-status")).to_have_text("online", timeout=TIMEOUT_MS)
    send(customer, "I want to talk to a person")
    expect(customer.locator(".sb-msg.system").last).to_contain_text("in the queue", timeout=TIMEOUT_MS)
    expect(customer.locator(".sb-status")).to_contain_text("#1 in queue")
    # One message says what happens next (the bot's own "I'll bring someone in" is not repeated).
    expect(customer.locator(".sb-msg.bot, .sb-msg.system")).to_have_count(1)
    conversation_id = customer.evaluate(
        f"JSON.parse(localStorage.getItem('switchboard:{running_stack.settings.demo_widget_key}')).conversation_id")

    # The waiting conversation appears live in the console; the agent claims and replies.
    waiting = agent.locator("#waiting li button", has_text=conversation_id[:8])
    expect(waiting).to_have_count(1, timeout=TIMEOUT_MS)
    expect(waiting).to_contain_text("customer request")
    waiting.click()
    expect(agent.locator("#escalation")).to_contain_text("customer request", timeout=TIMEOUT_MS)
    agent.locator("#claim").click()
    expect(agent.locator("#thread-state")).to_have_text("assigned", timeout=TIMEOUT_MS)
    expect(customer.locator(".sb-msg.system").last).to_contain_text("Sam from our team joined", timeout=TIMEOUT_MS)
    agent.locator("#reply-text").fill("Hi, this is Sam. How can I help?")
    agent.locator("#reply-text").press("Enter")
    agent_message = customer.locator(".sb-msg.agent")
    expect(agent_message).to_contain_text("Hi, this is Sam. How can I help?", timeout=TIMEOUT_MS)
    expect(agent_message).to_contain_text("Sam · support team")
    expect(customer.locator(".sb-status")).to_have_text("with Sam")

    # The customer answers: the agent sees it live and Rasa receives nothing.
    turns_before = rasa_user_turns(running_stack, conversation_id)
    send(customer, "My parcel never arrived")
    expect(agent.locator("#transcript li.customer").last).to_contain_text("My parcel never arrived", timeout=TIMEOUT_MS)
    assert rasa_user_turns(running_stack, conversation_id) == turns_before
    expect(customer.locator(".sb-msg.bot", has_text="parcel")).to_have_count(0)

    # Resolve: the bot is back, with a message, and answers the next question.
    assert agent.locator("#resolve-label").input_value() == ""  # no label is preselected: the agent chooses
    agent.locator("#resolve-label").select_option("shipping_info")
    agent.locator("#resolve-form button[type=submit]").click()
    expect(customer.locator(".sb-msg.system").last).to_contain_text("resolved", timeout=TIMEOUT_MS)
    expect(customer.locator(".sb-msg.bot").last).to_contain_text("Northwind Goods assistant again", timeout=TIMEOUT_MS)
    expect(customer.locator(".sb-status")).to_have_text("online")
    send(customer, "where is my order A1234?")
    expect(customer.locator(".sb-msg.bot").last).to_contain_text("has shipped", timeout=TIMEOUT_MS)
    assert rasa_user_turns(running_stack, conversation_id) > turns_before
    agent.context.close()
    customer.context.close()
