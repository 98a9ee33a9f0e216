"""Routes one customer message: log it, run the bot turn, log and return the replies."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool

from gateway.db.models import Sender
from gateway.errors import CodedError
from gateway.handoff.states import HandoffState
from gateway.handoff.triggers import HandoffRequest, requested_by_bot, streak_request, was_fallback
from gateway.rasa_client import DialogueEngine, NoAssistantError, RasaUnavailableError
from gateway.reply_merging import merge_custom_payloads, only_handoff_request
from gateway.sentiment_trigger import NEGATIVE_SENTIMENT_INTENT, NegativeSentimentTrigger, is_negative
from gateway.stores.conversation_store import (
    ConversationStore,
    DuplicateClientIdError,
    StoredMessage,
)
from gateway.stores.feedback_store import FeedbackError, FeedbackStore

if TYPE_CHECKING:
    from gateway.billing.usage_service import QuotaDecision, UsageService
    from gateway.handoff.policy import HandoffPolicy
    from gateway.handoff.service import HandoffService

logger = logging.getLogger(__name__)

LIMIT_TEXT = ("Sorry, our assistant can't take more messages right now. Please try again later"
              " or reach us through our other contact options.")
CHANNEL_TEXT = "Sorry, this support channel isn't available. Please contact us through our website."
TROUBLE_TEXT = (
    "Sorry, I'm having trouble answering right now. Please try again in a moment, "
    "or ask for a person and our team will get back to you."
)

NOT_SET_UP_TEXT = ("Sorry, our assistant isn't set up yet. Please ask for a person and our team will get back to you.")

NO_REPLY_TEXT = ("Sorry, I couldn't finish that just now. Please try again in a moment, "
                 "or talk to a person from our team.")

#: The button payload that asks for a person (the bot's intent; the gateway honours it when the bot is down).
HANDOFF_PAYLOAD = "/human_handoff"
#: The button the gateway's own apologies carry.
PERSON_BUTTON = {"title": "Talk to a person", "payload": HANDOFF_PAYLOAD}

# Keys of a Rasa reply that are kept as the message payload next to its text.
_ANSWER_VOTES = {"kb_helpful": 1, "kb_not_helpful": 0}
_PAYLOAD_KEYS = ("buttons", "custom", "image", "attachment", "quick_replies")


#: System replies that mean the turn did not get its answer.
_FAILED_TURN_ERRORS = ("dialogue_unavailable", "no_reply")


def _unfinished(replayed: "TurnResult") -> bool:
    """Whether a replayed turn has no reply at all, or only a failed turn's apology."""
    replies = replayed.replies
    return not replies or all((r.payload or {}).get("error") in _FAILED_TURN_ERRORS for r in replies)


def _retrieve_exception(task: "asyncio.Future[Any]") -> None:
    """Mark a background read's failure as seen (it is raised where the read is awaited, if it is)."""
    if not task.cancelled():
        task.exception()


class MessageRejectedError(CodedError, ValueError):
    """The message breaks an input rule (empty, too long); nothing was stored."""


@dataclass(frozen=True)
class TurnResult:
    """The stored customer message and the replies it got."""

    customer: StoredMessage
    replies: list[StoredMessage]
    duplicate: bool = False


class MessageRouter:
    """Owns the order of turns inside a conversation and the log writes around them.

    Args:
        store: The conversation log.
        engine: The dialogue engine (Rasa).
        max_message_chars: Longest accepted customer message.
        sentiment_trigger: When to offer a person because of the customer's mood.
        handoff: Human handoff; while people own a conversation its messages never reach Rasa.
        feedback: Where "that helped" / "that didn't help" on a knowledge-base answer is recorded.
        usage: Metering and quotas; a message over a hard limit never reaches Rasa.
    """

    def __init__(
        self,
        store: ConversationStore,
        engine: DialogueEngine,
        max_message_chars: int,
        sentiment_trigger: NegativeSentimentTrigger | None = None,
        handoff: "HandoffService | None" = None,
        feedback: FeedbackStore | None = None,
        usage: "UsageService | None" = None,
    ) -> None:
        self._store = store
        self._usage = usage
        self._feedback = feedback
        self._handoff = handoff
        self._engine = engine
        self._max_chars = max_message_chars
        self._sentiment_trigger = sentiment_trigger or NegativeSentimentTrigger()
        # One turn at a time per conversation, so replies are stored in the order they were asked.
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    def validate(self, text: object) -> str:
        """Return the message text if it is acceptable.

        Raises:
            MessageRejectedError: Not a string, empty / blank, or longer than the limit.
        """
        if not isinstance(text, str):
            raise MessageRejectedError("invalid_text", "text must be a string")
        if not text.strip():
            raise MessageRejectedError("empty_message", "text must not be empty")
        if any(0xD800 <= ord(char) <= 0xDFFF for char in text):
            # A lone surrogate (JSON "\ud800") is no character: it cannot be stored or sent on as UTF-8.
            raise MessageRejectedError("invalid_text", "text contains an unpaired surrogate (not valid Unicode)")
        if len(text) > self._max_chars:
            raise MessageRejectedError(
                "message_too_long", f"text is {len(text)} characters; the limit is {self._max_chars}"
            )
        return text

    async def handle_customer_message(
        self,
        tenant_id: str,
        conversation_id: str,
        text: object,
        channel: str,
        client_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        payload: dict[str, Any] | None = None,
    ) -> TurnResult:
        """Store a customer message, run the bot turn and store its replies.

        A message whose ``client_id`` was already stored is not processed again: the replies
        stored the first time are returned instead. ``payload`` is kept with the customer message
        (e.g. the title of the button that produced it).

        Raises:
            MessageRejectedError: The text breaks an input rule.
            ConversationNotFoundError: Unknown conversation for this tenant.
        """
        valid_text = self.validate(text)
        async with self._locks[conversation_id]:
            try:
                customer, owner = await run_in_threadpool(
                    self._store.append_with_owner,
                    tenant_id,
                    conversation_id,
                    Sender.CUSTOMER,
                    valid_text,
                    payload,
                    client_id,
                )
            except DuplicateClientIdError:
                replayed = await self._replay(tenant_id, conversation_id, client_id or "")
                if not _unfinished(replayed) or (self._handoff is not None and await self._owner(
                        tenant_id, conversation_id) != HandoffState.BOT):
                    return replayed
                # The first attempt never completed (the gateway died mid-turn) or only got the "trouble"
                # reply: run it now. Rasa runs a message id once, so a turn it did finish is not repeated.
                logger.info("running the unfinished turn of message %s in %s again", replayed.customer.id,
                            conversation_id)
                again = await self._turn(tenant_id, conversation_id, replayed.customer, replayed.customer.text or "",
                                         channel, metadata, metered=True)
                return replace(again, duplicate=True)

            return await self._turn(tenant_id, conversation_id, customer, valid_text, channel, metadata,
                                    owner=HandoffState(owner))

    async def _turn(self, tenant_id: str, conversation_id: str, customer: StoredMessage, valid_text: str,
                    channel: str, metadata: dict[str, Any] | None, metered: bool = False,
                    owner: HandoffState | None = None) -> TurnResult:
        """Meter a stored customer message and run its bot (or agent) turn; the caller holds the lock.

        ``owner``: who owned the conversation when the message was stored (read again when not given).
        """
        if self._handoff is not None and owner is None:
            owner = await self._owner(tenant_id, conversation_id)
        human_owned = self._handoff is not None and owner != HandoffState.BOT
        metering: asyncio.Future[Any] | None = None
        if self._usage is not None and not metered:
            usage = self._usage
            if not human_owned and usage.cannot_refuse(tenant_id, channel):
                # Nothing can be refused: the message is counted while Rasa runs the turn (awaited below).
                metering = asyncio.ensure_future(run_in_threadpool(
                    usage.customer_message, tenant_id, conversation_id, customer.id, channel, human_owned))
                metering.add_done_callback(_retrieve_exception)
            else:
                decision = await run_in_threadpool(usage.customer_message, tenant_id, conversation_id, customer.id,
                                                   channel, human_owned)
                if not decision.allowed:
                    return await self._refuse(tenant_id, conversation_id, customer, decision)

        if human_owned:
            # People own the conversation: the agent sees the message, Rasa never does.
            replies = await self._handoff.customer_message(tenant_id, conversation_id, customer)
            return TurnResult(customer=customer, replies=replies)

        # The tenant comes last: it picks the tenant's agent in Rasa, and nothing a channel sends may change it.
        turn_metadata = {**(metadata or {}), "tenant_id": tenant_id, "channel": channel}
        # What the handoff rules need of the customer's earlier messages is read while Rasa runs the turn
        # (those messages are stored and annotated already: this conversation's turns run one at a time).
        context = asyncio.ensure_future(run_in_threadpool(self._recent_context, tenant_id, conversation_id))
        context.add_done_callback(_retrieve_exception)
        try:
            turn = await self._engine.send(conversation_id, valid_text, turn_metadata, message_id=str(customer.id))
        except RasaUnavailableError as exc:
            if metering is not None:
                await metering
            logger.warning("bot turn failed for %s: %s", conversation_id, exc)
            if valid_text.strip() == HANDOFF_PAYLOAD and self._handoff is not None:
                # The customer took the offer below while the bot is still down: the gateway hands over.
                _, said = await self._handoff.start(tenant_id, conversation_id,
                                                    HandoffRequest("dialogue_unavailable"), actor="gateway")
                if said:
                    return TurnResult(customer=customer, replies=said)
            missing = isinstance(exc, NoAssistantError)
            stored = await run_in_threadpool(
                self._store.append, tenant_id, conversation_id, Sender.SYSTEM,
                NOT_SET_UP_TEXT if missing else TROUBLE_TEXT,
                {"error": "no_assistant" if missing else "dialogue_unavailable", "buttons": [dict(PERSON_BUTTON)]},
                None, customer.id,
            )
            return TurnResult(customer=customer, replies=[stored])

        if metering is not None:
            await metering  # a metering failure fails the turn, as it did when metering came first
        nlu = dict(turn.nlu)
        messages = list(turn.messages)
        nlu["fallback"] = was_fallback(nlu, messages)
        request = requested_by_bot(messages)
        gateway_request = None
        if request is None:
            # One read of the customer's recent messages serves the streak rules and the sentiment offer
            # (one trip to a worker thread for the policy and that read, made during the Rasa call).
            policy, streak_depth, recent = await context
            previous = [m.nlu for m in recent if m.id != customer.id]
            if policy is not None:
                gateway_request = streak_request(nlu, previous[:streak_depth - 1], policy.repeated_fallback,
                                                 policy.negative_streak)
        if request is None and gateway_request is None:
            offer = await self._sentiment_offer(tenant_id, conversation_id, nlu, messages, previous)
            if offer is not None:
                reason, offer_messages = offer
                nlu["handoff_offer"] = reason
                messages += [{**m, "custom": {**(m.get("custom") or {}), "trigger": reason}} for m in offer_messages]
        await self._record_answer_vote(tenant_id, conversation_id, customer, nlu, channel)

        # The bot stays silent when the gateway itself hands over now (its own message replaces the bot's
        # attempt), and when people took the conversation during the turn: the store checks that as it
        # writes the replies, in the same statement.
        handed_over = gateway_request is not None
        handoff_request = request or gateway_request
        replies: list[tuple[Sender, str | None, dict[str, Any] | None]] = []
        for reply in merge_custom_payloads(messages):
            if handoff_request is not None and self._handoff is not None and only_handoff_request(reply):
                continue  # a control message: the handoff's own message below is what the customer reads
            payload = {key: reply[key] for key in _PAYLOAD_KEYS if key in reply} or None
            if handed_over:
                payload = {**(payload or {}), "suppressed": "handoff"}
            replies.append((Sender.BOT, reply.get("text"), payload))
        # The annotation and every reply in one transaction: the turn is stored whole or not at all.
        recorded = await run_in_threadpool(self._store.record_turn, tenant_id, conversation_id, customer.id, nlu,
                                           turn.model_id, replies, self._handoff is not None)
        silenced = handed_over or (self._handoff is not None and recorded.owner != HandoffState.BOT)
        customer = replace(customer, nlu=nlu, model_id=turn.model_id)
        stored_replies = [] if silenced else list(recorded.replies)
        if handoff_request is not None and self._handoff is not None:
            _, said = await self._handoff.start(tenant_id, conversation_id, handoff_request,
                                                actor="bot" if request else "gateway", negative=is_negative(nlu),
                                                in_reply_to=customer.id)
            stored_replies += said
        if not messages and not silenced and handoff_request is None:
            # Every turn of the bot answers something; silence means a step failed inside Rasa (an
            # action server that is down, say). The customer is not left waiting: they get an honest
            # reply with a person on offer, logged like any system message.
            logger.warning("the bot gave no reply in %s (model %s)", conversation_id, turn.model_id)
            stored_replies.append(await run_in_threadpool(
                self._store.append, tenant_id, conversation_id, Sender.SYSTEM, NO_REPLY_TEXT,
                {"error": "no_reply", "buttons": [dict(PERSON_BUTTON)]},
                None, customer.id, turn.model_id))
        return TurnResult(customer=customer, replies=stored_replies)

    async def resume(self, tenant_id: str, channel: str, customer: StoredMessage) -> TurnResult | None:
        """Run a stored customer message's turn that a gateway never finished (None: it was answered since)."""
        async with self._locks[customer.conversation_id]:
            if await run_in_threadpool(self._store.replies_to, tenant_id, customer.id):
                return None
            return await self._turn(tenant_id, customer.conversation_id, customer, customer.text or "", channel, None)

    async def _refuse(self, tenant_id: str, conversation_id: str, customer: StoredMessage,
                      decision: "QuotaDecision") -> TurnResult:
        """The plan does not cover this message: a polite answer (and a person, where the plan allows)."""
        text = CHANNEL_TEXT if decision.reason == "channel_not_in_plan" else LIMIT_TEXT
        stored = await run_in_threadpool(
            self._store.append, tenant_id, conversation_id, Sender.SYSTEM, text,
            {"quota": {"reason": decision.reason, "unit": decision.unit.value if decision.unit else None}},
            None, customer.id)
        replies = [stored]
        if decision.offer_handoff and self._handoff is not None:
            _, said = await self._handoff.start(tenant_id, conversation_id, HandoffRequest("quota_exceeded"),
                                                actor="gateway")
            replies += said
        return TurnResult(customer=customer, replies=replies)

    async def _record_answer_vote(self, tenant_id: str, conversation_id: str, customer: StoredMessage,
                                  nlu: dict[str, Any], channel: str) -> None:
        """A "that helped" / "that didn't" (button or words) rates the knowledge-base answer before it."""
        vote = _ANSWER_VOTES.get(str((nlu.get("intent") or {}).get("name")))
        if vote is None or self._feedback is None:
            return
        answer = await run_in_threadpool(self._store.last_kb_answer, tenant_id, conversation_id, customer.seq)
        if answer is None:
            return
        feedback = self._feedback
        try:
            await run_in_threadpool(lambda: feedback.record(tenant_id, conversation_id, "helpful", str(answer.id), vote,
                                                            channel))
        except FeedbackError as exc:  # a vote must never break the turn
            logger.warning("could not record an answer vote in %s: %s", conversation_id, exc.detail)

    def _recent_context(self, tenant_id: str, conversation_id: str
                        ) -> tuple[HandoffPolicy | None, int, list[StoredMessage]]:
        """The tenant's handoff policy, how many messages its streak rules look at, and the customer's recent
        messages (newest first, deep enough for those rules and the sentiment offer's cool-down)."""
        policy = self._handoff.policies.get(tenant_id) if self._handoff else None
        streak_depth = max(policy.repeated_fallback, policy.negative_streak) if policy else 0
        depth = max(streak_depth, self._sentiment_trigger.cooldown_messages + 2)
        return policy, streak_depth, self._store.recent_customer_messages(tenant_id, conversation_id, depth)

    async def _owner(self, tenant_id: str, conversation_id: str) -> HandoffState:
        assert self._handoff is not None
        return await run_in_threadpool(self._handoff.handoffs.owner_state, tenant_id, conversation_id)

    async def _sentiment_offer(
        self, tenant_id: str, conversation_id: str, nlu: dict[str, Any], replies: list[dict[str, Any]],
        previous: list[dict[str, Any] | None],
    ) -> tuple[str, list[dict[str, Any]]] | None:
        """Ask Rasa to offer a human when the customer's sentiment calls for it.

        ``previous``: the NLU of the customer's earlier messages, newest first.
        """
        trigger = self._sentiment_trigger
        previous = previous[:trigger.cooldown_messages + 1]
        offered_within = next((i + 1 for i, p in enumerate(previous) if (p or {}).get("handoff_offer")), None)
        reason = trigger.should_offer(nlu, previous, offered_within, replies)
        if reason is None:
            return None
        try:
            return reason, await self._engine.trigger_intent(conversation_id, NEGATIVE_SENTIMENT_INTENT, tenant_id)
        except RasaUnavailableError as exc:
            logger.warning("could not offer a human in %s: %s", conversation_id, exc)
            return None

    async def _replay(self, tenant_id: str, conversation_id: str, client_id: str) -> TurnResult:
        customer = await run_in_threadpool(
            self._store.find_by_client_id, tenant_id, conversation_id, client_id
        )
        assert customer is not None  # the store just reported it as a duplicate
        replies = await run_in_threadpool(self._store.replies_to, tenant_id, customer.id)
        visible = [reply for reply in replies if not (reply.payload or {}).get("suppressed")]
        answered = [r for r in visible if (r.payload or {}).get("error") not in _FAILED_TURN_ERRORS]
        # Once a resend got the real answer, the apology of the failed attempt is history, not the reply.
        return TurnResult(customer=customer, replies=answered or visible, duplicate=True)
