"""The Slack channel: Bolt (HTTP mode, async) mounted in the gateway.

Customers talk to the bot in a DM, by mentioning it in a channel (answers go to the thread) or with
``/support``. Agents work escalations in each workspace's escalation channel: a "Claim" button,
replies in the announcement's thread reach the customer (widget or Slack), "Resolve" closes it.
Everything goes through the same ``MessageRouter`` and ``HandoffService`` as the widget and console.

Delivery rules:

* Bolt verifies the v0 signature (5-minute window) before anything runs and acknowledges at once;
  listeners run afterwards (``process_before_response=False``), so slow turns never miss Slack's 3 s.
* Each event id is taken in once (``SlackStore.claim_event``); Slack's retries are acknowledged
  and dropped. Each gateway message is posted once (``SlackStore.claim_post``), whoever tries first.
* The Web API client retries rate-limited calls after ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import defaultdict
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from starlette.concurrency import run_in_threadpool

from connectors.slack import blocks
from connectors.slack.refs import CHANNEL, conversation_ref
from connectors.slack.relay import SlackRelay
from connectors.slack.slack_store import EscalationRecord, SlackStore
from connectors.slack.token_cipher import TokenCipher
from connectors.slack.workspace_store import SlackWorkspaceStore, WorkspaceRecord
from gateway.db.models import Sender
from gateway.handoff.states import HandoffConflictError, HandoffRuleError
from gateway.message_router import MessageRejectedError
from gateway.services import GatewayServices
from gateway.stores.agent_store import AgentRecord
from gateway.stores.feedback_store import FeedbackError

logger = logging.getLogger(__name__)

_MENTION = re.compile(r"<@[A-Z0-9]+>")


class SlackChannel:
    """Bolt app and its listeners; `run_relay` carries hub events to Slack (`connectors.slack.relay`).

    Args:
        services: The gateway's shared services.
        api_url: Base URL of the Slack Web API (a local fake in tests).
    """

    def __init__(self, services: GatewayServices, api_url: str) -> None:
        settings = services.settings
        assert settings.slack_signing_secret is not None
        self.services = services
        self.api_url = api_url
        self.workspaces = SlackWorkspaceStore(services.sessions, TokenCipher(settings.secret_key.get_secret_value()))
        self.store = SlackStore(services.sessions)
        self._retry = [AsyncRateLimitErrorRetryHandler(max_retry_count=3)]
        self.app = AsyncApp(
            signing_secret=settings.slack_signing_secret.get_secret_value(),
            authorize=self._authorizer(),
            client=AsyncWebClient(base_url=api_url, retry_handlers=list(self._retry)),
            process_before_response=False,
        )
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._pending: set[asyncio.Task[None]] = set()
        self._names: dict[tuple[str, str], str] = {}
        self._register()

    # ------------------------------------------------------------ plumbing
    def client_for(self, workspace: WorkspaceRecord) -> AsyncWebClient:
        """A Web API client with the workspace's bot token (rate-limit retries included)."""
        return AsyncWebClient(token=workspace.bot_token, base_url=self.api_url, retry_handlers=list(self._retry))

    def _authorizer(self) -> Any:
        """Bolt's ``authorize``: the workspace's bot token from our store (Bolt passes arguments by name)."""
        workspaces = self.workspaces

        async def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult | None:
            workspace = await run_in_threadpool(workspaces.get, team_id or "")
            if workspace is None:
                logger.warning("Slack request from workspace %s, which is not installed", team_id)
                return None
            return AuthorizeResult(enterprise_id=enterprise_id, team_id=workspace.team_id,
                                   bot_token=workspace.bot_token, bot_user_id=workspace.bot_user_id,
                                   bot_id=workspace.bot_id)

        return authorize

    def spawn(self, coro: Any) -> None:
        """Run ``coro`` in the background; ``drain`` waits for it."""
        task = asyncio.create_task(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def conversation_lock(self, conversation_id: str) -> asyncio.Lock:
        """Held while a conversation's messages are posted, so they reach Slack in the gateway's order."""
        return self._locks[conversation_id]

    async def run_relay(self) -> None:
        """Carry hub events to Slack (``SlackRelay``) until cancelled."""
        await SlackRelay(self).run()

    async def drain(self) -> None:
        """Wait for background Slack work (tests, shutdown)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    # ----------------------------------------------------------- listeners
    def _register(self) -> None:
        app = self.app

        @app.middleware
        async def drop_retries(body: dict[str, Any], next: Any) -> BoltResponse | None:  # noqa: A002 - Bolt's name
            event_id = body.get("event_id") if body.get("type") == "event_callback" else None
            if event_id:
                claimed = await run_in_threadpool(self.store.claim_event, str(event_id), str(body.get("team_id", "")))
                if not claimed:
                    logger.info("dropping Slack retry of event %s", event_id)
                    return BoltResponse(status=200, body="")
            return await next()

        @app.event("app_mention")
        async def on_mention(event: dict[str, Any], context: Any) -> None:
            thread = event.get("thread_ts") or event["ts"]
            escalation = await run_in_threadpool(self.store.escalation_for_thread, context.team_id, event["channel"],
                                                 thread)
            if escalation is not None:
                await self._agent_reply(escalation, event)
                return
            await self._customer_turn(context.team_id, event["channel"], thread, event, text=_strip_mentions(event))

        @app.event("message")
        async def on_message(event: dict[str, Any], context: Any) -> None:
            if event.get("subtype") or event.get("bot_id") or not event.get("user"):
                return  # edits, joins, bots (ourselves included)
            bot_user = context.bot_user_id
            if bot_user and f"<@{bot_user}>" in (event.get("text") or "") and event.get("channel_type") != "im":
                return  # the app_mention event carries it
            team, channel = context.team_id, event["channel"]
            if event.get("channel_type") == "im":
                await self._customer_turn(team, channel, None, event, text=event.get("text") or "",
                                          reply_thread=event.get("thread_ts"))
                return
            thread = event.get("thread_ts")
            if not thread:
                return
            escalation = await run_in_threadpool(self.store.escalation_for_thread, team, channel, thread)
            if escalation is not None:
                await self._agent_reply(escalation, event)
                return
            ref = conversation_ref(team, channel, thread)
            workspace = await run_in_threadpool(self.workspaces.get, team)
            if workspace and await run_in_threadpool(self.services.conversations.find_external,
                                                     workspace.tenant_id, CHANNEL, ref):
                await self._customer_turn(team, channel, thread, event, text=event.get("text") or "")

        @app.event("app_uninstalled")
        @app.event("tokens_revoked")
        async def on_uninstalled(context: Any) -> None:
            workspace = await run_in_threadpool(self.workspaces.get, context.team_id or "")
            if workspace is not None:
                await run_in_threadpool(self.workspaces.remove, workspace.tenant_id, workspace.team_id)
                logger.info("Slack workspace %s uninstalled; its token is deleted", workspace.team_id)

        @app.command("/support")
        async def on_support(ack: Any, command: dict[str, Any], context: Any) -> None:
            await ack("Opening a support conversation with you in a direct message…")
            workspace = await run_in_threadpool(self.workspaces.get, context.team_id)
            if workspace is None:
                return
            client = self.client_for(workspace)
            opened = await client.conversations_open(users=command["user_id"])
            dm = opened["channel"]["id"]
            text = (command.get("text") or "").strip()
            if not text:
                await run_in_threadpool(self.services.conversations.find_or_create_external, workspace.tenant_id,
                                        CHANNEL, conversation_ref(workspace.team_id, dm, None))
                await client.chat_postMessage(channel=dm, text="Hi! This is the support assistant. What can I help "
                                                               "you with? Just write here.")
                return
            event = {"user": command["user_id"], "text": text, "client_msg_id": command.get("trigger_id")}
            await self._customer_turn(workspace.team_id, dm, None, event, text=text)

        @app.action(re.compile(f"^{blocks.QUICK_REPLY}:"))
        async def on_quick_reply(ack: Any, body: dict[str, Any], action: dict[str, Any], context: Any) -> None:
            await ack()
            container = body.get("container") or {}
            channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
            thread = container.get("thread_ts")
            is_dm = str(channel).startswith("D")
            event = {"user": body["user"]["id"], "text": action["value"],
                     "client_msg_id": f"{action.get('action_ts')}:{body['user']['id']}"}
            title = (action.get("text") or {}).get("text")
            await self._customer_turn(context.team_id, channel, None if is_dm else thread, event,
                                      text=action["value"], title=title, reply_thread=thread if is_dm else None)

        @app.action(re.compile(f"^{blocks.CSAT}:"))
        async def on_csat(ack: Any, body: dict[str, Any], action: dict[str, Any], context: Any,
                          respond: Any) -> None:
            await ack()
            handoff_id, _, score = str(action["value"]).rpartition(":")
            workspace = await run_in_threadpool(self.workspaces.get, context.team_id)
            handoff = workspace and await run_in_threadpool(self.services.handoff.handoffs.get, workspace.tenant_id,
                                                            handoff_id)
            if not workspace or handoff is None:
                return
            try:
                await run_in_threadpool(lambda: self.services.feedback.record(
                    workspace.tenant_id, handoff.conversation_id, "csat", handoff_id, int(score), CHANNEL))
            except (FeedbackError, ValueError):
                return
            await respond(text="Thanks for your rating!", replace_original=False, response_type="ephemeral")

        @app.action(blocks.CLAIM)
        async def on_claim(ack: Any, body: dict[str, Any], action: dict[str, Any], context: Any) -> None:
            await ack()
            workspace, agent = await self._slack_agent(context.team_id, body["user"])
            if workspace is None or agent is None:
                return
            try:
                await self.services.handoff.claim(agent, action["value"])
            except (HandoffConflictError, HandoffRuleError) as exc:
                await self._ephemeral(workspace, body, f"Could not claim it: {exc}")

        @app.action(blocks.RESOLVE)
        async def on_resolve(ack: Any, body: dict[str, Any], action: dict[str, Any], context: Any) -> None:
            await ack()
            chosen = (action.get("selected_option") or {}).get("value") or action.get("value") or ""
            handoff_id, _, label = str(chosen).rpartition(":")
            workspace, agent = await self._slack_agent(context.team_id, body["user"])
            if workspace is None or agent is None:
                return
            try:
                await self.services.handoff.resolve(agent, handoff_id, label)
            except (HandoffConflictError, HandoffRuleError) as exc:
                await self._ephemeral(workspace, body, f"Could not resolve it: {exc}")

        @app.error
        async def on_error(error: Exception, body: dict[str, Any]) -> None:
            logger.error("Slack listener failed (%s): %s", body.get("type"), error, exc_info=error)

    # ------------------------------------------------------------ customers
    async def _customer_turn(self, team_id: str, channel: str, thread: str | None, event: dict[str, Any], *,
                             text: str, title: str | None = None, reply_thread: str | None = None) -> None:
        """One customer message from Slack: through the router, replies posted in the conversation's place."""
        workspace = await run_in_threadpool(self.workspaces.get, team_id)
        if workspace is None:
            return
        services = self.services
        conversation_id, created = await run_in_threadpool(
            services.conversations.find_or_create_external, workspace.tenant_id, CHANNEL,
            conversation_ref(team_id, channel, thread))
        if created:
            await run_in_threadpool(services.conversations.set_customer, workspace.tenant_id, conversation_id,
                                    {"id": f"slack:{team_id}:{event.get('user')}", "slack_user": str(event.get("user"))})
        client = self.client_for(workspace)
        post_thread = thread or reply_thread
        client_id = event.get("client_msg_id") or event.get("ts")
        payload = {"title": title[:200]} if title else None
        async with self.conversation_lock(conversation_id):
            try:
                turn = await services.router.handle_customer_message(
                    workspace.tenant_id, conversation_id, text, CHANNEL,
                    client_id=str(client_id)[:64] if client_id else None, payload=payload)
            except MessageRejectedError as exc:
                await client.chat_postMessage(channel=channel, thread_ts=post_thread, text=f"Sorry: {exc.detail}.")
                return
            for reply in turn.replies:
                await self.post(client, channel, post_thread, reply.id, reply.text, reply.payload,
                                 who=blocks.agent_signature(reply.payload) if reply.sender == Sender.AGENT else None)

    async def post(self, client: AsyncWebClient, channel: str, thread: str | None, message_id: int,
                    text: str | None, payload: dict[str, Any] | None, who: str | None = None) -> None:
        """Post one gateway message, once."""
        if not await run_in_threadpool(self.store.claim_post, message_id, channel):
            return
        fallback, message_blocks = blocks.message_blocks(text, payload, who=who)
        if not message_blocks:
            return
        try:
            response = await client.chat_postMessage(channel=channel, thread_ts=thread, text=fallback,
                                                     blocks=message_blocks, unfurl_links=False)
        except SlackApiError:
            await run_in_threadpool(self.store.unclaim_post, message_id)
            raise
        await run_in_threadpool(self.store.posted, message_id, response.get("ts"))

    # --------------------------------------------------------------- agents
    async def _slack_agent(self, team_id: str, user: dict[str, Any]) -> tuple[WorkspaceRecord | None, AgentRecord | None]:
        """The gateway agent behind a Slack user of the escalation channel (created on first use)."""
        workspace = await run_in_threadpool(self.workspaces.get, team_id)
        if workspace is None:
            return None, None
        policy = await run_in_threadpool(self.services.handoff.policies.get, workspace.tenant_id)
        name = await self._display_name(workspace, user["id"]) or user.get("name") or user.get("username") or user["id"]
        agent = await run_in_threadpool(
            self.services.agents.ensure_external, workspace.tenant_id,
            f"{user['id'].lower()}.{team_id.lower()}@slack.invalid", str(name), list(policy.teams))
        return workspace, agent

    async def _display_name(self, workspace: WorkspaceRecord, user_id: str) -> str | None:
        """The Slack user's real name (what customers see when the agent joins), cached per process."""
        key = (workspace.team_id, user_id)
        if key not in self._names:
            try:
                info = await self.client_for(workspace).users_info(user=user_id)
            except SlackApiError:
                return None
            profile = (info.get("user") or {}).get("profile") or {}
            name = profile.get("display_name") or profile.get("real_name") or (info.get("user") or {}).get("real_name")
            if not name:
                return None
            self._names[key] = str(name)[:100]
        return self._names[key]

    async def _agent_reply(self, escalation: EscalationRecord, event: dict[str, Any]) -> None:
        """A message in an escalation thread: the claiming agent's words go to the customer."""
        workspace, agent = await self._slack_agent(escalation.team_id, {"id": event["user"]})
        if workspace is None or agent is None:
            return
        text = _strip_mentions(event)
        if not text:
            return
        try:
            await self.services.handoff.reply(agent, escalation.conversation_id, text, via=CHANNEL)
        except (HandoffConflictError, HandoffRuleError) as exc:
            await self.client_for(workspace).chat_postEphemeral(
                channel=escalation.channel, user=event["user"], thread_ts=escalation.ts,
                text=f"Not sent to the customer: {exc}")

    async def _ephemeral(self, workspace: WorkspaceRecord, body: dict[str, Any], text: str) -> None:
        channel = (body.get("container") or {}).get("channel_id") or (body.get("channel") or {}).get("id")
        if channel:
            await self.client_for(workspace).chat_postEphemeral(channel=channel, user=body["user"]["id"], text=text)


def _strip_mentions(event: dict[str, Any]) -> str:
    return _MENTION.sub("", event.get("text") or "").strip()

