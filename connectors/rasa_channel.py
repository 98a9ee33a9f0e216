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
* parses the message in a worker thread while the turn waits for its lock and tracker, which the NLU
  does not read (``connectors/early_parse.py``),
* runs each turn on the agent of the turn's tenant (``metadata.tenant_id``): its production model,
  loaded lazily and cached per tenant (``connectors/tenant_agents.py``); a tenant without one gets
  ``404 {"error": "no_assistant"}``, never another tenant's bot,
* swaps one tenant's model without stopping anything (``PUT /webhooks/gateway/model`` with
  ``tenant_id``): the new agent is built on a worker thread and replaces that tenant's agent in one
  assignment once it is ready; turns in flight finish on the old one, other tenants are not touched,
* injects external intents on the tenant's agent (``POST /webhooks/gateway/trigger``), which Rasa's own
  ``/conversations/<id>/trigger_intent`` cannot (it only knows the agent the server started with).
"""

from __future__ import annotations

import hmac
import logging
import os
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response

from connectors import rasa_speedups
from connectors.early_parse import start_parse
from connectors.tenant_agents import NoAssistantError, TenantAgentCache
from sanic.request import Request
from sanic.response import HTTPResponse

logger = logging.getLogger(__name__)
rasa_speedups.install()

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
    async def _run_turn(agent: Any, message: UserMessage, tracker: Any) -> Dict[Text, Any]:
        """``MessageProcessor.handle_message``'s steps (caller holds the lock); returns the message's NLU.

        Runs on the tracker the caller already retrieved for its "already ran?" check (Rasa's
        ``log_message`` would retrieve it again), and takes the parse data from it (Rasa's own method
        returns only the replies).
        """
        processor = agent.processor
        await processor._update_tracker_session(tracker, message.output_channel, message.metadata)
        await processor._handle_message_with_tracker(message, tracker)
        nlu = _loggable_nlu(tracker.latest_message.parse_data if tracker.latest_message else None)
        tracker = await processor.run_action_extract_slots(message.output_channel, tracker)
        await processor._run_prediction_loop(message.output_channel, tracker)
        await processor.run_anonymization_pipeline(tracker)
        await processor.save_tracker(tracker)
        return nlu

    @staticmethod
    def _agents(request: Request) -> TenantAgentCache:
        """The process's per-tenant agents (made on first use, around the agent the server started with)."""
        cache = getattr(request.app.ctx, "tenant_agents", None)
        if cache is None:
            cache = request.app.ctx.tenant_agents = TenantAgentCache.from_environment(request.app.ctx.agent)
        return cache

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

        @webhook.route("/agents", methods=["GET"])
        async def agents(request: Request) -> HTTPResponse:
            return response.json(self._agents(request).describe())

        @webhook.route("/model", methods=["PUT"])
        async def swap_model(request: Request) -> HTTPResponse:
            body = _json_body(request)
            path = body.get("model_file") if isinstance(body, dict) else None
            tenant_id = body.get("tenant_id") if isinstance(body, dict) else None
            if not isinstance(path, str) or not os.path.isfile(path) or not isinstance(tenant_id, str):
                return response.json({"error": "expected {tenant_id, model_file: path of a model archive on this host}"},
                                     status=400)
            try:
                entry = await self._agents(request).load(tenant_id, path)
            except NoAssistantError as exc:
                return response.json({"error": str(exc)}, status=400)
            except Exception as exc:  # noqa: BLE001 - the tenant's previous agent keeps serving
                logger.exception("could not load %s for %s", path, tenant_id)
                return response.json({"error": f"model not loaded: {exc.__class__.__name__}: {exc}"}, status=500)
            return response.json({"tenant_id": tenant_id, "model_id": entry.agent.model_id, "model_file": path})

        @webhook.route("/trigger", methods=["POST"])
        async def trigger(request: Request) -> HTTPResponse:
            body = _json_body(request)
            if not isinstance(body, dict) or not all(isinstance(body.get(k), str) for k in ("sender", "intent", "tenant_id")):
                return response.json({"error": "expected {sender, intent, tenant_id}"}, status=400)
            sender_id, intent = body["sender"], body["intent"]
            try:
                agent = await self._agents(request).agent_for(body["tenant_id"])
            except NoAssistantError as exc:
                return response.json({"error": "no_assistant", "detail": str(exc)}, status=404)
            if intent not in agent.domain.intents:
                return response.json({"error": f"intent {intent} is not in the tenant's domain"}, status=404)
            collector = CollectingOutputChannel()
            try:
                async with agent.lock_store.lock(sender_id):
                    tracker = await agent.processor.fetch_tracker_and_update_session(sender_id)
                    await agent.trigger_intent(intent_name=intent, entities=[], output_channel=collector,
                                               tracker=tracker)
            except Exception as exc:  # noqa: BLE001
                logger.exception("trigger %s failed for %s", intent, sender_id)
                return response.json({"error": f"trigger failed: {exc.__class__.__name__}"}, status=500)
            return response.json({"messages": collector.messages, "model_id": agent.model_id})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            body = _json_body(request)
            if not isinstance(body, dict) or not isinstance(body.get("sender"), str) or not isinstance(body.get("message"), str):
                return response.json({"error": "expected {sender, message, metadata}"}, status=400)
            sender_id, text = body["sender"], body["message"]
            metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else None
            tenant_id = (metadata or {}).get("tenant_id")
            if not isinstance(tenant_id, str):
                return response.json({"error": "expected metadata.tenant_id"}, status=400)
            message_id = body.get("message_id") if isinstance(body.get("message_id"), str) else None
            collector = CollectingOutputChannel()
            message = UserMessage(text, collector, sender_id, input_channel=self.name(), metadata=metadata,
                                  message_id=message_id)
            try:
                agent = await self._agents(request).agent_for(tenant_id)
            except NoAssistantError as exc:
                return response.json({"error": "no_assistant", "detail": str(exc)}, status=404)
            # The NLU needs neither the lock nor the tracker: it runs while the turn waits for both.
            parsing = start_parse(agent.processor, message)
            try:
                # Agent.handle_message's own steps, with the "already ran?" check inside the lock.
                async with agent.lock_store.lock(sender_id):
                    tracker = await agent.processor.get_tracker(sender_id)  # the turn's only retrieval
                    if message_id is not None:
                        stored = self._stored_turn(tracker, sender_id, message_id)
                        if stored is not None:
                            logger.info("turn %s of %s already ran: returning its stored replies", message_id, sender_id)
                            return response.json({**stored, "model_id": agent.model_id, "replayed": True})
                    if parsing is not None:
                        message.parse_data = await parsing
                    nlu = await self._run_turn(agent, message, tracker)
            except Exception as exc:  # noqa: BLE001 - report instead of returning a half turn as success
                logger.exception("turn failed for %s", sender_id)
                return response.json({"error": f"turn failed: {exc.__class__.__name__}"}, status=500)
            return response.json({"messages": collector.messages, "nlu": nlu, "model_id": agent.model_id})

        return webhook
