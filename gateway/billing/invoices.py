"""Closing a period: gauges and bot-resolved conversations metered, an invoice (JSON + CSV), Stripe meter events.

Invoice rules (all amounts rounded half-up to the cent per line):

* base fee: each plan segment of the period pays ``monthly_fee × segment seconds / period seconds``;
* overage: for each unit with an overage price on the plan in force at the period's end,
  ``(used − limit) × price`` when usage passed the limit.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gateway.billing.periods import bounds
from gateway.billing.plans import Unit
from gateway.billing.usage_service import UsageService
from gateway.db.models import Conversation, Handoff, Invoice, Message, Sender
from gateway.errors import CodedError

CENT = Decimal("0.01")


def cents(amount: Decimal) -> Decimal:
    """Round to the cent, half up (how invoices are written)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class InvoiceLine:
    """One line of an invoice."""

    kind: str  # "base_fee" | "overage"
    description: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal

    def to_json(self) -> dict[str, str]:
        """Strings keep the decimals exact in JSON."""
        return {"kind": self.kind, "description": self.description, "quantity": str(self.quantity),
                "unit_price": str(self.unit_price), "amount": str(self.amount)}


class PeriodCloser:
    """Meters what is counted at period end, then writes the invoice and the Stripe usage file.

    Args:
        sessions: Database session factory.
        usage: The usage service (ledger, plans, subscriptions).
        out_dir: Where ``<tenant>/<period>.json|.csv`` and ``stripe_meter_events.jsonl`` go.
    """

    def __init__(self, sessions: sessionmaker[Session], usage: UsageService, out_dir: Path) -> None:
        self._sessions = sessions
        self.usage = usage
        self.out_dir = out_dir

    # ------------------------------------------------------------- metering
    def meter_period_end(self, tenant_id: str, period: str) -> None:
        """Gauges (agent seats, knowledge-base documents) and bot-resolved conversations of the period.

        Keys are per period (gauges) and per conversation, so closing twice counts nothing twice.
        """
        start, end = bounds(period)
        at = end - timedelta(seconds=1)
        gauges = self.usage.gauges_now(tenant_id)
        seats, documents = gauges[Unit.AGENT_SEATS], gauges[Unit.KB_DOCUMENTS]
        with self._sessions() as session:
            answered = exists().where(Message.conversation_id == Conversation.id, Message.sender == Sender.BOT)
            escalated = exists().where(Handoff.conversation_id == Conversation.id)
            resolved = session.execute(select(Conversation.id).where(
                Conversation.tenant_id == tenant_id, Conversation.created_at >= start, Conversation.created_at < end,
                answered, ~escalated)).scalars().all()
        if seats:
            self.usage.meter(tenant_id, Unit.AGENT_SEATS, f"gauge:agent_seats:{period}", seats, at)
        if documents:
            self.usage.meter(tenant_id, Unit.KB_DOCUMENTS, f"gauge:kb_documents:{period}", documents, at)
        for conversation_id in resolved:
            self.usage.meter(tenant_id, Unit.BOT_RESOLVED, f"bot_resolved:{conversation_id}", 1, at)

    # --------------------------------------------------------------- invoice
    def invoice(self, tenant_id: str, period: str) -> dict[str, Any]:
        """Compute the invoice of a period from subscriptions and the ledger (nothing is written)."""
        start, end = bounds(period)
        period_seconds = Decimal(int((end - start).total_seconds()))
        lines: list[InvoiceLine] = []
        currency = "USD"
        for segment in self.usage.subscriptions.segments(tenant_id, period):
            plan = self.usage.plans.get(segment.plan_id)
            currency = plan.currency
            share = Decimal(int((segment.end - segment.start).total_seconds())) / period_seconds
            whole = segment.start == start and segment.end == end
            description = f"{plan.name} plan, {period}" if whole else (
                f"{plan.name} plan, {segment.start:%Y-%m-%d %H:%M} to {segment.end:%Y-%m-%d %H:%M} (prorated)")
            lines.append(InvoiceLine("base_fee", description, share.quantize(Decimal("0.000001")), plan.monthly_fee,
                                     cents(plan.monthly_fee * share)))
        final_plan = self.usage.plan_for(tenant_id, at=end - timedelta(seconds=1))
        totals = self.usage.ledger.totals(tenant_id, period)
        if final_plan is not None:
            for unit in Unit:
                price, limit = final_plan.overage.get(unit), final_plan.limit(unit)
                used = totals.get(unit, 0)
                if price is None or limit is None or used <= limit:
                    continue
                over = used - limit
                lines.append(InvoiceLine("overage", f"{unit.value.replace('_', ' ')} over the {limit} included",
                                         Decimal(over), price, cents(price * over)))
        total = sum((line.amount for line in lines), Decimal("0"))
        return {"tenant_id": tenant_id, "period": period, "currency": currency,
                "final": self.usage.clock() >= end,  # closed before its end, an invoice is a preview
                "period_start": start.isoformat(), "period_end": end.isoformat(),
                "plan_at_period_end": final_plan.id if final_plan else None,
                "usage": {unit.value: totals.get(unit, 0) for unit in Unit},
                "lines": [line.to_json() for line in lines], "total": str(cents(total))}

    def closed(self, tenant_id: str, period: str) -> dict[str, Any] | None:
        """The stored invoice of a closed period, None while it is not closed."""
        with self._sessions() as session:
            row = session.get(Invoice, (tenant_id, period))
            return None if row is None else dict(row.body)

    def close(self, tenant_id: str, period: str) -> dict[str, Any]:
        """Meter the period's end, compute the invoice, store it and write its files, once.

        Raises:
            InvoiceError: ``period_open`` before the period's end (the usage API shows the running
                figures); ``already_closed`` when it was closed before, by this call's racing twin too
                (the first invoice and its Stripe meter events stand; ``existing`` holds it).
        """
        end = bounds(period)[1]
        if self.usage.clock() < end:
            raise InvoiceError("period_open", f"{period} is still running (it ends {end.isoformat()}); close it "
                                              "after that; the usage API shows the running figures")
        existing = self.closed(tenant_id, period)
        if existing is not None:
            raise InvoiceError("already_closed", f"{period} was closed already", existing)
        self.meter_period_end(tenant_id, period)
        body = self.invoice(tenant_id, period)
        total_cents = int(Decimal(body["total"]) * 100)
        try:
            with self._sessions.begin() as session:
                session.add(Invoice(tenant_id=tenant_id, period=period, total_cents=total_cents, body=body))
        except IntegrityError as exc:  # another close of the same period won the race
            raise InvoiceError("already_closed", f"{period} was closed already", self.closed(tenant_id, period)) from exc
        folder = self.out_dir / tenant_id
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{period}.json").write_text(json.dumps(body, indent=2))
        (folder / f"{period}.csv").write_text(invoice_csv(body))
        (folder / f"{period}.stripe_meter_events.jsonl").write_text(
            "".join(json.dumps(event) + "\n" for event in stripe_meter_events(body)))
        return body


class InvoiceError(CodedError, ValueError):
    """A period that cannot be closed (now); ``code`` is the API error code."""

    def __init__(self, code: str, detail: str, existing: dict[str, Any] | None = None) -> None:
        super().__init__(code, detail)
        self.existing = existing


def invoice_csv(body: dict[str, Any]) -> str:
    """The invoice's line items as CSV, with a total row."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["tenant", "period", "kind", "description", "quantity", "unit_price", "amount", "currency"])
    for line in body["lines"]:
        writer.writerow([body["tenant_id"], body["period"], line["kind"], line["description"], line["quantity"],
                         line["unit_price"], line["amount"], body["currency"]])
    writer.writerow([body["tenant_id"], body["period"], "total", "", "", "", body["total"], body["currency"]])
    return out.getvalue()


def stripe_meter_events(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The period's usage as Stripe Billing meter events (``POST /v1/billing/meter_events`` bodies).

    One event per unit with usage; ``identifier`` makes Stripe ignore a re-sent event, and the
    timestamp is the period's last second. The customer id is the tenant id (map it when sending).
    """
    end = int(bounds(body["period"])[1].timestamp()) - 1
    return [{"event_name": f"switchboard_{unit}", "identifier": f"{body['tenant_id']}:{body['period']}:{unit}",
             "timestamp": end, "payload": {"stripe_customer_id": body["tenant_id"], "value": str(quantity)}}
            for unit, quantity in body["usage"].items() if quantity]
