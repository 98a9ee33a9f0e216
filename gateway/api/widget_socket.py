"""WebSocket endpoint of the web chat widget.

Protocol (JSON frames):

* client ``{"type": "hello", "conversation_id"?, "conversation_token"?}`` → server
  ``{"type": "session", "conversation_id", "conversation_token", "resumed", "history": [...]}``;
  a missing or invalid pair starts a new conversation.
* client ``{"type": "message", "text", "client_id"}`` → server ``{"type": "ack", ...}``,
  ``{"type": "typing", "on": true}``, one ``{"type": "message", "message": {...}}`` per reply,
  ``{"type": "typing", "on": false}``.
* any problem → ``{"type": "error", "error": code, "detail": text}``; the socket stays open
  unless the widget key is bad (close code 4401).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from gateway.message_router import MessageRejectedError
from gateway.services import GatewayServices

logger = logging.getLogger(__name__)

router = APIRouter()

WIDGET_CHANNEL = "web"
CLOSE_UNAUTHORISED = 4401


def _error(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"type": "error", "error": code, "detail": detail, **extra}


class WidgetSession:
    """One widget connection bound to one tenant and, after ``hello``, one conversation."""

    def __init__(self, socket: WebSocket, services: GatewayServices, tenant_id: str) -> None:
        self.socket = socket
        self.services = services
        self.tenant_id = tenant_id
        self.conversation_id: str | None = None

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
            conversation_id = await run_in_threadpool(
                services.conversations.create_conversation, self.tenant_id, WIDGET_CHANNEL
            )
            history = []
        self.conversation_id = conversation_id
        await self.socket.send_json(
            {
                "type": "session",
                "conversation_id": conversation_id,
                "conversation_token": services.tokens.sign(self.tenant_id, conversation_id),
                "resumed": bool(resumed),
                "history": [message.to_public() for message in history],
            }
        )

    async def message(self, frame: dict[str, Any]) -> None:
        """Run one customer turn and stream its replies back."""
        if self.conversation_id is None:
            await self.socket.send_json(_error("no_session", "send a hello frame first"))
            return
        client_id = frame.get("client_id")
        if client_id is not None and (not isinstance(client_id, str) or not 0 < len(client_id) <= 64):
            await self.socket.send_json(_error("invalid_client_id", "client_id must be 1-64 characters"))
            return
        try:
            text = self.services.router.validate(frame.get("text"))
        except MessageRejectedError as exc:
            await self.socket.send_json(_error(exc.code, exc.detail, client_id=client_id))
            return
        title = frame.get("title")
        payload = {"title": title[:200]} if isinstance(title, str) and title.strip() else None
        await self.socket.send_json({"type": "typing", "on": True})
        turn = await self.services.router.handle_customer_message(
            self.tenant_id, self.conversation_id, text, WIDGET_CHANNEL, client_id=client_id, payload=payload
        )
        await self.socket.send_json(
            {"type": "ack", "client_id": client_id, "duplicate": turn.duplicate, "message": turn.customer.to_public()}
        )
        for reply in turn.replies:
            await self.socket.send_json({"type": "message", "message": reply.to_public()})
        await self.socket.send_json({"type": "typing", "on": False})


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
    session = WidgetSession(socket, services, tenant_id)
    max_bytes = services.settings.max_body_bytes
    try:
        while True:
            raw = await socket.receive_text()
            if len(raw.encode()) > max_bytes:
                await socket.send_json(_error("frame_too_large", f"frames are limited to {max_bytes} bytes"))
                continue
            try:
                frame = json.loads(raw)
            except json.JSONDecodeError:
                await socket.send_json(_error("malformed_json", "the frame is not valid JSON"))
                continue
            if not isinstance(frame, dict):
                await socket.send_json(_error("invalid_frame", "a frame must be a JSON object"))
                continue
            kind = frame.get("type")
            if kind == "hello":
                await session.hello(frame)
            elif kind == "message":
                await session.message(frame)
            elif kind == "ping":
                await socket.send_json({"type": "pong"})
            else:
                await socket.send_json(_error("unknown_frame_type", f"unknown frame type {kind!r}"))
    except WebSocketDisconnect:
        return
