"""One exception hierarchy for the whole package.

The CLI turns every ``FlinkscaleError`` into a one-line message without a traceback: ``InputError``
(a bad spec, flag or file; exit code 2) names the field path or file, ``EndpointError`` names the URL
that failed, and anything else that went wrong at run time is a ``RuntimeFailure`` (exit code 1).
"""

from __future__ import annotations

from typing import Any


class FlinkscaleError(Exception):
    """Base of every error flinkscale raises on purpose."""

    exit_code = 1


class InputError(FlinkscaleError):
    """The user gave something invalid: a spec field, a flag, a file. Exit code 2."""

    exit_code = 2

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


class EndpointError(FlinkscaleError):
    """A remote endpoint (Flink REST, a broker) was unreachable or answered with an error."""

    exit_code = 2

    def __init__(self, message: str, *, endpoint: str, status: int | None = None) -> None:
        self.endpoint = endpoint
        self.status = status
        super().__init__(f"{endpoint}: {message}")


class NotFoundError(EndpointError):
    """The endpoint answered, but the thing asked for (a job, a vertex, a savepoint) does not exist."""


class RuntimeFailure(FlinkscaleError):
    """Something flinkscale started or drove did not behave: a process died, a wait timed out."""

    exit_code = 1


def require_at_least(value: float, minimum: int, field: str) -> None:
    """An ``InputError`` naming ``field`` when ``value`` (a count, a parallelism, a number of attempts) is below
    ``minimum``."""
    if value < minimum:
        raise InputError(f"must be >= {minimum}", field=field)


def float_of(value: float | str, field: str | None) -> float:
    """``float(value)``, where an integer too large for a float (YAML reads ``1`` followed by 400 digits as one)
    is an ``InputError`` naming ``field`` instead of an ``OverflowError``."""
    try:
        return float(value)
    except OverflowError:
        raise InputError("must be a finite number (it is too large)", field=field) from None


def text_of(value: Any, field: str | None) -> str:
    """A text value of a YAML input as the text it names: a string, or a number taken as its text (``id: 42``);
    a list, a mapping, a boolean or null is an ``InputError`` naming ``field`` and what it got."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        kind = ("a list" if isinstance(value, list) else "a mapping" if isinstance(value, dict) else
                "empty" if value is None else repr(value)[:40])
        raise InputError(f"must be a string, not {kind}", field=field)
    return str(value)
