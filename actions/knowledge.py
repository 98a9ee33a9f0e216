"""General questions, answered from the tenant's knowledge base with a citation."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.context import knowledge_base, tenant_of

logger = logging.getLogger(__name__)

MAX_PASSAGE_CHARS = 600
FEEDBACK_BUTTONS = [
    {"title": "Yes, that helped", "payload": "/kb_helpful"},
    {"title": "No", "payload": "/kb_not_helpful"},
]
HUMAN_BUTTONS = [{"title": "Yes, please", "payload": "/affirm"}, {"title": "No, thanks", "payload": "/deny"}]


def _warm_up() -> None:
    """Load the embedder when the action server starts, not on the first customer's question."""
    try:
        knowledge_base().warm_up()
    except Exception:  # noqa: BLE001 - a broken knowledge base must not stop the action server
        logger.exception("knowledge base could not be loaded at start-up")


if os.environ.get("SWITCHBOARD_ACTIONS_WARM_UP") == "1":  # set by the stack runner for the action server
    threading.Thread(target=_warm_up, name="kb-warm-up", daemon=True).start()


def _passage(text: str) -> str:
    """The passage, cut at a sentence end when long."""
    text = text.strip()
    if len(text) <= MAX_PASSAGE_CHARS:
        return text
    cut = text[:MAX_PASSAGE_CHARS]
    end = max(cut.rfind(". "), cut.rfind("\n"))
    return (cut[: end + 1] if end > MAX_PASSAGE_CHARS // 2 else cut).rstrip() + " …"


class ActionAnswerQuestion(Action):
    """Answer from the tenant's knowledge base, else with the tenant's own text, else offer a person.

    Informational intents (``bot/skills.yml``) come here too: the help centre's cited passage wins over
    any canned text; ``utter_answer_<intent>`` in the tenant's domain is said only when it has none.

    The reply carries the citations (title, url, source, chunk id, scores) in its custom payload,
    so the gateway stores exactly what the customer was shown; the ``kb_answered`` slot tells the
    dialogue which follow-up (feedback or the offer of a person) comes next.
    """

    def name(self) -> str:
        return "action_answer_question"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        tenant = tenant_of(tracker)
        latest = tracker.latest_message or {}
        intent = (latest.get("intent") or {}).get("name")
        question = latest.get("text") or ""
        if question.startswith("/") and intent:
            question = intent.replace("_", " ")  # a button ("/return_item"): search for what it stands for
        answer = None
        if tenant and question.strip():
            try:
                answer = knowledge_base().search(tenant, question, k=3)
            except Exception:  # noqa: BLE001 - the customer gets the honest fallback, the log gets the cause
                logger.exception("knowledge-base search failed for tenant %s", tenant)
        if answer is None or not answer.answerable or not answer.results:
            best = round(answer.best_dense_score, 4) if answer else None
            kept = f"utter_answer_{intent}" if intent else None
            if kept and kept in (domain.get("responses") or {}):
                # The tenant's own text for this intent (or the skill's, e.g. a complaint's offer of a person).
                dispatcher.utter_message(response=kept, json_message={
                    "kb": {"answerable": False, "best_score": best, "citations": [], "response": kept}})
                return [SlotSet("kb_answered", False)]
            dispatcher.utter_message(
                text="I couldn't find an answer to that in our help centre. Would you like me to connect you with a person?",
                buttons=HUMAN_BUTTONS,
                json_message={"kb": {"answerable": False, "best_score": best, "citations": []}},
            )
            return [SlotSet("kb_answered", False)]
        top = answer.results[0]
        citation: dict[str, Any] = {"title": top.title, "url": top.url, "source": top.source, "chunk_id": top.chunk_id,
                                    "document_id": top.document_id, "score": top.score, "dense_score": top.dense_score}
        link = f"\n\nSource: {top.title} – {top.url}" if top.url else f"\n\nSource: {top.title}"
        dispatcher.utter_message(
            text=f"{_passage(top.text)}{link}\n\nWas this helpful?",
            buttons=FEEDBACK_BUTTONS,
            json_message={"kb": {"answerable": True, "best_score": round(answer.best_dense_score, 4), "citations": [citation]}},
        )
        return [SlotSet("kb_answered", True)]
