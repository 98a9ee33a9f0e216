"""The production topology on the machine's real PostgreSQL, Redis and RabbitMQ, and its failure drills.

One ``ProductionStack`` (what ``make run-prod`` starts: two gateway and two Rasa replicas behind
round-robin proxies, Redis lock store and pub/sub, RabbitMQ event broker and the log consumer) serves
the whole module, on databases and a queue of its own. The drills run last, in file order: an action
server outage, a Rasa replica killed mid-conversation, every Rasa replica down and back, and a
PostgreSQL restart (the machine's own server: it is always started again).
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pika
import pytest
import redis
from sqlalchemy import select
from websockets.sync.client import connect

from gateway.db.models import ConversationEvent, Message, Sender
from gateway.db.session import create_db_engine, create_session_factory
from gateway.message_router import TROUBLE_TEXT
from gateway.production_stack import ProductionStack
from gateway.replica_router import ReplicaRouter
from tests.conftest import make_settings, postgres_database, service_up



MISSING = [name for name, port in (("PostgreSQL", 5432), ("Redis", 6379), ("RabbitMQ", 5672)) if not service_up(port)]
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    bool(MISSING), reason=f"{', '.join(MISSING)} NOT running on 127.0.0.1: the production topology is untested")]


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProductionStack]:
    workdir = tmp_path_factory.mktemp("prod")
    gateway_db, tracker_db = postgres_database("sb_prod_gw"), postgres_database("sb_prod_tracker")
    queue = f"sb_prod_events_{secrets.token_hex(4)}"
    settings = make_settings(workdir, database_url=next(gateway_db), rasa_tracker_url=next(tracker_db),
                             redis_url="redis://127.0.0.1:6379/0", broker_url="amqp://guest:guest@127.0.0.1:5672/%2F",
                             broker_queue=queue, admin_token=secrets.token_urlsafe(32), rate_ip_per_min=6000,
                             rate_ip_burst=600, rate_new_conversations_per_min=600)
    stack = ProductionStack(settings, log_dir=workdir / "logs")
    try:
        stack.start(progress=lambda line: print(f"[prod] {line}"))
        yield stack
    finally:
        stack.stop()
        connection = pika.BlockingConnection(pika.URLParameters(settings.broker_url or ""))
        connection.channel().queue_delete(queue)
        connection.close()
        next(gateway_db, None)
        next(tracker_db, None)


def say(base_url: str, key: str, text: str, conversation: dict[str, str] | None = None,
        timeout: float = 60) -> dict[str, Any]:
    body: dict[str, Any] = {"text": text}
    headers = {"X-Widget-Key": key}
    if conversation:
        body["conversation_id"] = conversation["conversation_id"]
        headers["X-Conversation-Token"] = conversation["conversation_token"]
    with httpx.Client(timeout=timeout) as client:  # a new connection: the proxy picks the next replica
        response = client.post(f"{base_url}/api/v1/messages", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def texts(turn: dict[str, Any]) -> list[str]:
    return [r.get("text") or "" for r in turn["replies"]]


def tracker_user_texts(stack: ProductionStack, conversation_id: str, replica: int) -> list[str]:
    s = stack.settings
    events = httpx.get(f"{stack.settings.rasa_urls[replica - 1]}/conversations/{conversation_id}/tracker",
                       params={"token": s.rasa_token.get_secret_value()}, timeout=30).json()["events"]
    return [e["text"] for e in events if e["event"] == "user"]


def logged(stack: ProductionStack, conversation_id: str) -> tuple[list[str], list[str]]:
    """Customer texts in the gateway log, and user texts the broker consumer logged, in order."""
    engine = create_db_engine(stack.settings.database_url)
    with create_session_factory(engine)() as session:
        customer = session.execute(select(Message.text).where(Message.conversation_id == conversation_id,
                                                              Message.sender == Sender.CUSTOMER)
                                   .order_by(Message.seq)).scalars().all()
        events = session.execute(select(ConversationEvent).where(ConversationEvent.conversation_id == conversation_id,
                                                                 ConversationEvent.event == "user")
                                 .order_by(ConversationEvent.timestamp, ConversationEvent.id)).scalars().all()
    engine.dispose()
    return list(customer), [e.body.get("text") for e in events]


def wait_until(condition: Any, timeout_s: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_turn_through_both_proxies_and_every_replica_is_healthy(prod: ProductionStack) -> None:
    s = prod.settings
    turn = say(s.gateway_url, s.demo_widget_key, "where is my order A1234?")
    assert any("A1234" in t and "has shipped" in t for t in texts(turn)), turn
    for port in prod.gateway_ports:
        health = httpx.get(f"http://{s.host}:{port}/healthz", timeout=10).json()
        assert health["checks"] == {"database": True, "rasa": True, "actions": True}
    # The conversation log is on PostgreSQL; the broker consumer logged Rasa's events of the turn.
    wait_until(lambda: logged(prod, turn["conversation_id"])[1] == ["where is my order A1234?"], what="broker log")
    # Replicas agree on the tenant's model: each loads what the registry's production file names.
    served = set()
    for url in s.rasa_urls:
        reply = httpx.post(f"{url}/webhooks/gateway/webhook", json={"sender": f"replica-check-{url[-4:]}",
                           "message": "hello", "metadata": {"tenant_id": s.demo_tenant}},
                           headers={"Authorization": f"Bearer {s.rasa_token.get_secret_value()}"}, timeout=120)
        assert reply.status_code == 200, reply.text
        served.add(reply.json()["model_id"])
    assert len(served) == 1 and served == {json.loads((s.model_registry_dir / s.demo_tenant / "production.json")
                                                      .read_text())["model_id"]}


def test_two_rasa_replicas_process_fifty_interleaved_messages_of_one_conversation_in_order(
        prod: ProductionStack) -> None:
    s = prod.settings
    conversation = say(s.gateway_url, s.demo_widget_key, "hello")["conversation_id"]
    sent = [f"message number {n}" for n in range(50)]
    failures: list[str] = []

    def send(n: int) -> None:
        # Straight to alternating replicas, through the gateway channel, without waiting for earlier turns.
        response = httpx.post(f"{prod.settings.rasa_urls[n % 2]}/webhooks/gateway/webhook",
                              json={"sender": conversation, "message": sent[n], "metadata": {"tenant_id": s.demo_tenant},
                                    "message_id": f"interleaved-{n}"},
                              headers={"Authorization": f"Bearer {s.rasa_token.get_secret_value()}"}, timeout=300)
        if response.status_code != 200 or not response.json()["messages"]:
            failures.append(f"{n}: {response.status_code} {response.text[:200]}")

    # The test takes the conversation's lock first, with a ticket like a replica's, so every turn queues
    # behind it whatever the machine's speed. Message n+1 is sent as soon as message n holds its ticket,
    # so "the order they arrived in" is well defined; then the test lets go and both replicas drain it.
    tickets = redis.Redis(host="127.0.0.1", db=1)
    counter = f"switchboard_lock:{conversation}:next"
    queue = f"switchboard_lock:{conversation}:tickets"
    gate = int(tickets.incr(counter))
    tickets.zadd(queue, {str(gate): time.time() + 30})  # the lowest number: served first, until released
    threads = []
    try:
        for n in range(50):
            thread = threading.Thread(target=send, args=(n,))
            thread.start()
            threads.append(thread)
            deadline = time.monotonic() + 60
            while int(tickets.get(counter) or 0) < gate + n + 1:
                assert time.monotonic() < deadline, f"message {n} never got a ticket"
                time.sleep(0.005)
        waiting = int(tickets.zcard(queue))
    finally:
        tickets.zrem(queue, str(gate))
    assert waiting == 51  # all fifty queued behind the test's ticket on two replicas
    for thread in threads:
        thread.join(300)
    assert not failures, failures
    for replica in (1, 2):
        assert tracker_user_texts(prod, conversation, replica) == ["hello", *sent]
    s_events = httpx.get(f"{prod.settings.rasa_urls[1]}/conversations/{conversation}/tracker",
                         params={"token": s.rasa_token.get_secret_value()}, timeout=30).json()["events"]
    # Turns never interleave: every user message is answered before the next one is read.
    kinds = [e["event"] for e in s_events if e["event"] in ("user", "bot")]
    assert "user" not in [kinds[i + 1] for i, k in enumerate(kinds[:-1]) if k == "user"]
    wait_until(lambda: logged(prod, conversation)[1] == ["hello", *sent], what="the broker log of all 51 turns")


def test_live_events_reach_a_socket_on_the_other_gateway_replica(prod: ProductionStack) -> None:
    s = prod.settings
    first, second = (f"ws://{s.host}:{port}/ws/widget?key={s.demo_widget_key}" for port in prod.gateway_ports)
    with connect(first) as tab_one:
        tab_one.send(json.dumps({"type": "hello"}))
        session = json.loads(tab_one.recv(timeout=30))
        with connect(second) as tab_two:
            tab_two.send(json.dumps({"type": "hello", "conversation_id": session["conversation_id"],
                                     "conversation_token": session["conversation_token"]}))
            assert json.loads(tab_two.recv(timeout=30))["resumed"] is True
            tab_one.send(json.dumps({"type": "message", "text": "where is my order B5521?", "client_id": "x1"}))
            seen: list[str] = []
            deadline = time.monotonic() + 60
            while not any("B5521" in t for t in seen[1:]) and time.monotonic() < deadline:
                frame = json.loads(tab_two.recv(timeout=60))
                if frame.get("type") == "message":
                    seen.append(frame["message"]["text"])
    assert seen[0] == "where is my order B5521?"  # the customer's own words, then the bot's answer
    assert any("B5521" in t for t in seen[1:]), seen


def test_drill_action_server_down_gives_a_fallback_reply_within_five_seconds(prod: ProductionStack) -> None:
    s = prod.settings
    actions = prod.process("actions")
    actions.stop()
    try:
        started = time.monotonic()
        turn = say(s.gateway_url, s.demo_widget_key, "where is my order A1234?", timeout=30)
        elapsed = time.monotonic() - started
        assert elapsed < 5.0, elapsed
        replies = texts(turn)
        assert replies and not any("has shipped" in t for t in replies)
        assert any("trouble" in t.lower() or "person" in t.lower() for t in replies), replies
        customer, _ = logged(prod, turn["conversation_id"])
        assert customer == ["where is my order A1234?"]
    finally:
        actions.start(prod.environment())
        wait_until(actions.ready, 120, "the action server to come back")
    turn = say(s.gateway_url, s.demo_widget_key, "where is my order A1234?")
    assert any("has shipped" in t for t in texts(turn)), turn


def test_drill_a_rasa_replica_killed_mid_conversation_loses_and_repeats_nothing(prod: ProductionStack) -> None:
    s = prod.settings
    conversation = say(s.gateway_url, s.demo_widget_key, "hi there")
    said = ["hi there"]
    for n in range(3):
        said.append(f"do you have a loyalty program {n}?")
        say(s.gateway_url, s.demo_widget_key, said[-1], conversation)
    # Kill the replica serving this conversation (the gateways route each conversation to one).
    serving = ReplicaRouter(s.rasa_urls).order(conversation["conversation_id"])[0]
    victim = s.rasa_urls.index(serving) + 1
    prod.process(f"rasa-{victim}").process.kill()  # type: ignore[union-attr]  # SIGKILL: no goodbye
    for n in range(6):
        said.append(f"is there a student discount {n}?")
        turn = say(s.gateway_url, s.demo_widget_key, said[-1], conversation)
        assert turn["replies"] and not any(TROUBLE_TEXT in t for t in texts(turn)), turn
    assert tracker_user_texts(prod, conversation["conversation_id"], 3 - victim) == said
    wait_until(lambda: logged(prod, conversation["conversation_id"]) == (said, said), what="gateway and broker logs")


def test_drill_rasa_down_then_back(prod: ProductionStack) -> None:
    s = prod.settings
    for name in ("rasa-1", "rasa-2"):
        prod.process(name).stop()
    turn = say(s.gateway_url, s.demo_widget_key, "hello?", timeout=30)
    assert texts(turn) == [TROUBLE_TEXT]
    assert any(b.get("payload") == "/human_handoff" for b in turn["replies"][0]["payload"]["buttons"])
    customer, _ = logged(prod, turn["conversation_id"])
    assert customer == ["hello?"]  # the message is kept
    rasa = prod.process("rasa-2")
    rasa.start(prod.environment())
    wait_until(rasa.ready, 300, "Rasa to come back")
    again = say(s.gateway_url, s.demo_widget_key, "where is my order C7302?", turn)
    assert any("C7302" in t for t in texts(again)), again


def _pg_ctl(action: str) -> None:
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    result = subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_drill_database_restart_fails_cleanly_and_recovers(prod: ProductionStack) -> None:
    if not Path("/etc/postgresql").is_dir() or shutil.which("pg_ctlcluster") is None:
        pytest.skip("pg_ctlcluster is NOT available: the database-restart drill is untested")
    s = prod.settings
    kept = say(s.gateway_url, s.demo_widget_key, "where is my order D4410?")
    _pg_ctl("stop")
    try:
        with httpx.Client(timeout=30) as client:
            down = client.post(f"{s.gateway_url}/api/v1/messages", json={"text": "are you there?"},
                               headers={"X-Widget-Key": s.demo_widget_key})
            health = client.get(f"{s.gateway_url}/healthz")
        assert down.status_code == 503 and down.json()["error"] == "database_unavailable", down.text
        assert health.status_code == 503 and health.json()["checks"]["database"] is False
    finally:
        _pg_ctl("start")
    # Back: the pools reconnect by themselves (a turn or two may still meet a stale connection).
    recovered: dict[str, Any] = {}

    def answered() -> bool:
        with httpx.Client(timeout=60) as client:
            response = client.post(f"{s.gateway_url}/api/v1/messages", json={"text": "where is my order A1234?"},
                                   headers={"X-Widget-Key": s.demo_widget_key})
        if response.status_code == 200 and any("has shipped" in t for t in texts(response.json())):
            recovered.update(response.json())
            return True
        return False

    wait_until(answered, 90, "the platform to recover after the database restart")
    # Nothing stored before the restart was lost.
    customer, _ = logged(prod, kept["conversation_id"])
    assert customer == ["where is my order D4410?"]
