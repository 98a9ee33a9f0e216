"""Stores each tenant's assistant as numbered revisions (template, settings layer, language data)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from gateway.assistants.assistant_settings import AssistantSettings
from gateway.assistants.templates import AssistantTemplate, UnknownTemplateError
from gateway.db.models import AssistantRevision, Tenant, aware
from gateway.errors import CodedError


class AssistantError(CodedError, ValueError):
    """An assistant operation that cannot be done; ``code`` is the API error code."""


@dataclass(frozen=True)
class AssistantView:
    """One revision of a tenant's assistant, detached from its session."""

    tenant_id: str
    revision: int
    template: str
    settings: AssistantSettings
    language_data: str
    content_hash: str
    source: str
    created_by: str
    created_at: str

    @classmethod
    def of(cls, row: AssistantRevision) -> "AssistantView":
        """Copy a row."""
        created = aware(row.created_at)
        return cls(row.tenant_id, row.revision, row.template, AssistantSettings.model_validate(row.settings),
                   row.language_data, row.content_hash, row.source, row.created_by,
                   created.isoformat() if created else "")

    def widget_identity(self) -> dict[str, str]:
        """What the widget shows where the tenant set no title or greeting: the business and its greeting."""
        try:
            template_greeting = AssistantTemplate.load(self.template).greeting
        except UnknownTemplateError:
            template_greeting = "Hi! I'm ${assistant_name}. How can I help?"
        return {"title": self.settings.business_name, "greeting": self.settings.greeting_text(template_greeting)}

    def to_public(self) -> dict[str, object]:
        """JSON for the API (language data left out: it is large; export it instead)."""
        return {"tenant_id": self.tenant_id, "revision": self.revision, "template": self.template,
                "settings": self.settings.model_dump(), "content_hash": self.content_hash, "source": self.source,
                "created_by": self.created_by, "created_at": self.created_at}


def content_hash(template: str, settings: AssistantSettings, language_data: str) -> str:
    """Hash of what a revision holds (an unchanged save makes no new revision)."""
    digest = hashlib.sha256()
    digest.update(template.encode())
    digest.update(json.dumps(settings.model_dump(), sort_keys=True).encode())
    digest.update(language_data.encode())
    return digest.hexdigest()


class AssistantStore:
    """Reads and writes tenants' assistants.

    Args:
        sessions: Gateway database.
    """

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def current(self, tenant_id: str) -> AssistantView | None:
        """The tenant's assistant (its newest revision), None when it has none."""
        with self._sessions() as session:
            row = session.execute(select(AssistantRevision).where(AssistantRevision.tenant_id == tenant_id)
                                  .order_by(AssistantRevision.revision.desc()).limit(1)).scalar_one_or_none()
            return AssistantView.of(row) if row else None

    def revisions(self, tenant_id: str) -> list[AssistantView]:
        """Every revision, newest first."""
        with self._sessions() as session:
            rows = session.execute(select(AssistantRevision).where(AssistantRevision.tenant_id == tenant_id)
                                   .order_by(AssistantRevision.revision.desc())).scalars().all()
            return [AssistantView.of(r) for r in rows]

    def create(self, tenant_id: str, template: AssistantTemplate, settings: AssistantSettings,
               actor: str) -> AssistantView:
        """Give a tenant its assistant from a template (its own copy of the template's language data).

        Raises:
            AssistantError: Unknown tenant, or the tenant has an assistant already.
        """
        if self.current(tenant_id) is not None:
            raise AssistantError("assistant_exists", f"{tenant_id} has an assistant already; import or edit it")
        return self.save(tenant_id, template.name, settings, template.language_data(), "template", actor)

    def save(self, tenant_id: str, template: str, settings: AssistantSettings, language_data: str, source: str,
             actor: str) -> AssistantView:
        """Store a new revision (none when nothing changed) and return the current one.

        Raises:
            AssistantError: Unknown tenant.
        """
        digest = content_hash(template, settings, language_data)
        for _ in range(5):
            try:
                with self._sessions.begin() as session:
                    if session.get(Tenant, tenant_id) is None:
                        raise AssistantError("unknown_tenant", f"unknown tenant {tenant_id!r}")
                    latest = session.execute(select(AssistantRevision).where(AssistantRevision.tenant_id == tenant_id)
                                             .order_by(AssistantRevision.revision.desc()).limit(1)).scalar_one_or_none()
                    if latest is not None and latest.content_hash == digest:
                        return AssistantView.of(latest)
                    number = (latest.revision if latest is not None else 0) + 1
                    row = AssistantRevision(tenant_id=tenant_id, revision=number, template=template,
                                            settings=settings.model_dump(), language_data=language_data,
                                            content_hash=digest, source=source, created_by=actor[:100])
                    session.add(row)
                    session.flush()
                    view = AssistantView.of(row)
                return view
            except IntegrityError:  # another save took the number: read again and retry
                continue
        raise AssistantError("busy", "the assistant is being changed by someone else; try again")
