"""The state store: every job's bounded history, intents, timers and load in a database.

SQLite by default (``sqlite:///PATH``), PostgreSQL by URL (``postgresql+psycopg://...``, the 'postgres'
extra). The schema is versioned with Alembic migrations shipped inside the package; see ``_store`` for the
design (transactions, the writer's lease, intents and reconciliation, retention).
"""

from flinkscale.store._migrate import head_revision, known_revisions
from flinkscale.store._store import CycleEntry, LeaseHeld, LeaseLost, StateStore, open_store
from flinkscale.store._url import parse_store_url, redacted, sqlite_path
from flinkscale.store.records import (
    Intent,
    JobRecord,
    LeaseInfo,
    LoadSample,
    Outcome,
    PruneCounts,
    Reconciliation,
    Retention,
    ScaleDownTimer,
)

__all__ = [
    "CycleEntry",
    "Intent",
    "JobRecord",
    "LeaseHeld",
    "LeaseInfo",
    "LeaseLost",
    "LoadSample",
    "Outcome",
    "PruneCounts",
    "Reconciliation",
    "Retention",
    "ScaleDownTimer",
    "StateStore",
    "head_revision",
    "known_revisions",
    "open_store",
    "parse_store_url",
    "redacted",
    "sqlite_path",
]
