"""HTTP API for widgets and other clients: start a conversation, send a message, read history."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from fastapi import Request, Response

from gateway.api.deps import (check_conversation, check_conversation_token, client_ip, get_services,
                              tenant_id_from_header)
from gateway.api.errors import ApiError
from gateway.message_router import MessageRejectedError, TurnResult
from gateway.services import GatewayServices
from gateway.stores.conversation_store import ConversationNotFoundError
from gateway.stores.feedback_store import FeedbackError

router = APIRouter(prefix="/api/v1", tags=["messages"])

HTTP_CHANNEL = "api"


class SendMessageRequest(BaseModel):
    """A customer message.

    ``conversation_id`` omitted starts a new conversation; given, it needs the matching
    ``X-Conversation-Token``. ``client_id`` makes a resend safe: it is processed once.
    """

    text: Any = Field(description="The customer's message (1 to max_message_chars characters).")
    conversation_id: str | None = Field(default=None, max_length=64)
    client_id: str | None = Field(default=None, min_length=1, max_length=64)


class ConversationCreated(BaseModel):
    """A new conversation and the token that grants access to it."""

    conversation_id: str
    conversation_token: str


def rejection_status(exc: MessageRejectedError) -> int:
    """HTTP status for a rejected message: 413 when too long, 422 otherwise."""
    return 413 if exc.code == "message_too_long" else 422


def turn_body(services: GatewayServices, tenant_id: str, conversation_id: str, turn: TurnResult) -> dict[str, Any]:
    """JSON answer to one turn."""
    return {
        "conversation_id": conversation_id,
        "conversation_token": services.tokens.sign(tenant_id, conversation_id),
        "duplicate": turn.duplicate,
        "message": turn.customer.to_public(),
        "replies": [reply.to_public() for reply in turn.replies],
    }


class FeedbackRequest(BaseModel):
    """A CSAT rating (kind ``csat``, target = handoff id, score 1-5) or a vote on a bot answer
    (kind ``helpful``, target = message id, score 1 or 0)."""

    kind: str = Field(max_length=16)
    target: str = Field(max_length=64)
    score: int
    comment: str | None = Field(default=None, max_length=2000)


def _limited(wait: float, detail: str) -> ApiError:
    return ApiError(429, "rate_limited", detail, headers={"Retry-After": str(max(1, round(wait)))},
                    retry_after_s=round(max(wait, 0.0), 1))


@router.post("/conversations", status_code=201, response_model=ConversationCreated)
async def create_conversation(
    request: Request,
    services: GatewayServices = Depends(get_services),
    tenant_id: str = Depends(tenant_id_from_header),
) -> ConversationCreated:
    """Start a conversation for the widget key's tenant."""
    wait = services.rate_limits.new_conversation(client_ip(request))
    if wait:
        raise _limited(wait, "too many new conversations from this address")
    conversation_id = await run_in_threadpool(services.conversations.create_conversation, tenant_id, HTTP_CHANNEL)
    return ConversationCreated(
        conversation_id=conversation_id,
        conversation_token=services.tokens.sign(tenant_id, conversation_id),
    )


@router.post("/messages")
async def send_message(
    body: SendMessageRequest,
    request: Request,
    services: GatewayServices = Depends(get_services),
    tenant_id: str = Depends(tenant_id_from_header),
    x_conversation_token: str | None = Header(default=None),
) -> dict[str, Any]:
    """Send one customer message and get the bot's replies."""
    try:
        text = services.router.validate(body.text)
    except MessageRejectedError as exc:
        raise ApiError(rejection_status(exc), exc.code, exc.detail) from exc
    if body.conversation_id is None:
        wait = services.rate_limits.new_conversation(client_ip(request))
        if wait:
            raise _limited(wait, "too many new conversations from this address")
        conversation_id = await run_in_threadpool(
            services.conversations.create_conversation, tenant_id, HTTP_CHANNEL
        )
    else:
        conversation_id = body.conversation_id
        # The token is checked here; the conversation's existence by storing the message (an unknown or
        # erased one is a 404 below), one read less per message.
        check_conversation_token(services, tenant_id, conversation_id, x_conversation_token)
    wait = services.rate_limits.message(conversation_id, client_ip(request))
    if wait:
        raise _limited(wait, "too many messages; slow down")
    try:
        turn = await services.router.handle_customer_message(
            tenant_id, conversation_id, text, HTTP_CHANNEL, client_id=body.client_id
        )
    except ConversationNotFoundError as exc:
        raise ApiError(404, "unknown_conversation", "no such conversation") from exc
    return turn_body(services, tenant_id, conversation_id, turn)


@router.get("/conversations/{conversation_id}/messages")
async def conversation_history(
    conversation_id: str,
    services: GatewayServices = Depends(get_services),
    tenant_id: str = Depends(tenant_id_from_header),
    x_conversation_token: str | None = Header(default=None),
) -> dict[str, Any]:
    """Every message of a conversation, oldest first."""
    await run_in_threadpool(check_conversation, services, tenant_id, conversation_id, x_conversation_token)
    history = await run_in_threadpool(services.conversations.history, tenant_id, conversation_id)
    return {"conversation_id": conversation_id, "messages": [m.to_public() for m in history]}


@router.post("/conversations/{conversation_id}/feedback", status_code=201)
async def give_feedback(
    conversation_id: str,
    body: FeedbackRequest,
    response: Response,
    services: GatewayServices = Depends(get_services),
    tenant_id: str = Depends(tenant_id_from_header),
    x_conversation_token: str | None = Header(default=None),
) -> dict[str, Any]:
    """Rate a resolved handoff (CSAT) or one bot answer; the first rating of a target counts (200 after)."""
    await run_in_threadpool(check_conversation, services, tenant_id, conversation_id, x_conversation_token)
    try:
        record, created = await run_in_threadpool(
            lambda: services.feedback.record(tenant_id, conversation_id, body.kind, body.target, body.score,
                                             HTTP_CHANNEL, body.comment))
    except FeedbackError as exc:
        raise ApiError(422, exc.code, exc.detail) from exc
    if not created:
        response.status_code = 200
    return {**record.to_public(), "duplicate": not created}
