"""Carries the gateway's hub events to Slack: what agents write reaches Slack customers, and escalations
reach each tenant's escalation channel (announced once, then updated as the handoff moves).

One bad event is logged and skipped; the relay keeps going.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError
from starlette.concurrency import run_in_threadpool

from connectors.slack import blocks
from connectors.slack.refs import CHANNEL, parse_ref

if TYPE_CHECKING:
    from connectors.slack.channel import SlackChannel

logger = logging.getLogger(__name__)


class SlackRelay:
    """Hub events to Slack, through the channel's clients, post-once store and conversation locks.

    Args:
        channel: The Slack channel whose workspaces, stores and clients the relay uses.
    """

    def __init__(self, channel: SlackChannel) -> None:
        self.channel = channel

    async def run(self) -> None:
        """Carry hub events to Slack: agent messages to Slack customers, escalations to agents' channels."""
        with self.channel.services.hub.tap() as events:
            while True:
                topic, event = await events.get()
                self.channel.spawn(self._relay_one(topic, event))

    async def _relay_one(self, topic: str, event: dict[str, Any]) -> None:
        try:
            if topic.startswith("conversation:") and event.get("type") == "message":
                await self._to_customer(topic.split(":", 1)[1], event["message"])
            elif topic.startswith("agents:") and event.get("type") == "handoff":
                await self._escalation_changed(topic.split(":", 1)[1], event["handoff"])
            elif topic.startswith("agents:") and event.get("type") == "message" and event.get("conversation_id"):
                await self._to_escalation_thread(topic.split(":", 1)[1], event["conversation_id"], event["message"])
        except SlackApiError as exc:
            logger.warning("Slack relay could not deliver an event of %s: %s", topic, exc.response.get("error"))
        except Exception:  # noqa: BLE001 - one bad event must not stop the relay
            logger.exception("Slack relay failed on an event of %s", topic)

    async def _to_customer(self, conversation_id: str, message: dict[str, Any]) -> None:
        """An agent / system / bot message of a Slack customer's conversation, posted in its place."""
        where = await run_in_threadpool(self.channel.services.conversations.external_ref, conversation_id)
        if where is None or where[1] != CHANNEL or not where[2]:
            return
        team, channel, thread = parse_ref(where[2])
        workspace = await run_in_threadpool(self.channel.workspaces.get, team)
        if workspace is None:
            return
        async with self.channel.conversation_lock(conversation_id):  # after the running turn has posted its own replies
            who = blocks.agent_signature(message.get("payload")) if message.get("sender") == "agent" else None
            await self.channel.post(self.channel.client_for(workspace), channel, thread, int(message["id"]), message.get("text"),
                             message.get("payload"), who=who)

    async def _escalation_changed(self, tenant_id: str, handoff: dict[str, Any]) -> None:
        """Announce a queued handoff in the tenant's escalation channel, or update its announcement."""
        existing = await run_in_threadpool(self.channel.store.escalation, handoff["id"])
        if existing is None:
            if handoff.get("state") != "queued":
                return
            workspace = next((w for w in await run_in_threadpool(self.channel.workspaces.for_tenant, tenant_id)
                              if w.escalation_channel), None)
            if workspace is None or not workspace.escalation_channel:
                return
            if not await run_in_threadpool(self.channel.store.claim_escalation, handoff["id"], tenant_id,
                                           handoff["conversation_id"], workspace.team_id, workspace.escalation_channel):
                return
            text, message_blocks = await self._escalation_view(tenant_id, handoff)
            response = await self.channel.client_for(workspace).chat_postMessage(
                channel=workspace.escalation_channel, text=text, blocks=message_blocks)
            await run_in_threadpool(self.channel.store.escalation_posted, handoff["id"], response.get("ts"))
            return
        workspace = await run_in_threadpool(self.channel.workspaces.get, existing.team_id)
        if workspace is None or existing.ts is None:
            return
        text, message_blocks = await self._escalation_view(tenant_id, handoff)
        await self.channel.client_for(workspace).chat_update(channel=existing.channel, ts=existing.ts, text=text,
                                                     blocks=message_blocks)

    async def _escalation_view(self, tenant_id: str, handoff: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        services = self.channel.services
        conversation_id = handoff["conversation_id"]
        customer = await run_in_threadpool(services.conversations.customer, tenant_id, conversation_id)
        recent = await run_in_threadpool(services.conversations.recent_customer_messages, tenant_id, conversation_id, 3)
        agent_name = None
        if handoff.get("agent_id"):
            agent = await run_in_threadpool(services.agents.get, tenant_id, handoff["agent_id"])
            agent_name = agent.display_name if agent else None
        policy = await run_in_threadpool(services.handoff.policies.get, tenant_id)
        return blocks.escalation_blocks(handoff, customer, [m.text or "" for m in reversed(recent)], agent_name=agent_name,
                                        labels=list(policy.resolution_labels))

    async def _to_escalation_thread(self, tenant_id: str, conversation_id: str, message: dict[str, Any]) -> None:
        """What the customer (or a console agent) writes during a handoff, mirrored into its Slack thread."""
        payload = message.get("payload") or {}
        if message.get("sender") == "agent" and (payload.get("agent") or {}).get("via") == CHANNEL:
            return  # written in that very thread
        if message.get("sender") not in ("customer", "agent", "system"):
            return
        escalations = await run_in_threadpool(self.channel.store.escalations_for_conversation, tenant_id, conversation_id)
        open_handoff = await run_in_threadpool(self.channel.services.handoff.handoffs.open_for_conversation, tenant_id,
                                               conversation_id)
        escalation = next((e for e in escalations if open_handoff is not None and e.handoff_id == open_handoff.id), None)
        if escalation is None or escalation.ts is None:
            return
        workspace = await run_in_threadpool(self.channel.workspaces.get, escalation.team_id)
        if workspace is None:
            return
        agent_name = (payload.get("agent") or {}).get("name") or "Agent"
        label = {"customer": "Customer", "system": "System"}.get(message["sender"]) or f"{agent_name} (console)"
        text = f"*{label}:* {blocks.escape(message.get('text') or '')}"
        await self.channel.client_for(workspace).chat_postMessage(channel=escalation.channel, thread_ts=escalation.ts,
                                                          text=text[:blocks.MAX_SECTION_CHARS])
