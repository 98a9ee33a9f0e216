"""The handoff queue: the order queued handoffs are served in, each one's place and estimated wait,
and which agents can take one.

Order: effective priority (the handoff's priority plus aging, so nobody waits forever behind newer
urgent ones), then time queued. The wait estimate counts the free seats of the team's online agents.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.handoff.handoff_store import HandoffRecord, HandoffStore
from gateway.handoff.policy import HandoffPolicy, effective_priority, estimate_wait
from gateway.handoff.states import HandoffState
from gateway.stores.agent_store import AgentRecord, AgentStore


@dataclass(frozen=True)
class QueueEntry:
    """A queued handoff with its place in the queue."""

    handoff: HandoffRecord
    position: int
    effective_priority: float
    eta_s: int | None


@dataclass(frozen=True)
class QueueView:
    """The queue in serving order, with the agents and their loads it was estimated from."""

    entries: list[QueueEntry]
    agents: list[AgentRecord]
    loads: dict[str, int]


def serves(agent: AgentRecord, team: str | None) -> bool:
    """Whether the agent works for this team (no team: anyone; supervisors: every team)."""
    return team is None or team in agent.teams or agent.at_least("supervisor")


def on_duty(agents: list[AgentRecord], team: str | None = None) -> list[AgentRecord]:
    """Active, online agents who serve ``team`` (no team: every active, online agent)."""
    return [a for a in agents if a.active and a.status == "online" and serves(a, team)]


def least_busy(agents: list[AgentRecord], loads: dict[str, int], team: str | None) -> list[AgentRecord]:
    """Online agents of ``team`` with a free seat, least loaded first (share of capacity, then count)."""
    return sorted((a for a in on_duty(agents, team) if loads.get(a.id, 0) < a.capacity),
                  key=lambda a: (loads.get(a.id, 0) / a.capacity, loads.get(a.id, 0)))


def wait_text(position: int, eta_s: int | None) -> str:
    """What a customer is told of their place in the queue."""
    if eta_s is None:
        return (f"You're number {position} in the queue. Nobody from the team is free this very moment; "
                "I'll tell you as soon as someone joins.")
    minutes = max(1, round(eta_s / 60))
    return f"You're number {position} in the queue; the estimated wait is about {minutes} minute{'s' if minutes != 1 else ''}."


class HandoffQueue:
    """Reads a tenant's queue in serving order (blocking: call it from a worker thread).

    Args:
        handoffs: Handoff state, agent loads and handle times.
        agents: Agents and presence.
    """

    def __init__(self, handoffs: HandoffStore, agents: AgentStore) -> None:
        self.handoffs = handoffs
        self.agents = agents

    def entries(self, tenant_id: str, policy: HandoffPolicy, now: datetime) -> list[QueueEntry]:
        """Queued handoffs in the order they will be served, each with its place and estimated wait."""
        return self.view(tenant_id, policy, now).entries

    def view(self, tenant_id: str, policy: HandoffPolicy, now: datetime) -> QueueView:
        """``entries``, and the agents and loads they were estimated from (automatic assignment needs
        them next, so it need not read them again)."""
        queued = self.handoffs.list(tenant_id, [HandoffState.QUEUED], limit=1000)
        ranked = sorted(queued, key=lambda h: (-effective_priority(policy, h.priority, h.queued_at, now), h.queued_at))
        agents = self.agents.list(tenant_id)
        loads = self.handoffs.agent_loads(tenant_id)
        mean_handle = self.handoffs.mean_handle_seconds(tenant_id)
        entries = []
        for index, handoff in enumerate(ranked, start=1):
            team_agents = on_duty(agents, handoff.team)
            free = sum(max(0, a.capacity - loads.get(a.id, 0)) for a in team_agents)
            estimate = estimate_wait(policy, index, free, len(team_agents), mean_handle)
            entries.append(QueueEntry(handoff, index, effective_priority(policy, handoff.priority, handoff.queued_at, now),
                                      int(estimate.total_seconds()) if estimate else None))
        return QueueView(entries, agents, loads)
