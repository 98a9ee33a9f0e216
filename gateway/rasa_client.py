"""HTTP client for the private Rasa server (through Switchboard's token-checked channel).

aiohttp, not httpx: every turn makes one request, and httpx spent about 1.3 ms of the gateway's CPU on
each against aiohttp's 0.1 ms (15 % of the gateway's busy time under load, py-spy). An aiohttp session
belongs to one event loop, so the client keeps one per loop (the app has one; tests make several).

With several Rasa replicas the client sends each conversation's turns to the same replica
(``gateway.replica_router``) instead of through the round-robin proxy: that replica holds the
conversation's tracker from the last turn, and one hop fewer is one proxy fewer per turn.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from gateway.replica_router import ReplicaRouter

#: Path of the channel defined in ``connectors/rasa_channel.py`` (``GatewayInput``).
WEBHOOK_PATH = "/webhooks/gateway/webhook"
TRIGGER_PATH = "/webhooks/gateway/trigger"


def _error_of(body: bytes) -> str | None:
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    return parsed.get("error") if isinstance(parsed, dict) else None


class RasaUnavailableError(RuntimeError):
    """Rasa could not be reached or failed to answer a turn."""


class NoAssistantError(RasaUnavailableError):
    """The tenant has no assistant in production (Rasa serves no other tenant's bot instead)."""


class RasaTransportError(RasaUnavailableError):
    """The connection to Rasa failed or broke before an answer arrived (safe to retry an idempotent turn)."""


class RasaConnectError(RasaTransportError):
    """No connection could be made: nothing reached Rasa, so any replica may take the request."""


@dataclass(frozen=True)
class BotTurn:
    """What the dialogue engine made of one customer message.

    Attributes:
        messages: Bot replies in Rasa's REST output format (text, buttons, custom, …).
        nlu: NLU result of the customer message (intent, intent_ranking, entities, sentiment).
        model_id: Id of the Rasa model that answered.
    """

    messages: list[dict[str, Any]]
    nlu: dict[str, Any] = field(default_factory=dict)
    model_id: str | None = None


class DialogueEngine(Protocol):
    """What the router needs from a dialogue engine."""

    async def send(self, conversation_id: str, text: str, metadata: dict[str, Any],
                   message_id: str | None = None) -> BotTurn:
        """Run one customer turn (``message_id`` makes it idempotent: a retry never runs it twice)."""
        ...

    async def trigger_intent(self, conversation_id: str, intent: str, tenant_id: str) -> list[dict[str, Any]]:
        """Inject an external intent (e.g. ``EXTERNAL_negative_sentiment``) on the tenant's bot; return the replies."""
        ...

    async def healthy(self) -> bool:
        """Whether the engine is up and has a model loaded."""
        ...


class RasaClient:
    """Talks to Rasa with the shared token; Rasa itself is never exposed to the outside.

    Args:
        base_url: Rasa server URL (private network only).
        token: Shared secret checked by the gateway channel and Rasa's HTTP API.
        timeout_s: Upper bound for one turn (actions included).
        replica_urls: Every Rasa replica, when there are several: a conversation's turns go to one of
            them directly (``base_url``, the proxy, still answers health checks).
    """

    def __init__(self, base_url: str, token: str, timeout_s: float = 30.0, retries: int = 2,
                 max_in_flight: int = 8, queue_timeout_s: float = 30.0, replica_urls: list[str] | None = None) -> None:
        self._token = token
        self._base_url = base_url.rstrip("/")
        self.router = ReplicaRouter(replica_urls) if replica_urls and len(replica_urls) > 1 else None
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._sessions: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession]" = (
            weakref.WeakKeyDictionary())
        self.retries = retries
        # Past saturation, turns wait here rather than inside Rasa: a turn that timed out in Rasa's queue
        # was still run there (work nobody waits for), so overload fed on itself. The timeout then
        # measures Rasa's own answer, not the queue, and a hung Rasa is still noticed within it.
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self.queue_timeout_s = queue_timeout_s

    def _session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            session = aiohttp.ClientSession(timeout=self._timeout)
            self._sessions[loop] = session
        return session

    async def _request(self, method: str, path: str, timeout_s: float | None = None, base_url: str | None = None,
                       **kwargs: Any) -> tuple[int, bytes]:
        if timeout_s is not None:
            kwargs["timeout"] = aiohttp.ClientTimeout(total=timeout_s)
        try:
            async with self._session().request(method, (base_url or self._base_url) + path, **kwargs) as response:
                return response.status, await response.read()
        except asyncio.TimeoutError as exc:  # aiohttp's timeouts are TimeoutErrors too: checked first
            # Rasa may still be working on the turn; waiting again would only double the wait.
            raise RasaUnavailableError(f"Rasa did not answer: {exc.__class__.__name__}") from exc
        except aiohttp.ClientConnectorError as exc:
            raise RasaConnectError(f"Rasa unreachable: {exc.__class__.__name__}") from exc
        except aiohttp.ClientConnectionError as exc:
            # The connection failed or broke (a replica died): an idempotent turn may be sent again.
            raise RasaTransportError(f"Rasa unreachable: {exc.__class__.__name__}") from exc
        except aiohttp.ClientError as exc:
            raise RasaUnavailableError(f"Rasa did not answer: {exc.__class__.__name__}") from exc

    async def _post(self, path: str, payload: dict[str, Any], base_url: str | None = None) -> Any:
        status, body = await self._request("POST", path, base_url=base_url, json=payload,
                                           headers={"Authorization": f"Bearer {self._token}"})
        if status == 404 and _error_of(body) == "no_assistant":
            raise NoAssistantError("the tenant has no assistant in production")
        if status != 200:
            raise RasaUnavailableError(f"Rasa answered HTTP {status}")
        try:
            return json.loads(body)
        except ValueError as exc:
            raise RasaUnavailableError("Rasa answered with a body that is not JSON") from exc

    async def _post_routed(self, conversation_id: str, path: str, payload: dict[str, Any], retries: int) -> Any:
        """POST to the conversation's replica, moving on where a connection fails.

        A connection that could not be made reached nobody, so the next replica is tried whatever
        ``retries`` says; a connection that broke mid-request is tried again (on the next replica)
        only ``retries`` times, which callers allow only for requests Rasa runs once however often sent.
        """
        route = self.router.order(conversation_id) if self.router is not None else [self._base_url]
        index = 0
        while True:
            base = route[index % len(route)]
            try:
                body = await self._post(path, payload, base)
            except RasaTransportError as exc:
                index += 1
                if isinstance(exc, RasaConnectError):
                    if self.router is not None:  # refused: down, tried last for a while
                        self.router.report_down(base)
                    if index < len(route):
                        continue  # the next replica at once: this one never saw the request
                if retries == 0:
                    raise
                retries -= 1
                await asyncio.sleep(0.2 * (self.retries - retries))
                continue
            if self.router is not None and index:
                self.router.report_up(base)
            return body

    async def send(self, conversation_id: str, text: str, metadata: dict[str, Any],
                   message_id: str | None = None) -> BotTurn:
        """Send one customer message and return Rasa's replies and NLU result.

        With a ``message_id`` a turn whose connection broke (a Rasa replica died, the proxy dropped it) is
        sent again: Rasa's channel runs it only if its tracker does not hold it yet, so it runs once.

        Raises:
            RasaUnavailableError: Rasa is down, timed out or answered with an error.
        """
        payload: dict[str, Any] = {"sender": conversation_id, "message": text, "metadata": metadata}
        if message_id is not None:
            payload["message_id"] = message_id
        try:
            await asyncio.wait_for(self._in_flight.acquire(), self.queue_timeout_s)
        except asyncio.TimeoutError as exc:
            raise RasaUnavailableError(f"Rasa is saturated: no turn slot within {self.queue_timeout_s:.0f}s") from exc
        try:
            body = await self._post_routed(conversation_id, WEBHOOK_PATH, payload,
                                           self.retries if message_id is not None else 0)
        finally:
            self._in_flight.release()
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            raise RasaUnavailableError("Rasa answered with an unexpected body")
        return BotTurn(
            messages=[m for m in body["messages"] if isinstance(m, dict)],
            nlu=body.get("nlu") if isinstance(body.get("nlu"), dict) else {},
            model_id=body.get("model_id"),
        )

    async def trigger_intent(self, conversation_id: str, intent: str, tenant_id: str) -> list[dict[str, Any]]:
        """Run an external intent on the tenant's bot (the channel's ``/trigger``) and return its messages."""
        body = await self._post_routed(conversation_id, TRIGGER_PATH,
                                       {"sender": conversation_id, "intent": intent, "tenant_id": tenant_id}, 0)
        messages = body.get("messages", []) if isinstance(body, dict) else []
        return [m for m in messages if isinstance(m, dict)]

    async def healthy(self) -> bool:
        """Whether Rasa answers ``/status`` with a loaded model."""
        try:
            status, body = await self._request("GET", "/status", timeout_s=3.0, params={"token": self._token})
            return status == 200 and bool(json.loads(body).get("model_id"))
        except (RasaUnavailableError, ValueError, AttributeError):
            return False

    async def aclose(self) -> None:
        """Close this loop's connection pool (another loop's is dropped with that loop)."""
        try:
            session = self._sessions.pop(asyncio.get_running_loop(), None)
        except RuntimeError:
            return
        if session is not None:
            await session.close()
