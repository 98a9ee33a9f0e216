"""A tenant's handoff settings: business hours, timeouts, teams, routing and priorities."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from time import monotonic
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, field_validator

from gateway.db.models import HandoffPolicyRow, utcnow
from gateway.db.session import single_read_sessions

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

DEFAULT_RESOLUTION_LABELS = [
    "order_status", "return_item", "refund_status", "shipping_info", "payment_problem", "cancel_order",
    "account_help", "complaint", "ask_question", "other",
]


class BusinessHours(BaseModel):
    """Opening hours per weekday (``"09:00-17:00"``) in a time zone; a day left out is closed."""

    timezone: str = "UTC"
    days: dict[str, str] = Field(default_factory=lambda: {day: "00:00-24:00" for day in _DAYS})

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("days")
    @classmethod
    def _valid_days(cls, value: dict[str, str]) -> dict[str, str]:
        for day, span in value.items():
            if day not in _DAYS:
                raise ValueError(f"unknown day {day!r}; use {', '.join(_DAYS)}")
            _span(span)
        return value

    def is_open(self, at: datetime) -> bool:
        """Whether the team works at this moment."""
        local = at.astimezone(ZoneInfo(self.timezone))
        span = self.days.get(_DAYS[local.weekday()])
        if not span:
            return False
        start, end = _span(span)
        minutes = local.hour * 60 + local.minute
        return start <= minutes < end

    def describe(self) -> str:
        """Readable hours for the customer, e.g. ``mon-fri 09:00-17:00 (Europe/Berlin)``."""
        parts = [f"{day} {self.days[day]}" for day in _DAYS if self.days.get(day)]
        return f"{', '.join(parts) or 'closed'} ({self.timezone})"


def _span(span: str) -> tuple[int, int]:
    try:
        start_text, end_text = span.split("-")
        start = _minutes(start_text)
        end = _minutes(end_text)
    except ValueError as exc:
        raise ValueError(f"hours must look like 09:00-17:00, got {span!r}") from exc
    if not 0 <= start < end <= 24 * 60:
        raise ValueError(f"hours must look like 09:00-17:00, got {span!r}")
    return start, end


def _minutes(text: str) -> int:
    if text.strip() == "24:00":
        return 24 * 60
    parsed = time.fromisoformat(text.strip())
    return parsed.hour * 60 + parsed.minute


class HandoffPolicy(BaseModel):
    """Everything a tenant configures about handoffs.

    Attributes:
        business_hours: When people answer; outside them the customer may leave a message.
        no_agent_timeout_s: How long a customer waits in the queue before being offered to leave a
            message or go back to the bot.
        teams: Team (skill) names.
        trigger_teams: Trigger or intent -> team that handles it (e.g. ``payment_dispute`` -> ``billing``).
        default_team: Team of handoffs no rule routes (None: any agent).
        vip_plans: Customer plans (from the host page's customer metadata) that raise priority.
        aging_s: Waiting this long raises a handoff's priority by one level.
        default_handle_time_s: Assumed handle time before there is history, for the wait estimate.
        resolution_labels: Labels an agent can resolve with (they later suggest intents for retraining).
        repeated_fallback: Consecutive not-understood messages that hand over to a person.
        negative_streak: Consecutive negative messages (after an offer) that hand over to a person.
    """

    business_hours: BusinessHours = Field(default_factory=BusinessHours)
    no_agent_timeout_s: int = Field(default=300, ge=5)
    teams: list[str] = Field(default_factory=lambda: ["general", "billing"])
    trigger_teams: dict[str, str] = Field(default_factory=lambda: {"payment_dispute": "billing",
                                                                    "payment_problem": "billing"})
    default_team: str | None = "general"
    vip_plans: list[str] = Field(default_factory=lambda: ["premium", "enterprise"])
    aging_s: int = Field(default=120, ge=1)
    default_handle_time_s: int = Field(default=240, ge=1)
    resolution_labels: list[str] = Field(default_factory=lambda: list(DEFAULT_RESOLUTION_LABELS))
    repeated_fallback: int = Field(default=2, ge=1)
    negative_streak: int = Field(default=3, ge=2)

    def team_for(self, trigger: str, requested: str | None = None) -> str | None:
        """The team a new handoff goes to."""
        if requested and requested in self.teams:
            return requested
        return self.trigger_teams.get(trigger, self.default_team)


# Base priority by trigger: angry customers and disputes first.
_TRIGGER_PRIORITY = {"payment_dispute": 2, "negative_sentiment": 2, "complaint": 1, "repeated_fallback": 1}


def base_priority(policy: HandoffPolicy, trigger: str, customer: dict[str, Any] | None, negative: bool) -> int:
    """Priority level of a new handoff (higher first): trigger, sentiment and customer plan."""
    level = _TRIGGER_PRIORITY.get(trigger, 0)
    if negative and trigger != "negative_sentiment":
        level += 1
    plan = str((customer or {}).get("plan", "")).lower()
    if plan and plan in {p.lower() for p in policy.vip_plans}:
        level += 2
    return level


def effective_priority(policy: HandoffPolicy, level: int, queued_at: datetime, now: datetime | None = None) -> float:
    """Priority with waiting time added, so nobody waits forever behind higher levels."""
    waited = ((now or utcnow()) - queued_at).total_seconds()
    return level + max(0.0, waited) / policy.aging_s


def estimate_wait(policy: HandoffPolicy, position: int, free_agents: int, online_agents: int,
                  mean_handle_s: float | None) -> timedelta | None:
    """Expected wait for the ``position``-th in the queue (1-based); None when nobody is online."""
    if online_agents == 0:
        return None
    handle = mean_handle_s or policy.default_handle_time_s
    ahead = max(0, position - free_agents)
    return timedelta(seconds=int(handle * ahead / online_agents) if ahead else 30)


#: Seconds a policy read is reused: every customer message reads it, and another replica's change
#: reaches this one within this time (a change made here is seen at once).
POLICY_CACHE_S = 5.0


class HandoffPolicyStore:
    """Reads and writes tenants' policies (defaults when a tenant has none)."""

    def __init__(self, sessions) -> None:  # type: ignore[no-untyped-def]
        self._sessions = sessions
        self._reads = single_read_sessions(sessions)  # the cache's refresh: one statement, no BEGIN/ROLLBACK
        self._cache: dict[str, tuple[float, HandoffPolicy]] = {}

    def get(self, tenant_id: str) -> HandoffPolicy:
        """The tenant's policy (a copy: changing it changes nothing stored)."""
        now = monotonic()
        hit = self._cache.get(tenant_id)
        if hit is not None and now - hit[0] < POLICY_CACHE_S:
            return hit[1].model_copy(deep=True)
        with self._reads() as session:
            row = session.get(HandoffPolicyRow, tenant_id)
            policy = HandoffPolicy.model_validate(row.config) if row else HandoffPolicy()
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[tenant_id] = (now, policy)
        return policy.model_copy(deep=True)

    def put(self, tenant_id: str, policy: HandoffPolicy) -> None:
        """Replace the tenant's policy."""
        self._cache.pop(tenant_id, None)
        with self._sessions.begin() as session:
            row = session.get(HandoffPolicyRow, tenant_id)
            if row is None:
                session.add(HandoffPolicyRow(tenant_id=tenant_id, config=policy.model_dump(), updated_at=utcnow()))
            else:
                row.config = policy.model_dump()
                row.updated_at = utcnow()
        self._cache.pop(tenant_id, None)  # again: a read racing the write may have cached the old one
