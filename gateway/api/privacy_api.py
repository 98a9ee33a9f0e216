"""Privacy administration: erasure of one end user, retention, and redacted exports.

    POST /api/v1/admin/tenants/{t}/erasures              {"conversation_id"} or {"customer_id"}
    GET  /api/v1/admin/tenants/{t}/erasures              the erasure records
    PUT  /api/v1/admin/tenants/{t}/privacy               {"retention_days": 30 | null}
    GET  /api/v1/admin/tenants/{t}/conversations/export  JSON lines, personal data redacted
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from gateway.api.tenant_admin_auth import require_tenant_admin
from gateway.api.errors import ApiError
from gateway.api.deps import get_services, require_tenant
from gateway.db.models import Conversation, Message, Sender
from gateway.privacy.erasure import ErasureService
from gateway.privacy.redaction import Redactor
from gateway.services import GatewayServices

router = APIRouter(prefix="/api/v1/admin/tenants", tags=["admin: privacy"], dependencies=[Depends(require_tenant_admin)])


class ErasureRequest(BaseModel):
    """Whose data to erase: one conversation, or every conversation of a customer id."""

    conversation_id: str | None = Field(default=None, min_length=1, max_length=64)
    customer_id: str | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _exactly_one(self) -> "ErasureRequest":
        if (self.conversation_id is None) == (self.customer_id is None):
            raise ValueError("give exactly one of conversation_id and customer_id")
        return self


class PrivacyPolicy(BaseModel):
    """Retention in days (null keeps conversations)."""

    retention_days: int | None = Field(default=None, ge=1, le=3650)


def erasure_service(services: GatewayServices) -> ErasureService:
    """The erasure service over the gateway database and Rasa's tracker store."""
    return services.privacy


@router.post("/{tenant}/erasures")
async def erase(tenant: str, body: ErasureRequest, services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """Erase a conversation or a customer everywhere; the erasure itself is recorded."""
    await require_tenant(services, tenant)
    service = erasure_service(services)
    if body.conversation_id is not None:
        report = await run_in_threadpool(service.erase_conversation, tenant, body.conversation_id, "admin-api")
    elif body.customer_id is not None:
        report = await run_in_threadpool(service.erase_customer, tenant, body.customer_id, "admin-api")
    else:  # the model refuses this; kept so no input ever reaches an assertion
        raise ApiError(422, "invalid_request", "give exactly one of conversation_id and customer_id")
    return report.to_public()


@router.get("/{tenant}/erasures")
async def erasures(tenant: str, services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """What was erased, when and by whom (hashes of the subjects, never the data)."""
    await require_tenant(services, tenant)
    return {"erasures": await run_in_threadpool(erasure_service(services).history, tenant)}


@router.put("/{tenant}/privacy")
async def set_privacy(tenant: str, body: PrivacyPolicy, services: GatewayServices = Depends(get_services)) -> dict[str, Any]:
    """Set the tenant's retention; the retention job erases older conversations."""
    await require_tenant(services, tenant)
    await run_in_threadpool(erasure_service(services).set_retention, tenant, body.retention_days)
    return {"tenant": tenant, "retention_days": body.retention_days}


@router.get("/{tenant}/conversations/export")
async def export(tenant: str, services: GatewayServices = Depends(get_services)) -> StreamingResponse:
    """Every conversation as JSON lines (one message per line) with personal data redacted."""
    await require_tenant(services, tenant)
    redactor = Redactor()

    def lines() -> Iterator[str]:
        with services.sessions() as session:
            ids = session.execute(select(Conversation.id).where(Conversation.tenant_id == tenant)
                                  .order_by(Conversation.created_at)).scalars().all()
            for conversation_id in ids:
                rows = session.execute(select(Message).where(Message.conversation_id == conversation_id)
                                       .order_by(Message.seq)).scalars()
                for m in rows:
                    if (m.payload or {}).get("suppressed"):
                        continue
                    record = {"conversation_id": conversation_id, "seq": m.seq, "sender": m.sender.value,
                              "text": redactor(m.text) if m.text else m.text, "at": m.created_at.isoformat(),
                              "intent": ((m.nlu or {}).get("intent") or {}).get("name") if m.sender == Sender.CUSTOMER
                              else None}
                    yield json.dumps(record) + "\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")
