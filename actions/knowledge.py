"""General questions, answered from the tenant's knowledge base."""

from __future__ import annotations

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict


class ActionAnswerQuestion(Action):
    """Route a general question to the knowledge base.

    The knowledge base (FAISS retrieval with citations) is its own capability; until a tenant
    has one, the honest answer is that the help centre cannot be searched, with the offer of a
    person, which is also what happens when retrieval finds nothing good enough.
    """

    def name(self) -> str:
        return "action_answer_question"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        dispatcher.utter_message(response="utter_kb_unavailable")
        return []
