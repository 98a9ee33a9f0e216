"""Slack workspaces installed per tenant: team id → tenant, encrypted bot token, escalation channel."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors.slack.token_cipher import TokenCipher
from gateway.db.models import SlackWorkspace, utcnow


class WorkspaceConflictError(ValueError):
    """The workspace is already connected to another tenant."""


@dataclass(frozen=True)
class WorkspaceRecord:
    """One installed workspace, with its bot token decrypted."""

    team_id: str
    tenant_id: str
    team_name: str | None
    bot_token: str
    bot_user_id: str | None
    bot_id: str | None
    escalation_channel: str | None

    def to_public(self) -> dict[str, object]:
        """JSON shape (never the token)."""
        return {"team_id": self.team_id, "tenant_id": self.tenant_id, "team_name": self.team_name,
                "bot_user_id": self.bot_user_id, "escalation_channel": self.escalation_channel}


class SlackWorkspaceStore:
    """Stores installations; one workspace serves exactly one tenant, a tenant may have several workspaces."""

    def __init__(self, sessions: sessionmaker[Session], cipher: TokenCipher) -> None:
        self._sessions = sessions
        self._cipher = cipher

    def _record(self, row: SlackWorkspace) -> WorkspaceRecord:
        return WorkspaceRecord(row.team_id, row.tenant_id, row.team_name, self._cipher.decrypt(row.bot_token_encrypted),
                               row.bot_user_id, row.bot_id, row.escalation_channel)

    def save(self, tenant_id: str, team_id: str, bot_token: str, *, team_name: str | None = None,
             bot_user_id: str | None = None, bot_id: str | None = None, app_id: str | None = None,
             enterprise_id: str | None = None, scopes: str | None = None, installer_user_id: str | None = None,
             escalation_channel: str | None = None) -> WorkspaceRecord:
        """Store (or refresh, on re-install) a workspace's installation for a tenant.

        Raises:
            WorkspaceConflictError: The workspace belongs to another tenant.
        """
        with self._sessions.begin() as session:
            row = session.get(SlackWorkspace, team_id)
            if row is not None and row.tenant_id != tenant_id:
                raise WorkspaceConflictError(f"workspace {team_id} is connected to another tenant")
            if row is None:
                row = SlackWorkspace(team_id=team_id, tenant_id=tenant_id)
                session.add(row)
            row.bot_token_encrypted = self._cipher.encrypt(bot_token)
            row.team_name, row.bot_user_id, row.bot_id = team_name, bot_user_id, bot_id
            row.app_id, row.enterprise_id, row.bot_scopes = app_id, enterprise_id, scopes
            row.installer_user_id = installer_user_id
            if escalation_channel is not None:
                row.escalation_channel = escalation_channel
            row.installed_at = utcnow()
            session.flush()
            return self._record(row)

    def get(self, team_id: str) -> WorkspaceRecord | None:
        """The workspace, or None when it was never installed."""
        with self._sessions() as session:
            row = session.get(SlackWorkspace, team_id)
            return None if row is None else self._record(row)

    def for_tenant(self, tenant_id: str) -> list[WorkspaceRecord]:
        """Every workspace of a tenant."""
        with self._sessions() as session:
            rows = session.execute(select(SlackWorkspace).where(SlackWorkspace.tenant_id == tenant_id)
                                   .order_by(SlackWorkspace.installed_at)).scalars()
            return [self._record(row) for row in rows]

    def set_escalation_channel(self, tenant_id: str, team_id: str, channel: str | None) -> WorkspaceRecord | None:
        """Where the tenant's escalations are posted in this workspace (None: nowhere)."""
        with self._sessions.begin() as session:
            row = session.get(SlackWorkspace, team_id)
            if row is None or row.tenant_id != tenant_id:
                return None
            row.escalation_channel = channel
            session.flush()
            return self._record(row)

    def remove(self, tenant_id: str, team_id: str) -> bool:
        """Forget a workspace (uninstall); True when it existed for this tenant."""
        with self._sessions.begin() as session:
            row = session.get(SlackWorkspace, team_id)
            if row is None or row.tenant_id != tenant_id:
                return False
            session.delete(row)
            return True
