"""Closing a billing period: once, after it ended, even when four closes race."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from gateway.billing.invoices import InvoiceError, PeriodCloser
from gateway.billing.plans import Unit
from gateway.billing.usage_service import UsageService
from gateway.stores.tenant_store import TenantStore
from tests.gateway.billing.conftest import Clock, utc


def test_racing_closes_make_one_invoice_and_an_open_period_cannot_be_closed(
        sessions: sessionmaker[Session], tmp_path: Path) -> None:
    TenantStore(sessions).ensure_tenant("initech", "Initech")
    usage = UsageService(sessions)
    usage.clock = Clock(utc(2026, 11, 5, 9))
    usage.plans.seed()
    usage.change_plan("initech", "pro")
    for n in range(5):
        usage.meter("initech", Unit.CONVERSATIONS, f"c{n}", at=utc(2026, 11, 6, 9))
    closer = PeriodCloser(sessions, usage, tmp_path / "invoices")
    with pytest.raises(InvoiceError) as running:
        closer.close("initech", "2026-11")
    assert running.value.code == "period_open"

    usage.clock.now = utc(2026, 12, 1, 0, 5)

    def attempt(_: int) -> str:
        try:
            closer.close("initech", "2026-11")
            return "closed"
        except InvoiceError as exc:
            assert exc.existing is not None or exc.code != "already_closed"
            return exc.code

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = sorted(pool.map(attempt, range(4)))
    assert outcomes == ["already_closed"] * 3 + ["closed"]
    events = [json.loads(line) for line in
              (tmp_path / "invoices" / "initech" / "2026-11.stripe_meter_events.jsonl").read_text().splitlines()]
    conversations = next(e for e in events if e["event_name"] == "switchboard_conversations")
    assert conversations["payload"]["value"] == "5"
    assert len({e["identifier"] for e in events}) == len(events)
    # A late meter after the close changes nothing: the period's invoice and its events stand.
    usage.meter("initech", Unit.CONVERSATIONS, "late", at=utc(2026, 11, 30, 23))
    with pytest.raises(InvoiceError):
        closer.close("initech", "2026-11")
    assert json.loads((tmp_path / "invoices" / "initech" / "2026-11.stripe_meter_events.jsonl")
                      .read_text().splitlines()[0]) == events[0]
