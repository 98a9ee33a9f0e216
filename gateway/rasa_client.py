"""HTTP client for the private Rasa server (through Switchboard's token-checked channel)."""

from __future__ import annotations

from typing import Any, Protocol

import httpx

#: Path of the channel defined in ``connectors/rasa_channel.py`` (``GatewayInput``).
WEBHOOK_PATH = "/webhooks/gateway/webhook"


class RasaUnavailableError(RuntimeError):
    """Rasa could not be reached or failed to answer a turn."""


class DialogueEngine(Protocol):
    """What the router needs from a dialogue engine: one customer turn in, bot replies out."""

    async def send(self, conversation_id: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        """Run one turn and return the bot's replies (Rasa's REST output format)."""
        ...

    async def healthy(self) -> bool:
        """Whether the engine is up and has a model loaded."""
        ...


class RasaClient:
    """Talks to Rasa with the shared token; Rasa itself is never exposed to the outside.

    Args:
        base_url: Rasa server URL (127.0.0.1 only).
        token: Shared secret checked by the gateway channel and Rasa's HTTP API.
        timeout_s: Upper bound for one turn (actions included).
    """

    def __init__(self, base_url: str, token: str, timeout_s: float = 30.0) -> None:
        self._token = token
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout_s)

    async def send(self, conversation_id: str, text: str, metadata: dict[str, Any]) -> list[dict[str, Any]]:
        """Send one customer message and return Rasa's replies.

        Raises:
            RasaUnavailableError: Rasa is down, timed out or answered with an error.
        """
        try:
            response = await self._http.post(
                WEBHOOK_PATH,
                json={"sender": conversation_id, "message": text, "metadata": metadata},
                headers={"Authorization": f"Bearer {self._token}"},
            )
        except httpx.HTTPError as exc:
            raise RasaUnavailableError(f"Rasa unreachable: {exc.__class__.__name__}") from exc
        if response.status_code != 200:
            raise RasaUnavailableError(f"Rasa answered HTTP {response.status_code}")
        replies = response.json()
        if not isinstance(replies, list):
            raise RasaUnavailableError("Rasa answered with an unexpected body")
        return [reply for reply in replies if isinstance(reply, dict)]

    async def healthy(self) -> bool:
        """Whether Rasa answers ``/status`` with a loaded model."""
        try:
            response = await self._http.get("/status", params={"token": self._token}, timeout=3.0)
        except httpx.HTTPError:
            return False
        return response.status_code == 200 and bool(response.json().get("model_id"))

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()
