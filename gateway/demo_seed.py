"""Demo tenant, its widget key and its orders: what `make run` needs to show a real conversation."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session, sessionmaker

from gateway.billing.usage_service import UsageService
from gateway.db.models import utcnow
from gateway.stores.agent_store import AgentStore
from gateway.stores.order_store import OrderRecord, OrderStore
from gateway.stores.tenant_store import TenantStore

if TYPE_CHECKING:
    from gateway.settings import Settings


def demo_orders(today: date) -> list[OrderRecord]:
    """The fictional retailer's orders, with dates relative to today."""
    return [
        OrderRecord("A1234", "shipped", "Trail running shoes (42)", "UPS", "1Z999AA10123456784", today + timedelta(days=2)),
        OrderRecord("B5521", "processing", "Merino wool sweater (M), 2 pairs of socks", None, None, today + timedelta(days=5)),
        OrderRecord("C7302", "delivered", "Rain jacket (L)", "DHL", "JD014600006281234567", today - timedelta(days=3)),
        OrderRecord("D4410", "cancelled", "Canvas backpack", None, None, None),
    ]


DEMO_AGENT_EMAIL = "agent@northwind.example"


DEMO_PLAN = "pro"


def seed_demo(sessions: sessionmaker[Session], tenant_id: str, widget_key: str, today: date | None = None,
              agent_password: str | None = None) -> None:
    """Create the demo tenant, key, orders and (with a password) a supervisor for the agent console.

    The demo tenant is on the Pro plan. Running it again changes nothing but dates.
    """
    tenants = TenantStore(sessions)
    tenants.ensure_tenant(tenant_id, "Northwind Goods")
    tenants.issue_widget_key(tenant_id, widget_key)
    usage = UsageService(sessions)
    usage.plans.seed()
    if usage.subscriptions.plan_at(tenant_id, utcnow()) is None:
        usage.change_plan(tenant_id, DEMO_PLAN, actor="demo-seed")
    # Its assistant: the retail template with Northwind's settings (what `make train` builds).
    from gateway.assistants.assistant_service import AssistantService
    from gateway.assistants.templates import BOT_DIR

    AssistantService(sessions).ensure_from_file(tenant_id, BOT_DIR / "tenants" / "northwind.yml", "demo-seed")
    orders = OrderStore(sessions)
    for record in demo_orders(today or date.today()):
        orders.upsert(tenant_id, record)
    if agent_password:
        agents = AgentStore(sessions)
        if not any(a.email == DEMO_AGENT_EMAIL for a in agents.list(tenant_id)):
            agents.create(tenant_id, DEMO_AGENT_EMAIL, "Sam (Northwind support)", agent_password, role="admin",
                          teams=["general", "billing"], capacity=5)


def demo_agent_password(settings: "Settings") -> str | None:
    """The demo agent's password from the settings, when configured."""
    secret = settings.demo_agent_password
    return secret.get_secret_value() if secret is not None else None
