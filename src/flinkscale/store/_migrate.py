"""Versioned schema migrations with Alembic, run programmatically.

The ``Config`` is built here, pointing at the ``migrations`` directory shipped as package data, and the
store's own connection is handed to ``migrations/env.py``; no ``alembic.ini`` is involved, so an installed
wheel migrates its store the same way a checkout does. Before upgrading, the store's current revision is
checked: a revision this flinkscale does not know was written by a newer flinkscale (refuse, never
downgrade or reset), and a database with tables but no revision is not a flinkscale store (refuse).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from flinkscale.core.errors import InputError, RuntimeFailure

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version"


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    head = _scripts().get_current_head()
    assert head is not None, "the store ships at least one migration"
    return head


def known_revisions() -> tuple[str, ...]:
    """Oldest first."""
    return tuple(reversed([script.revision for script in _scripts().walk_revisions()]))


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection, store: str, revision: str = "head") -> str | None:
    """Bring the schema to ``revision``; returns the revision it found (None for an empty database)."""
    found = current_revision(connection)
    if found is None:
        foreign = sorted(set(inspect(connection).get_table_names()) - {VERSION_TABLE})
        if foreign:
            raise InputError(f"{store}: not a flinkscale state store (it has tables {', '.join(foreign[:5])} "
                             "but no flinkscale schema version); point --state at a new or flinkscale database")
    elif found not in known_revisions():
        raise RuntimeFailure(f"{store}: the state store has schema version {found}, newer than this flinkscale "
                             f"knows (newest {head_revision()}); run a flinkscale at least as new as the one "
                             "that wrote it")
    command.upgrade(_config(connection), revision)
    return found
