"""State store URLs: ``sqlite:///PATH`` (the default) or ``postgresql+psycopg://user:pass@host/db``.

Every message that names a store uses ``redacted``: SQLAlchemy's rendering with the password as ``***``.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from flinkscale.core.errors import InputError

SUPPORTED_BACKENDS = ("sqlite", "postgresql")


def parse_store_url(text: str, field: str = "--state") -> URL:
    """The URL, checked to name a backend the store supports; a bare path means a SQLite file."""
    if "://" not in text:
        text = f"sqlite:///{Path(text).expanduser()}"
    try:
        url = make_url(text)
    except (ArgumentError, ValueError) as exc:
        raise InputError(f"not a database URL ({exc}); use sqlite:///PATH or postgresql+psycopg://...",
                         field=field) from None
    if url.get_backend_name() not in SUPPORTED_BACKENDS:
        raise InputError(f"unsupported state store {redacted(url)!r}: use sqlite:///PATH or "
                         "postgresql+psycopg://USER:PASSWORD@HOST/DB", field=field)
    if url.get_backend_name() == "postgresql" and url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")  # psycopg 3, the 'postgres' extra
    return url


def redacted(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def sqlite_path(url: URL) -> Path | None:
    """The file behind a SQLite URL; None for PostgreSQL or an in-memory SQLite database."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)
