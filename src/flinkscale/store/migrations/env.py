"""Alembic's environment for the state store, run only through ``flinkscale.store._migrate``.

There is no ``alembic.ini``: the store builds the Alembic ``Config`` in code and hands over an open
connection in ``config.attributes["connection"]``, so migrations run the same from a checkout and from an
installed wheel (this directory is package data).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("the flinkscale state store runs its migrations with a connection it opened")
context.configure(connection=connection, target_metadata=None, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
