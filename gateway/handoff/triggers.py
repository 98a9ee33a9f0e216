"""Gateway-side reasons to hand a conversation to people.

The bot asks for a person itself through a reply's custom payload (``{"handoff": {"reason": …}}``
from ``action_request_human``); the streak triggers below need the conversation's history, which
the gateway has and Rasa's rules do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.sentiment_trigger import is_negative

FALLBACK_INTENTS = {"nlu_fallback", "out_of_scope"}


@dataclass(frozen=True)
class HandoffRequest:
    """Why and where a conversation should go to people."""

    trigger: str
    team: str | None = None
    detail: dict[str, Any] | None = None


def requested_by_bot(replies: list[dict[str, Any]]) -> HandoffRequest | None:
    """The handoff an action asked for in its replies, if any."""
    for reply in replies:
        request = (reply.get("custom") or {}).get("handoff")
        if isinstance(request, dict):
            trigger = str(request.get("reason") or "customer_request")[:64]
            team = request.get("team") if isinstance(request.get("team"), str) else None
            detail = {k: v for k, v in request.items() if k not in ("reason", "team")} or None
            return HandoffRequest(trigger, team, detail)
    return None


def was_fallback(nlu: dict[str, Any], replies: list[dict[str, Any]]) -> bool:
    """The bot did not understand the message and the knowledge base had no answer either."""
    intent = (nlu.get("intent") or {}).get("name")
    if intent not in FALLBACK_INTENTS:
        return False
    return not any(((reply.get("custom") or {}).get("kb") or {}).get("answerable") for reply in replies)


def streak_request(nlu: dict[str, Any], previous: list[dict[str, Any] | None], fallback_limit: int,
                   negative_limit: int) -> HandoffRequest | None:
    """Repeated fallback or lasting negative sentiment, counted over consecutive customer messages.

    Args:
        nlu: The current message's NLU result, already marked with ``fallback``.
        previous: NLU results of earlier customer messages, newest first (None when not sent to the bot).
        fallback_limit: Consecutive fallbacks that hand over.
        negative_limit: Consecutive negative messages that hand over.
    """
    def streak(test: Any) -> int:
        count = 0
        for item in [nlu, *previous]:
            if item is None or not test(item):
                break
            count += 1
        return count

    fallbacks = streak(lambda item: bool(item.get("fallback")))
    if fallbacks >= fallback_limit:
        return HandoffRequest("repeated_fallback", detail={"consecutive": fallbacks})
    negatives = streak(is_negative)
    if negatives >= negative_limit:
        return HandoffRequest("negative_sentiment", detail={"consecutive": negatives})
    return None
