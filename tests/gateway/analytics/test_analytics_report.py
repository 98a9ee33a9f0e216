"""Analytics on a hand-built month: every figure checked against a hand computation."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from gateway.analytics.report import AnalyticsReport
from gateway.app import create_app
from gateway.db.models import Conversation, Feedback, Handoff, Message, Sender
from gateway.settings import Settings
from gateway.stores.tenant_store import TenantStore
from tests.gateway.conftest import ScriptedDialogueEngine
from tests.conftest import tenant_admin_of

ADMIN_TOKEN = "admin-" + "a" * 40


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=timezone.utc)


class Month:
    """Writes conversations with chosen timestamps."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self.seq: dict[str, int] = {}

    def conversation(self, cid: str, when: datetime, customer_id: str | None = None) -> str:
        with self.sessions.begin() as session:
            session.add(Conversation(id=cid, tenant_id="acme", channel="web", created_at=when, updated_at=when,
                                     customer={"id": customer_id} if customer_id else None))
        return cid

    def say(self, cid: str, sender: Sender, when: datetime, *, intent: str | None = None, fallback: bool = False,
            kb: dict | None = None) -> int:
        self.seq[cid] = self.seq.get(cid, 0) + 1
        nlu = {"intent": {"name": intent, "confidence": 0.9}, "fallback": fallback} if intent else None
        payload = {"custom": {"kb": kb}} if kb is not None else None
        with self.sessions.begin() as session:
            message = Message(conversation_id=cid, tenant_id="acme", channel="web", seq=self.seq[cid], sender=sender,
                              text="…", nlu=nlu, payload=payload, created_at=when)
            session.add(message)
            session.flush()
            return message.id

    def handoff(self, cid: str, trigger: str, queued: datetime, first_response_s: int, handle_s: int,
                csat: int | None = None) -> None:
        assigned = queued + timedelta(minutes=2)
        with self.sessions.begin() as session:
            handoff = Handoff(tenant_id="acme", conversation_id=cid, state="resolved", trigger=trigger, created_at=queued,
                              queued_at=queued, assigned_at=assigned,
                              first_response_at=queued + timedelta(seconds=first_response_s),
                              resolved_at=assigned + timedelta(seconds=handle_s), resolution_label="other")
            session.add(handoff)
            session.flush()
            if csat:
                session.add(Feedback(tenant_id="acme", conversation_id=cid, kind="csat", target=handoff.id,
                                     score=csat, channel="web"))

    def vote(self, cid: str, message_id: int, score: int) -> None:
        with self.sessions.begin() as session:
            session.add(Feedback(tenant_id="acme", conversation_id=cid, kind="helpful", target=str(message_id),
                                 score=score, channel="web"))


@pytest.fixture
def month(sessions: sessionmaker[Session]) -> Month:
    TenantStore(sessions).ensure_tenant("acme", "Acme")
    m = Month(sessions)
    c1 = m.conversation("c1", at(2, 10), "cust-1")  # contained, but the customer is back within 24 h
    m.say(c1, Sender.CUSTOMER, at(2, 10), intent="order_status")
    m.say(c1, Sender.BOT, at(2, 10))
    c2 = m.conversation("c2", at(2, 20), "cust-1")  # a complaint handed to a person
    m.say(c2, Sender.CUSTOMER, at(2, 20), intent="complaint")
    m.handoff(c2, "complaint", at(2, 20, 1), first_response_s=240, handle_s=720, csat=5)
    c3 = m.conversation("c3", at(3, 9))  # anonymous: a misunderstanding, then a helpful answer
    m.say(c3, Sender.CUSTOMER, at(3, 9), intent="nlu_fallback", fallback=True)
    m.say(c3, Sender.CUSTOMER, at(3, 9, 1), intent="ask_question")
    answer = m.say(c3, Sender.BOT, at(3, 9, 1), kb={"answerable": True, "citations": [{"title": "Returns"}]})
    m.vote(c3, answer, 1)
    c4 = m.conversation("c4", at(4, 15), "cust-2")  # no answer in the knowledge base → a person
    m.say(c4, Sender.CUSTOMER, at(4, 15), intent="ask_question")
    m.say(c4, Sender.BOT, at(4, 15), kb={"answerable": False, "citations": []})
    m.say(c4, Sender.CUSTOMER, at(4, 15, 1), intent="affirm")
    m.handoff(c4, "kb_no_answer", at(4, 15, 2), first_response_s=60, handle_s=300, csat=2)
    old = m.conversation("c0", at(31, 12, month=10))  # October: not in the report
    m.say(old, Sender.CUSTOMER, at(31, 12, month=10), intent="greet")
    m.conversation("c5", at(5, 8))  # opened, never written in: not a conversation
    return m


def test_every_figure_matches_the_hand_computation(month: Month, sessions: sessionmaker[Session]) -> None:
    report = AnalyticsReport(sessions).build("acme", at(1, 0), at(1, 0, month=12))
    assert report["conversations"] == 4
    assert report["containment"] == {"contained": 2, "rate": 0.5}
    escalation = report["escalation"]
    assert (escalation["handoffs"], escalation["rate"]) == (2, 0.5)
    assert escalation["by_trigger"] == {"complaint": {"handoffs": 1, "rate": 0.25},
                                        "kb_no_answer": {"handoffs": 1, "rate": 0.25}}
    assert escalation["by_intent"] == {"complaint": {"escalated": 1, "conversations": 1, "rate": 1.0},
                                       "affirm": {"escalated": 1, "conversations": 1, "rate": 1.0}}
    assert report["fallback"] == {"messages": 6, "fallbacks": 1, "rate": 0.1667}
    assert report["knowledge_base"] == {"attempts": 2, "answered": 1, "answer_rate": 0.5, "votes": 1,
                                        "helpful_rate": 1.0}
    assert report["csat"] == {"ratings": 2, "mean": 3.5, "satisfied_rate": 0.5,
                              "distribution": {"1": 0, "2": 1, "3": 0, "4": 0, "5": 1}}
    assert report["human"] == {"first_response": {"median_s": 150.0, "p90_s": 240.0, "count": 2},
                               "handle_time": {"median_s": 510.0, "p90_s": 720.0, "count": 2}}
    assert report["false_containment"] == {"conversations": 1, "rate": 0.5}
    assert report["daily"]["2026-11-02"] == {"conversations": 2, "contained": 1, "escalated": 1}
    assert len(report["daily"]) == 30


def test_the_api_serves_the_same_numbers_to_admins_only(month: Month, settings: Settings) -> None:
    admin_settings = settings.model_copy(update={"admin_token": __import__("pydantic").SecretStr(ADMIN_TOKEN)})
    with TestClient(create_app(admin_settings, dialogue=ScriptedDialogueEngine())) as client:
        auth = tenant_admin_of(client, "acme")
        data = client.get("/api/v1/admin/tenants/acme/analytics?from=2026-11-01&to=2026-11-30", headers=auth).json()
        assert data["conversations"] == 4 and data["containment"]["rate"] == 0.5
        one_day = client.get("/api/v1/admin/tenants/acme/analytics?from=2026-11-02&to=2026-11-02", headers=auth).json()
        assert one_day["conversations"] == 2
        assert client.get("/api/v1/admin/tenants/acme/analytics?from=2026-11-30&to=2026-11-01",
                          headers=auth).status_code == 422
        assert client.get("/api/v1/admin/tenants/acme/analytics?from=yesterday", headers=auth).status_code == 422
        assert client.get("/api/v1/admin/tenants/nobody/analytics", headers=auth).status_code == 404
        assert client.get("/api/v1/admin/tenants/acme/analytics").status_code == 401
