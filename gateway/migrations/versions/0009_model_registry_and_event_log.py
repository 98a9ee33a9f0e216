"""Model registry (versions, deployments) and the broker-fed conversation event log

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("archive_path", sa.String(length=500), nullable=True),
        sa.Column("archive_sha256", sa.String(length=64), nullable=True),
        sa.Column("rasa_model_id", sa.String(length=64), nullable=True),
        sa.Column("data_version_id", sa.Integer(), nullable=True),
        sa.Column("bot_data_hash", sa.String(length=64), nullable=True),
        sa.Column("intents", sa.JSON(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("gate", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("promoted_by", sa.String(length=100), nullable=True),
        sa.Column("promoted_at", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
        sa.UniqueConstraint("tenant_id", "version", name="uq_model_versions_version"),
    )
    op.create_index("ix_model_versions_tenant_id", "model_versions", ["tenant_id"])
    op.create_index("ix_model_versions_archive_sha256", "model_versions", ["archive_sha256"])
    # At most one version of a tenant in production.
    op.create_index("uq_model_versions_production", "model_versions", ["tenant_id"], unique=True,
                    sqlite_where=sa.text("status = 'production'"), postgresql_where=sa.text("status = 'production'"))
    op.create_table(
        "model_deployments",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.Integer(), sa.ForeignKey("model_versions.id"), nullable=False),
        sa.Column("previous_version_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_model_deployments_tenant_id", "model_deployments", ["tenant_id"])
    op.create_table(
        "conversation_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_key", sa.String(length=64), nullable=False, unique=True),
        sa.Column("tenant_id", sa.String(length=64), nullable=True),
        sa.Column("conversation_id", sa.String(length=100), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("timestamp", sa.Float(), nullable=False),
        sa.Column("model_id", sa.String(length=64), nullable=True),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("received_at", _TS, nullable=False),
    )
    op.create_index("ix_conversation_events_tenant_id", "conversation_events", ["tenant_id"])
    op.create_index("ix_conversation_events_conversation_id", "conversation_events", ["conversation_id"])


def downgrade() -> None:
    op.drop_table("conversation_events")
    op.drop_table("model_deployments")
    op.drop_table("model_versions")
