"""The handoff state machine through the public APIs: bot -> queued -> assigned -> human -> resolved -> bot."""

from __future__ import annotations

from fastapi.testclient import TestClient

from gateway.stores.agent_store import AgentRecord
from tests.gateway.conftest import WIDGET_KEY, ScriptedDialogueEngine
from tests.gateway.handoff.conftest import HANDOFF_TEXT, Customer, bearer, login


def queue(client: TestClient, token: str) -> dict:
    response = client.get("/api/v1/agent/queue", headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


def test_full_cycle_keeps_the_bot_out_while_a_person_owns_the_conversation(
    client: TestClient, handoff_engine: ScriptedDialogueEngine, alice: AgentRecord
) -> None:
    customer = Customer(client)
    customer.say("hello")
    turn = customer.say(HANDOFF_TEXT)
    texts = [r["text"] for r in turn["replies"]]
    # One message, the gateway's: nobody online yet, so queued with a position (the bot's request is not shown).
    assert len(texts) == 1 and "connecting you with a person" in texts[0] and "You're number 1 in the queue" in texts[0]

    token = login(client, "alice@acme.test")  # logging in makes Alice online: she is assigned at once
    waiting = queue(client, token)
    assert waiting["waiting"] == [] and [h["agent_id"] for h in waiting["active"]] == [alice.id]
    handoff = waiting["active"][0]
    assert handoff["trigger"] == "customer_request" and handoff["state"] == "assigned"

    calls_before = len(handoff_engine.calls)
    customer.say("my parcel is lost")
    assert len(handoff_engine.calls) == calls_before  # the bot never saw it

    reply = client.post(f"/api/v1/agent/conversations/{customer.conversation_id}/messages",
                        json={"text": "Hi, I'm looking into it."}, headers=bearer(token))
    assert reply.status_code == 200, reply.text
    packet = client.get(f"/api/v1/agent/conversations/{customer.conversation_id}", headers=bearer(token)).json()
    assert packet["handoff"]["state"] == "human"
    assert packet["escalation"]["trigger"] == "customer_request"
    assert [t["intent"] for t in packet["intent_trail"]] == ["echo", "human_handoff"]
    assert [(t["from"], t["to"], t["reason"]) for t in packet["transitions"]] == [
        ("bot", "queued", "customer_request"), ("queued", "assigned", "auto_assigned"),
        ("assigned", "human", "agent_replied")]
    assert packet["transitions"][1]["actor"] == "system" and packet["transitions"][2]["actor"] == f"agent:{alice.id}"

    resolved = client.post(f"/api/v1/agent/handoffs/{handoff['id']}/resolve",
                           json={"label": "shipping_info", "note": "parcel re-sent"}, headers=bearer(token))
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["resolution_label"] == "shipping_info"
    assert (customer.conversation_id, "EXTERNAL_handoff_resolved") in handoff_engine.triggered

    after = customer.say("thanks, one more thing")
    assert after["replies"][0]["text"] == "echo: thanks, one more thing"  # the bot answers again
    senders = [(m["sender"], m["text"]) for m in customer.history()]
    assert ("agent", "Hi, I'm looking into it.") in senders
    assert ("customer", "my parcel is lost") in senders
    assert ("bot", "bot again") in senders


def test_supervisor_takeover_silences_the_bot(
    client: TestClient, handoff_engine: ScriptedDialogueEngine, agent_store, alice: AgentRecord
) -> None:
    supervisor = agent_store.create("acme", "sue@acme.test", "Sue", "correct horse battery staple", role="supervisor")
    customer = Customer(client)
    customer.say("hello")
    token = login(client, "sue@acme.test")
    taken = client.post(f"/api/v1/agent/conversations/{customer.conversation_id}/takeover", headers=bearer(token))
    assert taken.status_code == 200, taken.text
    assert taken.json()["agent_id"] == supervisor.id
    calls = len(handoff_engine.calls)
    turn = customer.say("are you there?")
    assert turn["replies"] == [] and len(handoff_engine.calls) == calls


def test_agents_cannot_reply_to_conversations_they_do_not_own(
    client: TestClient, handoff_engine: ScriptedDialogueEngine, alice: AgentRecord, bob: AgentRecord
) -> None:
    customer = Customer(client)
    customer.say(HANDOFF_TEXT)
    alice_token = login(client, "alice@acme.test")
    bob_token = login(client, "bob@acme.test")
    handoff = queue(client, alice_token)["active"][0]
    owner_token, other_token = (alice_token, bob_token) if handoff["agent_id"] == alice.id else (bob_token, alice_token)
    refused = client.post(f"/api/v1/agent/conversations/{customer.conversation_id}/messages",
                          json={"text": "let me"}, headers=bearer(other_token))
    assert refused.status_code == 403 and refused.json()["error"] == "not_owner"
    resolve = client.post(f"/api/v1/agent/handoffs/{handoff['id']}/resolve", json={"label": "other"},
                          headers=bearer(other_token))
    assert resolve.status_code == 403
    bad_label = client.post(f"/api/v1/agent/handoffs/{handoff['id']}/resolve", json={"label": "nonsense"},
                            headers=bearer(owner_token))
    assert bad_label.status_code == 422 and bad_label.json()["error"] == "unknown_label"
    bot_owned = Customer(client)
    bot_owned.say("hello")
    nothing = client.post(f"/api/v1/agent/conversations/{bot_owned.conversation_id}/messages",
                          json={"text": "hi"}, headers=bearer(owner_token))
    assert nothing.status_code == 409 and nothing.json()["error"] == "not_in_handoff"


def test_transfer_to_an_agent_and_to_a_team(
    client: TestClient, handoff_engine: ScriptedDialogueEngine, alice: AgentRecord, bob: AgentRecord, agent_store
) -> None:
    agent_store.set_status("acme", bob.id, "away")
    customer = Customer(client)
    customer.say(HANDOFF_TEXT)
    alice_token = login(client, "alice@acme.test")
    handoff = queue(client, alice_token)["active"][0]
    assert handoff["agent_id"] == alice.id
    moved = client.post(f"/api/v1/agent/handoffs/{handoff['id']}/transfer", json={"to_agent": bob.id},
                        headers=bearer(alice_token))
    assert moved.status_code == 200 and moved.json()["agent_id"] == bob.id
    bob_token = login(client, "bob@acme.test")
    to_team = client.post(f"/api/v1/agent/handoffs/{handoff['id']}/transfer", json={"to_team": "billing"},
                          headers=bearer(bob_token))
    assert to_team.status_code == 200, to_team.text
    # Bob is the billing team's only online agent, and he just gave it away; it waits for billing again
    # or goes back to him by auto-assignment (he has capacity): either way the team is billing now.
    packet = client.get(f"/api/v1/agent/conversations/{customer.conversation_id}", headers=bearer(bob_token)).json()
    assert packet["handoff"]["team"] == "billing"
    reasons = [t["reason"] for t in packet["transitions"]]
    assert "transferred" in reasons and "transferred_to_team" in reasons
    unknown = client.post(f"/api/v1/agent/handoffs/{handoff['id']}/transfer", json={"to_team": "nope"},
                          headers=bearer(bob_token))
    assert unknown.status_code in (403, 422)


def test_widget_gets_agent_messages_typing_and_state_pushed(
    client: TestClient, handoff_engine: ScriptedDialogueEngine, alice: AgentRecord
) -> None:
    with client.websocket_connect(f"/ws/widget?key={WIDGET_KEY}") as ws:
        ws.send_json({"type": "hello", "customer": {"name": "Dana", "plan": "premium"}})
        session = ws.receive_json()
        ws.send_json({"type": "message", "text": HANDOFF_TEXT, "client_id": "c1"})
        frames = []
        while not any(f.get("type") == "message" and "queue" in (f["message"].get("text") or "") for f in frames):
            frames.append(ws.receive_json())
        conversation_id = session["conversation_id"]
        token = login(client, "alice@acme.test")
        joined = []
        while not any(f.get("type") == "handoff" and f.get("state") == "assigned" for f in joined):
            joined.append(ws.receive_json())
        assert next(f for f in joined if f.get("state") == "assigned")["agent"] == "Alice"
        client.post(f"/api/v1/agent/conversations/{conversation_id}/typing", json={"on": True}, headers=bearer(token))
        client.post(f"/api/v1/agent/conversations/{conversation_id}/messages", json={"text": "Hello Dana"},
                    headers=bearer(token))
        pushed = []
        while not any(f.get("type") == "message" and f["message"]["sender"] == "agent" for f in pushed):
            pushed.append(ws.receive_json())
        assert {"type": "typing", "on": True, "who": "agent", "name": "Alice"} in pushed
        agent_message = next(f for f in pushed if f.get("type") == "message" and f["message"]["sender"] == "agent")
        assert agent_message["message"]["text"] == "Hello Dana"
        assert agent_message["message"]["payload"]["agent"]["name"] == "Alice"
    packet = client.get(f"/api/v1/agent/conversations/{conversation_id}", headers=bearer(token)).json()
    assert packet["conversation"]["customer"] == {"name": "Dana", "plan": "premium"}
    assert packet["handoff"]["priority"] >= 2  # premium customers go first


def test_agent_console_socket_sees_customer_messages(
    client: TestClient, handoff_engine: ScriptedDialogueEngine, alice: AgentRecord
) -> None:
    token = login(client, "alice@acme.test")
    customer = Customer(client)
    customer.say(HANDOFF_TEXT)
    with client.websocket_connect("/ws/agent", headers=bearer(token)) as ws:
        assert ws.receive_json()["type"] == "ready"
        customer.say("it's order A1234")
        events = []
        while not any(e.get("type") == "message" and e["message"]["sender"] == "customer" for e in events):
            events.append(ws.receive_json())
        message = next(e for e in events if e.get("type") == "message")
        assert message["conversation_id"] == customer.conversation_id and message["message"]["text"] == "it's order A1234"


def test_agent_socket_refuses_foreign_origins_and_anonymous_clients(client: TestClient, alice: AgentRecord) -> None:
    with client.websocket_connect("/ws/agent") as ws:
        assert ws.receive_json()["error"] == "not_logged_in"
    response = client.post("/api/v1/agent/login",
                           json={"tenant": "acme", "email": "alice@acme.test", "password": "correct horse battery staple"})
    assert response.status_code == 200
    with client.websocket_connect("/ws/agent", headers={"Origin": "https://evil.example"}) as ws:
        assert ws.receive_json()["error"] == "forbidden_origin"


def test_bot_replies_of_a_turn_overtaken_by_a_takeover_are_logged_but_never_shown(
    client: TestClient, engine: ScriptedDialogueEngine, agent_store
) -> None:
    supervisor = agent_store.create("acme", "sue@acme.test", "Sue", "correct horse battery staple", role="supervisor")
    services = client.app.state.services  # type: ignore[attr-defined]
    customer = Customer(client)
    customer.say("hello")
    original = engine.send

    async def send_then_take_over(conversation_id, text, metadata, message_id=None):  # type: ignore[no-untyped-def]
        turn = await original(conversation_id, text, metadata)
        await services.handoff.take_over(supervisor, conversation_id)  # a person took over while Rasa worked
        return turn

    engine.send = send_then_take_over  # type: ignore[method-assign]
    turn = customer.say("slow question")
    assert [r["sender"] for r in turn["replies"]] == []
    logged = services.conversations.history("acme", customer.conversation_id, include_suppressed=True)
    assert any(m.text == "echo: slow question" and (m.payload or {}).get("suppressed") for m in logged)
    assert "echo: slow question" not in [m["text"] for m in customer.history()]
    assert any("Sue from our team joined" in (m["text"] or "") for m in customer.history())


def test_a_resent_request_for_a_person_shows_the_same_one_message(
    client: TestClient, handoff_engine: ScriptedDialogueEngine
) -> None:
    customer = Customer(client)
    customer.say("hello")
    body = {"text": HANDOFF_TEXT, "conversation_id": customer.conversation_id, "client_id": "ask-1"}
    headers = {"X-Widget-Key": WIDGET_KEY, "X-Conversation-Token": customer.token or ""}
    first = client.post("/api/v1/messages", json=body, headers=headers).json()
    again = client.post("/api/v1/messages", json=body, headers=headers).json()
    assert again["duplicate"] is True
    # The gateway's handoff message belongs to the customer's message: the replay shows it, once.
    assert [r["text"] for r in again["replies"]] == [r["text"] for r in first["replies"]]
    assert len(first["replies"]) == 1 and "connecting you with a person" in first["replies"][0]["text"]
    assert sum("connecting you" in (m["text"] or "") for m in customer.history()) == 1
