"""The handoff state machine: who owns a conversation and which moves are allowed."""

from __future__ import annotations

import enum

from gateway.errors import CodedError


class HandoffState(str, enum.Enum):
    """States of a handoff; ``BOT`` is the conversation's state when no handoff is open."""

    BOT = "bot"
    QUEUED = "queued"
    ASSIGNED = "assigned"
    HUMAN = "human"
    RESOLVED = "resolved"


#: Open states: the bot is silent and customer messages go to people.
OPEN_STATES = frozenset({HandoffState.QUEUED, HandoffState.ASSIGNED, HandoffState.HUMAN})

#: Allowed moves. ASSIGNED -> ASSIGNED and HUMAN -> ASSIGNED are transfers to another agent;
#: ASSIGNED/HUMAN -> QUEUED are transfers to a team (or an agent giving the conversation back).
ALLOWED: dict[HandoffState, frozenset[HandoffState]] = {
    HandoffState.BOT: frozenset({HandoffState.QUEUED}),
    HandoffState.QUEUED: frozenset({HandoffState.ASSIGNED, HandoffState.RESOLVED}),
    HandoffState.ASSIGNED: frozenset({HandoffState.HUMAN, HandoffState.ASSIGNED, HandoffState.QUEUED,
                                      HandoffState.RESOLVED}),
    HandoffState.HUMAN: frozenset({HandoffState.ASSIGNED, HandoffState.QUEUED, HandoffState.RESOLVED}),
    HandoffState.RESOLVED: frozenset(),
}


class HandoffConflictError(RuntimeError):
    """The handoff is not in the state the caller expected (someone else moved it first)."""

    def __init__(self, detail: str, current: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.current = current


class HandoffRuleError(CodedError, ValueError):
    """The request breaks a rule (capacity full, wrong team, not the owner, bad label)."""


def check_move(current: HandoffState, target: HandoffState) -> None:
    """Raise unless ``current -> target`` is a move of the state machine.

    Raises:
        HandoffConflictError: The move is not allowed from the current state.
    """
    if target not in ALLOWED[current]:
        raise HandoffConflictError(f"a {current.value} conversation cannot become {target.value}", current.value)
