"""Shapes Rasa's replies into the gateway's messages: one stored message per answer, with its payload.

Rasa's output channels split one ``utter_message`` into several messages; the gateway stores and
shows them as the bot meant them.
"""

from __future__ import annotations

from typing import Any


def merge_custom_payloads(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fold custom-only replies into the reply before them.

    Rasa's output channels split one ``utter_message(text=…, buttons=…, json_message=…)`` into a
    text message and a custom one; stored apart, the citations would be detached from the answer
    they belong to (and the buttons would no longer be on the latest message).
    """
    merged: list[dict[str, Any]] = []
    for message in messages:
        content_keys = {k for k, v in message.items() if v and k not in ("recipient_id", "custom")}
        if merged and not content_keys and isinstance(message.get("custom"), dict):
            previous = merged[-1]
            previous["custom"] = {**(previous.get("custom") or {}), **message["custom"]}
            continue
        merged.append(dict(message))
    return merged


def only_handoff_request(reply: dict[str, Any]) -> bool:
    """Whether a bot reply is nothing but the request for a person (no text, buttons or other payload)."""
    content = {k for k, v in reply.items() if v and k not in ("recipient_id", "custom")}
    custom = reply.get("custom")
    return not content and isinstance(custom, dict) and set(custom) <= {"handoff"}
