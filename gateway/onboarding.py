"""Onboarding a business: tenant, plan, widget key, first admin and first assistant in one step.

Every input is checked before anything is stored (id, name, plan, template, e-mail); the tenant row is
the gate two racing creations of one id meet (one wins, the other gets ``tenant_exists``); if a later
step fails, what was stored is removed again. The first assistant then trains (probe first, seconds)
through the same pipeline, gate and registry as every retraining, unmetered, and goes live.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from gateway.assistants.assistant_service import AssistantService
from gateway.assistants.assistant_store import AssistantError
from gateway.billing.plans import UnknownPlanError
from gateway.billing.usage_service import UsageService
from gateway.db.models import Agent, AssistantRevision, Subscription
from gateway.errors import CodedError
from gateway.settings import Settings
from gateway.stores.agent_store import AgentStore
from gateway.stores.tenant_store import TenantExistsError, TenantStore

TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{1,63}$")


class OnboardingError(CodedError, ValueError):
    """Input that cannot make a tenant; ``code`` is the API error code."""


@dataclass(frozen=True)
class NewTenant:
    """What onboarding created (the password is shown once and stored only as a hash)."""

    tenant_id: str
    name: str
    plan: str
    template: str | None
    widget_key: str
    admin_email: str
    admin_password: str

    def to_public(self) -> dict[str, Any]:
        """JSON for the operator API."""
        return {"id": self.tenant_id, "name": self.name, "plan": self.plan, "template": self.template,
                "widget_key": self.widget_key,
                "admin": {"email": self.admin_email, "password": self.admin_password,
                          "login": "/console", "admin_pages": "/admin"}}


class TenantOnboarding:
    """Creates tenants with everything they need to go live.

    Args:
        settings: Paths and Rasa address (for the first training run).
        sessions: Gateway database.
        usage: The plans and subscriptions service (the gateway's own, with its clock, when called from it).
    """

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], usage: UsageService | None = None) -> None:
        self.settings = settings
        self.sessions = sessions
        self.usage = usage or UsageService(sessions)
        self.assistants = AssistantService(sessions)

    def create(self, tenant_id: str, name: str, plan: str, template: str | None, admin_email: str | None,
               actor: str) -> NewTenant:
        """Create the tenant, its plan, widget key, first admin and (with a template) assistant, not yet trained.

        Raises:
            OnboardingError: A bad id, name, plan, template or e-mail (nothing stored), or the id is taken.
        """
        usage = self.usage
        usage.plans.seed()
        if not TENANT_ID.match(tenant_id):
            raise OnboardingError("invalid_tenant_id", "tenant ids are 2-64 lowercase letters, digits, - and _")
        if not name.strip() or len(name) > 200:
            raise OnboardingError("invalid_name", "the name must have 1-200 characters")
        try:
            usage.plans.get(plan)
        except UnknownPlanError as exc:
            raise OnboardingError("unknown_plan", str(exc)) from exc
        try:
            template_view = self.assistants.template(template) if template is not None else None
        except AssistantError as exc:
            raise OnboardingError(exc.code, exc.detail) from exc
        email = (admin_email or f"admin@{tenant_id}.example").strip().lower()
        if "@" not in email or len(email) > 254 or any(c.isspace() for c in email):
            raise OnboardingError("invalid_email", "admin_email must be an e-mail address")
        password = secrets.token_urlsafe(15)
        tenants = TenantStore(self.sessions)
        try:
            tenants.create(tenant_id, name.strip())
        except TenantExistsError as exc:
            raise OnboardingError("tenant_exists", str(exc)) from exc
        try:
            usage.change_plan(tenant_id, plan, actor=actor)
            key = tenants.issue_widget_key(tenant_id)
            AgentStore(self.sessions).create(tenant_id, email, f"{name.strip()} admin", password, role="admin",
                                             teams=["general"])
            if template_view is not None:
                self.assistants.create(tenant_id, template_view.name, actor, business_name=name.strip())
        except Exception:
            self._undo(tenant_id)
            raise
        return NewTenant(tenant_id, name.strip(), plan, template_view.name if template_view else None, key, email,
                         password)

    def _undo(self, tenant_id: str) -> None:
        with self.sessions.begin() as session:
            for table in (AssistantRevision, Agent, Subscription):
                session.execute(delete(table).where(table.tenant_id == tenant_id))
        TenantStore(self.sessions).delete(tenant_id)

    def train_first(self, tenant_id: str, actor: str, progress: Callable[[str], None] | None = None) -> Any:
        """Train the tenant's first assistant and put it live (not metered); returns the registry version."""
        from gateway.learning.retraining import RetrainingPipeline

        pipeline = RetrainingPipeline(self.settings, self.sessions, progress=progress)
        return pipeline.first_model(tenant_id, actor)
