"""FAQ entries' alternative questions: each one a search key of the entry's chunk

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: existing chunks have none, and adding the column rewrites no rows.
    with op.batch_alter_table("kb_chunks") as batch:
        batch.add_column(sa.Column("alternatives", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("kb_chunks") as batch:
        batch.drop_column("alternatives")
