"""State tables: lease, jobs, snapshots, decisions, rescales, intents, scale-down timers.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "store_lease",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("acquired_at", sa.Float, nullable=False),
        sa.Column("heartbeat_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_table(
        "jobs",
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("job_name", sa.String(512), nullable=False),
        sa.Column("first_seen", sa.Float, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=False),
        sa.Column("gone_since", sa.Float, nullable=True),
        sa.Column("restart_cost_seconds", sa.Float, nullable=True),
        sa.Column("restart_cost_samples", sa.Integer, nullable=False),
    )
    for name in ("snapshots", "decisions"):
        op.create_table(
            name,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("job_id", sa.String(64), nullable=False),
            sa.Column("timestamp", sa.Float, nullable=False),
            sa.Column("payload", sa.Text, nullable=False),
        )
        op.create_index(f"ix_{name}_job_time", name, ["job_id", "timestamp"])
    op.create_table(
        "rescales",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("requested_at", sa.Float, nullable=False),
        sa.Column("completed_at", sa.Float, nullable=False),
        sa.Column("old_parallelism", sa.Text, nullable=False),
        sa.Column("new_parallelism", sa.Text, nullable=False),
    )
    op.create_index("ix_rescales_job_time", "rescales", ["job_id", "completed_at"])
    op.create_table(
        "intents",
        sa.Column("intent_id", sa.String(64), primary_key=True),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("previous_parallelism", sa.Text, nullable=False),
        sa.Column("target_parallelism", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("finished_at", sa.Float, nullable=True),
        sa.Column("note", sa.Text, nullable=True),
    )
    op.create_index("ix_intents_job_status", "intents", ["job_id", "status"])
    op.create_table(
        "scale_down_timers",
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("vertex_id", sa.String(64), primary_key=True),
        sa.Column("target_parallelism", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("due_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for name in ("scale_down_timers", "intents", "rescales", "decisions", "snapshots", "jobs", "store_lease"):
        op.drop_table(name)
