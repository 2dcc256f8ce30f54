"""The autoscale loop's log: plain lines for people, or one JSON object a line for a log pipeline.

``flinkscale autoscale ... --log-format json`` writes every log event to stderr as one JSON object::

    {"ts": "2026-11-27T18:30:00.123Z", "level": "info", "event": "job.rescaling", "job_id": "3f2a...",
     "job_name": "clickstream", "message": "job clickstream (3f2a...): rescaling to {...}", "fields": {...}}

``ts`` is UTC with milliseconds, ``level`` one of debug/info/warning/error, ``event`` a stable dotted name to
filter on, ``job_id``/``job_name`` present when the event is about one job, ``fields`` the event's data (JSON
values). ``--log-format text`` (the default) writes the message alone, to stdout, as before.

It is the standard library's ``logging`` with one small ``JsonFormatter``: no dependency, and a host program
that configures logging itself can attach the formatter to its own handlers. Every message and every string in
``fields`` (keys too) passes through ``core.redaction`` in the formatter, the last step before the stream, so
no credential reaches a log whatever an event carries; non-finite numbers become strings (JSON has none).

``EventLog`` is what the loops call: ``event(name, message, job_id=..., **fields)`` for the single-job loop,
and ``EventLog.line`` as the multi-job daemon's ``log`` callback, which reads the job from the daemon's
``job NAME (ID): ...`` prefix and names the event from the line (``job.discovered``, ``job.rescaling``, ...).
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO, Any

from flinkscale.core.errors import InputError
from flinkscale.core.redaction import redact, redact_json

LOG_FORMATS = ("text", "json")
LOGGER_NAME = "flinkscale.autoscale"

_JOB_PREFIX = re.compile(r"^job (?P<name>.*) \((?P<id>[0-9a-fA-F]{32})\): (?P<rest>.*)$", re.DOTALL)
# (substring of the daemon's line, event name, level), first match wins.
_DAEMON_EVENTS: tuple[tuple[str, str, int], ...] = (
    ("this job is not served", "job.invalid-settings", logging.ERROR),
    ("rescale failed", "job.rescale-failed", logging.ERROR),
    ("not collected within its deadline", "job.deadline-missed", logging.WARNING),
    ("holding every job", "cluster.unavailable", logging.WARNING),
    ("not even one TaskManager", "job.quota-below-one-task-manager", logging.WARNING),
    (": discovered", "job.discovered", logging.INFO),
    ("finished or cancelled", "job.gone", logging.INFO),
    ("history continues from the store", "job.history-restored", logging.INFO),
    ("pending rescale intent", "job.intent-reconciled", logging.INFO),
    ("rescaling to", "job.rescaling", logging.INFO),
    ("rescaled to", "job.rescaled", logging.INFO),
    ("not applied", "job.recommendation", logging.INFO),
    ("holding", "job.holding", logging.WARNING),
    ("not running", "job.not-running", logging.WARNING),
    ("lease", "store.lease", logging.INFO),
)


def _jsonable(value: Any) -> Any:
    """Plain JSON data: non-finite floats as strings, tuples as lists, anything else as its text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return str(value)


class JsonFormatter(logging.Formatter):
    """One JSON object a record: ts, level, event, job_id/job_name (when set), message, fields; redacted."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"),
            "level": record.levelname.lower(),
            "event": str(getattr(record, "event", record.name)),
        }
        for key in ("job_id", "job_name"):
            value = getattr(record, key, None)
            if value is not None:
                data[key] = str(value)
        data["message"] = record.getMessage()
        fields = getattr(record, "fields", None)
        if fields:
            data["fields"] = _jsonable(fields)
        if record.exc_info and record.exc_info[1] is not None:  # the error's one line, never a traceback
            exc = record.exc_info[1]
            data["error"] = f"{type(exc).__name__}: {exc}"
        return json.dumps(redact_json(data), ensure_ascii=False, allow_nan=False)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(record.getMessage())


def configure_logging(log_format: str, *, stream: IO[str] | None = None) -> logging.Logger:
    """The autoscale logger, writing ``text`` (message only, stdout) or ``json`` (stderr); idempotent: a
    second call replaces the handler (the streams are looked up now, so a test's captured ones are used)."""
    if log_format not in LOG_FORMATS:
        raise InputError(f"expected text or json, got {log_format!r}", field="--log-format")
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    target = stream if stream is not None else (sys.stderr if log_format == "json" else sys.stdout)
    handler = logging.StreamHandler(target)
    handler.setFormatter(JsonFormatter() if log_format == "json" else _TextFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


class EventLog:
    """The loops' log: events with a name, the job they concern and their data."""

    def __init__(self, logger: logging.Logger, log_format: str = "text") -> None:
        self.logger = logger
        self.json = log_format == "json"

    def event(self, event: str, message: str, *, level: int = logging.INFO, job_id: str | None = None,
              job_name: str | None = None, **fields: Any) -> None:
        self.logger.log(level, "%s", message,
                        extra={"event": event, "job_id": job_id, "job_name": job_name, "fields": fields})

    def line(self, line: str) -> None:
        """A line of the multi-job daemon (its ``log`` callback): the job and the event read from it."""
        event, level = next(((name, lvl) for text, name, lvl in _DAEMON_EVENTS if text in line),
                            ("daemon", logging.INFO))
        found = _JOB_PREFIX.match(line)
        if found is None:
            self.event(event if not event.startswith("job.") else "daemon", line, level=level)
            return
        self.event(event, line, level=level, job_id=found["id"].lower(), job_name=found["name"])


__all__ = ["LOG_FORMATS", "EventLog", "JsonFormatter", "configure_logging"]
