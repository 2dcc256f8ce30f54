"""State store URLs: ``sqlite:///PATH`` (the default) or ``postgresql+psycopg://user:pass@host/db``.

Every message that names a store uses ``redacted``: SQLAlchemy's rendering with the password as ``***``.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from flinkscale.core.errors import InputError

SUPPORTED_BACKENDS = ("sqlite", "postgresql")
#: The drivers the store is built and tested with (SQLAlchemy's names; "" = the backend's default).
SUPPORTED_DRIVERS = {"sqlite": ("", "pysqlite"), "postgresql": ("", "psycopg")}
_USAGE = "use sqlite:///PATH or postgresql+psycopg://HOST/DB (user and password in the URL)"
#: Text that starts like a URL's scheme (``postgresql:/...`` with one slash): never a bare path, which would
#: make a SQLite file named after the text, a password in it included.
_SCHEME_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:(?!\\)")


def parse_store_url(text: str, field: str = "--state") -> URL:
    """The URL, checked to name a backend and driver the store supports; a bare path means a SQLite file."""
    if not text.strip():
        raise InputError(f"is empty; {_USAGE}", field=field)
    if "://" not in text:
        if _SCHEME_LIKE.match(text):
            raise InputError(f"not a database URL (a scheme needs '://'); {_USAGE}", field=field)
        try:
            text = f"sqlite:///{Path(text).expanduser()}"
        except RuntimeError:  # ~user for a user there is not
            raise InputError("names the home directory of a user there is not", field=field) from None
    try:
        url = make_url(text)
    except (ArgumentError, ValueError) as exc:
        raise InputError(f"not a database URL ({exc}); {_USAGE}", field=field) from None
    backend = url.get_backend_name()
    driver = url.drivername.partition("+")[2]
    if backend not in SUPPORTED_BACKENDS or driver not in SUPPORTED_DRIVERS[backend]:
        raise InputError(f"unsupported state store {redacted(url)!r}: {_USAGE}", field=field)
    if backend == "postgresql" and url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")  # psycopg 3, the 'postgres' extra
    return url


def redacted(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def sqlite_path(url: URL) -> Path | None:
    """The file behind a SQLite URL; None for PostgreSQL or an in-memory SQLite database."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)
