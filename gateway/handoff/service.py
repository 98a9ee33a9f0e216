"""Human handoff: starts, routes, assigns and closes handoffs, and tells everyone who needs to know.

The state lives in the database (``HandoffStore``); this service adds the conversation messages
the customer sees, the queue order, automatic assignment, the no-agent timeout, and the live
events for widgets and consoles (``EventHub``). Every method is safe to call from several
requests at once: conflicts surface as ``HandoffConflictError``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from starlette.concurrency import run_in_threadpool

from gateway.db.models import Sender, utcnow
from gateway.handoff.event_hub import EventHub, agents_topic, conversation_topic
from gateway.handoff.policy import HandoffPolicy, HandoffPolicyStore, base_priority
from gateway.handoff.queue import HandoffQueue, QueueEntry, least_busy, on_duty, serves, wait_text
from gateway.handoff.states import HandoffConflictError, HandoffRuleError, HandoffState
from gateway.handoff.triggers import HandoffRequest
from gateway.rasa_client import DialogueEngine, RasaUnavailableError
from gateway.stores.agent_store import AgentRecord, AgentStore
from gateway.stores.conversation_store import ConversationStore, StoredMessage
from gateway.handoff.handoff_store import HandoffRecord, HandoffStore

logger = logging.getLogger(__name__)

#: External intent injected into Rasa when people hand the conversation back.
RESOLVED_INTENT = "EXTERNAL_handoff_resolved"
#: Button payloads the customer uses while waiting; the gateway answers them, not Rasa.
LEAVE_MESSAGE = "/handoff_leave_message"
BACK_TO_BOT = "/handoff_back_to_bot"
WAITING_CHOICES = [{"title": "Leave a message", "payload": LEAVE_MESSAGE},
                   {"title": "Back to the assistant", "payload": BACK_TO_BOT}]
MAX_NOTE_CHARS = 4000


class HandoffService:
    """Orchestrates handoffs for every tenant of one gateway process.

    Args:
        conversations: The message log.
        handoffs: Handoff state and transitions.
        agents: Agents and presence.
        policies: Tenant policies.
        hub: Live events for widgets and consoles.
        engine: The dialogue engine, told when a conversation comes back to the bot.
    """

    def __init__(self, conversations: ConversationStore, handoffs: HandoffStore, agents: AgentStore,
                 policies: HandoffPolicyStore, hub: EventHub, engine: DialogueEngine) -> None:
        self.conversations = conversations
        self.handoffs = handoffs
        self.agents = agents
        self.policies = policies
        self.hub = hub
        self._engine = engine
        self.on_transition: list[Any] = []  # callbacks (e.g. wake the webhook dispatcher)
        self.usage: Any = None  # gateway.billing.usage_service.UsageService: handoffs are a billable unit
        self._queue = HandoffQueue(handoffs, agents)

    # ---------------------------------------------------------------- output
    async def _say(self, tenant_id: str, conversation_id: str, sender: Sender, text: str | None,
                   payload: dict[str, Any] | None = None, in_reply_to: int | None = None) -> StoredMessage:
        """Store a message in the conversation and push it to the customer and the consoles."""
        message = await run_in_threadpool(self.conversations.append, tenant_id, conversation_id, sender, text, payload,
                                          None, in_reply_to)
        self._push_message(tenant_id, conversation_id, message)
        return message

    def _push_message(self, tenant_id: str, conversation_id: str, message: StoredMessage) -> None:
        event = {"type": "message", "conversation_id": conversation_id, "message": message.to_public()}
        self.hub.publish(conversation_topic(conversation_id), {"type": "message", "message": message.to_public()})
        self.hub.publish(agents_topic(tenant_id), event)

    def _changed(self, handoff: HandoffRecord, agent: AgentRecord | None = None) -> None:
        """Tell consoles and the customer's widget that the handoff moved."""
        public = handoff.to_public()
        state = handoff.state.value if handoff.state != HandoffState.RESOLVED else HandoffState.BOT.value
        frame: dict[str, Any] = {"type": "handoff", "state": state}
        if agent is not None and handoff.state in (HandoffState.ASSIGNED, HandoffState.HUMAN):
            frame["agent"] = agent.display_name
        self.hub.publish(conversation_topic(handoff.conversation_id), frame)
        self.hub.publish(agents_topic(handoff.tenant_id), {"type": "handoff", "handoff": public})
        for callback in self.on_transition:
            callback()

    # ----------------------------------------------------------------- start
    async def start(self, tenant_id: str, conversation_id: str, request: HandoffRequest, *, actor: str,
                    negative: bool = False, in_reply_to: int | None = None
                    ) -> tuple[HandoffRecord | None, list[StoredMessage]]:
        """Open a handoff and tell the customer; returns it and the messages the customer got.

        When a handoff is already open nothing changes and ``(None, [])`` is returned. ``in_reply_to``
        links the messages to the customer message that asked (a replay of that message shows them).
        """
        policy = await run_in_threadpool(self.policies.get, tenant_id)
        customer = await run_in_threadpool(self.conversations.customer, tenant_id, conversation_id)
        team = policy.team_for(request.trigger, request.team)
        priority = base_priority(policy, request.trigger, customer, negative)
        try:
            handoff = await run_in_threadpool(
                lambda: self.handoffs.open(tenant_id, conversation_id, request.trigger, actor=actor, team=team,
                                           priority=priority, detail=request.detail))
        except HandoffConflictError:
            return None, []
        if self.usage is not None:
            from gateway.billing.plans import Unit

            allowed = await run_in_threadpool(self.usage.meter_within_plan, tenant_id, Unit.HANDOFFS,
                                              f"handoff:{handoff.id}",
                                              {"conversation_id": conversation_id, "trigger": request.trigger})
            if not allowed:  # the plan's handoffs are used up (a hard stop): nobody was told of this one yet
                await run_in_threadpool(self.handoffs.discard, tenant_id, handoff.id)
                logger.info("handoff for %s refused: the plan's handoffs are used up", conversation_id)
                return None, [await self._say(
                    tenant_id, conversation_id, Sender.SYSTEM,
                    "Sorry, our team can't take more conversations here right now. Please reach us through our "
                    "other contact options; the assistant is still here for anything it can help with.",
                    {"handoff": {"event": "refused", "reason": "plan_limit"}}, in_reply_to)]
        logger.info("handoff %s opened for %s (%s, team %s)", handoff.id, conversation_id, request.trigger, team)
        self._changed(handoff)
        said: list[StoredMessage] = []
        if not policy.business_hours.is_open(utcnow()):
            said.append(await self._say(
                tenant_id, conversation_id, Sender.SYSTEM,
                f"Our team is offline right now (hours: {policy.business_hours.describe()}). You can leave a message "
                "and we'll reply here as soon as we're back, or keep chatting with the assistant.",
                {"buttons": WAITING_CHOICES, "handoff": {"event": "queued", "offline": True}}, in_reply_to))
            return handoff, said
        assigned, entries = await self._auto_assign(tenant_id, policy)
        if handoff.id in assigned:
            return handoff, said  # the "agent joined" message was already sent
        if assigned:
            entries = await self.queue(tenant_id, policy)  # others moved up: read the queue again
        entry = next((e for e in entries if e.handoff.id == handoff.id), None)
        position, eta = (entry.position, entry.eta_s) if entry else (1, None)
        said.append(await self._say(
            tenant_id, conversation_id, Sender.SYSTEM,
            f"I'm connecting you with a person from our team. {wait_text(position, eta)}",
            {"handoff": {"event": "queued", "position": position, "eta_s": eta}}, in_reply_to))
        await self.publish_positions(tenant_id, entries)
        return handoff, said

    # ----------------------------------------------------------------- queue
    async def queue(self, tenant_id: str, policy: HandoffPolicy | None = None) -> list[QueueEntry]:
        """Queued handoffs in the order they will be served, with positions and estimated waits."""
        policy = policy or await run_in_threadpool(self.policies.get, tenant_id)
        return await run_in_threadpool(self._queue.entries, tenant_id, policy, utcnow())

    async def publish_positions(self, tenant_id: str, entries: list[QueueEntry] | None = None) -> None:
        """Send every waiting customer their current place and estimated wait (``entries``: the queue,
        when the caller has just read it)."""
        for entry in entries if entries is not None else await self.queue(tenant_id):
            self.hub.publish(conversation_topic(entry.handoff.conversation_id),
                             {"type": "handoff", "state": "queued", "position": entry.position, "eta_s": entry.eta_s})
        self.hub.publish(agents_topic(tenant_id), {"type": "queue_changed"})

    async def auto_assign(self, tenant_id: str) -> list[str]:
        """Give queued handoffs, best first, to the least busy online agent of the right team."""
        return (await self._auto_assign(tenant_id))[0]

    async def _auto_assign(self, tenant_id: str, policy: HandoffPolicy | None = None
                           ) -> tuple[list[str], list[QueueEntry]]:
        """``auto_assign``, and the queue as it stood before (still the queue when nothing was assigned).

        The agents and their loads come with the queue's own read, not once per queued handoff (nor
        once more after it), and the loads are counted on as handoffs are given out; the store's
        assignment still checks capacity itself, and after a refused one they are read again. With
        nobody online, nobody is tried.
        """
        policy = policy or await run_in_threadpool(self.policies.get, tenant_id)
        if not policy.business_hours.is_open(utcnow()):
            return [], []
        view = await run_in_threadpool(self._queue.view, tenant_id, policy, utcnow())
        entries = view.entries
        assigned: list[str] = []
        # The agents and loads the queue was just estimated from; read again after a refused assignment.
        agents: list[AgentRecord] | None = view.agents
        loads: dict[str, int] = dict(view.loads)
        for entry in entries:
            if entry.handoff.left_message:
                continue
            if agents is None:
                agents = await run_in_threadpool(self.agents.list, tenant_id)
                loads = await run_in_threadpool(self.handoffs.agent_loads, tenant_id)
            if not on_duty(agents):
                break
            for agent in least_busy(agents, loads, entry.handoff.team):
                try:
                    await self._assign(entry.handoff, agent, actor="system", reason="auto_assigned",
                                       expect=HandoffState.QUEUED)
                except (HandoffConflictError, HandoffRuleError):
                    agents = None  # someone else changed the loads: read them again for the next handoff
                    continue
                assigned.append(entry.handoff.id)
                loads[agent.id] = loads.get(agent.id, 0) + 1
                break
        if assigned:
            await self.publish_positions(tenant_id)
        return assigned, entries

    async def _assign(self, handoff: HandoffRecord, agent: AgentRecord, *, actor: str, reason: str,
                      expect: HandoffState | None, capacity_check: bool = True) -> HandoffRecord:
        updated = await run_in_threadpool(
            lambda: self.handoffs.assign(handoff.tenant_id, handoff.id, agent.id, actor=actor, reason=reason,
                                         expect=expect, capacity_check=capacity_check))
        self._changed(updated, agent)
        await self._say(handoff.tenant_id, handoff.conversation_id, Sender.SYSTEM,
                        f"{agent.display_name} from our team joined the conversation.",
                        {"handoff": {"event": "assigned", "agent": agent.display_name}})
        return updated

    # ---------------------------------------------------------------- agents
    async def claim(self, agent: AgentRecord, handoff_id: str) -> HandoffRecord:
        """An agent takes a queued conversation; exactly one of simultaneous claims wins.

        Raises:
            HandoffConflictError: Someone else claimed it first (or it is no longer queued).
            HandoffRuleError: Wrong team or capacity full.
        """
        handoff = await self._get(agent.tenant_id, handoff_id)
        if not serves(agent, handoff.team):  # supervisors serve every team
            raise HandoffRuleError("wrong_team", f"this conversation is for the {handoff.team} team")
        updated = await self._assign(handoff, agent, actor=f"agent:{agent.id}", reason="claimed",
                                     expect=HandoffState.QUEUED)
        await self.publish_positions(agent.tenant_id)
        return updated

    async def reply(self, agent: AgentRecord, conversation_id: str, text: str, via: str = "console") -> StoredMessage:
        """The assigned agent writes to the customer; the first reply makes the conversation human-owned.

        ``via`` names where the agent wrote (console, slack) so relays do not echo it back there.
        """
        handoff = await self._open(agent.tenant_id, conversation_id)
        if handoff.agent_id != agent.id:
            raise HandoffRuleError("not_owner", "claim the conversation before replying")
        became_human = await run_in_threadpool(self.handoffs.mark_human, agent.tenant_id, handoff.id, agent.id)
        if became_human is not None:
            self._changed(became_human, agent)
        return await self._say(agent.tenant_id, conversation_id, Sender.AGENT, text,
                               {"agent": {"id": agent.id, "name": agent.display_name, "via": via}})

    def typing(self, agent: AgentRecord, conversation_id: str, on: bool) -> None:
        """Show the customer that the agent is typing."""
        self.hub.publish(conversation_topic(conversation_id),
                         {"type": "typing", "on": on, "who": "agent", "name": agent.display_name})

    async def note(self, agent: AgentRecord, conversation_id: str, text: str) -> dict[str, Any]:
        """An internal note (never sent to the customer)."""
        if not await run_in_threadpool(self.conversations.exists, agent.tenant_id, conversation_id):
            raise HandoffRuleError("unknown_conversation", "no such conversation")
        note = await run_in_threadpool(self.handoffs.add_note, agent.tenant_id, conversation_id, agent.id,
                                       text[:MAX_NOTE_CHARS])
        self.hub.publish(agents_topic(agent.tenant_id), {"type": "note", "conversation_id": conversation_id, "note": note})
        return note

    async def transfer(self, agent: AgentRecord, handoff_id: str, *, to_agent: str | None = None,
                       to_team: str | None = None) -> HandoffRecord:
        """Move a conversation to another agent or back to a team's queue."""
        handoff = await self._get(agent.tenant_id, handoff_id)
        if handoff.agent_id != agent.id and not agent.at_least("supervisor"):
            raise HandoffRuleError("not_owner", "only the assigned agent or a supervisor can transfer it")
        if (to_agent is None) == (to_team is None):
            raise HandoffRuleError("invalid_transfer", "name exactly one of to_agent or to_team")
        if to_agent is not None:
            target = await run_in_threadpool(self.agents.get, agent.tenant_id, to_agent)
            if target is None or not target.active:
                raise HandoffRuleError("unknown_agent", "no such active agent in this tenant")
            updated = await self._assign(handoff, target, actor=f"agent:{agent.id}", reason="transferred", expect=None)
        else:
            policy = await run_in_threadpool(self.policies.get, agent.tenant_id)
            if to_team not in policy.teams:
                raise HandoffRuleError("unknown_team", f"teams are: {', '.join(policy.teams)}")
            updated = await run_in_threadpool(
                lambda: self.handoffs.requeue(agent.tenant_id, handoff_id, actor=f"agent:{agent.id}",
                                              reason="transferred_to_team", team=to_team))
            self._changed(updated)
            await self._say(agent.tenant_id, handoff.conversation_id, Sender.SYSTEM,
                            "I'm passing you to a colleague who can help with this; please stay in the chat.",
                            {"handoff": {"event": "transferred", "team": to_team}})
            await self.auto_assign(agent.tenant_id)
            await self.publish_positions(agent.tenant_id)
        return updated

    async def resolve(self, agent: AgentRecord, handoff_id: str, label: str, note: str | None = None) -> HandoffRecord:
        """Close the handoff with a resolution label; the bot takes the conversation back."""
        handoff = await self._get(agent.tenant_id, handoff_id)
        if handoff.agent_id != agent.id and not agent.at_least("supervisor"):
            raise HandoffRuleError("not_owner", "only the assigned agent or a supervisor can resolve it")
        policy = await run_in_threadpool(self.policies.get, agent.tenant_id)
        if label not in policy.resolution_labels:
            raise HandoffRuleError("unknown_label", f"labels are: {', '.join(policy.resolution_labels)}")
        updated = await run_in_threadpool(
            lambda: self.handoffs.resolve(agent.tenant_id, handoff_id, actor=f"agent:{agent.id}", reason="resolved",
                                          label=label, note=(note or None) and note[:MAX_NOTE_CHARS]))
        await self._back_to_bot(updated, "Our team marked this conversation as resolved. Thanks for your patience!",
                                ask_csat=True)
        await self.auto_assign(agent.tenant_id)
        return updated

    async def take_over(self, agent: AgentRecord, conversation_id: str) -> HandoffRecord:
        """A supervisor takes a conversation from the bot (it is opened and assigned to them)."""
        if not agent.at_least("supervisor"):
            raise HandoffRuleError("forbidden", "only supervisors and admins can take over from the bot")
        handoff, _ = await self.start(agent.tenant_id, conversation_id,
                                      HandoffRequest("agent_takeover", detail={"by": agent.id}),
                                      actor=f"agent:{agent.id}")
        if handoff is None:
            raise HandoffConflictError("the conversation already has an open handoff")
        current = await self._get(agent.tenant_id, handoff.id)
        if current.agent_id == agent.id:
            return current
        return await self._assign(current, agent, actor=f"agent:{agent.id}", reason="taken_over", expect=None,
                                  capacity_check=False)

    # -------------------------------------------------------------- customer
    async def customer_message(self, tenant_id: str, conversation_id: str, message: StoredMessage) -> list[StoredMessage]:
        """A customer wrote while people own the conversation: no bot, agents see it live."""
        self.hub.publish(agents_topic(tenant_id), {"type": "message", "conversation_id": conversation_id,
                                                   "message": message.to_public()})
        handoff = await run_in_threadpool(self.handoffs.open_for_conversation, tenant_id, conversation_id)
        if handoff is None:
            return []
        text = (message.text or "").strip()
        if text == BACK_TO_BOT and handoff.state == HandoffState.QUEUED:
            updated = await run_in_threadpool(
                lambda: self.handoffs.resolve(tenant_id, handoff.id, actor="customer", reason="customer_back_to_bot",
                                              label="returned_to_bot"))
            return await self._back_to_bot(updated, "Okay, you're back with the assistant.")
        if text == LEAVE_MESSAGE and handoff.state == HandoffState.QUEUED:
            await run_in_threadpool(lambda: self.handoffs.flag(tenant_id, handoff.id, left_message=True))
            return [await self._say(tenant_id, conversation_id, Sender.SYSTEM,
                                    "Please write your message, with an e-mail address or phone number if you'd like "
                                    "us to contact you. Our team will reply here as soon as possible.",
                                    {"handoff": {"event": "leave_message"}})]
        return []

    async def _back_to_bot(self, handoff: HandoffRecord, text: str, ask_csat: bool = False) -> list[StoredMessage]:
        self._changed(handoff)
        payload: dict[str, Any] = {"handoff": {"event": "resolved", "label": handoff.resolution_label}}
        if ask_csat:  # channels show a 1-5 rating with this message (gateway.stores.feedback_store)
            payload["csat"] = {"handoff_id": handoff.id}
        said = [await self._say(handoff.tenant_id, handoff.conversation_id, Sender.SYSTEM, text, payload)]
        try:
            replies = await self._engine.trigger_intent(handoff.conversation_id, RESOLVED_INTENT, handoff.tenant_id)
        except RasaUnavailableError as exc:  # the bot is told on the next message anyway
            logger.warning("could not tell the bot that %s is back: %s", handoff.conversation_id, exc)
            replies = []
        for reply in replies:
            payload = {key: reply[key] for key in ("buttons", "custom") if reply.get(key)} or None
            if reply.get("text") or payload:
                said.append(await self._say(handoff.tenant_id, handoff.conversation_id, Sender.BOT, reply.get("text"),
                                            payload))
        await self.publish_positions(handoff.tenant_id)
        return said

    # --------------------------------------------------------------- monitor
    async def tick(self, tenant_ids: list[str], now: datetime | None = None) -> None:
        """Periodic work: assign free agents, offer alternatives after the no-agent timeout, update positions."""
        now = now or utcnow()
        for tenant_id in tenant_ids:
            await self.auto_assign(tenant_id)
            policy = await run_in_threadpool(self.policies.get, tenant_id)
            for entry in await self.queue(tenant_id, policy):
                handoff = entry.handoff
                waited = (now - handoff.queued_at).total_seconds()
                if handoff.left_message or handoff.timeout_offered_at is not None or waited < policy.no_agent_timeout_s:
                    continue
                await run_in_threadpool(lambda h=handoff: self.handoffs.flag(tenant_id, h.id, timeout_offered_at=now))
                await self._say(tenant_id, handoff.conversation_id, Sender.SYSTEM,
                                "Sorry, everyone in our team is still busy. You can leave a message and we'll reply "
                                "here as soon as possible, or go back to the assistant.",
                                {"buttons": WAITING_CHOICES, "handoff": {"event": "no_agent_timeout",
                                                                         "waited_s": int(waited)}})
            await self.publish_positions(tenant_id)

    async def tenants_waiting(self) -> list[str]:
        """Tenants with at least one queued handoff."""
        return await run_in_threadpool(self.handoffs.tenants_with_queue)

    # ---------------------------------------------------------------- helpers
    async def _get(self, tenant_id: str, handoff_id: str) -> HandoffRecord:
        handoff = await run_in_threadpool(self.handoffs.get, tenant_id, handoff_id)
        if handoff is None:
            raise HandoffRuleError("unknown_handoff", "no such handoff")
        return handoff

    async def _open(self, tenant_id: str, conversation_id: str) -> HandoffRecord:
        handoff = await run_in_threadpool(self.handoffs.open_for_conversation, tenant_id, conversation_id)
        if handoff is None:
            raise HandoffRuleError("not_in_handoff", "the bot owns this conversation; nobody can reply as an agent")
        return handoff

