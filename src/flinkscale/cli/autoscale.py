"""``flinkscale autoscale`` (the live loop) and ``flinkscale rebalance`` (skew fix via savepoint): arguments, output.

Everything that talks to Flink lives in ``flinkscale.flink.autoscaler`` and ``flinkscale.flink.executor``;
this module validates flags (a bad policy setting, interval or port is an ``InputError`` before anything
runs, exit code 2), wires the pieces together and shows progress: a rich Live view on a terminal, one
plain line per tick otherwise. Ctrl-C stops the loop cleanly between steps (a rescale in flight finishes).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from flinkscale.app.shedding import open_shed_channel
from flinkscale.cli._common import (
    RestTarget,
    check_job,
    console,
    parse_fraction,
    print_json,
    resolve_bootstrap,
    rest_options,
    state_dir_option,
    warn_if_metrics_stale,
)
from flinkscale.cli._inputs import check_choice, check_number, check_output_dir, check_port, parse_set_options
from flinkscale.core.errors import FlinkscaleError, InputError, RuntimeFailure
from flinkscale.core.policy import POLICY_NAMES, make_policy
from flinkscale.core.rebalance import plan_rebalance
from flinkscale.core.skew import analyze_skew
from flinkscale.core.units import parse_duration
from flinkscale.flink.autoscaler import (
    AutoscaleLoop,
    LoopConfig,
    LoopMetrics,
    LoopShedding,
    LoopStatus,
    status_line,
)
from flinkscale.flink.cluster import LocalCluster
from flinkscale.flink.collector import Collector, collect_window, merge_window
from flinkscale.flink.executor import (
    DEFAULT_MAX_TASK_MANAGERS,
    Executor,
    ExecutorConfig,
    Resubmit,
)
from flinkscale.flink.shedder import ShedSettings
from flinkscale.k8s import FlinkDeploymentRealizer, FlinkDeployments, operator_rest_url, parse_deployment_ref
from flinkscale.report.logs import EventLog, configure_logging

_AUTOSCALE_HELP = f"""Keep a running job right-sized: collect metrics, decide, rescale, repeat.

Every --interval the loop samples the job (exact rates from counter deltas), asks the policy
({", ".join(POLICY_NAMES)}) and, unless --dry-run, rescales: in place through the adaptive scheduler,
or by stop-with-savepoint and resubmission (--resubmit-command) where the scheduler is not adaptive.
It never cancels a job, and never stops one without a completed savepoint. On a REST outage, a
JobManager restart or incomplete metrics it holds still and retries.

Writes --run-dir/snapshots.jsonl, decisions.jsonl and events.jsonl; serves Prometheus metrics on
127.0.0.1:--metrics-port (flinkscale_vertex_parallelism, ..._recommended_parallelism,
flinkscale_rescales_total, flinkscale_source_lag_records, flinkscale_vertex_utilization,
flinkscale_shed_fraction).

With --shed-control-topic the loop also drives load shedding (a job started with that control topic,
see `flinkscale shed`): scaling comes first; once the job holds every slot it may get, the excess is
shed within --shed-target-error at --shed-confidence, scale-downs wait until shedding has stopped, and
p returns to 1 as soon as the job keeps up again.

Every job of a cluster (--all-jobs, or several --job): one process, per-job settings from --config and the
jobs' own job.autoscaler.* keys, slots accounted per cluster (--max-slots for elastic clusters), state in
--state (default sqlite:///STATE_DIR/autoscale.db) so a restart, even after a SIGKILL, continues every job's
history and never applies a rescale twice. `autoscale status` shows each job's phase; `autoscale pause`
and `resume` switch the cluster-wide pause (docs/autoscale-service.md).

Examples:

  flinkscale autoscale --all-jobs --rest http://jobmanager:8081 --config autoscale.yaml --max-slots 64

  flinkscale autoscale status --format json

  flinkscale autoscale --job 3f2a... --policy flinkscale --dry-run --duration 10m

  flinkscale autoscale --job 3f2a... --policy flink-operator \\
      --set job.autoscaler.utilization.target=0.7 --interval 10s --run-dir runs/a --metrics-port 9250

  flinkscale autoscale --job 3f2a... --emit-k8s-patch patches/   # write FlinkDeployment patches only

  flinkscale autoscale --job 3f2a... --k8s-deployment streaming/clickstream-1tb   # patch it (docs/kubernetes.md)

  flinkscale autoscale --job 3f2a... --shed-control-topic clicks-control --shed-input-topic clicks
"""

_REBALANCE_HELP = """Fix skew that stops a job from scaling: measure, plan, and (with --apply) restart via savepoint.

Samples the job for --window with per-subtask metrics, runs the skew analysis and plans: the
parallelism of each skewed vertex aligned to its max parallelism, and the job-level settings the
remedies need (e.g. two-phase aggregation). Cluster-level keys (taskmanager.*) and code changes
(salting, rebalance()) are listed, not applied. --apply stops the job with a savepoint (never
without one) and resubmits it with --resubmit-command, then sets the new parallelism.

--resubmit-command is a shell command that submits the job from a savepoint and prints its JobID
(`flink run` prints "JobID <id>", `flinkscale job submit --format json` prints "job_id": "<id>");
{savepoint} and {config} (as -Dkey=value flags) are filled in.

Examples:

  flinkscale rebalance --job 3f2a...

  flinkscale rebalance --job 3f2a... --apply \\
      --resubmit-command 'flink run -d -s {savepoint} {config} -py job.py'

  flinkscale rebalance --job 3f2a... --apply --resubmit-command \\
      'flinkscale job submit keyed-java --events-dir file:///out -s {savepoint} --format json'
"""

# `flink run`'s "Job has been submitted with JobID <id>", or `flinkscale job submit --format json`'s job_id.
_JOB_ID = re.compile(r"(?:JobID |\"job_id\": \")([0-9a-f]{32})")


def _seconds(text: str | None, field: str) -> float | None:
    if text is None:
        return None
    seconds = parse_duration(text, field=field)
    if not 0 < seconds <= 10 * 365 * 86400:
        raise InputError(f"must be > 0 and at most 10 years, got {text!r}", field=field)
    return seconds


def command_resubmit(template: str, cluster: LocalCluster | None,
                     job_config: Mapping[str, str] | None = None) -> Resubmit:
    """A resubmit function running ``template`` with ``{savepoint}`` and ``{config}`` filled in."""
    if "{savepoint}" not in template:
        raise InputError("must contain {savepoint}", field="--resubmit-command")

    def resubmit(savepoint: str) -> str:
        flags = " ".join(shlex.quote(f"-D{k}={v}") for k, v in sorted((job_config or {}).items()))
        command = template.replace("{savepoint}", shlex.quote(savepoint)).replace("{config}", flags)
        env = cluster.script_env() if cluster is not None and cluster.info() is not None else None
        proc = subprocess.run(command, shell=True, capture_output=True, text=True, env=env, timeout=300)
        found = _JOB_ID.search(proc.stdout + proc.stderr)
        if proc.returncode != 0 or not found:
            raise RuntimeFailure(f"resubmit command failed (exit {proc.returncode}); the savepoint {savepoint} "
                                 f"is kept: {(proc.stdout + proc.stderr).strip()[-400:]}")
        return found.group(1)

    return resubmit


def _local_cluster(state_dir: Path, rest_url: str) -> LocalCluster | None:
    cluster = LocalCluster(state_dir)
    info = cluster.info()
    return cluster if info is not None and info.rest_url == rest_url and cluster.is_running() else None


@contextlib.contextmanager
def _stop_on_interrupt() -> Iterator[threading.Event]:
    """Ctrl-C sets an event the loop checks between steps, so a rescale in flight is never cut in half."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(*_: object) -> None:
        if stop.is_set():  # a second Ctrl-C: the user really wants out
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        stop.set()

    signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def _interruptible_sleep(stop: threading.Event) -> Callable[[float], None]:
    def sleep(seconds: float) -> None:
        stop.wait(seconds)

    return sleep


def _live_table(status: LoopStatus) -> Any:
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table

    # Names, reasons and events come from the job and Flink (SQL vertex names hold [...]): escaped for rich.
    table = Table(title=escape(f"{status.policy} on job {status.job_id}  (rescales: {status.rescales})"))
    for column in ("vertex", "p", "recommended", "busy max", "backpressured", "records in/s", "lag"):
        table.add_column(column)
    snapshot = status.last_snapshot
    recommended = status.last_decision.parallelism() if status.last_decision else {}
    if snapshot is not None:
        for v in snapshot.vertices:
            m = v.metrics
            table.add_row(escape(v.name[:48]), str(v.parallelism), str(recommended.get(v.id, "-")),
                          f"{(m.busy_ratio_max or 0) * 100:.0f}%",
                          f"{(m.back_pressured_time_ms_per_second_max or 0) / 10:.0f}%",
                          f"{m.num_records_in_per_second or m.num_records_out_per_second or 0:,.0f}",
                          f"{m.pending_records:,.0f}" if m.pending_records is not None else "")
    log = Table(title="last decisions and events", show_header=False)
    log.add_column("line")
    for entry in list(status.decisions)[-4:]:
        d = entry.decision
        text = ("rescale " + str(d.parallelism()) + (" applied" if entry.applied else "")
                if d.rescale else f"hold ({d.blocked_reason})" if d.blocked_reason else "no change")
        log.add_row(escape(text + (f" error: {entry.error}" if entry.error else "")))
    for event in list(status.events)[-3:]:
        log.add_row(f"[dim]{escape(f'{event.kind}: {event.message}')}[/dim]")
    if status.holding:
        log.add_row(f"[yellow]holding: {escape(status.holding)}[/yellow]")
    return Group(table, log)


def _warn(log: EventLog) -> Callable[[str], None] | None:
    """Warnings as log events in JSON mode (every stderr line parses); the usual stderr line otherwise."""
    if not log.json:
        return None
    return lambda warning: log.event("warning", f"warning: {warning}", level=logging.WARNING)


class _TickLog:
    """The single-job loop's ticks as log events: each tick, each new loop event and each new decision once."""

    def __init__(self, log: EventLog, job_id: str) -> None:
        self.log, self.job_id = log, job_id
        self._seen_events: list[Any] = []
        self._seen_decisions: list[Any] = []

    def events(self, status: LoopStatus) -> None:
        for event in status.events:
            if not any(event is seen for seen in self._seen_events):
                level = logging.ERROR if "fail" in event.kind or "error" in event.kind else logging.INFO
                self.log.event(f"loop.{event.kind}", f"{event.kind}: {event.message}", level=level,
                               job_id=self.job_id, kind=event.kind, event_ts=event.timestamp)
        self._seen_events = list(status.events)

    def __call__(self, status: LoopStatus) -> None:
        self.events(status)
        for entry in status.decisions:
            if any(entry is seen for seen in self._seen_decisions):
                continue
            d = entry.decision
            level = logging.ERROR if entry.error else logging.INFO
            self.log.event("loop.decision", status_line(status), level=level, job_id=self.job_id,
                           policy=d.policy, rescale=d.rescale, parallelism=d.parallelism(),
                           blocked_reason=d.blocked_reason, applied=entry.applied, error=entry.error,
                           rescale_seconds=entry.rescale_seconds, shed_fraction=d.shed_fraction,
                           reasons={v.vertex_id: v.reason for v in d.vertices if v.reason})
        self._seen_decisions = list(status.decisions)
        snapshot = status.last_snapshot
        self.log.event("loop.tick", status_line(status), level=logging.WARNING if status.holding else logging.INFO,
                       job_id=self.job_id, job_name=snapshot.job_name if snapshot else None, tick=status.ticks,
                       holding=status.holding, rescales=status.rescales,
                       parallelism=dict(snapshot.parallelism_by_id) if snapshot else None,
                       source_lag_records=snapshot.source_lag() if snapshot else None)


_ACTIONS = ("status", "pause", "resume")
PAUSE_FILE = "autoscale.pause"


def _store_url(state: str | None, state_dir: Path) -> str:
    from flinkscale.app.multijob import default_state_url

    return state if state is not None else default_state_url(state_dir)


def _autoscale_action(action: str, state: str | None, state_dir: Path, output_format: str) -> None:
    pause = state_dir / PAUSE_FILE
    if action == "pause":
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            pause.write_text("paused\n")
        except OSError as exc:
            raise InputError(f"cannot write {pause}: {exc.strerror or exc}", field="--state-dir") from None
        typer.echo(f"paused: a running daemon with --state-dir {state_dir} decides but does not act from its "
                   "next cycle (flinkscale autoscale resume)")
        return
    if action == "resume":
        pause.unlink(missing_ok=True)
        typer.echo("resumed")
        return
    check_choice(output_format, ("table", "json"), "--format")
    from rich.markup import escape

    from flinkscale.app.multijob import clock_time, job_statuses
    from flinkscale.store import StateStore, parse_store_url, sqlite_path

    url = _store_url(state, state_dir)
    if state is None and not (state_dir / "autoscale.db").exists():
        raise InputError(f"no state store at {state_dir / 'autoscale.db'}; has `autoscale --all-jobs` run with "
                         "this --state-dir? (or give --state URL)", field="--state")
    database = sqlite_path(parse_store_url(url))
    if database is not None and not database.exists():  # status reads a store: a typo must not make a new one
        raise InputError(f"no state store at {database}; has `autoscale --all-jobs` run with this --state?",
                         field="--state")
    with StateStore.open(url) as store:
        statuses = job_statuses(store)
        paused = (state_dir / PAUSE_FILE).exists()
    if output_format == "json":
        print_json({"paused": paused, "jobs": [s.to_dict() for s in statuses]})
        return
    if paused:
        console.print("[yellow]the cluster-wide pause is on (flinkscale autoscale resume)[/yellow]")
    if not statuses:
        console.print("no job in the state store yet")
    for status in statuses:
        rescale = status.last_rescale
        last = (f"; last rescale {rescale['from']} -> {rescale['to']} at {clock_time(rescale['completed_at'])} UTC "
                f"in {rescale['duration_seconds']:.1f}s" if rescale else "")
        console.print(f"{escape(status.job_name)} ({status.job_id}): [bold]{status.phase}[/bold]: "
                      f"{escape(status.detail + last)}", highlight=False, soft_wrap=True)


def _run_daemon(rest: RestTarget, jobs: list[str], state_dir: Path, state: str | None, config_file: Path | None,
                max_slots: int | None, workers: int, interval: str, duration: str | None, dry_run: bool,
                max_task_managers: int, policy: str, set_: list[str] | None, metrics_port: int | None,
                quota_cpu: str | None = None, quota_memory: str | None = None,
                log: EventLog | None = None) -> None:
    """The multi-job daemon (``flinkscale.app.multijob``): every job, state in the store."""
    from flinkscale.app.multijob import DaemonConfig, daemon_on_cluster
    from flinkscale.cli._inputs import read_text
    from flinkscale.core.job_settings import AutoscaleConfig, parse_config_text
    from flinkscale.store import StateStore

    log = log or EventLog(configure_logging("text"))
    if set_ or policy != "flinkscale":
        raise InputError("per-job policies and settings come from --config (defaults and overrides) and the "
                         "jobs' own job.autoscaler.* keys with several jobs", field="--policy/--set")
    if not 1 <= max_task_managers <= 10_000:
        raise InputError(f"must be from 1 to 10000, got {max_task_managers}", field="--max-task-managers")
    config = AutoscaleConfig()
    if config_file is not None:
        config = parse_config_text(read_text(config_file, "--config"), str(config_file))
    cluster_settings = config.cluster.with_max_slots(max_slots).with_quotas(quota_cpu, quota_memory)
    config = dataclasses.replace(config, cluster=cluster_settings)
    interval_seconds = _seconds(interval, "--interval")
    assert interval_seconds is not None
    duration_seconds = _seconds(duration, "--duration")
    daemon_config = DaemonConfig(interval_seconds=interval_seconds, job_ids=tuple(jobs), dry_run=dry_run,
                                 max_workers=workers, max_slots=cluster_settings.max_slots.value)
    pause = state_dir / PAUSE_FILE
    with contextlib.ExitStack() as stack:
        # The store first: a bad --state is one line at once, before any REST call.
        store = stack.enter_context(StateStore.open(_store_url(state, state_dir)))
        rest_url = rest.resolve(state_dir)
        client = rest.access.client(rest_url)
        warn_if_metrics_stale(client, interval_seconds, _warn(log))
        cluster = _local_cluster(state_dir, rest_url)
        stop = stack.enter_context(_stop_on_interrupt())
        daemon = daemon_on_cluster(client, store, config, daemon_config, cluster=cluster,
                                   executor_config=ExecutorConfig(max_task_managers=max_task_managers),
                                   max_task_managers=max_task_managers, log=log.line, paused=pause.exists)
        daemon.start()
        stack.callback(daemon.close)
        metrics = LoopMetrics()
        if metrics_port is not None:
            check_port(metrics_port, "--metrics-port")
            port = stack.enter_context(metrics.serve(metrics_port))
            log.event("metrics.serving", f"Prometheus metrics (labelled by job) on http://127.0.0.1:{port}/metrics",
                      port=port)
        log.event("daemon.start", f"serving {'every running job' if not jobs else ', '.join(jobs)} every {interval}; "
                  f"state in {store.url}", jobs=list(jobs) or "all", interval_seconds=interval_seconds,
                  state=store.url, dry_run=dry_run)

        def on_cycle(report: Any) -> None:
            for served in daemon.jobs.values():
                metrics.update(served.loop_status())
            log.event("daemon.cycle", f"cycle: {report.jobs} jobs, {report.decided} decided, "
                      f"{report.rescales_started} rescales started, {report.wall_seconds:.2f}s", jobs=report.jobs,
                      decided=report.decided, rescales_started=report.rescales_started,
                      wall_seconds=round(report.wall_seconds, 3))

        cycles = daemon.run(stop.is_set, _interruptible_sleep(stop), duration_seconds, on_cycle)
    log.event("daemon.stopped", f"stopped after {cycles} cycles", cycles=cycles)


@rest_options
def autoscale(
    rest: RestTarget,
    action: Annotated[str | None, typer.Argument(
        help="Omit to run the loop; 'status' shows every job's phase from the state store; 'pause' and "
             "'resume' switch the cluster-wide pause of a running --all-jobs daemon (within one cycle).")] = None,
    job: Annotated[list[str] | None, typer.Option(
        "--job", help="Flink job id (32 hex characters); repeatable (several: the multi-job daemon).")] = None,
    all_jobs: Annotated[bool, typer.Option(
        "--all-jobs", help="Serve every running job of the cluster, discovering new ones each cycle.")] = False,
    config_file: Annotated[Path | None, typer.Option(
        "--config", help="Per-job settings YAML: defaults, overrides by job-name glob, cluster ceiling.")] = None,
    state: Annotated[str | None, typer.Option(
        "--state", help="State store URL (default sqlite:///STATE_DIR/autoscale.db; postgresql+psycopg://...).")]
        = None,
    max_slots: Annotated[int | None, typer.Option(
        "--max-slots", help="The cluster's slot ceiling (elastic clusters); default: what it has or can grow to.")]
        = None,
    quota_cpu: Annotated[str | None, typer.Option(
        "--quota-cpu", help="The cluster's CPU quota in cores (elastic clusters): a slot ceiling of whole "
                            "TaskManagers; per job: job.autoscaler.quota.cpu.")] = None,
    quota_memory: Annotated[str | None, typer.Option(
        "--quota-memory", help="The cluster's memory quota (e.g. 64GiB) against taskmanager.memory.process.size; "
                               "per job: job.autoscaler.quota.memory.")] = None,
    workers: Annotated[int, typer.Option("--workers", help="Jobs collected at once (multi-job daemon).")] = 8,
    log_format: Annotated[str, typer.Option(
        "--log-format", help="text (lines on stdout) or json (one JSON object a line on stderr: ts, level, event, "
                             "job_id, job_name, message, fields).")] = "text",
    output_format: Annotated[str, typer.Option("--format", help="status: table or json.")] = "table",
    policy: Annotated[str, typer.Option("--policy", help=f"One of: {', '.join(POLICY_NAMES)}.")] = "flinkscale",
    state_dir: Path = state_dir_option(),
    set_: Annotated[list[str] | None, typer.Option("--set", help="Policy setting key=value; repeatable.")] = None,
    interval: Annotated[str, typer.Option("--interval", help="Sampling and decision interval.")] = "15s",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Decide and log, never rescale.")] = False,
    run_dir: Annotated[Path | None, typer.Option("--run-dir", help="Write JSONL logs here.")] = None,
    metrics_port: Annotated[int | None, typer.Option(
        "--metrics-port", help="Serve Prometheus metrics on 127.0.0.1:PORT (0 = any free port).")] = None,
    max_task_managers: Annotated[int, typer.Option(
        "--max-task-managers", help="Embedded cluster: grow to at most this many TaskManagers.")]
        = DEFAULT_MAX_TASK_MANAGERS,
    duration: Annotated[str | None, typer.Option("--duration", help="Stop after this long (default: never).")]
        = None,
    resubmit_command: Annotated[str | None, typer.Option(
        "--resubmit-command", help="Non-adaptive scheduler: shell command resubmitting from {savepoint}.")] = None,
    emit_k8s_patch: Annotated[Path | None, typer.Option(
        "--emit-k8s-patch", help="Write FlinkDeployment patches to DIR instead of rescaling.")] = None,
    dashboard: Annotated[bool, typer.Option("--dashboard", help="Also serve the run dashboard (needs --run-dir).")]
        = False,
    dashboard_port: Annotated[int, typer.Option("--dashboard-port", help="Dashboard port.")] = 8765,
    shed_control_topic: Annotated[str | None, typer.Option(
        "--shed-control-topic", help="Also shed load through this control topic (the job's --shed-control-topic) "
                                     "once the job uses every slot it can get; no scale-down while shedding.")]
        = None,
    shed_input_topic: Annotated[str | None, typer.Option(
        "--shed-input-topic", help="The job's input topic: offered rate from its end offsets (exact).")] = None,
    shed_target_error: Annotated[str, typer.Option(
        "--shed-target-error", help="Shedding's relative error bound (2% = 98% accuracy).")] = "2%",
    shed_confidence: Annotated[str, typer.Option("--shed-confidence", help="Confidence of that bound.")] = "95%",
    shed_value_cv: Annotated[float, typer.Option(
        "--shed-value-cv", help="Coefficient of variation of the values the job sums (0 = counts only).")] = 0.0,
    bootstrap: Annotated[str | None, typer.Option(
        "--bootstrap", help="Kafka bootstrap for shedding (default: the embedded broker).")] = None,
    k8s_deployment: Annotated[str | None, typer.Option(
        "--k8s-deployment", help="NAMESPACE/NAME of the job's FlinkDeployment: rescale by patching it (REST "
                                 "default: the operator's <name>-rest.<ns>:8081); --dry-run prints the patch.")]
        = None,
) -> None:
    if action is not None:
        if action not in _ACTIONS:
            raise InputError(f"expected one of {', '.join(_ACTIONS)}, got {action!r}", field="ACTION")
        _autoscale_action(action, state, state_dir, output_format)
        return
    log = EventLog(configure_logging(log_format), log_format)
    try:
        _autoscale(log, rest, job, all_jobs, config_file, state, max_slots, quota_cpu, quota_memory, workers, policy,
                   state_dir, set_, interval, dry_run, run_dir, metrics_port, max_task_managers, duration,
                   resubmit_command, emit_k8s_patch, dashboard, dashboard_port, shed_control_topic, shed_input_topic,
                   shed_target_error, shed_confidence, shed_value_cv, bootstrap, k8s_deployment)
    except FlinkscaleError as exc:
        if not log.json:
            raise
        # The one error line is a JSON object too, so every line on stderr parses.
        log.event("error", f"error: {exc}", level=logging.ERROR, exit_code=exc.exit_code)
        raise typer.Exit(exc.exit_code) from None


def _autoscale(log: EventLog, rest: RestTarget, job: list[str] | None, all_jobs: bool, config_file: Path | None,
               state: str | None, max_slots: int | None, quota_cpu: str | None, quota_memory: str | None,
               workers: int, policy: str, state_dir: Path, set_: list[str] | None, interval: str, dry_run: bool,
               run_dir: Path | None, metrics_port: int | None, max_task_managers: int, duration: str | None,
               resubmit_command: str | None, emit_k8s_patch: Path | None, dashboard: bool, dashboard_port: int,
               shed_control_topic: str | None, shed_input_topic: str | None, shed_target_error: str,
               shed_confidence: str, shed_value_cv: float, bootstrap: str | None, k8s_deployment: str | None) -> None:
    jobs = list(dict.fromkeys(job or []))
    if not jobs and not all_jobs:
        raise InputError("give --job ID (repeatable) or --all-jobs", field="--job")
    if all_jobs or len(jobs) > 1 or state is not None or config_file is not None or max_slots is not None \
            or quota_cpu is not None or quota_memory is not None:
        _run_daemon(rest, jobs, state_dir, state, config_file, max_slots, workers, interval, duration, dry_run,
                    max_task_managers, policy, set_, metrics_port, quota_cpu, quota_memory, log)
        return
    job_id = jobs[0]
    chosen = make_policy(policy, parse_set_options(set_ or []))
    check_number(shed_value_cv, "--shed-value-cv", minimum=0, maximum=1e6)
    if not 1 <= max_task_managers <= 10_000:
        raise InputError(f"must be from 1 to 10000, got {max_task_managers}", field="--max-task-managers")
    check_port(dashboard_port, "--dashboard-port")
    if metrics_port is not None:
        check_port(metrics_port, "--metrics-port")
    if run_dir is not None:
        check_output_dir(run_dir, "--run-dir")
    if emit_k8s_patch is not None:
        check_output_dir(emit_k8s_patch, "--emit-k8s-patch")
    shed_settings = ShedSettings(target_error=parse_fraction(shed_target_error, "--shed-target-error"),
                                 confidence=parse_fraction(shed_confidence, "--shed-confidence"),
                                 value_cv=shed_value_cv)
    interval_seconds = _seconds(interval, "--interval")
    assert interval_seconds is not None
    k8s_ref = parse_deployment_ref(k8s_deployment) if k8s_deployment else None
    if rest.url is None and k8s_ref is not None:  # the operator's REST service for that deployment
        rest = dataclasses.replace(rest, url=operator_rest_url(*k8s_ref))
    # With --k8s-deployment a dry run still decides and prints each patch: the realizer runs, in dry-run mode.
    config = LoopConfig(interval_seconds=interval_seconds, dry_run=dry_run and k8s_ref is None,
                        duration_seconds=_seconds(duration, "--duration"), run_dir=run_dir)
    executor_config = ExecutorConfig(max_task_managers=max_task_managers, k8s_patch_dir=emit_k8s_patch)
    if metrics_port is not None and not 0 <= metrics_port < 65536:
        raise InputError("must be a port number", field="--metrics-port")
    if dashboard and run_dir is None:
        raise InputError("needs --run-dir (the dashboard reads it)", field="--dashboard")
    rest_url = rest.resolve(state_dir)
    client = rest.access.client(rest_url)
    check_job(client, job_id, interval_seconds, _warn(log))  # before the loop starts
    cluster = _local_cluster(state_dir, rest_url)
    executor: Executor | FlinkDeploymentRealizer | None = None if dry_run else Executor(
        client, job_id, cluster=cluster, config=executor_config,
        resubmit=command_resubmit(resubmit_command, cluster) if resubmit_command else None)
    if k8s_ref is not None:
        executor = FlinkDeploymentRealizer(FlinkDeployments(), *k8s_ref, client, job_id, dry_run=dry_run,
                                           echo=typer.echo)
        executor.check()  # a missing deployment, or one the operator's autoscaler drives, fails here

    def make_sampler(job_id: str) -> Collector:
        return Collector(client, job_id, max_task_managers=max_task_managers if cluster else None)

    metrics = LoopMetrics()
    with contextlib.ExitStack() as stack:
        stop = stack.enter_context(_stop_on_interrupt())
        if metrics_port is not None:
            port = stack.enter_context(metrics.serve(metrics_port))
            if log.json:
                log.event("metrics.serving", f"Prometheus metrics on http://127.0.0.1:{port}/metrics", port=port)
            else:
                console.print(f"Prometheus metrics on http://127.0.0.1:{port}/metrics")
        if dashboard:
            assert run_dir is not None
            from flinkscale.report.dashboard import serve_dashboard

            # serve_dashboard returns once the server accepts connections (a taken port is an InputError here).
            server = serve_dashboard(run_dir, port=dashboard_port)
            stack.callback(server.stop)
            if log.json:
                log.event("dashboard.serving", f"dashboard on {server.url}", url=server.url)
            else:
                console.print(f"dashboard on {server.url}")
        live = None
        tick_log = _TickLog(log, job_id)
        if sys.stdout.isatty() and not log.json:
            from rich.live import Live

            live = stack.enter_context(Live(console=console, refresh_per_second=2))

        def on_tick(status: LoopStatus) -> None:
            metrics.update(status)
            if live is not None:
                live.update(_live_table(status))
            elif log.json:
                tick_log(status)
            else:
                typer.echo(status_line(status))

        shedding = None
        if shed_control_topic:
            shed = open_shed_channel(resolve_bootstrap(bootstrap, state_dir), shed_control_topic, shed_settings,
                                     shed_input_topic)
            stack.callback(shed.close)
            shedding = LoopShedding(shed.controller, shed.arrivals.sample if shed.arrivals else None)
        loop = AutoscaleLoop(chosen, make_sampler, job_id, executor=executor, config=config, on_tick=on_tick,
                             sleep=_interruptible_sleep(stop), should_stop=stop.is_set, shedding=shedding)
        if executor is not None:
            executor.event = loop.event
        summary = loop.run_forever()
        if log.json:
            tick_log.events(loop.status)
    durations = ", ".join(f"{r.duration_seconds:.1f}s" for r in summary.rescales) or "none"
    log.event("loop.stopped", f"stopped after {summary.ticks} ticks: {summary.decisions} decisions, "
              f"{len(summary.rescales)} rescales ({durations}), "
              f"{summary.holds} holds, {len(summary.errors)} errors", job_id=job_id, ticks=summary.ticks,
              decisions=summary.decisions, rescales=[r.duration_seconds for r in summary.rescales],
              holds=summary.holds, errors=len(summary.errors))


@rest_options
def rebalance(
    rest: RestTarget,
    job: Annotated[str, typer.Option("--job", help="Flink job id (32 hex characters).")],
    state_dir: Path = state_dir_option(),
    window: Annotated[str, typer.Option("--window", help="How long to sample.")] = "30s",
    interval: Annotated[str, typer.Option("--interval", help="Sampling interval inside the window.")] = "10s",
    apply: Annotated[bool, typer.Option("--apply", help="Carry the plan out (savepoint + restart).")] = False,
    resubmit_command: Annotated[str | None, typer.Option(
        "--resubmit-command", help="Shell command resubmitting from {savepoint} with {config}.")] = None,
    max_task_managers: Annotated[int, typer.Option("--max-task-managers")] = DEFAULT_MAX_TASK_MANAGERS,
    sql_job: Annotated[bool, typer.Option("--sql", help="The job is a SQL/Table job (two-phase aggregation).")]
        = False,
    output_format: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    check_choice(output_format, ("table", "json"), "--format")
    window_seconds = _seconds(window, "--window")
    interval_seconds = _seconds(interval, "--interval")
    assert window_seconds is not None and interval_seconds is not None
    if apply and not resubmit_command:
        raise InputError("--apply restarts the job from a savepoint and needs the command that resubmits it",
                         field="--resubmit-command")
    executor_config = ExecutorConfig(max_task_managers=max_task_managers)
    rest_url = rest.resolve(state_dir)
    client = rest.access.client(rest_url)
    check_job(client, job, interval_seconds)
    snapshots = collect_window(Collector(client, job), window_seconds, interval_seconds)
    if not snapshots:
        raise RuntimeFailure(f"no complete sample of job {job} in {window}; is it RUNNING?")
    plan = plan_rebalance(analyze_skew(merge_window(snapshots), sql_job=sql_job))
    from rich.markup import escape  # the plan's lines name vertices, whose SQL names hold [...]

    if output_format == "json":
        print_json(plan.to_dict())
    else:
        console.print(f"[bold]rebalance plan for {escape(job)}[/bold]")
        for line in plan.reasons or ("nothing to change: no skewed vertex with a remedy this command applies",):
            console.print(f"  {escape(line)}")
        for line in plan.not_applied:
            console.print(f"  [dim]not applied: {escape(line)}[/dim]")
    if not apply or not plan.changes_anything:
        return
    assert resubmit_command is not None
    cluster = _local_cluster(state_dir, rest_url)
    executor = Executor(client, job, cluster=cluster, config=executor_config,
                        resubmit=command_resubmit(resubmit_command, cluster, plan.job_config),
                        event=lambda kind, message: console.print(f"[dim]{escape(f'{kind}: {message}')}[/dim]"))
    current = {v.id: v.parallelism for v in client.job(job).vertices}
    record = executor.restart_with_savepoint({**current, **plan.parallelism}, reason="rebalance")
    console.print(f"rebalanced: job {executor.job_id} runs at {dict(record.new_parallelism)} "
                  f"({record.duration_seconds:.1f}s)")


def register(app: typer.Typer) -> None:
    app.command("autoscale", help=_AUTOSCALE_HELP, no_args_is_help=True)(autoscale)
    app.command("rebalance", help=_REBALANCE_HELP, no_args_is_help=True)(rebalance)
