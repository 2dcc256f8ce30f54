"""The tables of the state store, as SQLAlchemy Core ``Table`` objects, at the newest schema version.

The store reads and writes through these. The migrations under ``migrations/versions`` create the same
tables step by step and never import this module (a migration freezes the schema of its day); a unit test
checks that upgrading an empty database to the newest revision yields exactly these tables.

Times are UNIX seconds (floats); parallelism maps and records are JSON text written by the store, so the
same rows read back on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

# One row per named lease ("daemon"): who may write, until when.
lease = Table(
    "store_lease", metadata,
    Column("name", String(64), primary_key=True),
    Column("owner", String(255), nullable=False),
    Column("acquired_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)

jobs = Table(
    "jobs", metadata,
    Column("job_id", String(64), primary_key=True),
    Column("job_name", String(512), nullable=False),
    Column("first_seen", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    # NULL while the job runs; the time it was seen gone (finished, cancelled) otherwise.
    Column("gone_since", Float, nullable=True),
    # The learned restart cost: mean of the measured rescale durations so far, and how many there were.
    Column("restart_cost_seconds", Float, nullable=True),
    Column("restart_cost_samples", Integer, nullable=False, default=0),
)


def _payload_log(name: str) -> Table:
    """A table of JSON payloads by job and time; the snapshots and the decisions are two of the same kind."""
    return Table(
        name, metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("job_id", String(64), nullable=False),
        Column("timestamp", Float, nullable=False),
        Column("payload", Text, nullable=False),
        Index(f"ix_{name}_job_time", "job_id", "timestamp"),
    )


snapshots = _payload_log("snapshots")
decisions = _payload_log("decisions")

rescales = Table(
    "rescales", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(64), nullable=False),
    Column("requested_at", Float, nullable=False),
    Column("completed_at", Float, nullable=False),
    Column("old_parallelism", Text, nullable=False),
    Column("new_parallelism", Text, nullable=False),
    Index("ix_rescales_job_time", "job_id", "completed_at"),
)

intents = Table(
    "intents", metadata,
    Column("intent_id", String(64), primary_key=True),
    Column("job_id", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("previous_parallelism", Text, nullable=False),
    Column("target_parallelism", Text, nullable=False),
    # pending -> done | failed | dropped
    Column("status", String(16), nullable=False),
    Column("finished_at", Float, nullable=True),
    Column("note", Text, nullable=True),
    Index("ix_intents_job_status", "job_id", "status"),
)

scale_down_timers = Table(
    "scale_down_timers", metadata,
    Column("job_id", String(64), primary_key=True),
    Column("vertex_id", String(64), primary_key=True),
    Column("target_parallelism", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("due_at", Float, nullable=False),
)

# Revision 0002: the load the policy learns from, one row per job and minute.
load_history = Table(
    "load_history", metadata,
    Column("job_id", String(64), primary_key=True),
    Column("minute", Integer, primary_key=True),
    Column("rate_sum", Float, nullable=False),
    Column("samples", Integer, nullable=False),
)
