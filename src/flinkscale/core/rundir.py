"""The run directory's format: one schema for the files the autoscaling loop writes and others read.

The loop (``flinkscale.flink.autoscaler.RunDirectory``) appends one JSON object per line, flushed as written;
the live dashboard (``flinkscale.report.dashboard``) tails the files and the demo report reads them after a
run. All three go through this module, so a field cannot be written one way and read another:

- ``snapshots.jsonl``: one ``MetricsSnapshot.to_dict()`` per line (docs/snapshot-format.md);
- ``decisions.jsonl``: one ``DecisionRecord``: ``{"timestamp", "decision": Decision.to_dict(), "applied",
  "rescale_seconds", "error"}``;
- ``events.jsonl``: one ``RunEvent``: ``{"timestamp", "kind", "message"}`` (start, hold, shed, rescale, ...).

``to_line`` turns a record into its line (strict JSON: non-finite numbers are spelled as ``Decision.to_dict``
spells them) and ``parse_line`` reads one back, raising ``InputError`` for a line that is not valid JSON or
not a valid record of that file. Pure: reading and writing the files is the caller's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flinkscale.core.errors import InputError
from flinkscale.core.policy.base import Decision
from flinkscale.core.redaction import redact_json
from flinkscale.core.snapshot import MetricsSnapshot

SNAPSHOTS_FILE = "snapshots.jsonl"
DECISIONS_FILE = "decisions.jsonl"
EVENTS_FILE = "events.jsonl"
RUN_FILES = (SNAPSHOTS_FILE, DECISIONS_FILE, EVENTS_FILE)


@dataclass(frozen=True)
class DecisionRecord:
    """One line of ``decisions.jsonl``: a policy decision and what the loop did with it."""

    timestamp: float
    decision: Decision
    applied: bool
    rescale_seconds: float | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"timestamp": self.timestamp, "decision": self.decision.to_dict(), "applied": self.applied,
                "rescale_seconds": self.rescale_seconds, "error": self.error}

    @classmethod
    def from_dict(cls, data: Any) -> DecisionRecord:
        if not isinstance(data, Mapping):
            raise InputError("a decision record must be a JSON object", field="decision")
        for required in ("timestamp", "decision"):
            if required not in data:
                raise InputError("is required", field=required)
        try:
            decision = Decision.from_dict(data["decision"])
            rescale_seconds = data.get("rescale_seconds")
            return cls(float(data["timestamp"]), decision, bool(data.get("applied", False)),
                       None if rescale_seconds is None else float(rescale_seconds),
                       None if data.get("error") is None else str(data["error"]))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(f"not a decision record ({exc})", field="decision") from None


@dataclass(frozen=True)
class RunEvent:
    """One line of ``events.jsonl``: something the run wants on the timeline (a hold, a rescale, shedding)."""

    timestamp: float
    kind: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"timestamp": self.timestamp, "kind": self.kind, "message": self.message}

    @classmethod
    def from_dict(cls, data: Any) -> RunEvent:
        if not isinstance(data, Mapping) or "timestamp" not in data:
            raise InputError("an event needs a timestamp", field="timestamp")
        try:
            return cls(float(data["timestamp"]), str(data.get("kind", "event")), str(data.get("message", "")))
        except (TypeError, ValueError) as exc:
            raise InputError(f"not an event ({exc})", field="timestamp") from None


RunRecord = MetricsSnapshot | DecisionRecord | RunEvent


def file_for(record: RunRecord) -> str:
    """The file of the run directory a record goes to."""
    if isinstance(record, MetricsSnapshot):
        return SNAPSHOTS_FILE
    if isinstance(record, DecisionRecord):
        return DECISIONS_FILE
    return EVENTS_FILE


def to_line(record: RunRecord) -> str:
    """The record as one line of strict JSON (without the newline), every string redacted (no secret on disk)."""
    return json.dumps(redact_json(record.to_dict()), allow_nan=False, default=_not_json)


def parse_line(name: str, text: str) -> RunRecord:
    """A line of the run directory's file ``name`` read back."""
    if name not in RUN_FILES:
        raise InputError(f"not a run directory file (expected one of {', '.join(RUN_FILES)})", field=name)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}") from None
    if name == SNAPSHOTS_FILE:
        try:
            return MetricsSnapshot.from_dict(data)
        except (TypeError, ValueError, AttributeError, KeyError) as exc:
            raise InputError(f"not a snapshot ({exc})") from None
    if name == DECISIONS_FILE:
        return DecisionRecord.from_dict(data)
    return RunEvent.from_dict(data)


def _not_json(value: object) -> object:
    raise TypeError(f"not JSON: {type(value).__name__}")
