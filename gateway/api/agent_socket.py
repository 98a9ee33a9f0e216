"""Live updates for agent consoles: queue changes, customer messages, handoff moves, notes.

``/ws/agent`` authenticates with the session cookie (browsers; the Origin must be this gateway,
so another site cannot open a socket with the agent's cookie) or an ``Authorization: Bearer``
header (API clients). Events are JSON objects with a ``type``; the client may send ``ping``.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlparse

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from gateway.api.agent_auth import SESSION_COOKIE
from gateway.handoff.event_hub import agents_topic
from gateway.services import GatewayServices

router = APIRouter()
CLOSE_UNAUTHORISED = 4401
CLOSE_FORBIDDEN_ORIGIN = 4403
#: How often an open socket re-checks its session: logout, expiry, deactivation and role changes close
#: it within about this long (a socket kept receiving events after logout before).
_RECHECK_S = 1.0


def _same_origin(socket: WebSocket) -> bool:
    origin = socket.headers.get("origin")
    if origin is None:  # not a browser
        return True
    return urlparse(origin).netloc == socket.headers.get("host", "")


@router.websocket("/ws/agent")
async def agent_socket(socket: WebSocket) -> None:
    """Stream the tenant's handoff events to one console."""
    services: GatewayServices = socket.app.state.services
    await socket.accept()
    scheme, _, bearer = socket.headers.get("authorization", "").partition(" ")
    token = bearer.strip() if scheme.lower() == "bearer" else socket.cookies.get(SESSION_COOKIE, "")
    if not bearer and not _same_origin(socket):
        await socket.send_json({"type": "error", "error": "forbidden_origin", "detail": "wrong origin"})
        await socket.close(code=CLOSE_FORBIDDEN_ORIGIN)
        return
    resolved = await run_in_threadpool(services.agents.resolve_session, token or "")
    if resolved is None:
        await socket.send_json({"type": "error", "error": "not_logged_in", "detail": "log in first"})
        await socket.close(code=CLOSE_UNAUTHORISED)
        return
    agent, _ = resolved
    send_lock = asyncio.Lock()

    async def send(frame: dict[str, object]) -> None:
        async with send_lock:
            await socket.send_json(frame)

    with services.hub.subscribe(agents_topic(agent.tenant_id)) as events:

        loop = asyncio.get_running_loop()
        checked_at = loop.time()

        async def still_allowed() -> bool:
            nonlocal checked_at
            if loop.time() - checked_at < _RECHECK_S:
                return True
            checked_at = loop.time()
            now = await run_in_threadpool(services.agents.resolve_session, token or "")
            return now is not None and now[0].role == agent.role and now[0].tenant_id == agent.tenant_id

        async def forward() -> None:
            while True:
                try:
                    event = await asyncio.wait_for(events.get(), timeout=_RECHECK_S)
                except asyncio.TimeoutError:
                    event = None
                if not await still_allowed():  # checked before any event goes out, not only when idle
                    await send({"type": "error", "error": "session_expired",
                                "detail": "the session ended or changed; log in again"})
                    await socket.close(code=CLOSE_UNAUTHORISED)
                    return
                if event is not None:
                    await send(event)

        forwarder = asyncio.create_task(forward())
        await send({"type": "ready", "agent": agent.to_public()})
        try:
            while True:
                frame = await socket.receive_json()
                if isinstance(frame, dict) and frame.get("type") == "ping":
                    await send({"type": "pong"})
        except (WebSocketDisconnect, ValueError, RuntimeError):
            pass
        finally:
            forwarder.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await forwarder
