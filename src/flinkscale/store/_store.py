"""``StateStore``: every job's bounded history in a database (SQLite by default, PostgreSQL by URL).

Design:

- One method, one transaction. ``batch()`` groups a whole control cycle (every job's snapshot, decision
  and load sample) into a single transaction, which is what makes 200 jobs cheap on SQLite (one commit,
  one fsync) and makes a cycle all-or-nothing under SIGKILL.
- One writer. ``acquire_lease(owner)`` takes the lease row or fails with one line naming the owner whose
  lease is live; while a lease is held, every ``batch()`` renews it in the same transaction as its
  writes, and a batch whose lease was taken over (it expired while this process hung) is rolled back.
- Intents. A rescale is written as a pending intent (previous and target parallelism) before it is
  applied and finished after. After a restart ``reconcile`` compares the job's observed parallelism with
  the pending intent and says whether it already took effect (never apply it again), may be retried, or
  must be decided anew. Scale-down timers are rows with their due time, so they outlive the process.
- Bounded. ``prune(Retention)`` deletes what the policy no longer needs; the daemon calls it each cycle.
- Errors name the store by its URL with the password hidden: an unreadable or corrupt file and a foreign
  database are ``InputError``; a newer schema, a lost lease and a held lease are ``RuntimeFailure``; an
  unreachable PostgreSQL server is an ``EndpointError``.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, delete, event, func, insert, select, update
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from flinkscale.core.errors import EndpointError, InputError, RuntimeFailure
from flinkscale.core.policy.base import Decision, History, RescaleRecord
from flinkscale.core.snapshot import MetricsSnapshot
from flinkscale.store import _migrate, _schema
from flinkscale.store import records as rec
from flinkscale.store._url import parse_store_url, redacted, sqlite_path

Clock = Callable[[], float]
DAEMON_LEASE = "daemon"
PG_CONNECT_TIMEOUT_S = 10


@dataclass(frozen=True)
class CycleEntry:
    """One job's writes in a control cycle (see ``StateStore.record_cycle``)."""

    job_id: str
    snapshot: MetricsSnapshot | None
    decision: Decision | None
    source_rate: float | None = None


class LeaseHeld(RuntimeFailure):
    """Another process holds the store's lease."""


class LeaseLost(RuntimeFailure):
    """This process's lease expired and another process took it: stop writing."""


_T = TypeVar("_T")


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, allow_nan=False, separators=(",", ":"))


def _parallelism(text: str) -> dict[str, int]:
    """A stored ``{vertex id: parallelism}``; ValueError/TypeError/AttributeError when the row is not one."""
    parallelism = {str(k): int(v) for k, v in json.loads(text).items()}
    if any(not 1 <= p <= 32768 for p in parallelism.values()):
        raise ValueError(f"a parallelism out of range in {text[:80]!r}")
    return parallelism


#: Stored times are UNIX seconds; anything outside [0, this] (the year 5138) is a damaged row.
_LATEST_TIME = 1e11


def _time(value: Any, name: str) -> float:
    """A stored time, checked (SQLite keeps whatever a hand edit put in a REAL column)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= _LATEST_TIME:
        raise ValueError(f"{name} {str(value)[:40]!r} is not a time")
    return float(value)


def _optional_time(value: Any, name: str) -> float | None:
    return None if value is None else _time(value, name)


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} {str(value)[:40]!r} is not a count")
    return value


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} {str(value)[:40]!r} is not text")
    return value


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return lines[0] if lines else type(orig).__name__


class StateStore(AbstractContextManager["StateStore"]):
    """Open with ``StateStore.open(url)``; the schema is created or upgraded on open."""

    def __init__(self, engine: Engine, url: URL, clock: Clock = time.time) -> None:
        self._engine = engine
        self._url = url
        self._clock = clock
        self._owner: str | None = None
        self._lease_ttl = 0.0
        self._local = threading.local()

    # --- opening ---------------------------------------------------------------------------------
    @classmethod
    def open(cls, url: str, *, clock: Clock = time.time, revision: str = "head",
             field: str = "--state") -> StateStore:
        parsed = parse_store_url(url, field=field)
        path = sqlite_path(parsed)
        if path is not None and not path.exists():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InputError(f"{redacted(parsed)}: cannot create the state store's directory: "
                                 f"{exc.strerror}") from None
        if parsed.get_backend_name() == "sqlite":
            engine = create_engine(parsed, connect_args={"timeout": 30})
        else:  # never hang on an unreachable server; survive a server restart between cycles
            timeout = {} if "connect_timeout" in parsed.query else {"connect_timeout": PG_CONNECT_TIMEOUT_S}
            engine = create_engine(parsed, connect_args=timeout, pool_pre_ping=True)
        if parsed.get_backend_name() == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "begin", _sqlite_begin)
        store = cls(engine, parsed, clock)
        try:
            with engine.begin() as connection:
                if path is not None:
                    store._check_integrity(connection)
                _migrate.upgrade(connection, store.url, revision)
        except SQLAlchemyError as exc:
            engine.dispose()
            raise store._error(exc, "cannot open the state store") from None
        except BaseException:
            engine.dispose()
            raise
        return store

    def _check_integrity(self, connection: Connection) -> None:
        """SQLite's quick check (reads every page once): a damaged file is refused at start, not mid-run."""
        problems = [str(row) for row in connection.exec_driver_sql("PRAGMA quick_check").scalars().all()]
        if problems != ["ok"]:
            first = (problems[0].strip().splitlines() or ["?"])[0]
            raise InputError(f"{self.url}: the state store is damaged ({first}); restore it from a backup, "
                             "or move it away to start with an empty one")

    def _decoded(self, table: str, job_id: str, payload: str, parse: Callable[[Any], _T]) -> _T:
        """A stored JSON row as its record; a damaged row (edited by hand, written by a foreign tool) is a
        clear error naming the store, the table and the job, never a crash mid-read."""
        return self._read_row(table, job_id, lambda text: parse(json.loads(text)), payload)

    def _read_row(self, table: str, job_id: str, build: Callable[[Any], _T], row: Any) -> _T:
        """``build(row)``, a record from one stored row; a row that does not read is ``InputError`` naming the
        store, the table and the job (every read of a row goes through here)."""
        try:
            return build(row)
        except (InputError, ValueError, TypeError, KeyError, AttributeError, ArithmeticError) as exc:
            detail = str(exc) if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
            raise InputError(f"{self.url}: the state store is damaged (a row of {table} for job {str(job_id)[:64]} "
                             f"does not read: {detail[:200]}); restore it from a backup, or move it away to "
                             "start with an empty one") from None

    @property
    def url(self) -> str:
        """The store's URL with the password hidden: safe in any message."""
        return redacted(self._url)

    def schema_revision(self) -> str | None:
        with self._read() as connection:
            return _migrate.current_revision(connection)

    def close(self) -> None:
        self._engine.dispose()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _error(self, exc: SQLAlchemyError, what: str) -> Exception:
        detail = _first_line(exc)
        if self._url.password:
            detail = detail.replace(str(self._url.password), "***")
        if self._url.get_backend_name() == "sqlite":
            return InputError(f"{self.url}: {what}: {detail}")
        if (isinstance(exc, DBAPIError) and exc.connection_invalidated) or "connect" in detail.lower():
            return EndpointError(f"{what}: {detail}", endpoint=self.url)
        return RuntimeFailure(f"{self.url}: {what}: {detail}")

    # --- transactions ----------------------------------------------------------------------------
    def _write(self) -> AbstractContextManager[Connection]:
        return self._transaction(write=True)

    def _read(self) -> AbstractContextManager[Connection]:
        return self._transaction(write=False)

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Connection]:
        """The write transaction this thread is in, if any (a store call made inside joins it); otherwise a new
        write transaction that later calls on this thread join, or a plain connection to read with."""
        current: Connection | None = getattr(self._local, "connection", None)
        if current is not None:
            yield current
            return
        try:
            if not write:
                with self._engine.connect() as connection:
                    yield connection
                return
            with self._begin_write() as connection:
                self._local.connection = connection
                try:
                    yield connection
                finally:
                    self._local.connection = None
        except SQLAlchemyError as exc:
            raise self._error(exc, "write failed" if write else "read failed") from None

    @contextmanager
    def _begin_write(self) -> Iterator[Connection]:
        """A write transaction; on SQLite ``BEGIN IMMEDIATE``, so its reads and writes are one atomic step
        (a deferred transaction that reads first could fail to upgrade to a writer under contention)."""
        with self._engine.connect() as connection:
            connection.execution_options(**{_WRITE_OPTION: True})
            with connection.begin():
                yield connection

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Every store call inside (on this thread) is one transaction; the lease, if held, is renewed in it."""
        joined = getattr(self._local, "connection", None) is not None
        with self._write() as connection:
            if self._owner is not None and not joined:
                self._renew(connection, self._owner, self._lease_ttl)
            yield

    # --- the lease -------------------------------------------------------------------------------
    def acquire_lease(self, owner: str, ttl_seconds: float = 60.0) -> rec.LeaseInfo:
        """Take the writer's lease, or raise ``LeaseHeld`` naming the owner while its lease is live."""
        now = self._clock()
        row = {"name": DAEMON_LEASE, "owner": owner, "acquired_at": now, "heartbeat_at": now,
               "expires_at": now + ttl_seconds}
        try:
            with self._begin_write() as connection:
                connection.execute(insert(_schema.lease).values(row))
        except IntegrityError:
            with self._write() as connection:
                taken = connection.execute(
                    update(_schema.lease)
                    .where(_schema.lease.c.name == DAEMON_LEASE)
                    .where((_schema.lease.c.expires_at <= now) | (_schema.lease.c.owner == owner))
                    .values(row)).rowcount
            if taken != 1:
                holder = self.lease_holder()
                if holder is not None and holder.owner != owner:
                    raise LeaseHeld(f"{self.url}: the state store is in use by {holder.owner} (lease expires in "
                                    f"{max(0.0, holder.expires_at - now):.0f}s unless it renews); stop it "
                                    "or point --state elsewhere") from None
                return self.acquire_lease(owner, ttl_seconds)  # it expired between the two statements
        except SQLAlchemyError as exc:
            raise self._error(exc, "cannot take the lease") from None
        self._owner, self._lease_ttl = owner, ttl_seconds
        holder = self.lease_holder()
        assert holder is not None
        return holder

    def renew_lease(self) -> None:
        """Heartbeat; ``LeaseLost`` if another process took the lease after it expired."""
        if self._owner is None:
            raise RuntimeFailure(f"{self.url}: no lease to renew")
        with self._write() as connection:
            self._renew(connection, self._owner, self._lease_ttl)

    def _renew(self, connection: Connection, owner: str, ttl: float) -> None:
        now = self._clock()
        renewed = connection.execute(
            update(_schema.lease)
            .where(_schema.lease.c.name == DAEMON_LEASE)
            .where(_schema.lease.c.owner == owner)
            .values(heartbeat_at=now, expires_at=now + ttl)).rowcount
        if renewed != 1:
            self._owner = None
            raise LeaseLost(f"{self.url}: this process ({owner}) lost the state store's lease to another one; "
                            "stopping without writing")

    def release_lease(self) -> None:
        if self._owner is None:
            return
        with self._write() as connection:
            connection.execute(delete(_schema.lease).where(_schema.lease.c.name == DAEMON_LEASE)
                               .where(_schema.lease.c.owner == self._owner))
        self._owner = None

    def lease_holder(self) -> rec.LeaseInfo | None:
        with self._read() as connection:
            row = connection.execute(select(_schema.lease).where(_schema.lease.c.name == DAEMON_LEASE)).first()
        if row is None:
            return None
        return rec.LeaseInfo(row.owner, row.acquired_at, row.heartbeat_at, row.expires_at)

    # --- jobs ------------------------------------------------------------------------------------
    def upsert_job(self, job_id: str, job_name: str, now: float | None = None) -> None:
        """The job is running (again): seen now, no longer gone."""
        now = self._clock() if now is None else now
        table = _schema.jobs
        with self._write() as connection:
            seen = connection.execute(update(table).where(table.c.job_id == job_id)
                                      .values(job_name=job_name, last_seen=now, gone_since=None)).rowcount
            if not seen:
                connection.execute(insert(table).values(job_id=job_id, job_name=job_name, first_seen=now,
                                                        last_seen=now, gone_since=None, restart_cost_samples=0))

    def mark_gone(self, job_id: str, now: float | None = None) -> None:
        """The job finished or was cancelled; its state stays until ``Retention.gone_job_seconds``."""
        now = self._clock() if now is None else now
        table = _schema.jobs
        with self._write() as connection:
            connection.execute(update(table).where(table.c.job_id == job_id).where(table.c.gone_since.is_(None))
                               .values(gone_since=now))

    def jobs(self) -> tuple[rec.JobRecord, ...]:
        with self._read() as connection:
            rows = connection.execute(select(_schema.jobs).order_by(_schema.jobs.c.job_id)).all()
        return tuple(self._read_row("jobs", r.job_id, _job_record, r) for r in rows)

    def job(self, job_id: str) -> rec.JobRecord | None:
        return next((j for j in self.jobs() if j.job_id == job_id), None)

    # --- snapshots, decisions, rescales ----------------------------------------------------------
    def add_snapshot(self, job_id: str, snapshot: MetricsSnapshot) -> None:
        with self._write() as connection:
            connection.execute(insert(_schema.snapshots).values(
                job_id=job_id, timestamp=snapshot.timestamp, payload=_dumps(snapshot.to_dict())))

    def record_cycle(self, entries: Sequence[CycleEntry]) -> None:
        """A whole control cycle's writes, every job's at once (a few multi-row statements, one transaction):
        its snapshot, its decision and its source-rate sample (None: a partial sample, not recorded)."""
        snapshot_rows = [{"job_id": e.job_id, "timestamp": e.snapshot.timestamp,
                          "payload": _dumps(e.snapshot.to_dict())} for e in entries if e.snapshot is not None]
        decision_rows = [{"job_id": e.job_id, "timestamp": e.decision.timestamp,
                          "payload": _dumps(e.decision.to_dict())} for e in entries if e.decision is not None]
        with self._write() as connection:
            if snapshot_rows:
                connection.execute(insert(_schema.snapshots), snapshot_rows)
            if decision_rows:
                connection.execute(insert(_schema.decisions), decision_rows)
            for entry in entries:
                if entry.source_rate is not None and entry.snapshot is not None:
                    self.record_load(entry.job_id, entry.snapshot.timestamp, entry.source_rate)

    def snapshots(self, job_id: str, since: float | None = None) -> tuple[MetricsSnapshot, ...]:
        table = _schema.snapshots
        query = select(table.c.payload).where(table.c.job_id == job_id)
        if since is not None:
            query = query.where(table.c.timestamp >= since)
        with self._read() as connection:
            rows = connection.execute(query.order_by(table.c.timestamp, table.c.id)).scalars().all()
        return tuple(self._decoded("snapshots", job_id, payload, MetricsSnapshot.from_dict) for payload in rows)

    def add_decision(self, job_id: str, decision: Decision) -> None:
        with self._write() as connection:
            connection.execute(insert(_schema.decisions).values(
                job_id=job_id, timestamp=decision.timestamp, payload=_dumps(decision.to_dict())))

    def decisions(self, job_id: str, limit: int | None = None) -> tuple[Decision, ...]:
        """Oldest first; with ``limit``, the newest ``limit``."""
        table = _schema.decisions
        query = select(table.c.payload).where(table.c.job_id == job_id).order_by(table.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self._read() as connection:
            rows = connection.execute(query).scalars().all()
        return tuple(self._decoded("decisions", job_id, payload, Decision.from_dict) for payload in reversed(rows))

    def payload_rows(self, kind: str, job_id: str, *, after_id: int = 0, newest: int | None = None
                     ) -> tuple[tuple[int, float, str], ...]:
        """Raw ``(row id, timestamp, JSON text)`` rows of ``kind`` (``snapshots`` or ``decisions``), oldest first:
        those after ``after_id``, or only the ``newest`` few. For readers that parse row by row and report a
        damaged row instead of failing on it (the dashboard); ``first_row_id`` tells them what pruning removed."""
        table = {"snapshots": _schema.snapshots, "decisions": _schema.decisions}[kind]
        query = select(table.c.id, table.c.timestamp, table.c.payload).where(table.c.job_id == job_id)
        if after_id:
            query = query.where(table.c.id > after_id)
        query = query.order_by(table.c.id.desc()).limit(newest) if newest is not None else query.order_by(table.c.id)
        with self._read() as connection:
            rows = connection.execute(query).all()
        ordered = reversed(rows) if newest is not None else rows
        return tuple((int(r.id), float(r.timestamp), str(r.payload)) for r in ordered)

    def first_row_id(self, kind: str, job_id: str) -> int | None:
        """The oldest ``kind`` row id a job still has (None: none)."""
        table = {"snapshots": _schema.snapshots, "decisions": _schema.decisions}[kind]
        with self._read() as connection:
            value = connection.execute(select(func.min(table.c.id)).where(table.c.job_id == job_id)).scalar()
        return None if value is None else int(value)

    def add_rescale(self, job_id: str, record: RescaleRecord) -> None:
        """Keep the measured rescale and fold its duration into the job's learned restart cost (a mean)."""
        jobs = _schema.jobs
        with self._write() as connection:
            connection.execute(insert(_schema.rescales).values(
                job_id=job_id, requested_at=record.requested_at, completed_at=record.completed_at,
                old_parallelism=_dumps(dict(record.old_parallelism)),
                new_parallelism=_dumps(dict(record.new_parallelism))))
            row = connection.execute(select(jobs.c.restart_cost_seconds, jobs.c.restart_cost_samples)
                                     .where(jobs.c.job_id == job_id)).first()
            if row is not None:
                samples = int(row.restart_cost_samples)
                mean = (float(row.restart_cost_seconds or 0.0) * samples + record.duration_seconds) / (samples + 1)
                connection.execute(update(jobs).where(jobs.c.job_id == job_id)
                                   .values(restart_cost_seconds=mean, restart_cost_samples=samples + 1))

    def rescales(self, job_id: str) -> tuple[RescaleRecord, ...]:
        table = _schema.rescales
        with self._read() as connection:
            rows = connection.execute(select(table).where(table.c.job_id == job_id)
                                      .order_by(table.c.completed_at, table.c.id)).all()
        return tuple(self._read_row("rescales", job_id, _rescale_record, r) for r in rows)

    def history(self, job_id: str, keep_seconds: float, now: float | None = None) -> History:
        """The core ``History`` the policy decides on, as it was before a restart."""
        now = self._clock() if now is None else now
        return History(self.snapshots(job_id, since=now - keep_seconds), self.decisions(job_id),
                       self.rescales(job_id))

    # --- intents ---------------------------------------------------------------------------------
    def record_intent(self, job_id: str, previous: Mapping[str, int], target: Mapping[str, int],
                      now: float | None = None) -> rec.Intent:
        """Write the rescale about to be applied; refused while the job has another pending intent."""
        now = self._clock() if now is None else now
        intent = rec.Intent(uuid.uuid4().hex, job_id, now, dict(previous), dict(target), "pending")
        with self._write() as connection:
            pending = self._pending(connection, job_id)
            if pending is not None:
                raise RuntimeFailure(f"{self.url}: job {job_id} has a pending rescale intent "
                                     f"{pending.intent_id}; reconcile it before another rescale")
            connection.execute(insert(_schema.intents).values(
                intent_id=intent.intent_id, job_id=job_id, created_at=now,
                previous_parallelism=_dumps(intent.previous_parallelism),
                target_parallelism=_dumps(intent.target_parallelism), status="pending"))
        return intent

    def finish_intent(self, intent_id: str, status: rec.IntentStatus, note: str | None = None,
                      now: float | None = None) -> None:
        """Mark an intent done, failed or dropped; ``done`` also clears the scale-down timers it carried out."""
        if status == "pending":
            raise ValueError("an intent is finished as done, failed or dropped")
        now = self._clock() if now is None else now
        table = _schema.intents
        with self._write() as connection:
            row = connection.execute(select(table).where(table.c.intent_id == intent_id)).first()
            if row is None:
                raise RuntimeFailure(f"{self.url}: no rescale intent {intent_id}")
            connection.execute(update(table).where(table.c.intent_id == intent_id)
                               .values(status=status, finished_at=now, note=note))
            if status == "done":
                self._clear_applied_timers(connection, row.job_id, _parallelism(row.target_parallelism))

    def pending_intent(self, job_id: str) -> rec.Intent | None:
        with self._read() as connection:
            return self._pending(connection, job_id)

    def intents(self, job_id: str) -> tuple[rec.Intent, ...]:
        table = _schema.intents
        with self._read() as connection:
            rows = connection.execute(select(table).where(table.c.job_id == job_id)
                                      .order_by(table.c.created_at)).all()
        return tuple(self._read_row("intents", job_id, _intent, r) for r in rows)

    def _pending(self, connection: Connection, job_id: str) -> rec.Intent | None:
        table = _schema.intents
        row = connection.execute(select(table).where(table.c.job_id == job_id)
                                 .where(table.c.status == "pending")).first()
        return self._read_row("intents", job_id, _intent, row) if row is not None else None

    def reconcile(self, job_id: str, observed: Mapping[str, int], *, retry_window_seconds: float = 0.0,
                  now: float | None = None) -> rec.Reconciliation:
        """Settle the job's pending intent against the parallelism the job runs at now.

        - observed == target on every target vertex: ``APPLIED``, marked done (with its timers cleared);
          the caller must not apply it again.
        - observed == previous on every target vertex: it did not take effect. Younger than
          ``retry_window_seconds``: ``RETRY`` (still pending; applying the same declarative target again is
          safe). Older: ``DROPPED`` (the policy decides anew on fresh metrics; a stale scale-down is never
          carried out late).
        - anything else: ``DIVERGED`` (someone else rescaled it), marked dropped.
        """
        now = self._clock() if now is None else now
        with self._write() as connection:
            intent = self._pending(connection, job_id)
            if intent is None:
                return rec.Reconciliation(rec.Outcome.NOTHING_PENDING, None, "no pending intent")
            vertices = sorted(intent.target_parallelism)
            seen = {v: observed.get(v) for v in vertices}
            table = _schema.intents

            def finish(status: rec.IntentStatus, note: str) -> rec.Intent:
                connection.execute(update(table).where(table.c.intent_id == intent.intent_id)
                                   .values(status=status, finished_at=now, note=note))
                return rec.Intent(intent.intent_id, job_id, intent.created_at, intent.previous_parallelism,
                                  intent.target_parallelism, status, now, note)

            if all(seen[v] == intent.target_parallelism[v] for v in vertices):
                reason = "the job already runs at the intent's target"
                self._clear_applied_timers(connection, job_id, intent.target_parallelism)
                return rec.Reconciliation(rec.Outcome.APPLIED, finish("done", reason), reason)
            if all(seen[v] == intent.previous_parallelism.get(v) for v in vertices):
                age = now - intent.created_at
                if age < retry_window_seconds:
                    note = f"not applied yet, {age:.0f}s old (retry window {retry_window_seconds:.0f}s)"
                    return rec.Reconciliation(rec.Outcome.RETRY, intent, note)
                reason = f"not applied and {age:.0f}s old: decide anew"
                return rec.Reconciliation(rec.Outcome.DROPPED, finish("dropped", reason), reason)
            reason = "the job runs at neither the previous nor the target parallelism: " + ", ".join(
                f"{v}={seen[v]}" for v in vertices)
            return rec.Reconciliation(rec.Outcome.DIVERGED, finish("dropped", reason), reason)

    # --- scale-down timers -----------------------------------------------------------------------
    def set_timer(self, job_id: str, vertex_id: str, target_parallelism: int, due_at: float,
                  now: float | None = None) -> rec.ScaleDownTimer:
        """Start (or move) the vertex's scale-down timer."""
        now = self._clock() if now is None else now
        table = _schema.scale_down_timers
        with self._write() as connection:
            connection.execute(delete(table).where(table.c.job_id == job_id).where(table.c.vertex_id == vertex_id))
            connection.execute(insert(table).values(job_id=job_id, vertex_id=vertex_id, created_at=now,
                                                    target_parallelism=target_parallelism, due_at=due_at))
        return rec.ScaleDownTimer(job_id, vertex_id, target_parallelism, now, due_at)

    def clear_timer(self, job_id: str, vertex_id: str | None = None) -> None:
        table = _schema.scale_down_timers
        query = delete(table).where(table.c.job_id == job_id)
        if vertex_id is not None:
            query = query.where(table.c.vertex_id == vertex_id)
        with self._write() as connection:
            connection.execute(query)

    def timers(self, job_id: str | None = None, due_by: float | None = None) -> tuple[rec.ScaleDownTimer, ...]:
        """The pending scale-down timers (of one job; only those due by ``due_by``), soonest first."""
        table = _schema.scale_down_timers
        query = select(table)
        if job_id is not None:
            query = query.where(table.c.job_id == job_id)
        if due_by is not None:
            query = query.where(table.c.due_at <= due_by)
        with self._read() as connection:
            rows = connection.execute(query.order_by(table.c.due_at, table.c.job_id, table.c.vertex_id)).all()
        return tuple(self._read_row("scale_down_timers", r.job_id, _timer, r) for r in rows)

    def _clear_applied_timers(self, connection: Connection, job_id: str, applied: Mapping[str, int]) -> None:
        table = _schema.scale_down_timers
        for vertex_id, parallelism in applied.items():
            connection.execute(delete(table).where(table.c.job_id == job_id).where(table.c.vertex_id == vertex_id)
                               .where(table.c.target_parallelism == parallelism))

    # --- load history ----------------------------------------------------------------------------
    def record_load(self, job_id: str, timestamp: float, source_rate: float) -> None:
        """Fold one source-rate sample into its minute (the stored rate is the minute's mean)."""
        if not math.isfinite(source_rate):
            return
        minute = int(timestamp // 60)
        table = _schema.load_history
        with self._write() as connection:
            updated = connection.execute(
                update(table).where(table.c.job_id == job_id).where(table.c.minute == minute)
                .values(rate_sum=table.c.rate_sum + source_rate, samples=table.c.samples + 1)).rowcount
            if not updated:
                connection.execute(insert(table).values(job_id=job_id, minute=minute, rate_sum=source_rate,
                                                        samples=1))

    def load_history(self, job_id: str, since: float | None = None) -> tuple[rec.LoadSample, ...]:
        table = _schema.load_history
        query = select(table).where(table.c.job_id == job_id)
        if since is not None:
            query = query.where(table.c.minute >= int(since // 60))
        with self._read() as connection:
            rows = connection.execute(query.order_by(table.c.minute)).all()
        return tuple(self._read_row("load_history", job_id, _load_sample, r) for r in rows)

    # --- retention -------------------------------------------------------------------------------
    def prune(self, retention: rec.Retention, now: float | None = None) -> rec.PruneCounts:
        now = self._clock() if now is None else now
        s = _schema
        with self._write() as connection:
            gone = connection.execute(select(s.jobs.c.job_id).where(
                s.jobs.c.gone_since < now - retention.gone_job_seconds)).scalars().all()
            jobs_removed = 0
            for job_id in gone:
                for table in (s.snapshots, s.decisions, s.rescales, s.intents, s.scale_down_timers, s.load_history):
                    connection.execute(delete(table).where(table.c.job_id == job_id))
                jobs_removed += connection.execute(delete(s.jobs).where(s.jobs.c.job_id == job_id)).rowcount
            snapshots = connection.execute(delete(s.snapshots).where(
                s.snapshots.c.timestamp < now - retention.snapshot_seconds)).rowcount
            decisions = _keep_newest(connection, s.decisions, retention.decisions_per_job)
            rescales = _keep_newest(connection, s.rescales, retention.rescales_per_job)
            intents = connection.execute(delete(s.intents).where(s.intents.c.status != "pending").where(
                s.intents.c.finished_at < now - retention.finished_intent_seconds)).rowcount
            load = connection.execute(delete(s.load_history).where(
                s.load_history.c.minute < int((now - retention.load_history_seconds) // 60))).rowcount
        return rec.PruneCounts(snapshots, decisions, rescales, intents, load, jobs_removed)

    def backup(self, target: Path) -> None:
        """A consistent copy of a SQLite store while the daemon runs (SQLite's online backup); a new file."""
        if sqlite_path(self._url) is None:
            raise InputError(f"{self.url}: back up a PostgreSQL store with pg_dump (see docs/state-store.md)")
        if target.exists():
            raise InputError(f"{target}: exists already; back up to a new file", field="backup")
        raw = self._engine.raw_connection()
        try:
            destination = sqlite3.connect(target)
            try:
                raw.driver_connection.backup(destination)  # type: ignore[union-attr]
            finally:
                destination.close()
        except sqlite3.Error as exc:
            raise RuntimeFailure(f"{target}: backup of {self.url} failed: {exc}") from None
        finally:
            raw.close()

    def row_counts(self) -> dict[str, int]:
        """Rows per table (for ``status`` and the retention test)."""
        with self._read() as connection:
            return {table.name: int(connection.execute(select(func.count()).select_from(table)).scalar_one())
                    for table in _schema.metadata.sorted_tables}


def _keep_newest(connection: Connection, table: Any, keep: int) -> int:
    """Delete all but each job's ``keep`` newest rows (by id)."""
    removed = 0
    for job_id in connection.execute(select(table.c.job_id).distinct()).scalars().all():
        cutoff = connection.execute(select(table.c.id).where(table.c.job_id == job_id)
                                    .order_by(table.c.id.desc()).offset(keep).limit(1)).scalar()
        if cutoff is not None:
            removed += connection.execute(delete(table).where(table.c.job_id == job_id)
                                          .where(table.c.id <= cutoff)).rowcount
    return removed


def _job_record(row: Any) -> rec.JobRecord:
    return rec.JobRecord(_text(row.job_id, "job_id"), _text(row.job_name, "job_name"),
                         _time(row.first_seen, "first_seen"), _time(row.last_seen, "last_seen"),
                         _optional_time(row.gone_since, "gone_since"),
                         _optional_time(row.restart_cost_seconds, "restart_cost_seconds"),
                         _count(row.restart_cost_samples, "restart_cost_samples"))


def _rescale_record(row: Any) -> RescaleRecord:
    return RescaleRecord(_time(row.requested_at, "requested_at"), _time(row.completed_at, "completed_at"),
                         _parallelism(row.old_parallelism), _parallelism(row.new_parallelism))


def _timer(row: Any) -> rec.ScaleDownTimer:
    return rec.ScaleDownTimer(_text(row.job_id, "job_id"), _text(row.vertex_id, "vertex_id"),
                              _count(row.target_parallelism, "target_parallelism"), _time(row.created_at, "created_at"),
                              _time(row.due_at, "due_at"))


def _load_sample(row: Any) -> rec.LoadSample:
    samples = _count(row.samples, "samples")
    rate = row.rate_sum / samples  # a text sum or 0 samples: TypeError or ZeroDivisionError -> damaged
    if not math.isfinite(rate) or rate < 0:
        raise ValueError(f"rate {rate!r} is not a rate")
    return rec.LoadSample(_time(row.minute * 60.0, "minute"), rate, samples)


def _intent(row: Any) -> rec.Intent:
    if row.status not in ("pending", "done", "failed", "dropped"):
        raise ValueError(f"status {str(row.status)[:20]!r} is not an intent's")
    return rec.Intent(_text(row.intent_id, "intent_id"), _text(row.job_id, "job_id"),
                      _time(row.created_at, "created_at"), _parallelism(row.previous_parallelism),
                      _parallelism(row.target_parallelism), row.status,
                      _optional_time(row.finished_at, "finished_at"), row.note)


_WRITE_OPTION = "flinkscale_write"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling is off; ``_sqlite_begin`` emits BEGIN itself (SQLAlchemy's
    # documented recipe), so a transaction covers its reads too and writers can ask for IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
    finally:
        cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    immediate = connection.get_execution_options().get(_WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def open_store(url: str, *, clock: Clock = time.time) -> StateStore:
    """Shorthand for ``StateStore.open``."""
    return StateStore.open(url, clock=clock)


__all__: Sequence[str] = ("CycleEntry", "LeaseHeld", "LeaseLost", "StateStore", "open_store")
