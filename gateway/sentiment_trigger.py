"""Decides when a customer's sentiment should make the bot offer a human agent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: External intent the gateway injects into Rasa; a rule answers it with the offer.
NEGATIVE_SENTIMENT_INTENT = "EXTERNAL_negative_sentiment"

# Intents whose own answer already offers a person (or hands over): no second offer.
ALREADY_OFFERING = frozenset({"human_handoff", "complaint", "payment_problem"})


def negative_score(nlu: dict[str, Any] | None) -> float:
    """Probability that a message is negative, from its logged NLU result (0 when unknown)."""
    sentiment = (nlu or {}).get("sentiment") or {}
    scores = sentiment.get("scores") or {}
    if "negative" in scores:
        return float(scores["negative"])
    return float(sentiment.get("score", 0.0)) if sentiment.get("label") == "negative" else 0.0


def is_negative(nlu: dict[str, Any] | None) -> bool:
    """Whether the classifier labelled the message negative."""
    return ((nlu or {}).get("sentiment") or {}).get("label") == "negative"


@dataclass(frozen=True)
class NegativeSentimentTrigger:
    """Two negative customer messages in a row, or one very negative one, offer a human.

    Attributes:
        very_negative: Negative probability at which one message is enough.
        cooldown_messages: After an offer, this many customer messages pass before the next one.
    """

    very_negative: float = 0.9
    cooldown_messages: int = 3

    def should_offer(self, current: dict[str, Any] | None, previous: list[dict[str, Any] | None],
                     offered_within: int | None, replies: list[dict[str, Any]]) -> str | None:
        """The reason to offer a human now, or None.

        Args:
            current: NLU result of the message just answered.
            previous: NLU results of earlier customer messages, newest first.
            offered_within: How many customer messages ago the last offer was made (None: never).
            replies: The bot's replies to the current message.
        """
        intent = ((current or {}).get("intent") or {}).get("name")
        if intent in ALREADY_OFFERING:
            return None
        if any(button.get("payload") == "/human_handoff" for reply in replies for button in reply.get("buttons") or []):
            return None
        if offered_within is not None and offered_within < self.cooldown_messages:
            return None
        if negative_score(current) >= self.very_negative:
            return "very_negative_message"
        if is_negative(current) and previous and is_negative(previous[0]):
            return "negative_twice_in_a_row"
        return None
