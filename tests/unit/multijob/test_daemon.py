"""The multi-job daemon: discovery, per-job settings and errors, slot accounting, state across restarts.

A small fake cluster (``World``) stands behind the daemon's three ports: its REST calls (discovery, job
details, the job's own configuration), one collector per job and one executor per job. Jobs run two
vertices; ``busy_ms`` sets how busy they look at parallelism 1 (the same load spreads over more subtasks).
The policy is ``cpu-threshold`` with a one-minute scale-up duration, from the config file, so a busy job
doubles after a minute of samples and an idle one holds.
"""

from __future__ import annotations

import io
import json
import sqlite3
import textwrap
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from flinkscale.app.multijob import DaemonConfig, MultiJobDaemon, job_statuses
from flinkscale.core.errors import EndpointError
from flinkscale.core.job_settings import AutoscaleConfig, parse_config_text
from flinkscale.core.logline import LogLine
from flinkscale.core.policy.base import Decision, RescaleRecord
from flinkscale.core.snapshot import ClusterResources, MetricsSnapshot
from flinkscale.flink.models import JobDetails, JobSummary, JobVertexInfo, VertexCounters
from flinkscale.flink.protocols import Applier, Sampler
from flinkscale.report.logs import EventLog, configure_logging
from flinkscale.store import LeaseHeld, StateStore
from flinkscale.testing import FakeClock, snapshot, vertex

A, B, C = "a" * 32, "b" * 32, "c" * 32
INTERVAL = 15.0
CONFIG = textwrap.dedent("""\
    defaults:
      policy: cpu-threshold
      settings:
        scale-up.duration: 1m
        scale-up.threshold: 0.75
""")


@dataclass
class FakeFlinkJob:
    name: str
    started_at: float
    busy_ms: float = 300.0
    parallelism: dict[str, int] = field(default_factory=lambda: {"src": 1, "agg": 1})
    config: list[dict[str, str]] = field(default_factory=list)
    hang: threading.Event | None = None


class World:
    """Flink as the daemon sees it: jobs on a cluster of ``slots`` one-slot TaskManagers."""

    def __init__(self, clock: FakeClock, slots: int = 8) -> None:
        self.clock = clock
        self.slots = slots
        self.jobs: dict[str, FakeFlinkJob] = {}
        self.applied: list[tuple[str, dict[str, int]]] = []
        self.down = False

    # --- REST ---
    def running_jobs(self) -> list[JobSummary]:
        if self.down:
            raise EndpointError("cannot connect", endpoint="GET /jobs/overview")
        return [JobSummary(jid, j.name, "RUNNING", int(j.started_at * 1000)) for jid, j in self.jobs.items()]

    def job(self, job_id: str) -> JobDetails:
        j = self.jobs[job_id]
        vertices = tuple(JobVertexInfo(v, v, p, 128, "RUNNING", VertexCounters(*(None,) * 7), {"RUNNING": p})
                         for v, p in j.parallelism.items())
        return JobDetails(job_id, j.name, "RUNNING", 128, vertices, (), int(j.started_at * 1000), 0)

    def job_config(self, job_id: str) -> list[dict[str, str]]:
        return self.jobs[job_id].config

    # --- collector and executor per job ---
    def sampler(self, job_id: str) -> Sampler:
        return WorldSampler(self, job_id)

    def executor(self, job_id: str) -> Applier | None:
        return WorldExecutor(self, job_id)

    def used_slots(self) -> int:
        return sum(max(j.parallelism.values()) for j in self.jobs.values())


class WorldSampler:
    def __init__(self, world: World, job_id: str) -> None:
        self.world, self.job_id = world, job_id
        self.skipped: list[str] = []
        self.started_at: float | None = None
        self.primed = False

    def sample(self) -> MetricsSnapshot | None:
        job = self.world.jobs[self.job_id]
        if job.hang is not None:
            job.hang.wait(10)
        self.started_at = job.started_at
        if not self.primed:  # like the collector: the first read only primes
            self.primed = True
            return None
        p = job.parallelism
        busy = job.busy_ms / max(p.values())  # the same load over more subtasks
        snap = snapshot([vertex("src", p["src"], busy_ms=busy, source=True),
                         vertex("agg", p["agg"], busy_ms=busy)], edges=[("src", "agg")],
                        timestamp=self.world.clock(), job_id=self.job_id)
        used = self.world.used_slots()
        cluster = ClusterResources(self.world.slots, self.world.slots, self.world.slots - used, 1, self.world.slots)
        return replace(snap, job_name=job.name, cluster=cluster)


class WorldExecutor:
    def __init__(self, world: World, job_id: str) -> None:
        self.world, self._job_id = world, job_id

    @property
    def job_id(self) -> str:
        return self._job_id

    def apply(self, decision: Decision) -> RescaleRecord | None:
        job = self.world.jobs[self._job_id]
        old = dict(job.parallelism)
        job.parallelism = {**old, **decision.parallelism()}
        self.world.applied.append((self._job_id, dict(job.parallelism)))
        now = self.world.clock()
        return RescaleRecord(now, now + 7.5, old, dict(job.parallelism))


def make_daemon(world: World, store: StateStore, *, config: AutoscaleConfig | None = None,
                lines: list[str] | None = None, log_callback: Callable[[str], None] | None = None,
                **options: object) -> MultiJobDaemon:
    settings = DaemonConfig(interval_seconds=INTERVAL, owner="test-host:1", **options)  # type: ignore[arg-type]
    daemon = MultiJobDaemon(world, store, config or parse_config_text(CONFIG, "autoscale.yaml"), settings,
                            make_sampler=world.sampler, make_executor=world.executor, clock=world.clock,
                            log=log_callback or (lines if lines is not None else []).append)
    return daemon


def run(daemon: MultiJobDaemon, clock: FakeClock, cycles: int) -> list[str]:
    lines: list[str] = []
    for _ in range(cycles):
        report = daemon.cycle()
        lines.extend(report.lines)
        for state in daemon.jobs.values():  # let rescales in flight land before the next cycle
            if state.busy is not None and state.busy_what == "rescaling":
                state.busy.result(timeout=10)
        clock.advance(INTERVAL)
    return lines


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_700_000_000.0)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'autoscale.db'}"


@pytest.fixture
def store(url: str, clock: FakeClock) -> StateStore:
    opened = StateStore.open(url, clock=clock)
    yield opened  # type: ignore[misc]
    opened.close()


def three_jobs(world: World, clock: FakeClock) -> None:
    long_ago = clock() - 3600
    world.jobs[A] = FakeFlinkJob("clickstream", long_ago, busy_ms=900.0)
    world.jobs[B] = FakeFlinkJob("sql-orders", long_ago)
    world.jobs[C] = FakeFlinkJob("sql-joins", long_ago)


# --- discovery and serving ---------------------------------------------------------------------------------
def test_every_running_job_is_served_and_only_the_busy_one_rescales(clock: FakeClock, store: StateStore) -> None:
    world = World(clock)
    three_jobs(world, clock)
    daemon = make_daemon(world, store)
    lines = run(daemon, clock, 8)
    assert [job for job, _ in world.applied] == [A]
    assert world.jobs[A].parallelism == {"src": 2, "agg": 2}
    assert world.jobs[B].parallelism == world.jobs[C].parallelism == {"src": 1, "agg": 1}
    assert sum("discovered" in line for line in lines) == 3
    (intent,) = store.intents(A)
    assert intent.status == "done" and dict(intent.target_parallelism) == {"src": 2, "agg": 2}
    assert store.job(A) is not None and store.job(A).restart_cost_seconds == pytest.approx(7.5)  # type: ignore[union-attr]
    assert len(store.decisions(B)) >= 5


def test_a_new_job_waits_for_its_stabilization_from_its_own_start(clock: FakeClock, store: StateStore) -> None:
    world = World(clock)
    config = parse_config_text(CONFIG.replace("cpu-threshold", "flink-operator").replace(
        "scale-up.duration: 1m\n    scale-up.threshold: 0.75\n", "stabilization.interval: 2m\n"), "autoscale.yaml")
    world.jobs[A] = FakeFlinkJob("fresh", clock(), busy_ms=950.0)
    daemon = make_daemon(world, store, config=config)
    run(daemon, clock, 4)  # priming + 3 samples within 2 minutes of the job's start
    decisions = store.decisions(A)
    assert decisions and all("stabilizing" in d.vertices[0].reason for d in decisions)
    assert all(d.timestamp < world.jobs[A].started_at + 120 for d in decisions)
    assert world.applied == []


def test_a_finished_job_is_dropped_and_its_state_kept(clock: FakeClock, store: StateStore) -> None:
    world = World(clock)
    three_jobs(world, clock)
    daemon = make_daemon(world, store)
    run(daemon, clock, 3)
    del world.jobs[B]
    lines = run(daemon, clock, 1)
    assert B not in daemon.jobs and any("sql-orders" in line and "finished or cancelled" in line for line in lines)
    record = store.job(B)
    assert record is not None and record.gone_since is not None and store.decisions(B)
    assert [s.phase for s in job_statuses(store) if s.job_id == B] == ["gone"]


def test_only_the_given_jobs_are_served(clock: FakeClock, store: StateStore) -> None:
    world = World(clock)
    three_jobs(world, clock)
    daemon = make_daemon(world, store, job_ids=(B, "d" * 32))
    lines = run(daemon, clock, 2)
    assert set(daemon.jobs) == {B}
    assert any(("d" * 32) in line and "not running" in line for line in lines)


def test_a_rest_outage_holds_every_job_and_the_daemon_carries_on(clock: FakeClock, store: StateStore) -> None:
    world = World(clock)
    three_jobs(world, clock)
    daemon = make_daemon(world, store)
    run(daemon, clock, 2)
    world.down = True
    lines = run(daemon, clock, 2)
    assert sum("REST unavailable" in line for line in lines) == 2
    world.down = False
    run(daemon, clock, 8)
    assert [job for job, _ in world.applied] == [A]


# --- slots ----------------------------------------------------------------------------------------------------
def test_two_jobs_never_count_on_the_same_free_slot(clock: FakeClock, store: StateStore) -> None:
    world = World(clock, slots=3)  # two jobs at p1 hold 2; one slot is free
    long_ago = clock() - 3600
    world.jobs[A] = FakeFlinkJob("one", long_ago, busy_ms=950.0)
    world.jobs[B] = FakeFlinkJob("two", long_ago, busy_ms=950.0)
    run(make_daemon(world, store), clock, 10)
    assert world.used_slots() <= 3
    assert len(world.applied) == 1  # only one of them got the free slot


@pytest.mark.parametrize(("max_slots", "rescales"), [(2, 0), (3, 1), (4, 2)])
def test_max_slots_is_the_ceiling_whatever_the_cluster_has(clock: FakeClock, store: StateStore, max_slots: int,
                                                           rescales: int) -> None:
    world = World(clock, slots=50)
    long_ago = clock() - 3600
    world.jobs[A] = FakeFlinkJob("one", long_ago, busy_ms=950.0)
    world.jobs[B] = FakeFlinkJob("two", long_ago, busy_ms=950.0)
    run(make_daemon(world, store, max_slots=max_slots), clock, 7)
    assert len(world.applied) == rescales
    assert world.used_slots() <= max_slots


# --- quotas: configured ceilings for elastic clusters ---------------------------------------------------------
def test_a_jobs_cpu_quota_caps_its_slots_and_the_decision_names_the_bound(clock: FakeClock,
                                                                          store: StateStore) -> None:
    world = World(clock, slots=50)
    # p2 at 99% busy: cpu-threshold doubles to 4, the quota admits 3
    world.jobs[A] = FakeFlinkJob("one", clock() - 3600, busy_ms=1980.0, parallelism={"src": 2, "agg": 2},
                                 config=[{"key": "job.autoscaler.quota.cpu", "value": "3"},
                                         {"key": "taskmanager.numberOfTaskSlots", "value": "1"}])
    daemon = make_daemon(world, store)
    run(daemon, clock, 14)
    assert world.applied and max(world.jobs[A].parallelism.values()) == 3  # 1 core per one-slot TaskManager
    noted = [v.reason for d in store.decisions(A) for v in d.vertices if "ceiling" in v.reason]
    assert noted and all("ceiling 3 slots: quota.cpu 3 cores / 1 core per slot = 3 TaskManagers "
                         "(from job-config)" in reason for reason in noted)
    assert "ceiling 3 slots: quota.cpu" in daemon.jobs[A].phase


def test_a_jobs_quota_caps_it_when_the_cluster_reports_no_slots(clock: FakeClock, store: StateStore) -> None:
    class NoSlotsSampler(WorldSampler):  # a REST cluster whose slots are unknown: only the quota bounds the job
        def sample(self) -> MetricsSnapshot | None:
            got = super().sample()
            return None if got is None else replace(got, cluster=None)

    world = World(clock, slots=50)
    world.jobs[A] = FakeFlinkJob("one", clock() - 3600, busy_ms=1980.0, parallelism={"src": 2, "agg": 2},
                                 config=[{"key": "job.autoscaler.quota.memory", "value": "5184m"}])
    daemon = make_daemon(world, store)
    daemon.make_sampler = lambda job_id: NoSlotsSampler(world, job_id)
    run(daemon, clock, 14)
    assert world.applied and max(world.jobs[A].parallelism.values()) == 3  # 3 default 1728m one-slot TaskManagers
    assert any("ceiling 3 slots: quota.memory" in v.reason for d in store.decisions(A) for v in d.vertices)


def test_the_clusters_quota_and_max_slots_the_lower_wins(clock: FakeClock, store: StateStore) -> None:
    world = World(clock, slots=50)
    long_ago = clock() - 3600
    world.jobs[A] = FakeFlinkJob("one", long_ago, busy_ms=990.0)
    world.jobs[B] = FakeFlinkJob("two", long_ago, busy_ms=990.0)
    config = parse_config_text(CONFIG + textwrap.dedent("""\
        cluster:
          quota.memory: 8GiB
          taskmanager.memory.process.size: 2g
          taskmanager.numberOfTaskSlots: 1
    """), "autoscale.yaml")
    daemon = make_daemon(world, store, config=config, max_slots=10)
    run(daemon, clock, 14)
    assert world.used_slots() == 4  # 8 GiB / 2 GiB TaskManagers of one slot: 4 slots, under --max-slots 10
    noted = [v.reason for j in (A, B) for d in store.decisions(j) for v in d.vertices if "ceiling" in v.reason]
    assert noted and any("ceiling 4 slots: quota.memory 8.00 GiB / 2.00 GiB per TaskManager (1 slot) = "
                         "4 TaskManagers (from file:autoscale.yaml#cluster)" in r for r in noted)


def test_a_job_quota_below_the_clusters_binds_for_that_job_only(clock: FakeClock, store: StateStore) -> None:
    world = World(clock, slots=50)
    long_ago = clock() - 3600
    world.jobs[A] = FakeFlinkJob("capped", long_ago, busy_ms=990.0,
                                 config=[{"key": "job.autoscaler.quota.memory", "value": "1728m"}])
    world.jobs[B] = FakeFlinkJob("free", long_ago, busy_ms=990.0)
    run(make_daemon(world, store, max_slots=6), clock, 14)
    assert max(world.jobs[A].parallelism.values()) == 1  # one default 1728m TaskManager of one slot
    assert max(world.jobs[B].parallelism.values()) > 1
    assert world.used_slots() <= 6


@pytest.mark.parametrize(("key", "value"), [
    ("job.autoscaler.quota.cpu", "lots"),
    ("job.autoscaler.quota.cpu", "-4"),
    ("job.autoscaler.quota.memory", "12 parsecs"),
    ("taskmanager.memory.process.size", "100m"),  # under Flink's own minimum: metaspace and overhead
])
def test_an_invalid_quota_is_one_line_naming_the_job_and_the_key(clock: FakeClock, store: StateStore, key: str,
                                                                  value: str) -> None:
    world = World(clock)
    three_jobs(world, clock)
    world.jobs[B].config = [{"key": "job.autoscaler.quota.cpu", "value": "4"}, {"key": key, "value": value}] \
        if not key.startswith("job.autoscaler.quota.cpu") else [{"key": key, "value": value}]
    lines = run(make_daemon(world, store), clock, 8)
    errors = [line for line in lines if key in line]
    assert len(errors) == 1 and "\n" not in errors[0]
    assert errors[0].startswith(f"job sql-orders ({B}): {key}: ")
    assert [job for job, _ in world.applied] == [A]  # the others are served
    assert store.decisions(C) and not store.decisions(B)


# --- operations ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("setting", "expected"), [
    ("job.autoscaler.scaling.enabled", "recommend only (scaling.enabled=false, from job-config)"),
    ("job.autoscaler.enabled", None),
])
def test_recommend_only_and_disabled_jobs_are_not_rescaled(clock: FakeClock, store: StateStore, setting: str,
                                                           expected: str | None) -> None:
    world = World(clock)
    three_jobs(world, clock)
    world.jobs[A].config = [{"key": setting, "value": "false"}]
    daemon = make_daemon(world, store)
    lines = run(daemon, clock, 8)
    assert world.applied == []
    if expected is not None:
        assert any(expected in line for line in lines)
        assert store.decisions(A)[-1].rescale
    else:
        assert store.decisions(A) == () and daemon.jobs[A].phase.startswith("not autoscaled")


def test_the_cluster_wide_pause_takes_effect_within_one_cycle(clock: FakeClock, store: StateStore) -> None:
    world = World(clock)
    three_jobs(world, clock)
    paused = threading.Event()
    paused.set()
    daemon = make_daemon(world, store)
    daemon.paused = paused.is_set
    lines = run(daemon, clock, 7)
    assert world.applied == [] and any("cluster-wide pause" in line for line in lines)
    paused.clear()
    run(daemon, clock, 1)
    assert [job for job, _ in world.applied] == [A]


def test_a_slow_job_is_bounded_by_its_deadline_and_the_others_are_served(clock: FakeClock,
                                                                          store: StateStore) -> None:
    world = World(clock)
    three_jobs(world, clock)
    hang = threading.Event()
    # 1 s: the hung job always misses it; the fake samples of the others take microseconds even on a busy machine.
    daemon = make_daemon(world, store, job_deadline_seconds=1.0)
    run(daemon, clock, 1)
    world.jobs[C].hang = hang
    try:
        lines = run(daemon, clock, 10)
    finally:
        hang.set()
    assert any("sql-joins" in line and "deadline" in line for line in lines)
    assert [job for job, _ in world.applied] == [A]
    assert len(store.decisions(B)) >= 5


# --- structured logs -------------------------------------------------------------------------------------------
def test_the_daemons_json_log_names_each_job_and_event_and_hides_passwords(clock: FakeClock,
                                                                           store: StateStore) -> None:
    stream = io.StringIO()
    log = EventLog(configure_logging("json", stream=stream), "json")
    world = World(clock)
    three_jobs(world, clock)
    world.jobs[C].name = "sink to http://user:pa55w0rd-x@warehouse:9000"
    world.jobs[B].config = [{"key": "job.autoscaler.quota.cpu", "value": "lots"}]
    try:
        run(make_daemon(world, store, log_callback=log.line), clock, 8)
    finally:
        configure_logging("text")
    text = stream.getvalue()
    records = [json.loads(line) for line in text.splitlines()]
    assert records and all({"ts", "level", "event", "message"} <= set(r) for r in records)
    events = {(r["event"], r.get("job_id")) for r in records}
    assert {("job.discovered", A), ("job.discovered", B), ("job.discovered", C), ("job.rescaling", A),
            ("job.rescaled", A), ("job.invalid-settings", B)} <= events
    invalid = next(r for r in records if r["event"] == "job.invalid-settings")
    assert invalid["level"] == "error" and invalid["job_name"] == "sql-orders" and "quota.cpu" in invalid["message"]
    assert "pa55w0rd-x" not in text


# --- bad input ------------------------------------------------------------------------------------------------
def test_a_job_with_an_invalid_setting_is_one_line_naming_it_and_the_key(clock: FakeClock,
                                                                          store: StateStore) -> None:
    world = World(clock)
    three_jobs(world, clock)
    world.jobs[B].config = [{"key": "job.autoscaler.scale-up.threshold", "value": "lots"}]
    lines = run(make_daemon(world, store), clock, 8)
    errors = [line for line in lines if "scale-up.threshold" in line]
    assert len(errors) == 1 and "\n" not in errors[0]
    assert errors[0].startswith(f"job sql-orders ({B}): job.autoscaler.scale-up.threshold: ")
    assert [job for job, _ in world.applied] == [A]  # the others are served
    assert store.decisions(C) and not store.decisions(B)


def test_a_job_whose_stored_history_is_damaged_is_one_line_and_the_others_are_served(
        clock: FakeClock, url: str, store: StateStore) -> None:
    world = World(clock)
    three_jobs(world, clock)
    run(make_daemon(world, store), clock, 3)
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:  # a row edited by hand
        db.execute("UPDATE decisions SET payload = '{not json' WHERE job_id = ?", (B,))
    with StateStore.open(url, clock=clock) as reopened:
        lines = run(make_daemon(world, reopened), clock, 8)
        damaged = [line for line in lines if "damaged" in line]
        assert len(damaged) == 1 and "\n" not in damaged[0]
        assert damaged[0].startswith(f"job sql-orders ({B}): ") and "a row of decisions for job" in damaged[0]
        assert isinstance(damaged[0], LogLine) and damaged[0].event == "job.damaged-history"
        assert [job for job, _ in world.applied] == [A]  # the others are served
        assert len(reopened.decisions(C)) > 3


def test_a_second_daemon_on_the_same_store_is_refused(clock: FakeClock, url: str, store: StateStore) -> None:
    world = World(clock)
    make_daemon(world, store).start()
    with StateStore.open(url, clock=clock) as other:
        second = MultiJobDaemon(world, other, AutoscaleConfig(), DaemonConfig(owner="other-host:2"),
                                make_sampler=world.sampler, make_executor=world.executor, clock=clock)
        with pytest.raises(LeaseHeld, match="in use by test-host:1"):
            second.start()


# --- restarts ---------------------------------------------------------------------------------------------------
def test_after_a_kill_the_history_continues_and_an_applied_intent_is_never_applied_again(
        clock: FakeClock, url: str, store: StateStore) -> None:
    world = World(clock)
    three_jobs(world, clock)
    first = make_daemon(world, store)
    run(first, clock, 5)
    assert world.applied == []
    # The rescale was written as an intent and carried out, then the daemon died before marking it done.
    intent = store.record_intent(A, {"src": 1, "agg": 1}, {"src": 2, "agg": 2})
    world.jobs[A].parallelism = {"src": 2, "agg": 2}
    decisions_before = len(store.decisions(B))
    with StateStore.open(url, clock=clock) as reopened:
        second = make_daemon(world, reopened)
        lines = run(second, clock, 2)
        assert any("applied" in line and "already runs at the intent's target" in line for line in lines)
        assert [i.status for i in reopened.intents(A)] == ["done"] and reopened.intents(A)[0].intent_id == \
            intent.intent_id
        assert world.applied == []  # never applied twice
        assert len(second.jobs[B].history.snapshots) >= 4  # the history came back from the store
        assert len(reopened.decisions(B)) > decisions_before


def test_after_a_kill_a_fresh_unapplied_intent_is_retried_once(clock: FakeClock, url: str,
                                                               store: StateStore) -> None:
    world = World(clock)
    three_jobs(world, clock)
    run(make_daemon(world, store), clock, 2)
    store.record_intent(A, {"src": 1, "agg": 1}, {"src": 2, "agg": 2})
    with StateStore.open(url, clock=clock) as reopened:
        lines = run(make_daemon(world, reopened), clock, 3)
        assert any("retry" in line for line in lines)
        assert world.applied == [(A, {"src": 2, "agg": 2})]
        assert [i.status for i in reopened.intents(A)] == ["done"]


def test_a_dry_run_leaves_a_pending_intent_for_a_daemon_that_acts(clock: FakeClock, store: StateStore) -> None:
    world = World(clock)
    three_jobs(world, clock)
    store.record_intent(A, {"src": 1, "agg": 1}, {"src": 2, "agg": 2})
    daemon = make_daemon(world, store, dry_run=True)
    lines = run(daemon, clock, 8)
    assert any("left for a daemon that acts" in line for line in lines)
    assert world.applied == [] and [i.status for i in store.intents(A)] == ["pending"]
    assert len(store.decisions(A)) >= 5  # it keeps deciding (and logging) for the job


def test_prometheus_metrics_are_labelled_by_job(clock: FakeClock, store: StateStore) -> None:
    from flinkscale.flink.autoscaler import LoopMetrics

    world = World(clock)
    three_jobs(world, clock)
    daemon = make_daemon(world, store)
    metrics = LoopMetrics()
    for _ in range(8):
        run(daemon, clock, 1)
        for state in daemon.jobs.values():
            metrics.update(state.loop_status())
    text = metrics.render()
    assert f'flinkscale_rescales_total{{job="{A}"}} 1.0' in text
    assert f'flinkscale_rescales_total{{job="{B}"}} 0.0' in text
    assert f'flinkscale_vertex_parallelism{{job="{A}",vertex="agg"}} 2.0' in text
    assert f'flinkscale_vertex_parallelism{{job="{C}",vertex="agg"}} 1.0' in text
