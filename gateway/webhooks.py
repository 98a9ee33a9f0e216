"""Outbound webhooks for handoff events: endpoints, signatures and a retrying dispatcher.

Each delivery is signed like Stripe's: ``X-Switchboard-Signature: t=<unix>,v1=<hex>`` where the
hex is HMAC-SHA256 of ``"<t>.<delivery id>.<body>"`` with the endpoint's secret; the delivery id
is also in ``X-Switchboard-Delivery`` so receivers can drop repeats.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from gateway.db.models import WebhookDelivery, WebhookEndpoint, new_id, utcnow
from gateway.db.session import single_read_sessions

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Switchboard-Signature"
DELIVERY_HEADER = "X-Switchboard-Delivery"
EVENT_HEADER = "X-Switchboard-Event"
MAX_ATTEMPTS = 8
TOLERANCE_S = 300


def sign(secret: str, timestamp: int, delivery_id: str, body: bytes) -> str:
    """The signature header value for one delivery."""
    mac = hmac.new(secret.encode(), f"{timestamp}.{delivery_id}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, delivery_id: str, body: bytes, now: float | None = None,
           tolerance_s: int = TOLERANCE_S) -> bool:
    """Check a signature header as a receiver should: right MAC and a fresh timestamp."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (ValueError, KeyError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance_s:
        return False
    expected = sign(secret, timestamp, delivery_id, body).split("v1=", 1)[1]
    return hmac.compare_digest(given, expected)


@dataclass(frozen=True)
class EndpointRecord:
    """A webhook endpoint (the secret is shown once, at creation)."""

    id: str
    tenant_id: str
    url: str
    active: bool
    secret: str | None = None

    def to_public(self) -> dict[str, object]:
        """JSON shape; includes the secret only when just created."""
        body: dict[str, object] = {"id": self.id, "url": self.url, "active": self.active}
        if self.secret:
            body["secret"] = self.secret
        return body


def check_url(url: str, allow_private: bool = False) -> str:
    """An http(s) URL with a host on the public internet.

    Loopback, private, link-local, reserved and multicast addresses (the gateway's own machine and
    network: its database, Rasa, cloud metadata) are refused unless the operator allows them
    (``SWITCHBOARD_WEBHOOKS_ALLOW_PRIVATE``); the host's every DNS answer is checked.

    Raises:
        ValueError: Anything else.
    """
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname or len(url) > 1000:
        raise ValueError("the webhook URL must be an http(s) URL")
    if not allow_private:
        blocked = private_addresses(parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80))
        if blocked:
            raise ValueError(f"the webhook host resolves to a private or local address ({blocked[0]}); "
                             "webhooks go to the public internet")
    return url


def private_addresses(host: str, port: int) -> list[str]:
    """The addresses of ``host`` that are not public (empty when all are public or it does not resolve)."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        return []  # unresolvable now: delivery fails (and is checked again) later
    found = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not address.is_global or address.is_multicast:
            found.append(str(address))
    return found


def queue_event(session: Session, tenant_id: str, event: str, data: dict[str, Any], now: datetime | None = None) -> int:
    """Queue one event for every active endpoint of the tenant, inside the caller's transaction.

    Returns how many deliveries were queued. Committing them with the change they describe is what
    makes the outbox reliable: no change without its event, no event without its change.
    """
    now = now or utcnow()
    endpoints = session.execute(select(WebhookEndpoint.id).where(WebhookEndpoint.tenant_id == tenant_id,
                                                                WebhookEndpoint.active.is_(True))).scalars().all()
    for endpoint_id in endpoints:
        delivery_id = new_id()
        body = json.dumps({"id": delivery_id, "event": event, "tenant_id": tenant_id, "created_at": now.isoformat(),
                           "data": data}, separators=(",", ":"))
        session.add(WebhookDelivery(id=delivery_id, endpoint_id=endpoint_id, tenant_id=tenant_id, event=event,
                                    body=body, status="pending", attempts=0, next_attempt_at=now, created_at=now))
    return len(endpoints)


class WebhookStore:
    """Endpoints and the delivery outbox."""

    def __init__(self, sessions: sessionmaker[Session], allow_private: bool = False) -> None:
        self._sessions = sessions
        self._reads = single_read_sessions(sessions)  # one-statement reads: autocommit on PostgreSQL
        self.allow_private = allow_private

    def add(self, tenant_id: str, url: str) -> EndpointRecord:
        """Register an endpoint with a new random secret."""
        secret = f"whsec_{secrets.token_urlsafe(32)}"
        checked = check_url(url, self.allow_private)
        with self._sessions.begin() as session:
            row = WebhookEndpoint(tenant_id=tenant_id, url=checked, secret=secret, active=True)
            session.add(row)
            session.flush()
            return EndpointRecord(row.id, tenant_id, row.url, True, secret)

    def list(self, tenant_id: str) -> list[EndpointRecord]:
        """A tenant's endpoints (without secrets)."""
        with self._reads() as session:
            rows = session.execute(select(WebhookEndpoint).where(WebhookEndpoint.tenant_id == tenant_id)).scalars()
            return [EndpointRecord(r.id, r.tenant_id, r.url, r.active) for r in rows]

    def remove(self, tenant_id: str, endpoint_id: str) -> bool:
        """Delete an endpoint (and its pending deliveries)."""
        with self._sessions.begin() as session:
            row = session.get(WebhookEndpoint, endpoint_id)
            if row is None or row.tenant_id != tenant_id:
                return False
            session.delete(row)
            return True

    def deliveries(self, tenant_id: str, limit: int = 100) -> list[dict[str, object]]:
        """Recent deliveries of a tenant (status, attempts, last error)."""
        with self._reads() as session:
            rows = session.execute(select(WebhookDelivery).where(WebhookDelivery.tenant_id == tenant_id)
                                   .order_by(WebhookDelivery.created_at.desc()).limit(limit)).scalars()
            return [{"id": r.id, "endpoint_id": r.endpoint_id, "event": r.event, "status": r.status,
                     "attempts": r.attempts, "last_error": r.last_error} for r in rows]

    def lease_due(self, limit: int = 20, lease: timedelta = timedelta(seconds=60)) -> list[tuple[str, str, str, str, str]]:
        """Take due deliveries for sending: (delivery id, event, body, url, secret).

        The lease is a compare-and-set, so several gateway processes never send one delivery twice
        at the same time.
        """
        now = utcnow()
        with self._reads() as session:
            candidates = session.execute(
                select(WebhookDelivery.id).where(
                    WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now,
                    or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until <= now),
                ).order_by(WebhookDelivery.created_at).limit(limit)
            ).scalars().all()
        taken = []
        for delivery_id in candidates:
            with self._sessions.begin() as session:
                won = session.execute(
                    update(WebhookDelivery).where(
                        WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending",
                        or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until <= now),
                    ).values(lease_until=now + lease)
                ).rowcount
                if won != 1:
                    continue
                row = session.get(WebhookDelivery, delivery_id)
                endpoint = session.get(WebhookEndpoint, row.endpoint_id) if row else None
                if row is None or endpoint is None:
                    continue
                taken.append((row.id, row.event, row.body, endpoint.url, endpoint.secret))
        return taken

    def record_result(self, delivery_id: str, ok: bool, error: str | None = None) -> None:
        """Mark a delivery sent, or schedule its retry with exponential backoff."""
        now = utcnow()
        with self._sessions.begin() as session:
            row = session.get(WebhookDelivery, delivery_id)
            if row is None:
                return
            row.attempts += 1
            row.lease_until = None
            if ok:
                row.status = "delivered"
                row.delivered_at = now
                row.last_error = None
            else:
                row.last_error = (error or "failed")[:500]
                if row.attempts >= MAX_ATTEMPTS:
                    row.status = "failed"
                else:
                    row.next_attempt_at = now + timedelta(seconds=min(3600, 2 ** row.attempts))


class WebhookDispatcher:
    """Sends due deliveries; runs as a background task of the gateway."""

    def __init__(self, store: WebhookStore, poll_s: float = 1.0, timeout_s: float = 5.0) -> None:
        self._store = store
        self._poll_s = poll_s
        self._http = httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Send now instead of at the next poll (after a transition)."""
        self._wake.set()

    async def send_due(self) -> int:
        """Send every due delivery once; returns how many were attempted."""
        from starlette.concurrency import run_in_threadpool

        due = await run_in_threadpool(self._store.lease_due)
        for delivery_id, event, body, url, secret in due:
            raw = body.encode()
            headers = {"Content-Type": "application/json", EVENT_HEADER: event, DELIVERY_HEADER: delivery_id,
                       SIGNATURE_HEADER: sign(secret, int(time.time()), delivery_id, raw),
                       "User-Agent": "Switchboard-Webhooks/1"}
            try:
                # Checked again at sending: a name may resolve elsewhere now than when it was registered.
                check_url(url, self._store.allow_private)
                response = await self._http.post(url, content=raw, headers=headers)
                ok, error = 200 <= response.status_code < 300, f"HTTP {response.status_code}"
            except ValueError as exc:
                ok, error = False, str(exc)
            except httpx.HTTPError as exc:
                # The kind of failure only: a message with addresses and ports would map the network.
                ok, error = False, f"could not deliver ({exc.__class__.__name__})"
            await run_in_threadpool(self._store.record_result, delivery_id, ok, None if ok else error)
        return len(due)

    async def run(self) -> None:
        """Loop until cancelled."""
        while True:
            try:
                await self.send_due()
            except Exception:  # noqa: BLE001 - a broken receiver or database blip must not stop the loop
                logger.exception("webhook dispatch failed")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_s)
            except asyncio.TimeoutError:
                pass

    async def aclose(self) -> None:
        """Close the HTTP pool."""
        await self._http.aclose()
