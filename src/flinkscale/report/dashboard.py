"""The live dashboard: a local web page that watches an autoscaling run directory as it is written.

The autoscale loop (and the demo) write a *run directory*; this module only reads it, through the one
schema in ``flinkscale.core.rundir`` (``snapshots.jsonl``, ``decisions.jsonl``, optional ``events.jsonl``).

Design, in four parts that each can be tested alone:

1. ``JsonlTail`` follows one file by byte offset. Only lines that end in a newline count, so a line the
   writer is half-way through is kept back until it is complete; a file that shrank was rewritten and is
   read again from the start. A line that is not valid JSON, or not a valid record, becomes a *problem*
   (``decisions.jsonl:7: ...``) shown on the page instead of stopping the dashboard.
2. ``RunDirFeed`` holds the parsed records of one run directory and refreshes them on each request, so the
   server tails the files without a thread of its own; pure view functions (``graph_view``,
   ``timeline_view``, ``decision_view``) turn records into JSON-ready dicts for the page.
3. ``StoreFeed`` is the same for the multi-job daemon, which keeps every job in its state store rather than a
   run directory: a job list (name, id, phase, parallelism, last decision) and, per job, the run page's state
   built from its stored snapshots, decisions, intents and rescales; a row that cannot be read is a problem on
   that job's page, as a bad line is.
4. ``create_app`` is a FastAPI application (the JSON endpoints, the page, plotly.js served from the
   installed plotly package, because the dashboard must work without internet); ``serve_dashboard`` runs
   it under uvicorn in a background thread, so the autoscale loop and the demo can show it while they work;
   ``create_jobs_app`` serves a ``StoreFeed``: the job list at ``/``, one job at ``/job/{job_id}``.

The page polls ``/api/state?version=V`` every 1.5 s; ``version`` changes whenever any file grew, so an idle
run costs one tiny answer per poll. Utilization is ``busy_time_ms_per_second_max / 1000`` (the busiest
subtask bounds a vertex), drawn on one colour scale whose stops the page receives from the server.
"""

from __future__ import annotations

import itertools
import json
import math
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from flinkscale.core.errors import FlinkscaleError, InputError, RuntimeFailure
from flinkscale.core.policy.base import Decision, RescaleRecord
from flinkscale.core.redaction import redact
from flinkscale.core.rundir import (
    DECISIONS_FILE,
    EVENTS_FILE,
    SNAPSHOTS_FILE,
    DecisionRecord,
    RunEvent,
    parse_line,
)
from flinkscale.core.snapshot import MetricsSnapshot

if TYPE_CHECKING:  # the store (and SQLAlchemy) only load for the multi-job view
    from flinkscale.store import Intent, StateStore

# The page shows at most this many points and log lines; a 10-minute demo stays far below.
MAX_TIMELINE_POINTS = 3600
MAX_LOG_ENTRIES = 300
MAX_PROBLEMS = 50
# A run-dir line longer than this is not a record (a 1000-vertex snapshot is ~1 MB).
MAX_LINE_CHARS = 16 * 2**20

# Utilization colour scale (green -> amber -> red): the server colours the vertex boxes and the page draws
# the colour bar from the same stops, so box and legend always agree.
UTILIZATION_COLORSCALE: tuple[tuple[float, str], ...] = (
    (0.0, "#2e9d57"), (0.5, "#e8b830"), (0.8, "#e8772e"), (1.0, "#c8302c"))
UNKNOWN_COLOUR = "#b8bec6"

_STATIC_DIR = Path(__file__).with_name("static")


def _timestamp(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise ValueError(f"timestamp must be a number, got {type(raw).__name__}")
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError("timestamp must be finite")
    return value


# --- tailing ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TailLine:
    """A complete line read from a tailed file, with its 1-based line number for error messages."""

    number: int
    text: str


@dataclass(frozen=True)
class TailRead:
    lines: tuple[TailLine, ...]
    # True when the file shrank or vanished: everything read before is stale and must be dropped.
    restarted: bool = False


class JsonlTail:
    """Follows one append-only JSONL file; ``read_new`` returns the complete lines added since last time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""
        self._lines_read = 0

    def read_new(self) -> TailRead:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            restarted = self._offset > 0
            self._reset()
            return TailRead((), restarted)
        restarted = size < self._offset
        if restarted:
            self._reset()
        if size == self._offset:
            return TailRead((), restarted)
        with self.path.open("rb") as stream:
            stream.seek(self._offset)
            chunk = stream.read(size - self._offset)
        self._offset += len(chunk)
        data = self._partial + chunk
        complete, newline, rest = data.rpartition(b"\n")
        if not newline:
            # No newline yet: the writer is mid-line; keep the bytes until the line is finished.
            self._partial = data
            return TailRead((), restarted)
        self._partial = rest
        lines = []
        for raw in complete.split(b"\n"):
            self._lines_read += 1
            text = raw.decode("utf-8", errors="replace").strip()
            if text:
                lines.append(TailLine(self._lines_read, text))
        return TailRead(tuple(lines), restarted)

    def _reset(self) -> None:
        self._offset = 0
        self._partial = b""
        self._lines_read = 0


class RunDirFeed:
    """The parsed contents of one run directory, refreshed from the files on demand (thread-safe)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._lock = threading.Lock()
        self._tails = {name: JsonlTail(run_dir / name) for name in (SNAPSHOTS_FILE, DECISIONS_FILE, EVENTS_FILE)}
        self.snapshots: list[MetricsSnapshot] = []
        self.decisions: list[DecisionRecord] = []
        self.events: list[RunEvent] = []
        self.problems: list[str] = []
        # Bumped on every change, so pollers can ask "anything new since version N?".
        self.version = 0

    def refresh(self) -> int:
        """Read whatever was appended since the last call; returns the (possibly new) version."""
        with self._lock:
            changed = False
            for name, tail in self._tails.items():
                read = tail.read_new()
                if read.restarted:
                    self._records(name).clear()
                    changed = True
                for line in read.lines:
                    changed = True
                    try:
                        self._records(name).append(_parse_line(name, line.text))
                    except InputError as exc:
                        self.problems.append(redact(f"{name}:{line.number}: {exc}"))
                    except Exception as exc:
                        self.problems.append(redact(f"{name}:{line.number}: not a valid record "
                                                    f"({type(exc).__name__}: {str(exc)[:200]})"))
            del self.problems[:-MAX_PROBLEMS]
            if changed:
                self.version += 1
            return self.version

    def _records(self, name: str) -> list[Any]:
        records: dict[str, list[Any]] = {
            SNAPSHOTS_FILE: self.snapshots, DECISIONS_FILE: self.decisions, EVENTS_FILE: self.events}
        return records[name]

    def state(self) -> dict[str, Any]:
        """Everything the page shows, JSON-ready (non-finite numbers become strings or null).

        Every record was drawn once when its line was read, so this cannot fail on one; should it fail anyway,
        the answer says so in ``problems`` (and the records stay) rather than failing every later request."""
        try:
            return self._state()
        except Exception as exc:
            with self._lock:
                problem = redact(f"cannot draw the run ({type(exc).__name__}: {str(exc)[:200]})")
                if problem not in self.problems:
                    self.problems.append(problem)
                return {"version": self.version, "run_dir": str(self.run_dir), "job": None,
                        "counts": {"snapshots": len(self.snapshots), "decisions": len(self.decisions),
                                   "events": len(self.events)},
                        "graph": None, "timeline": timeline_view([]), "decisions": [], "events": [],
                        "problems": list(self.problems)}

    def _state(self) -> dict[str, Any]:
        with self._lock:
            return run_state(self.version, str(self.run_dir), self.snapshots, self.decisions, self.events,
                             self.problems)


def run_state(version: int, source: str, snapshots: Sequence[MetricsSnapshot], decisions: Sequence[DecisionRecord],
              events: Sequence[RunEvent], problems: Sequence[str]) -> dict[str, Any]:
    """Everything the job page shows, from one run directory or one job of the state store."""
    latest = snapshots[-1] if snapshots else None
    return {
        "version": version,
        "run_dir": source,
        "job": None if latest is None else {
            "job_id": latest.job_id, "job_name": latest.job_name, "job_state": latest.job_state,
            "timestamp": latest.timestamp, "total_parallelism": latest.total_parallelism(),
            "source_lag_records": latest.source_lag()},
        "counts": {"snapshots": len(snapshots), "decisions": len(decisions), "events": len(events)},
        "graph": None if latest is None else graph_view(latest),
        "timeline": timeline_view(snapshots[-MAX_TIMELINE_POINTS:]),
        "decisions": [decision_view(r) for r in reversed(decisions[-MAX_LOG_ENTRIES:])],
        "events": [event_view(e) for e in reversed(events[-MAX_LOG_ENTRIES:])],
        "problems": list(problems),
    }


# --- every job of the multi-job daemon, from its state store -------------------------------------------
class _JobRows:
    """One job's records read so far from the store, by row id (read on: only rows newer than the last)."""

    def __init__(self) -> None:
        self.snapshots: list[tuple[int, MetricsSnapshot]] = []
        self.decisions: list[tuple[int, Decision]] = []
        self.problems: list[str] = []
        self.signature: tuple[Any, ...] = ()
        self.version = 0
        self.last_id: dict[str, int] = {}  # the last row read of each kind


class StoreFeed:
    """Every job the multi-job daemon keeps in its state store (``flinkscale.store``), read on demand.

    The job list comes from the store's jobs with their phase (``describe(store)``: the daemon's
    ``job_statuses``, injected because the app layer sits above this one); a job's page is the run page's
    state built from its stored snapshots and decisions, with its intents and measured rescales as events.
    Rows are read incrementally by row id, and one that cannot be read (damaged JSON, a record the page
    cannot draw) becomes a problem on that job's page, as a bad run-directory line does; a store that cannot
    be read at all is a problem of the answer, never a failed request."""

    def __init__(self, store: StateStore,
                 describe: Callable[[StateStore], Sequence[Mapping[str, Any]]] | None = None) -> None:
        self.store = store
        self.describe = describe
        self._lock = threading.Lock()
        self._rows: dict[str, _JobRows] = {}
        self.problems: list[str] = []

    def _problem(self, text: str, into: list[str]) -> None:
        text = redact(text)
        if text not in into:
            into.append(text)
        del into[:-MAX_PROBLEMS]

    def jobs_state(self) -> dict[str, Any]:
        """The job list: name, id, phase, parallelism and last decision of every job in the store."""
        with self._lock:
            try:
                jobs = self.store.jobs()
            except FlinkscaleError as exc:
                self._problem(f"cannot read the state store: {exc}", self.problems)
                return {"store": self.store.url, "jobs": [], "problems": list(self.problems)}
            described: dict[str, Mapping[str, Any]] = {}
            try:
                described = {str(d.get("job_id")): d for d in (self.describe(self.store) if self.describe else ())}
            except Exception as exc:  # a damaged row: the list still lists every job, without its phase
                self._problem(f"cannot tell the jobs' phases ({type(exc).__name__}: {str(exc)[:200]})",
                              self.problems)
            listed = []
            for job in jobs:
                about = described.get(job.job_id, {})
                entry: dict[str, Any] = {
                    "job_id": job.job_id, "job_name": job.job_name, "phase": about.get("phase", "-"),
                    "detail": about.get("detail", ""), "gone": job.gone_since is not None,
                    "last_seen": job.last_seen, "parallelism": None, "total_parallelism": None,
                    "last_decision": None, "learned_restart_seconds": job.restart_cost_seconds}
                try:
                    snapshot_rows = self.store.payload_rows("snapshots", job.job_id, newest=1)
                    decision_rows = self.store.payload_rows("decisions", job.job_id, newest=1)
                    if snapshot_rows:
                        latest = _checked(MetricsSnapshot.from_dict(json.loads(snapshot_rows[-1][2])))
                        entry["parallelism"] = dict(latest.parallelism_by_id)
                        entry["total_parallelism"] = latest.total_parallelism()
                    if decision_rows:
                        decision = Decision.from_dict(json.loads(decision_rows[-1][2]))
                        entry["last_decision"] = _decision_summary(decision)
                except FlinkscaleError as exc:
                    self._problem(f"job {job.job_name} ({job.job_id}): {exc}", self.problems)
                except Exception as exc:
                    self._problem(f"job {job.job_name} ({job.job_id}): its newest row is not a valid record "
                                  f"({type(exc).__name__}: {str(exc)[:200]})", self.problems)
                listed.append(entry)
            return {"store": self.store.url, "jobs": listed, "problems": list(self.problems)}

    def job_state(self, job_id: str) -> dict[str, Any] | None:
        """One job's page (the run page's state); None when the store has no such job."""
        with self._lock:
            try:
                job = self.store.job(job_id)
            except FlinkscaleError as exc:
                self._problem(f"cannot read the state store: {exc}", self.problems)
                return run_state(0, self.store.url, [], [], [], self.problems)
            if job is None:
                return None
            rows = self._rows.setdefault(job_id, _JobRows())
            events: list[RunEvent] = []
            records: list[DecisionRecord] = []
            try:
                self._read_rows(job.job_name, job_id, rows)
                intents = self.store.intents(job_id)
                rescales = self.store.rescales(job_id)
                records = [_decision_record(d, intents, rescales) for _, d in rows.decisions]
                events = _store_events(intents, rescales)
                signature = (len(rows.snapshots), rows.snapshots[-1][0] if rows.snapshots else 0,
                             len(rows.decisions), rows.decisions[-1][0] if rows.decisions else 0,
                             tuple((i.intent_id, i.status) for i in intents), len(rescales), len(rows.problems))
            except FlinkscaleError as exc:
                self._problem(f"cannot read the state store: {exc}", rows.problems)
                signature = (*rows.signature, len(rows.problems))
            if signature != rows.signature:
                rows.signature, rows.version = signature, rows.version + 1
            return run_state(rows.version, f"the state store {self.store.url}", [s for _, s in rows.snapshots],
                             records, events, rows.problems)

    def job_version(self, job_id: str) -> int | None:
        state = self.job_state(job_id)
        return None if state is None else int(state["version"])

    def _read_rows(self, job_name: str, job_id: str, rows: _JobRows) -> None:
        for kind in ("snapshots", "decisions"):
            first = self.store.first_row_id(kind, job_id)
            bound = first if first is not None else rows.last_id.get(kind, 0) + 1  # rows pruned since go
            if kind == "snapshots":
                rows.snapshots[:] = [(i, r) for i, r in rows.snapshots if i >= bound]
            else:
                rows.decisions[:] = [(i, r) for i, r in rows.decisions if i >= bound]
            for row_id, _, payload in self.store.payload_rows(kind, job_id, after_id=rows.last_id.get(kind, 0)):
                rows.last_id[kind] = row_id
                try:
                    if len(payload) > MAX_LINE_CHARS:
                        raise InputError(f"a row of {len(payload):,} characters is not a record")
                    try:
                        data = json.loads(payload)
                    except json.JSONDecodeError as exc:
                        raise InputError(f"not valid JSON: {exc.msg}") from None
                    if kind == "snapshots":
                        rows.snapshots.append((row_id, _checked(MetricsSnapshot.from_dict(data))))
                    else:
                        decision = Decision.from_dict(data)
                        _checked(DecisionRecord(decision.timestamp, decision, decision.rescale))
                        rows.decisions.append((row_id, decision))
                except InputError as exc:
                    self._problem(f"job {job_name}: {kind} row {row_id}: {exc}", rows.problems)
                except Exception as exc:
                    self._problem(f"job {job_name}: {kind} row {row_id}: not a valid record "
                                  f"({type(exc).__name__}: {str(exc)[:200]})", rows.problems)
        del rows.snapshots[:-MAX_TIMELINE_POINTS]
        del rows.decisions[:-MAX_TIMELINE_POINTS]


def _decision_summary(decision: Decision) -> dict[str, Any]:
    if decision.rescale:
        text = "rescale " + ", ".join(f"{v.vertex_name}: {v.current_parallelism} -> {v.new_parallelism}"
                                      for v in decision.vertices if v.changed)
    elif decision.blocked_reason:
        text = f"hold: {decision.blocked_reason}"
    else:
        text = "no change"
    return {"timestamp": decision.timestamp, "policy": decision.policy, "rescale": decision.rescale,
            "summary": redact(text)}


def _decision_record(decision: Decision, intents: Sequence[Intent], rescales: Sequence[RescaleRecord]
                     ) -> DecisionRecord:
    """A stored decision as the run page's record: applied when an intent to its target was carried out."""
    if not decision.rescale:
        return DecisionRecord(decision.timestamp, decision, False)
    changed = {v.vertex_id: v.new_parallelism for v in decision.vertices if v.changed}
    intent = next((i for i in intents if i.created_at >= decision.timestamp - 1.0
                   and all(i.target_parallelism.get(k) == p for k, p in changed.items())), None)
    if intent is None:
        return DecisionRecord(decision.timestamp, decision, False)
    measured = next((r for r in rescales if r.completed_at >= decision.timestamp
                     and all(r.new_parallelism.get(k) == p for k, p in changed.items())), None)
    return DecisionRecord(decision.timestamp, decision, intent.status == "done",
                          measured.duration_seconds if measured is not None else None,
                          intent.note if intent.status == "failed" else None)


def _store_events(intents: Sequence[Intent], rescales: Sequence[RescaleRecord]) -> list[RunEvent]:
    events = [RunEvent(i.created_at, "rescale-intent", f"to {dict(i.target_parallelism)} (intent {i.intent_id[:8]})")
              for i in intents]
    events += [RunEvent(i.finished_at, f"intent-{i.status}", i.note or f"intent {i.intent_id[:8]}")
               for i in intents if i.finished_at is not None]
    events += [RunEvent(r.completed_at, "rescaled", f"{dict(r.old_parallelism)} -> {dict(r.new_parallelism)} in "
                                                    f"{r.duration_seconds:.1f}s") for r in rescales]
    return sorted(events, key=lambda e: e.timestamp)


def _parse_line(name: str, text: str) -> MetricsSnapshot | DecisionRecord | RunEvent:
    """One line as its record, checked by building its views once: a record the page could not draw is a
    problem of its line now, not a failure of every later answer (the views run over all records)."""
    if len(text) > MAX_LINE_CHARS:
        raise InputError(f"a line of {len(text):,} characters is not a record (limit {MAX_LINE_CHARS:,})")
    try:
        record = parse_line(name, text)
    except RecursionError:
        raise InputError("JSON nested too deeply") from None
    if isinstance(record, MetricsSnapshot):
        return _checked(record)
    if isinstance(record, DecisionRecord):
        return _checked(record)
    return _checked(record)


_R = TypeVar("_R", MetricsSnapshot, DecisionRecord, RunEvent)


def _checked(record: _R) -> _R:
    """``record`` once its views were drawn: a record the page could not draw is an ``InputError`` now."""
    try:
        if isinstance(record, MetricsSnapshot):
            _timestamp(record.timestamp)
            graph_view(record)
            timeline_view([record])
            json.dumps(record.to_dict(), allow_nan=False)
        elif isinstance(record, DecisionRecord):
            decision_view(record)
        else:
            _timestamp(record.timestamp)
    except InputError:
        raise
    except (TypeError, ValueError, AttributeError, KeyError, IndexError, ArithmeticError, RecursionError) as exc:
        raise InputError(f"not a valid record ({type(exc).__name__}: {str(exc)[:200]})") from None
    return record


# --- views (pure) -----------------------------------------------------------------------------------
def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def utilization_colour(utilization: float | None) -> str:
    """The box colour for a utilization (0..1, clamped), interpolated on ``UTILIZATION_COLORSCALE``."""
    if utilization is None or not math.isfinite(utilization):
        return UNKNOWN_COLOUR
    u = min(max(utilization, 0.0), 1.0)
    for (low, low_colour), (high, high_colour) in itertools.pairwise(UTILIZATION_COLORSCALE):
        if u <= high:
            share = 0.0 if high == low else (u - low) / (high - low)
            return _mix(low_colour, high_colour, share)
    return UTILIZATION_COLORSCALE[-1][1]


def _mix(a: str, b: str, share: float) -> str:
    ca = [int(a[i:i + 2], 16) for i in (1, 3, 5)]
    cb = [int(b[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * share):02x}" for x, y in zip(ca, cb, strict=True))


def graph_layout(snapshot: MetricsSnapshot) -> dict[str, tuple[float, float]]:
    """Box centres: column = longest path from a source, rows spread evenly and centred on 0."""
    depth: dict[str, int] = {}
    for vertex in snapshot.topological_order():
        depth[vertex.id] = max((depth[e.source] + 1 for e in snapshot.inputs_of(vertex.id)), default=0)
    columns: dict[int, list[str]] = {}
    for vertex_id, column in depth.items():
        columns.setdefault(column, []).append(vertex_id)
    positions: dict[str, tuple[float, float]] = {}
    for column, ids in columns.items():
        for row, vertex_id in enumerate(ids):
            positions[vertex_id] = (float(column), (len(ids) - 1) / 2 - row)
    return positions


def graph_view(snapshot: MetricsSnapshot) -> dict[str, Any]:
    """The job graph for the page: boxes with name, parallelism, utilization (and its colour), edges."""
    positions = graph_layout(snapshot)
    nodes = []
    for vertex in snapshot.vertices:
        metrics = vertex.metrics
        utilization = _finite(metrics.busy_ratio_max)
        backpressure = _finite(metrics.back_pressured_time_ms_per_second_max)
        x, y = positions[vertex.id]
        nodes.append({
            "id": vertex.id, "name": vertex.name, "parallelism": vertex.parallelism,
            "max_parallelism": vertex.max_parallelism, "is_source": vertex.is_source, "is_sink": vertex.is_sink,
            "partitions": vertex.partitions, "x": x, "y": y,
            "utilization": utilization, "colour": utilization_colour(utilization),
            "back_pressured_ratio": None if backpressure is None else backpressure / 1000,
            "records_in_per_second": _finite(metrics.num_records_in_per_second),
            "records_out_per_second": _finite(metrics.num_records_out_per_second),
            "pending_records": _finite(metrics.pending_records),
        })
    edges = [{"source": e.source, "target": e.target, "ship_strategy": e.ship_strategy.value}
             for e in snapshot.edges]
    return {"timestamp": snapshot.timestamp, "nodes": nodes, "edges": edges,
            "colorscale": [list(stop) for stop in UTILIZATION_COLORSCALE]}


def timeline_view(snapshots: Sequence[MetricsSnapshot]) -> dict[str, Any]:
    """Series over time: source rate (records read), lag, and per vertex parallelism/utilization/rate.

    A vertex missing from a snapshot (the job was resubmitted with new vertex ids) gets ``None`` there,
    which the charts draw as a gap rather than a misleading line.
    """
    names: dict[str, str] = {}
    for snapshot in snapshots:
        for vertex in snapshot.vertices:
            names.setdefault(vertex.id, vertex.name)
    per_vertex: dict[str, dict[str, Any]] = {
        vid: {"name": name, "parallelism": [], "utilization": [], "records_in_per_second": []}
        for vid, name in names.items()}
    timestamps: list[float] = []
    source_rate: list[float | None] = []
    source_lag: list[float | None] = []
    for snapshot in snapshots:
        timestamps.append(snapshot.timestamp)
        rates = [v.metrics.num_records_in_per_second for v in snapshot.sources()]
        known_rates = [r for r in rates if r is not None and math.isfinite(r)]
        source_rate.append(sum(known_rates) if known_rates else None)
        lags = [v.metrics.pending_records for v in snapshot.sources()]
        source_lag.append(snapshot.source_lag() if any(lag is not None for lag in lags) else None)
        present = {v.id: v for v in snapshot.vertices}
        for vid, series in per_vertex.items():
            found = present.get(vid)
            series["parallelism"].append(None if found is None else found.parallelism)
            series["utilization"].append(None if found is None else _finite(found.metrics.busy_ratio_max))
            series["records_in_per_second"].append(
                None if found is None else _finite(found.metrics.num_records_in_per_second))
    return {"timestamps": timestamps, "source_records_in_per_second": source_rate,
            "source_lag_records": source_lag, "vertices": per_vertex}


def decision_view(record: DecisionRecord) -> dict[str, Any]:
    """One decision-log entry: the verdict, what changed and why, and what the loop did with it."""
    decision = record.decision
    if record.error:
        outcome = "failed"
    elif decision.rescale:
        outcome = "applied" if record.applied else "not applied"
    else:
        outcome = "blocked" if decision.blocked_reason else "no change"
    return {
        "timestamp": record.timestamp, "policy": decision.policy, "rescale": decision.rescale,
        "applied": record.applied, "outcome": outcome, "blocked_reason": decision.blocked_reason,
        "shed_fraction": decision.shed_fraction, "rescale_seconds": record.rescale_seconds,
        "error": None if record.error is None else redact(record.error),
        # VertexDecision.to_dict spells non-finite numbers as JSON can carry them ("inf", null).
        "vertices": [v.to_dict() for v in decision.vertices],
    }


def event_view(event: RunEvent) -> dict[str, Any]:
    return {"timestamp": event.timestamp, "kind": redact(event.kind), "message": redact(event.message)}


# --- the web application ----------------------------------------------------------------------------
def plotly_js_path() -> Path:
    """plotly.min.js from the installed plotly package (the machine running the dashboard may be offline)."""
    import plotly  # type: ignore[import-untyped]

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise RuntimeFailure(f"plotly.min.js is missing from the plotly package at {path}")
    return path


def create_app(run_dir: Path) -> Any:
    """The FastAPI application serving one run directory (typed ``Any``: FastAPI is imported lazily).

    Endpoints: ``/`` (the page), ``/api/state`` (everything; ``?version=V`` answers ``{"version": V,
    "unchanged": true}`` when nothing changed since V), ``/api/graph``, ``/api/timeline``,
    ``/api/decisions``, ``/api/events``, ``/static/...`` (page assets and plotly.min.js).
    """
    from fastapi import FastAPI
    from fastapi.responses import FileResponse, HTMLResponse
    from fastapi.staticfiles import StaticFiles

    feed = RunDirFeed(run_dir)
    app = FastAPI(title="flinkscale dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    page = (_STATIC_DIR / "dashboard.html").read_text(encoding="utf-8")
    plotly_js = plotly_js_path()

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return page

    @app.get("/static/plotly.min.js")
    def plotly_script() -> FileResponse:
        return FileResponse(plotly_js, media_type="text/javascript")

    @app.get("/api/state")
    def state(version: int | None = None) -> dict[str, Any]:
        current = feed.refresh()
        if version is not None and version == current:
            return {"version": current, "unchanged": True}
        return feed.state()

    @app.get("/api/graph")
    def graph() -> dict[str, Any] | None:
        feed.refresh()
        result: dict[str, Any] | None = feed.state()["graph"]
        return result

    @app.get("/api/timeline")
    def timeline() -> dict[str, Any]:
        feed.refresh()
        result: dict[str, Any] = feed.state()["timeline"]
        return result

    @app.get("/api/decisions")
    def decisions() -> list[dict[str, Any]]:
        feed.refresh()
        result: list[dict[str, Any]] = feed.state()["decisions"]
        return result

    @app.get("/api/events")
    def events() -> list[dict[str, Any]]:
        feed.refresh()
        result: list[dict[str, Any]] = feed.state()["events"]
        return result

    app.mount("/static", StaticFiles(directory=_STATIC_DIR), name="static")
    app.state.feed = feed
    return app


def create_jobs_app(store: StateStore,
                    describe: Callable[[StateStore], Sequence[Mapping[str, Any]]] | None = None) -> Any:
    """The FastAPI application serving every job of the multi-job daemon from its state store.

    Endpoints: ``/`` (the job list page), ``/job/{job_id}`` (that job's page: the run page, drawing from the
    job's endpoint), ``/api/jobs`` (name, id, phase, parallelism and last decision of every job),
    ``/api/jobs/{job_id}/state`` (as ``/api/state`` of a run directory; ``?version=V`` answers ``unchanged``),
    ``/static/...``. An unknown job is a 404 with a one-line ``detail``."""
    import html
    from urllib.parse import quote

    from fastapi import FastAPI, HTTPException
    from fastapi.responses import FileResponse, HTMLResponse
    from fastapi.staticfiles import StaticFiles

    feed = StoreFeed(store, describe)
    app = FastAPI(title="flinkscale dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    jobs_page = (_STATIC_DIR / "jobs.html").read_text(encoding="utf-8")
    job_page = (_STATIC_DIR / "dashboard.html").read_text(encoding="utf-8")
    plotly_js = plotly_js_path()

    def unknown(job_id: str) -> HTTPException:
        return HTTPException(404, redact(f"no job {job_id[:64]!r} in the state store {store.url}"))

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return jobs_page

    @app.get("/job/{job_id}", response_class=HTMLResponse)
    def job_page_for(job_id: str) -> str:
        if feed.job_version(job_id) is None:
            raise unknown(job_id)
        api = html.escape(f"/api/jobs/{quote(job_id, safe='')}/state", quote=True)
        return job_page.replace('<body data-state="loading">', f'<body data-state="loading" data-api="{api}">') \
            .replace("<h1>flinkscale</h1>", '<h1>flinkscale</h1> <a class="back" href="/">all jobs</a>')

    @app.get("/static/plotly.min.js")
    def plotly_script() -> FileResponse:
        return FileResponse(plotly_js, media_type="text/javascript")

    @app.get("/api/jobs")
    def jobs() -> dict[str, Any]:
        return feed.jobs_state()

    @app.get("/api/jobs/{job_id}/state")
    def job_state(job_id: str, version: int | None = None) -> dict[str, Any]:
        state = feed.job_state(job_id)
        if state is None:
            raise unknown(job_id)
        if version is not None and version == state["version"]:
            return {"version": version, "unchanged": True}
        return state

    app.mount("/static", StaticFiles(directory=_STATIC_DIR), name="static")
    app.state.feed = feed
    return app


@dataclass
class DashboardServer(AbstractContextManager["DashboardServer"]):
    """A running dashboard; ``url`` is where to point a browser, ``stop()`` shuts it down (idempotent)."""

    url: str
    host: str
    port: int
    run_dir: Path | None
    _server: Any = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)

    def wait(self) -> None:
        """Block until the server stops (``flinkscale dashboard`` waits here for Ctrl-C)."""
        while self._thread.is_alive():
            self._thread.join(0.5)

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_dashboard(run_dir: Path | None, host: str = "127.0.0.1", port: int = 0, *, app: Any = None
                    ) -> DashboardServer:
    """Start the dashboard for ``run_dir`` in a background thread and return once it accepts connections.

    ``port=0`` picks a free port (read it from ``.port`` or ``.url``). The run directory may be empty or
    not exist yet: the page fills in as the autoscale loop writes. Raises ``InputError`` (field ``--port``)
    when the address cannot be bound, ``RuntimeFailure`` when the server does not come up. ``app`` serves
    instead of the run directory's (``create_jobs_app``: every job of the multi-job daemon).
    """
    import uvicorn

    if app is None and run_dir is None:
        raise InputError("give a run directory or an application to serve", field="RUN_DIR")
    if run_dir is not None and run_dir.exists() and not run_dir.is_dir():
        raise InputError("is not a directory", field=str(run_dir))
    # Binding the socket here, not in uvicorn, is what makes port 0 usable: the real port is known at once.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", field="--port") from None
    sock.listen(128)
    bound_port = int(sock.getsockname()[1])
    if app is None:
        assert run_dir is not None
        app = create_app(run_dir)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    # uvicorn installs no signal handlers outside the main thread: the host program keeps owning Ctrl-C.
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="flinkscale-dashboard",
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + 15.0
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise RuntimeFailure(f"the dashboard server did not start on {host}:{bound_port}")
        time.sleep(0.02)
    url_host = f"[{host}]" if ":" in host else host
    return DashboardServer(f"http://{url_host}:{bound_port}/", host, bound_port, run_dir, server, thread)
