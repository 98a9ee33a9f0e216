"""Widget keys map to tenants; unknown and revoked keys map to nothing."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from gateway.db.models import WidgetKey
from gateway.stores.tenant_store import TenantStore


def test_widget_keys_resolve_to_their_tenant(sessions: sessionmaker[Session]) -> None:
    tenants = TenantStore(sessions)
    tenants.ensure_tenant("acme", "Acme")
    key = tenants.issue_widget_key("acme")
    assert key.startswith("wk_") and len(key) > 20
    assert tenants.tenant_for_key(key) == "acme"
    assert tenants.tenant_for_key("wk_unknown") is None
    assert tenants.tenant_for_key("") is None
    assert tenants.tenant_for_key("x" * 10_000) is None


def test_revoked_key_is_refused(sessions: sessionmaker[Session]) -> None:
    tenants = TenantStore(sessions)
    tenants.ensure_tenant("acme", "Acme")
    key = tenants.issue_widget_key("acme")
    with sessions.begin() as session:
        session.get(WidgetKey, key).revoked = True  # type: ignore[union-attr]
    assert tenants.tenant_for_key(key) is None


def test_ensure_tenant_is_idempotent(sessions: sessionmaker[Session]) -> None:
    tenants = TenantStore(sessions)
    tenants.ensure_tenant("acme", "Acme")
    tenants.ensure_tenant("acme", "Acme again")
    assert tenants.issue_widget_key("acme", "wk_fixed") == "wk_fixed"
    assert tenants.issue_widget_key("acme", "wk_fixed") == "wk_fixed"


def test_a_key_is_remembered_for_a_few_seconds_and_forgotten_with_its_tenant(
        sessions: sessionmaker[Session], monkeypatch) -> None:
    import gateway.stores.tenant_store as tenant_store

    tenants = TenantStore(sessions)
    tenants.ensure_tenant("acme", "Acme")
    key = tenants.issue_widget_key("acme")
    assert tenants.cached_tenant_for_key(key) is None  # never read yet
    assert tenants.tenant_for_key(key) == "acme"
    assert tenants.cached_tenant_for_key(key) == "acme"
    with sessions.begin() as session:
        session.get(WidgetKey, key).revoked = True  # type: ignore[union-attr]
    assert tenants.tenant_for_key(key) == "acme"  # within KEY_CACHE_S: from memory
    now = tenant_store.time.monotonic()
    monkeypatch.setattr(tenant_store.time, "monotonic", lambda: now + tenant_store.KEY_CACHE_S + 0.1)
    assert tenants.tenant_for_key(key) is None  # read again: revoked
    assert tenants.tenant_for_key("wk_unknown") is None and "wk_unknown" not in tenants._keys


def test_deleting_a_tenant_forgets_its_keys_at_once(sessions: sessionmaker[Session]) -> None:
    tenants = TenantStore(sessions)
    tenants.ensure_tenant("gone", "Gone")
    key = tenants.issue_widget_key("gone")
    assert tenants.tenant_for_key(key) == "gone"
    tenants.delete("gone")
    assert tenants.cached_tenant_for_key(key) is None and tenants.tenant_for_key(key) is None
