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
and ``EventLog.line`` as the multi-job daemon's ``log`` callback. The daemon's lines are ``core.logline.LogLine``
values: text that carries its event (``job.discovered``, ``job.rescaling``, ...), level and job as data.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO, Any

from flinkscale.core.errors import InputError
from flinkscale.core.logline import LogLine
from flinkscale.core.redaction import redact, redact_json

LOG_FORMATS = ("text", "json")
LOGGER_NAME = "flinkscale.autoscale"

_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


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
        """A line of the multi-job daemon (its ``log`` callback): a ``LogLine`` brings its event and job as data;
        any other line is a ``daemon`` event about no job."""
        if not isinstance(line, LogLine):
            self.event("daemon", line)
            return
        self.event(line.event, str(line), level=_LEVELS[line.level], job_id=line.job_id, job_name=line.job_name)


__all__ = ["LOG_FORMATS", "EventLog", "JsonFormatter", "configure_logging"]
