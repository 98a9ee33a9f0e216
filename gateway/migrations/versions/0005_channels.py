"""Channels: widget settings, feedback (CSAT), Slack workspaces, OAuth states, event receipts, posts, escalations

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.add_column(sa.Column("external_ref", sa.String(length=200), nullable=True))
        batch_op.create_unique_constraint("uq_conversations_external_ref", ["tenant_id", "channel", "external_ref"])
    op.create_table(
        "widget_configs",
        sa.Column("tenant_id", sa.String(length=64), sa.ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("conversation_id", sa.String(length=36), sa.ForeignKey("conversations.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("conversation_id", "kind", "target", name="uq_feedback_target"),
    )
    op.create_index("ix_feedback_tenant_id", "feedback", ["tenant_id"])
    op.create_index("ix_feedback_conversation_id", "feedback", ["conversation_id"])
    op.create_table(
        "slack_workspaces",
        sa.Column("team_id", sa.String(length=32), primary_key=True),
        sa.Column("tenant_id", sa.String(length=64), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("team_name", sa.String(length=200), nullable=True),
        sa.Column("enterprise_id", sa.String(length=32), nullable=True),
        sa.Column("app_id", sa.String(length=32), nullable=True),
        sa.Column("bot_user_id", sa.String(length=32), nullable=True),
        sa.Column("bot_id", sa.String(length=32), nullable=True),
        sa.Column("bot_token_encrypted", sa.Text(), nullable=False),
        sa.Column("bot_scopes", sa.Text(), nullable=True),
        sa.Column("installer_user_id", sa.String(length=32), nullable=True),
        sa.Column("escalation_channel", sa.String(length=32), nullable=True),
        sa.Column("installed_at", _TS, nullable=False),
    )
    op.create_index("ix_slack_workspaces_tenant_id", "slack_workspaces", ["tenant_id"])
    op.create_table(
        "slack_oauth_states",
        sa.Column("state", sa.String(length=64), primary_key=True),
        sa.Column("tenant_id", sa.String(length=64), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("consumed_at", _TS, nullable=True),
    )
    op.create_table(
        "slack_event_receipts",
        sa.Column("event_id", sa.String(length=64), primary_key=True),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("received_at", _TS, nullable=False),
    )
    op.create_table(
        "slack_posts",
        sa.Column("message_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("ts", sa.String(length=32), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "slack_escalations",
        sa.Column("handoff_id", sa.String(length=36), primary_key=True),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("ts", sa.String(length=32), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    for column in ("tenant_id", "conversation_id", "ts"):
        op.create_index(f"ix_slack_escalations_{column}", "slack_escalations", [column])


def downgrade() -> None:
    for table in ("slack_escalations", "slack_posts", "slack_event_receipts", "slack_oauth_states",
                  "slack_workspaces", "feedback", "widget_configs"):
        op.drop_table(table)
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.drop_constraint("uq_conversations_external_ref", type_="unique")
        batch_op.drop_column("external_ref")
