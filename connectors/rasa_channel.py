"""Rasa input channel through which the gateway (and only the gateway) talks to Rasa.

Imported by the Rasa process (``.venv-rasa``): it must only import Rasa, sanic and the standard
library. Rasa's own ``rest`` channel accepts anyone and returns only the bot messages; this one

* demands the shared token in an ``Authorization: Bearer`` header,
* keeps the message metadata (tenant, channel), so components, the tracker store and actions see it,
* answers with the bot messages *and* the NLU result of the customer message (intent, ranking,
  entities, sentiment) plus the model id, so the gateway can log what the bot understood,
* makes a turn idempotent: with a ``message_id`` (the gateway's id of the customer message), a turn
  the tracker already holds is not run again; its stored replies are returned instead. The check runs
  under the conversation's lock (Redis across replicas), so a retry after a replica died mid-turn, or
  one racing a slow first attempt, never duplicates events,
* swaps the model without stopping the conversation (``PUT /webhooks/gateway/model``): Rasa's own
  ``PUT /model`` loads on the event loop, so every turn waits while TensorFlow loads; here the new agent
  is built on a worker thread around the running agent's tracker store, lock store, event broker and
  action endpoint, and replaces it in one assignment once it is ready. Turns in flight finish on the old one.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

logger = logging.getLogger(__name__)

TOKEN_ENV = "SWITCHBOARD_RASA_TOKEN"
# Parse-data keys worth logging; the rest (text, message_id) the gateway already has.
NLU_KEYS = ("intent", "intent_ranking", "entities", "sentiment")


def _loggable_nlu(parse_data: Optional[Dict[Text, Any]]) -> Dict[Text, Any]:
    """The parts of a message's parse data the gateway logs."""
    return {key: parse_data[key] for key in NLU_KEYS if key in (parse_data or {})}


def _json_body(request: Request) -> Any:
    """The request's JSON, or None when it is missing or malformed."""
    try:
        return request.json
    except Exception:  # noqa: BLE001 - sanic raises several types for bad JSON
        return None


class GatewayInput(InputChannel):
    """Token-guarded REST channel for the gateway."""

    def __init__(self, token: Optional[Text]) -> None:
        if not token:
            raise ValueError(f"the gateway channel needs a token (set {TOKEN_ENV})")
        self._token = token

    @classmethod
    def name(cls) -> Text:
        """Channel name: the webhook lives at ``/webhooks/gateway/webhook``."""
        return "gateway"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "GatewayInput":
        """Build from ``credentials.yml``; falls back to the environment for the token."""
        token = (credentials or {}).get("token") or os.environ.get(TOKEN_ENV)
        return cls(token)

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, supplied = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(supplied.encode(), self._token.encode())

    @staticmethod
    async def _nlu_of_latest_message(request: Request, sender_id: Text) -> Dict[Text, Any]:
        agent = request.app.ctx.agent
        tracker = await agent.tracker_store.retrieve(sender_id)
        if tracker is None or tracker.latest_message is None:
            return {}
        return _loggable_nlu(tracker.latest_message.parse_data)

    @staticmethod
    def _stored_turn(tracker: Any, sender_id: Text, message_id: Text) -> Optional[Dict[Text, Any]]:
        """The replies and NLU of a turn already in the tracker (None when it never ran)."""
        if tracker is None:
            return None
        events = list(tracker.events)
        start = next((i for i, e in enumerate(events)
                      if getattr(e, "type_name", "") == "user" and getattr(e, "message_id", None) == message_id), None)
        if start is None:
            return None
        messages = []
        for event in events[start + 1:]:
            kind = getattr(event, "type_name", "")
            if kind == "user":
                break
            if kind == "bot":
                reply: Dict[Text, Any] = {"recipient_id": sender_id}
                if event.text:
                    reply["text"] = event.text
                reply.update({k: v for k, v in (event.data or {}).items() if v})
                messages.append(reply)
        return {"messages": messages, "nlu": _loggable_nlu(events[start].parse_data)}

    @staticmethod
    def _build_agent(old: Any, path: Text) -> Any:
        """A new agent for ``path`` sharing the running agent's stores, broker and endpoints (worker thread)."""
        from rasa.core.agent import Agent

        agent = Agent(generator=old.nlg, tracker_store=old.tracker_store, lock_store=old.lock_store,
                      action_endpoint=old.action_endpoint, model_server=old.model_server,
                      remote_storage=old.remote_storage, http_interpreter=old.http_interpreter)
        agent.load_model(path)
        if not agent.is_ready():
            raise RuntimeError(f"no model could be loaded from {path}")
        return agent

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[None]]) -> Blueprint:
        """``GET /`` (health) and ``POST /webhook`` (one customer turn), both behind the token."""
        webhook = Blueprint("switchboard_gateway_webhook", __name__)

        @webhook.middleware("request")
        async def require_token(request: Request) -> Optional[HTTPResponse]:
            if not self._authorised(request):
                return response.json({"error": "unauthorised"}, status=401)
            return None

        @webhook.route("/", methods=["GET"])
        async def health(_request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        swap_lock = asyncio.Lock()

        @webhook.route("/model", methods=["PUT"])
        async def swap_model(request: Request) -> HTTPResponse:
            body = _json_body(request)
            path = body.get("model_file") if isinstance(body, dict) else None
            if not isinstance(path, str) or not os.path.isfile(path):
                return response.json({"error": "expected {model_file: path of a model archive on this host}"}, status=400)
            async with swap_lock:
                old = request.app.ctx.agent
                try:
                    new = await asyncio.get_running_loop().run_in_executor(None, self._build_agent, old, path)
                except Exception as exc:  # noqa: BLE001 - the old model keeps serving
                    logger.exception("could not load %s", path)
                    return response.json({"error": f"model not loaded: {exc.__class__.__name__}: {exc}"}, status=500)
                request.app.ctx.agent = new
            logger.info("now serving %s (model %s)", path, new.model_id)
            return response.json({"model_id": new.model_id, "model_file": path})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            body = _json_body(request)
            if not isinstance(body, dict) or not isinstance(body.get("sender"), str) or not isinstance(body.get("message"), str):
                return response.json({"error": "expected {sender, message, metadata}"}, status=400)
            sender_id, text = body["sender"], body["message"]
            metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else None
            message_id = body.get("message_id") if isinstance(body.get("message_id"), str) else None
            collector = CollectingOutputChannel()
            message = UserMessage(text, collector, sender_id, input_channel=self.name(), metadata=metadata,
                                  message_id=message_id)
            agent = request.app.ctx.agent
            try:
                if message_id is None or not agent.is_ready():
                    await on_new_message(message)
                else:
                    # Agent.handle_message's own steps, with the "already ran?" check inside the lock.
                    async with agent.lock_store.lock(sender_id):
                        stored = self._stored_turn(await agent.tracker_store.retrieve(sender_id), sender_id, message_id)
                        if stored is not None:
                            logger.info("turn %s of %s already ran: returning its stored replies", message_id, sender_id)
                            return response.json({**stored, "model_id": agent.model_id, "replayed": True})
                        await agent.processor.handle_message(message)
                nlu = await self._nlu_of_latest_message(request, sender_id)
            except Exception as exc:  # noqa: BLE001 - report instead of returning a half turn as success
                logger.exception("turn failed for %s", sender_id)
                return response.json({"error": f"turn failed: {exc.__class__.__name__}"}, status=500)
            return response.json(
                {"messages": collector.messages, "nlu": nlu, "model_id": request.app.ctx.agent.model_id}
            )

        return webhook
