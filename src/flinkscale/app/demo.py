"""``flinkscale demo``: the whole story on the embedded cluster (composition only; the report is report/demo_report).

1. Start the embedded Flink cluster (one slot per TaskManager, see pipelines/clickstream.py) and the broker;
   plan the local workload (package data: flinkscale/data/local-demo.yaml) and create the topic with its planned
   partitions.
2. Submit the reference pipeline at parallelism 1 and serve the live dashboard on the run directory.
3. Drive the load generator through a scripted profile: steady, a 3x step, a spike beyond what this machine can
   scale to (2 cores: at most 2 TaskManagers), and back down, while the autoscale loop (the ``flinkscale``
   policy, short windows) collects, decides and rescales in place. The pipeline runs with dynamic load
   shedding (control topic ``clicks-control``) and the loop drives it: nothing is shed while scaling can
   still help; at the slot ceiling the spike's excess is shed within 2% at 95% confidence, and shedding
   stops when the spike ends.
4. Profile the job from the loop's own snapshots of the step phase (no extra sampling), plan the same pipeline
   for 1 TB/day from that profile, stop the job with a drained savepoint and stop everything.
5. Write ``report.html`` (timeline, every decision with its reason, the profile's findings, the 1 TB/day plan),
   ``profile.html``, ``plan/`` (config.yaml, FlinkDeployment) and ``demo.json`` (the figures, for scripts).

Everything started is stopped in a ``finally``: Ctrl-C, a failure or the end of the story leave no process.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from flinkscale.core import rundir
from flinkscale.core.plan import build_plan
from flinkscale.core.policy import make_policy
from flinkscale.core.profile import analyze_profile, findings, profile_document
from flinkscale.core.snapshot import MetricsSnapshot
from flinkscale.core.units import parse_rate
from flinkscale.core.workload import parse_workload_text, workload_from_profile
from flinkscale.flink.autoscaler import AutoscaleLoop, LoopConfig, LoopShedding, status_line
from flinkscale.flink.cluster import ClusterSpec, LocalCluster
from flinkscale.flink.collector import Collector, merge_window
from flinkscale.flink.executor import Executor, ExecutorConfig
from flinkscale.flink.rest import FlinkRestClient
from flinkscale.flink.shedder import ShedController, ShedSettings
from flinkscale.kafka.admin import TopicAdmin
from flinkscale.kafka.broker import EmbeddedBroker
from flinkscale.kafka.control import ArrivalRate, ControlChannel
from flinkscale.kafka.loadgen import LoadGenerator
from flinkscale.pipelines.launch import ClickstreamOptions, submit_clickstream
from flinkscale.report import demo_report
from flinkscale.report import plan as plan_report
from flinkscale.report import profile as profile_report
from flinkscale.report.demo_report import DemoResult

LOCAL_WORKLOAD = "local-demo.yaml"  # package data (flinkscale/data), so an installed wheel has it too
COST_US = 150.0  # one enrichment subtask then sustains ~6k events/s here, so a 3x step needs a rescale
MAX_TASK_MANAGERS = 2  # 2 cores: a third TaskManager would only share the same CPUs
CONTROL_TOPIC = "clicks-control"


@dataclass(frozen=True)
class Phase:
    name: str
    seconds: int
    rate: float


FULL = (Phase("steady", 60, 2_000), Phase("3x step", 210, 6_000), Phase("spike beyond capacity", 45, 18_000),
        Phase("back down", 120, 2_000))
QUICK = (Phase("steady", 15, 2_000), Phase("3x step", 85, 6_000), Phase("spike beyond capacity", 20, 15_000),
         Phase("back down", 30, 2_000))


def policy_settings(quick: bool) -> dict[str, str]:
    """Short windows so that a demo of minutes shows what production does over hours."""
    # No trend prediction: its 30 min window and 2 h horizon mean nothing in a demo of minutes, where every
    # rate change is a step (a step-dominated window reads as a steep trend and would hold the size up).
    return {"stabilization.interval": "15s", "metrics.window": "20s", "restart.time": "20s",
            "scale-down.interval": "40s" if quick else "60s", "prediction.horizon": "0"}


def _local_workload_text() -> str:
    return resources.files("flinkscale.data").joinpath(LOCAL_WORKLOAD).read_text(encoding="utf-8")


def _local_workload_partitions() -> int:
    """Partitions of the demo's source topic as the planner sizes them for the local workload."""
    plan = build_plan(parse_workload_text(_local_workload_text()))
    consumed = [int(t.partitions.value) for t in plan.capacity.kafka if t.direction == "consume"]
    return max(consumed or [4])


def run_demo(output_dir: Path, state_dir: Path, *, quick: bool = False,
             say: Callable[[str], None] = print, stop: threading.Event | None = None,
             serve_dashboard: bool = True) -> DemoResult:
    stop = stop or threading.Event()
    phases = QUICK if quick else FULL
    output_dir.mkdir(parents=True, exist_ok=True)
    run_dir = output_dir / "run"
    started = time.monotonic()
    cluster, broker = LocalCluster(state_dir), EmbeddedBroker(state_dir)
    server = None
    control: ControlChannel | None = None
    try:
        info = cluster.up(ClusterSpec(task_managers=1, slots_per_task_manager=1, rest_port=0, extra_config={
            "jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling": "10 s"}),
            progress=lambda m: say(f"cluster: {m}"))
        bootstrap = broker.up(port=0).bootstrap
        partitions = _local_workload_partitions()
        TopicAdmin(bootstrap).create_topic("clicks", partitions)
        control = ControlChannel(bootstrap, CONTROL_TOPIC)
        say(f"Flink at {info.rest_url}; broker at {bootstrap}; topic clicks with {partitions} planned partitions")
        options = ClickstreamOptions(bootstrap=bootstrap, topic="clicks", cost_us=COST_US,
                                     shed_control_topic=CONTROL_TOPIC,
                                     events_dir=f"file://{output_dir / 'sink' / 'events'}",
                                     agg_dir=f"file://{output_dir / 'sink' / 'per-user'}")
        job_id = submit_clickstream(cluster, options, parallelism=1).job_id
        rest = FlinkRestClient(info.rest_url)
        rest.wait_all_running(job_id, timeout=180.0)
        say(f"reference pipeline running as job {job_id} at parallelism 1")
        if serve_dashboard:
            from flinkscale.report.dashboard import serve_dashboard as serve

            server = serve(run_dir)
            say(f"live dashboard: {server.url}")
        executor = Executor(rest, job_id, cluster=cluster, config=ExecutorConfig(max_task_managers=MAX_TASK_MANAGERS))
        loop = AutoscaleLoop(
            make_policy("flinkscale", policy_settings(quick)),
            lambda jid: Collector(rest, jid, max_task_managers=MAX_TASK_MANAGERS), job_id, executor=executor,
            config=LoopConfig(interval_seconds=5.0, run_dir=run_dir),
            on_tick=lambda status: say("  " + status_line(status)), should_stop=stop.is_set, sleep=_pause(stop),
            shedding=LoopShedding(ShedController(control.publish, ShedSettings(window_seconds=options.window_seconds)),
                                  ArrivalRate(bootstrap, "clicks").sample))
        executor.event = loop.event
        loop_thread = threading.Thread(target=loop.run_forever, name="autoscale", daemon=True)
        loop_thread.start()
        generator = LoadGenerator(bootstrap, "clicks", users=2_000, zipf_s=0.8, seed=42)
        phase_marks = _drive_load(generator, phases, loop, say, stop)
        generator.close()
        stop.set()
        loop_thread.join(timeout=120)
        job_id = executor.job_id
        snapshots = _read_snapshots(run_dir / rundir.SNAPSHOTS_FILE)
        step = [s for s in snapshots if phase_marks[1][0] <= s.timestamp <= phase_marks[1][1]] or snapshots[-6:]
        result = _finish(output_dir, rest, job_id, snapshots, step[-6:], phases, phase_marks, loop, generator,
                         started, say)
        result.dashboard_url = server.url if server else None
        return result
    finally:
        stop.set()
        if control is not None:
            control.close()
        if server is not None:
            server.stop()
        cluster.down()
        broker.down()


def _pause(stop: threading.Event) -> Callable[[float], None]:
    def pause(seconds: float) -> None:
        stop.wait(seconds)  # Ctrl-C sets ``stop`` and ends the pause at once

    return pause


def _drive_load(generator: LoadGenerator, phases: Sequence[Phase], loop: AutoscaleLoop, say: Callable[[str], None],
                stop: threading.Event) -> list[tuple[float, float]]:
    marks = []
    for phase in phases:
        if stop.is_set():
            break
        begin = time.time()
        loop.event("phase", f"{phase.name}: {phase.rate:,.0f} events/s for {phase.seconds}s")
        say(f"phase {phase.name}: {phase.rate:,.0f} events/s for {phase.seconds}s")
        report = generator.run([phase.rate] * phase.seconds, stop=stop)
        marks.append((begin, time.time()))
        if report.warnings:
            say(f"  load generator: {len(report.warnings)} second(s) below target ({report.warnings[0]})")
    return marks


def _read_run_file(path: Path) -> list[rundir.RunRecord]:
    if not path.exists():
        return []
    return [rundir.parse_line(path.name, line) for line in path.read_text().splitlines() if line.strip()]


def _read_snapshots(path: Path) -> list[MetricsSnapshot]:
    return [r for r in _read_run_file(path) if isinstance(r, MetricsSnapshot)]


def _read_decisions(path: Path) -> list[rundir.DecisionRecord]:
    return [r for r in _read_run_file(path) if isinstance(r, rundir.DecisionRecord)]


def _finish(output_dir: Path, rest: FlinkRestClient, job_id: str, snapshots: Sequence[MetricsSnapshot],
            step: Sequence[MetricsSnapshot], phases: Sequence[Phase], marks: Sequence[tuple[float, float]],
            loop: AutoscaleLoop, generator: LoadGenerator, started: float, say: Callable[[str], None]) -> DemoResult:
    say("profiling the step phase and planning 1 TB/day from it")
    plan = None
    found: list[str] = []
    if step:
        merged = merge_window(step)
        analysis = analyze_profile(merged)
        found = findings(analysis)
        document = profile_document(merged, step, analysis, calls_per_sample=0, skipped=())
        (output_dir / "profile.json").write_text(json.dumps(document, indent=1))
        (output_dir / "profile.html").write_text(profile_report.render_html(document, analysis))
        plan = build_plan(workload_from_profile(merged, parse_rate("1TB/day"),
                                                parse_workload_text(_local_workload_text()), name="clickstream"))
        plan_dir = output_dir / "plan"
        plan_dir.mkdir(exist_ok=True)
        (plan_dir / "config.yaml").write_text(plan_report.flink_config_yaml(plan))
        if plan.spec.deployment.target == "kubernetes":  # the local workload runs standalone: no manifest
            (plan_dir / "flinkdeployment.yaml").write_text(plan_report.flink_deployment_yaml(plan))
        (plan_dir / "plan.md").write_text(plan_report.render_markdown(plan))
    say("stopping the job with a drained savepoint")
    location = rest.wait_savepoint(job_id, rest.trigger_stop_with_savepoint(job_id, drain=True))
    rest.wait_job_state(job_id, ["FINISHED"])
    decisions = _read_decisions(output_dir / "run" / rundir.DECISIONS_FILE)
    rescales = [{"requested_at": r.requested_at, "seconds": round(r.duration_seconds, 1),
                 "old": dict(r.old_parallelism), "new": dict(r.new_parallelism)} for r in loop.history.rescales]
    scale_ups = sum(1 for r in loop.history.rescales
                    if any(r.new_parallelism.get(v, 0) > p for v, p in r.old_parallelism.items()))
    result = DemoResult(
        output_dir=str(output_dir), wall_seconds=round(time.monotonic() - started, 1), job_id=job_id,
        phases=[{**asdict(p), "started_at": m[0], "ended_at": m[1]} for p, m in zip(phases, marks, strict=False)],
        rescales=rescales, decisions=len(decisions), applied_scale_ups=scale_ups,
        produced=generator.manifest.produced, findings=found,
        max_shed_fraction=max((e.decision.shed_fraction for e in decisions), default=0.0),
        shed_decisions=sum(1 for e in decisions if e.decision.shed_fraction > 0),
        plan_summary=[list(row) for row in plan_report.summary_rows(plan)] if plan else [])
    (output_dir / "demo.json").write_text(json.dumps({**asdict(result), "final_savepoint": location}, indent=1))
    page = demo_report.render_report(result, snapshots, [d.to_dict() for d in decisions], generator, plan is not None)
    (output_dir / "report.html").write_text(page)
    say(f"report: {output_dir / 'report.html'}")
    return result
