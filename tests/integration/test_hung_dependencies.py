"""A hung dependency (SIGSTOP) costs a customer at most the Rasa timeout (10 s), then an honest answer."""

from __future__ import annotations

import os
import signal
import time

import httpx

from gateway.stack import Stack


def _ask(stack: Stack, text: str) -> tuple[float, dict]:
    s = stack.settings
    with httpx.Client(base_url=s.gateway_url, timeout=60, headers={"X-Widget-Key": s.demo_widget_key}) as api:
        started = time.monotonic()
        response = api.post("/api/v1/messages", json={"text": text})
        return time.monotonic() - started, response.json()


def test_a_stopped_action_server_or_rasa_gets_the_customer_an_answer_within_the_timeout(running_stack: Stack) -> None:
    limit = running_stack.settings.rasa_timeout_s
    for name, question in (("actions", "how long do refunds take?"), ("rasa", "hello")):
        group = running_stack.process(name).process.pid
        os.killpg(group, signal.SIGSTOP)
        try:
            waited, turn = _ask(running_stack, question)
        finally:
            os.killpg(group, signal.SIGCONT)
        assert waited < limit + 3, f"{name} stopped: the customer waited {waited:.1f} s"
        replies = turn["replies"]
        assert replies and replies[0]["payload"]["error"] == "dialogue_unavailable", replies
        assert any(b["payload"] == "/human_handoff" for b in replies[0]["payload"]["buttons"])
    # Both are back: the next customer gets the bot again.
    deadline = time.monotonic() + 60
    while True:
        _, turn = _ask(running_stack, "hello")
        if turn["replies"] and not (turn["replies"][0].get("payload") or {}).get("error"):
            break
        assert time.monotonic() < deadline, turn
        time.sleep(2)
