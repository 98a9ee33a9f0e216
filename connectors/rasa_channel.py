"""Rasa input channel through which the gateway (and only the gateway) talks to Rasa.

Imported by the Rasa process (``.venv-rasa``): it must only import Rasa, sanic and the standard
library. Rasa's own ``rest`` channel accepts anyone and returns only the bot messages; this one

* demands the shared token in an ``Authorization: Bearer`` header,
* keeps the message metadata (tenant, channel), so components, the tracker store and actions see it,
* answers with the bot messages *and* the NLU result of the customer message (intent, ranking,
  entities, sentiment) plus the model id, so the gateway can log what the bot understood.
"""

from __future__ import annotations

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
        parse_data = tracker.latest_message.parse_data or {}
        return {key: parse_data[key] for key in NLU_KEYS if key in parse_data}

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

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            try:
                body = request.json
            except Exception:  # noqa: BLE001 - sanic raises several types for bad JSON
                body = None
            if not isinstance(body, dict) or not isinstance(body.get("sender"), str) or not isinstance(body.get("message"), str):
                return response.json({"error": "expected {sender, message, metadata}"}, status=400)
            sender_id, text = body["sender"], body["message"]
            metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else None
            collector = CollectingOutputChannel()
            try:
                await on_new_message(
                    UserMessage(text, collector, sender_id, input_channel=self.name(), metadata=metadata)
                )
                nlu = await self._nlu_of_latest_message(request, sender_id)
            except Exception as exc:  # noqa: BLE001 - report instead of returning a half turn as success
                logger.exception("turn failed for %s", sender_id)
                return response.json({"error": f"turn failed: {exc.__class__.__name__}"}, status=500)
            return response.json(
                {"messages": collector.messages, "nlu": nlu, "model_id": request.app.ctx.agent.model_id}
            )

        return webhook
