"""Rasa input channel through which the gateway (and only the gateway) talks to Rasa.

Imported by the Rasa process (``.venv-rasa``): it must only import Rasa and the standard library.
Rasa's own ``rest`` channel accepts anyone; this one demands the shared token in an
``Authorization: Bearer`` header and keeps the message metadata (tenant, channel) that the
gateway sends, so components, the tracker store and actions see it.
"""

from __future__ import annotations

import hmac
import os
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

TOKEN_ENV = "SWITCHBOARD_RASA_TOKEN"


class GatewayInput(RestInput):
    """REST channel guarded by the gateway's shared token."""

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

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[None]]) -> Blueprint:
        """Rasa's REST endpoints with a token check in front of every request."""
        webhook = super().blueprint(on_new_message)

        @webhook.middleware("request")
        async def require_token(request: Request) -> Optional[HTTPResponse]:
            if not self._authorised(request):
                return response.json({"error": "unauthorised"}, status=401)
            return None

        return webhook
