"""Block Kit for Switchboard messages: replies with quick replies and citations, escalations, CSAT."""

from __future__ import annotations

import re
from typing import Any

QUICK_REPLY = "sb_quick_reply"
CSAT = "sb_csat"
CLAIM = "sb_claim"
RESOLVE = "sb_resolve"
MAX_SECTION_CHARS = 2900  # Slack's limit is 3000 per section text
MAX_BUTTON_VALUE = 2000

_LINK = re.compile(r"\[([^\]\n]{1,200})\]\((https?://[^\s)<>]+)\)")
_BOLD = re.compile(r"\*\*([^*\n]+)\*\*")


def escape(text: str) -> str:
    """Slack's three control characters, escaped: no message text can mention @channel or forge a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_mrkdwn(text: str) -> str:
    """Our light markdown (``**bold**``, ``[label](url)``) as Slack mrkdwn, everything else escaped."""
    escaped = escape(text)
    escaped = _LINK.sub(lambda m: f"<{m.group(2)}|{m.group(1)}>", escaped)
    return _BOLD.sub(r"*\1*", escaped)


def citations_of(payload: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Knowledge-base citations carried by a bot reply."""
    kb = ((payload or {}).get("custom") or {}).get("kb") or {}
    return [c for c in kb.get("citations") or [] if isinstance(c, dict) and isinstance(c.get("title"), str)]


def strip_citation_text(text: str, citations: list[dict[str, Any]]) -> str:
    """Remove the plain-text "Source: …" line a citation block replaces."""
    for citation in citations:
        text = text.replace(f"\n\nSource: {citation['title']} – {citation.get('url')}", "")
        text = text.replace(f"\n\nSource: {citation['title']}", "")
    return text


def _button(text: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {"type": "button", "text": {"type": "plain_text", "text": text[:75], "emoji": True},
                              "action_id": action_id, "value": value[:MAX_BUTTON_VALUE]}
    if style:
        button["style"] = style
    return button


def message_blocks(text: str | None, payload: dict[str, Any] | None, *, who: str | None = None,
                   with_buttons: bool = True) -> tuple[str, list[dict[str, Any]]]:
    """``(fallback text, blocks)`` of one gateway message for a customer's Slack thread."""
    payload = payload or {}
    citations = citations_of(payload)
    body = strip_citation_text(text or "", citations)
    blocks: list[dict[str, Any]] = []
    if who:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"*{escape(who)}*"}]})
    if body:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": to_mrkdwn(body)[:MAX_SECTION_CHARS]}})
    if citations:
        links = [f"<{c['url']}|{escape(c['title'])}>" if str(c.get("url", "")).startswith(("http://", "https://"))
                 else escape(c["title"]) for c in citations]
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": "Source: " + ", ".join(links)}]})
    buttons = payload.get("buttons") or []
    if with_buttons and buttons:
        elements = [_button(b["title"], f"{QUICK_REPLY}:{i}", str(b.get("payload") or b["title"]))
                    for i, b in enumerate(buttons[:5]) if isinstance(b, dict) and isinstance(b.get("title"), str)]
        if elements:
            blocks.append({"type": "actions", "block_id": "quick_replies", "elements": elements})
    csat = payload.get("csat")
    if isinstance(csat, dict) and isinstance(csat.get("handoff_id"), str):
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "How did we do?"}})
        blocks.append({"type": "actions", "block_id": "csat", "elements": [
            _button("★" * score, f"{CSAT}:{score}", f"{csat['handoff_id']}:{score}") for score in range(1, 6)]})
    fallback = (f"{who}: " if who else "") + (body or "")
    return fallback[:MAX_SECTION_CHARS] or "…", blocks


def escalation_blocks(handoff: dict[str, Any], customer: dict[str, Any] | None, last_messages: list[str],
                      *, agent_name: str | None = None, labels: list[str] | None = None) -> tuple[str, list[dict[str, Any]]]:
    """The announcement of a handoff in the escalation channel, as it stands (queued / claimed / resolved)."""
    state = handoff.get("state")
    who = escape((customer or {}).get("name") or (customer or {}).get("email") or "A customer")
    trigger = escape(str(handoff.get("trigger") or "request")).replace("_", " ")
    team = escape(str(handoff.get("team") or "general"))
    headline = f"*{who}* needs a person ({trigger}, team {team})"
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": headline}}]
    if last_messages:
        quoted = "\n".join(f"> {escape(line[:300])}" for line in last_messages[-3:])
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": quoted[:MAX_SECTION_CHARS]}})
    handoff_id = str(handoff["id"])
    if state == "queued":
        blocks.append({"type": "actions", "block_id": "claim",
                       "elements": [_button("Claim", CLAIM, handoff_id, "primary")]})
        status = "Waiting in the queue. Claim it, then reply in this thread."
    elif state in ("assigned", "human"):
        options = [{"text": {"type": "plain_text", "text": label.replace("_", " ")[:75]},
                    "value": f"{handoff_id}:{label}"} for label in (labels or ["other"])[:100]]
        blocks.append({"type": "actions", "block_id": "resolve", "elements": [
            {"type": "static_select", "action_id": RESOLVE, "options": options,
             "placeholder": {"type": "plain_text", "text": "Resolve as…"}}]})
        status = f"Claimed by {escape(agent_name or 'an agent')}. Replies in this thread go to the customer."
    else:
        status = f"Resolved ({escape(str(handoff.get('resolution_label') or 'closed'))})."
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": status}]})
    return f"{who} needs a person: {status}", blocks


def agent_signature(payload: dict[str, Any] | None) -> str:
    """How an agent's message is signed in Slack: the agent's name and the team."""
    agent = (payload or {}).get("agent") or {}
    return f"{agent.get('name') or 'Agent'} · support team"
