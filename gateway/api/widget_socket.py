"""WebSocket endpoint of the web chat widget.

Protocol (JSON frames):

* client ``{"type": "hello", "conversation_id"?, "conversation_token"?}`` → server
  ``{"type": "session", "conversation_id", "conversation_token", "resumed", "history": [...]}``;
  a missing or invalid pair starts a new conversation.
* client ``{"type": "message", "text", "client_id"}`` → server ``{"type": "ack", ...}``,
  ``{"type": "typing", "on": true}``, one ``{"type": "message", "message": {...}}`` per reply,
  ``{"type": "typing", "on": false}``.
* pushed at any time while people handle the conversation: ``{"type": "message", ...}`` (agent
  and system messages), ``{"type": "typing", "on", "who": "agent", "name"}`` and
  ``{"type": "handoff", "state", "position"?, "eta_s"?, "agent"?}``. A message can arrive both as
  a reply and as a push; clients de-duplicate by message id.
* client ``{"type": "csat", "handoff_id", "score": 1-5, "comment"?}`` after a resolved handoff and
  ``{"type": "feedback", "message_id", "helpful": bool}`` on a bot answer → ``{"type": "feedback_saved", ...}``.
* any problem → ``{"type": "error", "error": code, "detail": text}``; a rate-limited message also
  carries ``retry_after_s`` and ``client_id`` (clients keep it and resend later). The socket stays
  open unless the widget key is bad (close code 4401) or the page's origin is not allowed for the
  tenant (close code 4403).

The session frame carries the tenant's widget look (``config``) and the handoffs already rated.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from gateway.assistants.assistant_store import AssistantStore
from gateway.handoff.event_hub import conversation_topic
from gateway.stores.conversation_store import ConversationNotFoundError
from gateway.message_router import MessageRejectedError
from gateway.services import GatewayServices
from gateway.stores.feedback_store import FeedbackError

logger = logging.getLogger(__name__)

router = APIRouter()

WIDGET_CHANNEL = "web"
CLOSE_UNAUTHORISED = 4401
CLOSE_FORBIDDEN_ORIGIN = 4403


def _error(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"type": "error", "error": code, "detail": detail, **extra}


class WidgetSession:
    """One widget connection bound to one tenant and, after ``hello``, one conversation."""

    def __init__(self, socket: WebSocket, services: GatewayServices, tenant_id: str) -> None:
        self.socket = socket
        self.services = services
        self.tenant_id = tenant_id
        self.ip = socket.client.host if socket.client else None
        self.conversation_id: str | None = None
        self._send_lock = asyncio.Lock()
        self._forwarder: asyncio.Task[None] | None = None

    async def send(self, frame: dict[str, Any]) -> None:
        """Send one frame; replies and pushed events never interleave mid-frame."""
        async with self._send_lock:
            await self.socket.send_json(frame)

    def _follow(self, conversation_id: str) -> None:
        """Forward the conversation's live events (agent messages, typing, queue) to this socket."""
        self.stop_following()
        hub = self.services.hub

        async def forward() -> None:
            with hub.subscribe(conversation_topic(conversation_id)) as events:
                while True:
                    await self.send(await events.get())

        self._forwarder = asyncio.create_task(forward())

    def stop_following(self) -> None:
        """Stop forwarding live events."""
        if self._forwarder is not None:
            self._forwarder.cancel()
            self._forwarder = None

    async def hello(self, frame: dict[str, Any]) -> None:
        """Resume the conversation the client names (if its token is right) or start one."""
        conversation_id = frame.get("conversation_id")
        token = frame.get("conversation_token")
        services = self.services
        resumed = (
            isinstance(conversation_id, str)
            and isinstance(token, str)
            and services.tokens.verify(self.tenant_id, conversation_id, token)
            and await run_in_threadpool(services.conversations.exists, self.tenant_id, conversation_id)
        )
        if resumed:
            assert isinstance(conversation_id, str)
            history = await run_in_threadpool(services.conversations.history, self.tenant_id, conversation_id)
        else:
            wait = services.rate_limits.new_conversation(self.ip)
            if wait:
                await self.send(_error("rate_limited", "too many new conversations from this address",
                                       retry_after_s=round(wait, 1)))
                return
            conversation_id = await run_in_threadpool(
                services.conversations.create_conversation, self.tenant_id, WIDGET_CHANNEL
            )
            history = []
        self.conversation_id = conversation_id
        customer = _customer_metadata(frame.get("customer"))
        if customer:
            await run_in_threadpool(services.conversations.set_customer, self.tenant_id, conversation_id, customer)
        handoff = await run_in_threadpool(services.handoff.handoffs.open_for_conversation, self.tenant_id,
                                          conversation_id)
        self._follow(conversation_id)
        feedback = await run_in_threadpool(services.feedback.for_conversation, self.tenant_id, conversation_id)
        config = await run_in_threadpool(_public_config, services, self.tenant_id)
        await self.send(
            {
                "type": "session",
                "conversation_id": conversation_id,
                "conversation_token": services.tokens.sign(self.tenant_id, conversation_id),
                "resumed": bool(resumed),
                "history": [message.to_public() for message in history],
                "handoff_state": handoff.state.value if handoff else "bot",
                "config": config,
                "rated": [f.target for f in feedback if f.kind == "csat"],
            }
        )

    async def message(self, frame: dict[str, Any]) -> None:
        """Run one customer turn and stream its replies back."""
        if self.conversation_id is None:
            await self.send(_error("no_session", "send a hello frame first"))
            return
        client_id = frame.get("client_id")
        if client_id is not None and (not isinstance(client_id, str) or not 0 < len(client_id) <= 64):
            await self.send(_error("invalid_client_id", "client_id must be 1-64 characters"))
            return
        try:
            text = self.services.router.validate(frame.get("text"))
        except MessageRejectedError as exc:
            await self.send(_error(exc.code, exc.detail, client_id=client_id))
            return
        wait = self.services.rate_limits.message(self.conversation_id, self.ip)
        if wait:
            await self.send(_error("rate_limited", "you're sending messages too quickly; trying again shortly",
                                   client_id=client_id, retry_after_s=round(wait, 1)))
            return
        title = frame.get("title")
        payload = {"title": title[:200]} if isinstance(title, str) and title.strip() else None
        owner = await run_in_threadpool(self.services.handoff.handoffs.owner_state, self.tenant_id,
                                        self.conversation_id)
        bot_turn = owner.value == "bot"  # while people own the conversation the bot is not "typing"
        if bot_turn:
            await self.send({"type": "typing", "on": True})
        try:
            turn = await self.services.router.handle_customer_message(
                self.tenant_id, self.conversation_id, text, WIDGET_CHANNEL, client_id=client_id, payload=payload
            )
        except ConversationNotFoundError:
            # Erased (by the customer's request or retention) while the socket was open: start afresh.
            self.conversation_id = None
            await self.send(_error("conversation_not_found", "this conversation no longer exists; start a new one",
                                   client_id=client_id))
            return
        await self.send(
            {"type": "ack", "client_id": client_id, "duplicate": turn.duplicate, "message": turn.customer.to_public()}
        )
        for reply in turn.replies:
            await self.send({"type": "message", "message": reply.to_public()})
        if not turn.duplicate:
            # The customer's other tabs follow the conversation live (they de-duplicate by id, as this one does).
            topic = conversation_topic(self.conversation_id)
            for message in [turn.customer, *turn.replies]:
                self.services.hub.publish(topic, {"type": "message", "message": message.to_public()})
        if bot_turn:
            await self.send({"type": "typing", "on": False})

    async def feedback(self, frame: dict[str, Any]) -> None:
        """Store a CSAT rating of a resolved handoff or a helpful / not helpful vote on a bot answer."""
        if self.conversation_id is None:
            await self.send(_error("no_session", "send a hello frame first"))
            return
        if frame.get("type") == "csat":
            kind, target, score = "csat", frame.get("handoff_id"), frame.get("score")
        else:
            helpful = frame.get("helpful")
            kind, target = "helpful", str(frame.get("message_id", ""))
            score = int(helpful) if isinstance(helpful, bool) else None
        try:
            record, created = await run_in_threadpool(
                lambda: self.services.feedback.record(self.tenant_id, self.conversation_id or "", kind, target, score,
                                                      WIDGET_CHANNEL, frame.get("comment")))
        except FeedbackError as exc:
            await self.send(_error(exc.code, exc.detail))
            return
        await self.send({"type": "feedback_saved", "kind": kind, "target": record.target, "duplicate": not created})


@router.websocket("/ws/widget")
async def widget_socket(socket: WebSocket) -> None:
    """Serve one widget connection; the tenant comes from the ``key`` query parameter."""
    services: GatewayServices = socket.app.state.services
    await socket.accept()
    key = socket.query_params.get("key", "")
    tenant_id = await run_in_threadpool(services.tenants.tenant_for_key, key)
    if tenant_id is None:
        await socket.send_json(_error("unknown_widget_key", "the widget key is unknown or revoked"))
        await socket.close(code=CLOSE_UNAUTHORISED)
        return
    config = await run_in_threadpool(services.widget_configs.get, tenant_id)
    origin = socket.headers.get("origin")
    if not config.allows_origin(origin):
        logger.warning("refused a widget connection of tenant %s from origin %s", tenant_id, origin)
        await socket.send_json(_error("origin_not_allowed", "this site may not use the widget"))
        await socket.close(code=CLOSE_FORBIDDEN_ORIGIN)
        return
    session = WidgetSession(socket, services, tenant_id)
    try:
        await _serve(socket, services, session)
    finally:
        session.stop_following()


def _public_config(services: GatewayServices, tenant_id: str) -> dict[str, Any]:
    """The widget's look, with the business's name and its assistant's greeting where the tenant set none."""
    config = services.widget_configs.get(tenant_id).public()
    if not config.get("title") or not config.get("greeting"):
        assistant = AssistantStore(services.sessions).current(tenant_id)
        identity = assistant.widget_identity() if assistant else {"title": "Support", "greeting": ""}
        for key, value in identity.items():
            config[key] = config.get(key) or value
    return config


def _customer_metadata(value: object) -> dict[str, str] | None:
    """What the host page says about the customer: up to 10 short string fields (display only)."""
    if not isinstance(value, dict):
        return None
    clean = {str(k)[:40]: v[:200] for k, v in list(value.items())[:10] if isinstance(v, str) and v.strip()}
    return clean or None


async def _serve(socket: WebSocket, services: GatewayServices, session: WidgetSession) -> None:
    max_bytes = services.settings.max_body_bytes
    try:
        while True:
            raw = await socket.receive_text()
            if len(raw.encode()) > max_bytes:
                await session.send(_error("frame_too_large", f"frames are limited to {max_bytes} bytes"))
                continue
            try:
                frame = json.loads(raw)
            except json.JSONDecodeError:
                await session.send(_error("malformed_json", "the frame is not valid JSON"))
                continue
            if not isinstance(frame, dict):
                await session.send(_error("invalid_frame", "a frame must be a JSON object"))
                continue
            kind = frame.get("type")
            if kind == "hello":
                await session.hello(frame)
            elif kind == "message":
                await session.message(frame)
            elif kind in ("csat", "feedback"):
                await session.feedback(frame)
            elif kind == "ping":
                await session.send({"type": "pong"})
            else:
                await session.send(_error("unknown_frame_type", f"unknown frame type {kind!r}"))
    except WebSocketDisconnect:
        return
