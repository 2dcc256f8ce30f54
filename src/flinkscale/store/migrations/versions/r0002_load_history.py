"""Load history: each job's source rate, one row per minute (the policy learns its trend from it).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "load_history",
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("minute", sa.Integer, primary_key=True),
        sa.Column("rate_sum", sa.Float, nullable=False),
        sa.Column("samples", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("load_history")
