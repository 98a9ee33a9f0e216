"""Agents in Slack: escalations posted to a channel, claim, thread replies to the customer, resolve, CSAT."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gateway.db.models import Feedback, Handoff, HandoffTransition
from tests.connectors.slack.conftest import ESCALATION_CHANNEL, dm, new_ts, post_action, post_event
from tests.fakes.slack_api import FakeSlackApi
from tests.gateway.conftest import WIDGET_KEY, ScriptedDialogueEngine
from tests.gateway.handoff.conftest import HANDOFF_TEXT

AGENT = "UAGENT01"


def _handoff_script(engine: ScriptedDialogueEngine) -> None:
    engine.replies[HANDOFF_TEXT] = [{"custom": {"handoff": {"reason": "customer_request", "intent": "human_handoff"}}}]


def _receive_until(socket: Any, predicate: Any, limit: int = 40) -> dict[str, Any]:
    for _ in range(limit):
        frame = socket.receive_json()
        if predicate(frame):
            return frame
    raise AssertionError("the expected frame never came")


def _is_message(sender: str, text: str | None = None) -> Any:
    return lambda f: (f.get("type") == "message" and f["message"]["sender"] == sender
                      and (text is None or text in (f["message"]["text"] or "")))


def test_an_agent_in_slack_claims_replies_and_resolves_a_widget_conversation(
        slack_client: TestClient, fake_slack: FakeSlackApi, engine: ScriptedDialogueEngine,
        sessions: sessionmaker[Session]) -> None:
    _handoff_script(engine)
    fake_slack.users[AGENT] = "Sam Rivera"
    with slack_client.websocket_connect(f"/ws/widget?key={WIDGET_KEY}") as widget:
        widget.send_json({"type": "hello", "customer": {"name": "Dana Customer"}})
        hello = widget.receive_json()
        widget.send_json({"type": "message", "text": "my blender arrived broken", "client_id": "c1"})
        _receive_until(widget, _is_message("bot", "echo"))
        widget.send_json({"type": "message", "text": HANDOFF_TEXT, "client_id": "c2"})
        _receive_until(widget, lambda f: f.get("type") == "ack" and f["client_id"] == "c2")

        # The escalation reaches the channel with the customer's words and a Claim button.
        announcement = fake_slack.wait_for("chat.postMessage", channel=ESCALATION_CHANNEL)[0]
        claim = next(b for b in announcement.args["blocks"] if b["type"] == "actions")["elements"][0]
        assert claim["action_id"] == "sb_claim"
        assert "Dana Customer" in announcement.args["text"]
        assert any("my blender arrived broken" in (b.get("text") or {}).get("text", "")
                   for b in announcement.args["blocks"])
        handoff_id = claim["value"]

        assert post_action(slack_client, AGENT, "sb_claim", handoff_id, ESCALATION_CHANNEL).status_code == 200
        joined = _receive_until(widget, _is_message("system", "joined"))
        assert joined["message"]["text"] == "Sam Rivera from our team joined the conversation."
        update = fake_slack.wait_for("chat.update", channel=ESCALATION_CHANNEL)[-1]
        assert "Claimed by Sam Rivera" in update.args["text"]

        # A reply in the announcement's thread reaches the widget, labelled as a person.
        escalation_ts = _announcement_ts(sessions, handoff_id)
        post_event(slack_client, {"type": "message", "channel": ESCALATION_CHANNEL, "channel_type": "channel",
                                  "user": AGENT, "ts": new_ts(), "thread_ts": escalation_ts,
                                  "text": "Hi Dana, I'm sorry about the blender. I'll send a new one."})
        reply = _receive_until(widget, _is_message("agent", "new one"))
        assert reply["message"]["payload"]["agent"]["via"] == "slack"

        # The customer's answer is mirrored into the thread; the bot stays silent.
        widget.send_json({"type": "message", "text": "thank you!", "client_id": "c3"})
        _receive_until(widget, lambda f: f.get("type") == "ack" and f["client_id"] == "c3")
        fake_slack.wait_for("chat.postMessage", channel=ESCALATION_CHANNEL, thread_ts=escalation_ts,
                            text="*Customer:* thank you!")
        assert [call[1] for call in engine.calls] == ["my blender arrived broken", HANDOFF_TEXT]

        # Resolving from Slack hands the conversation back to the bot and asks for a rating.
        resolve = next(b for b in update.args["blocks"] if b["type"] == "actions")["elements"][0]
        assert resolve["type"] == "static_select" and resolve["action_id"] == "sb_resolve"
        post_action(slack_client, AGENT, "sb_resolve", f"{handoff_id}:complaint", ESCALATION_CHANNEL)
        resolved = _receive_until(widget, _is_message("system", "resolved"))
        assert resolved["message"]["payload"]["csat"] == {"handoff_id": handoff_id}
        widget.send_json({"type": "csat", "handoff_id": handoff_id, "score": 5})
        saved = _receive_until(widget, lambda f: f.get("type") == "feedback_saved")
        assert saved["duplicate"] is False

    with sessions() as session:
        handoff = session.get(Handoff, handoff_id)
        assert handoff is not None and handoff.state == "resolved" and handoff.resolution_label == "complaint"
        moves = [t.to_state for t in session.execute(
            select(HandoffTransition).where(HandoffTransition.handoff_id == handoff_id)
            .order_by(HandoffTransition.id)).scalars()]
        assert moves == ["queued", "assigned", "human", "resolved"]
        feedback = session.execute(select(Feedback)).scalar_one()
        assert (feedback.kind, feedback.score, feedback.conversation_id) == ("csat", 5, hello["conversation_id"])


def _announcement_ts(sessions: sessionmaker[Session], handoff_id: str) -> str:
    from gateway.db.models import SlackEscalation

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with sessions() as session:
            row = session.get(SlackEscalation, handoff_id)
            if row is not None and row.ts:
                return row.ts
        time.sleep(0.05)
    raise AssertionError("the escalation was never announced")


def test_a_slack_customer_gets_the_console_agents_replies_in_slack(
        slack_client: TestClient, fake_slack: FakeSlackApi, engine: ScriptedDialogueEngine,
        sessions: sessionmaker[Session]) -> None:
    from gateway.stores.agent_store import AgentStore
    from tests.gateway.handoff.conftest import PASSWORD, bearer, login

    _handoff_script(engine)
    alice = AgentStore(sessions).create("acme", "alice@acme.test", "Alice", PASSWORD, teams=["general"])
    token = login(slack_client, "alice@acme.test")
    post_event(slack_client, dm("U5", HANDOFF_TEXT, channel="D0000005"))
    fake_slack.wait_for("chat.postMessage", channel=ESCALATION_CHANNEL)
    with sessions() as session:
        handoff = session.execute(select(Handoff)).scalar_one()
    claimed = slack_client.post(f"/api/v1/agent/handoffs/{handoff.id}/claim", headers=bearer(token))
    if claimed.status_code == 409:  # Alice is online: automatic assignment may have given it to her first
        with sessions() as session:
            assert session.get(Handoff, handoff.id).agent_id == alice.id  # type: ignore[union-attr]
    else:
        assert claimed.status_code == 200, claimed.text
    sent = slack_client.post(f"/api/v1/agent/conversations/{handoff.conversation_id}/messages",
                             json={"text": "Hello from the console"}, headers=bearer(token))
    assert sent.status_code in (200, 201), sent.text
    posted = fake_slack.wait_for("chat.postMessage", channel="D0000005", text="Alice · support team: Hello from the console")
    assert posted[0].args["blocks"][0]["type"] == "context"  # the sender is shown as a person
    # ... and it is mirrored into the escalation thread, marked as written in the console.
    fake_slack.wait_for("chat.postMessage", channel=ESCALATION_CHANNEL, text="*Alice (console):* Hello from the console")
    time.sleep(0.3)
    texts = [c.args["text"] for c in fake_slack.of("chat.postMessage") if c.args["channel"] == "D0000005"]
    assert len(texts) == len(set(texts))  # nothing posted twice

    # Resolved in the console: the Slack customer is asked for a rating, with buttons.
    resolved = slack_client.post(f"/api/v1/agent/handoffs/{handoff.id}/resolve", json={"label": "other"},
                                 headers=bearer(token))
    assert resolved.status_code == 200, resolved.text
    ask = fake_slack.wait_for("chat.postMessage", channel="D0000005",
                              text="Our team marked this conversation as resolved. Thanks for your patience!")[0]
    stars = next(b for b in ask.args["blocks"] if b.get("block_id") == "csat")["elements"]
    assert [s["value"] for s in stars] == [f"{handoff.id}:{n}" for n in range(1, 6)]
    post_action(slack_client, "U5", "sb_csat:2", f"{handoff.id}:2", channel="D0000005")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with sessions() as session:
            rating = session.execute(select(Feedback)).scalar_one_or_none()
        if rating is not None:
            break
        time.sleep(0.05)
    assert rating is not None and (rating.kind, rating.score, rating.channel) == ("csat", 2, "slack")


def test_a_second_claim_from_slack_is_refused_politely(slack_client: TestClient, fake_slack: FakeSlackApi,
                                                       engine: ScriptedDialogueEngine) -> None:
    _handoff_script(engine)
    post_event(slack_client, dm("U5", HANDOFF_TEXT, channel="D0000005"))
    announcement = fake_slack.wait_for("chat.postMessage", channel=ESCALATION_CHANNEL)[0]
    handoff_id = next(b for b in announcement.args["blocks"] if b["type"] == "actions")["elements"][0]["value"]
    post_action(slack_client, "UAGENT01", "sb_claim", handoff_id, ESCALATION_CHANNEL)
    fake_slack.wait_for("chat.update", channel=ESCALATION_CHANNEL)
    post_action(slack_client, "UAGENT02", "sb_claim", handoff_id, ESCALATION_CHANNEL)
    refusal = fake_slack.wait_for("chat.postEphemeral", user="UAGENT02")[0]
    assert refusal.args["text"].startswith("Could not claim it")
