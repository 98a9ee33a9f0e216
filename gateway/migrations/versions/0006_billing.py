"""Billing: plans, subscriptions, usage ledger and counters, quota alerts, invoices

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "plans",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(length=64), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("plan_id", sa.String(length=32), sa.ForeignKey("plans.id"), nullable=False),
        sa.Column("starts_at", _TS, nullable=False),
        sa.Column("ends_at", _TS, nullable=True),
        sa.Column("changed_by", sa.String(length=100), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_subscriptions_tenant_id", "subscriptions", ["tenant_id"])
    op.create_table(
        "usage_records",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("unit", sa.String(length=32), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("occurred_at", _TS, nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("source", sa.JSON(), nullable=True),
        sa.UniqueConstraint("tenant_id", "idempotency_key", name="uq_usage_records_key"),
    )
    op.create_index("ix_usage_records_tenant_id", "usage_records", ["tenant_id"])
    op.create_index("ix_usage_records_period", "usage_records", ["period"])
    op.create_table(
        "usage_counters",
        sa.Column("tenant_id", sa.String(length=64), primary_key=True),
        sa.Column("period", sa.String(length=7), primary_key=True),
        sa.Column("unit", sa.String(length=32), primary_key=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
    )
    op.create_table(
        "usage_alerts",
        sa.Column("tenant_id", sa.String(length=64), primary_key=True),
        sa.Column("period", sa.String(length=7), primary_key=True),
        sa.Column("unit", sa.String(length=32), primary_key=True),
        sa.Column("level", sa.Integer(), primary_key=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "invoices",
        sa.Column("tenant_id", sa.String(length=64), primary_key=True),
        sa.Column("period", sa.String(length=7), primary_key=True),
        sa.Column("total_cents", sa.Integer(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )


def downgrade() -> None:
    for table in ("invoices", "usage_alerts", "usage_counters", "usage_records", "subscriptions", "plans"):
        op.drop_table(table)
