"""How Slack conversations are named in the gateway (one module, so the channel and its relay agree)."""

from __future__ import annotations

CHANNEL = "slack"


def conversation_ref(team_id: str, channel: str, thread_ts: str | None) -> str:
    """How a Slack conversation is addressed: a DM as a whole, a channel conversation by its thread."""
    return f"{team_id}:{channel}" if thread_ts is None else f"{team_id}:{channel}:{thread_ts}"


def parse_ref(ref: str) -> tuple[str, str, str | None]:
    """``(team, channel, thread_ts or None)`` of a conversation reference."""
    team, channel, *rest = ref.split(":", 2)
    return team, channel, rest[0] if rest else None
