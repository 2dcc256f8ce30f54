"""The one control step: its rules, and that the live loop, the simulator and ``shed auto`` all run it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flinkscale.core import control
from flinkscale.core.control import ControllerState, ControlSettings, Hold, Rescale, SetKeepProbability
from flinkscale.core.policy import History, make_policy
from flinkscale.core.policy.base import Decision, RescaleRecord, VertexDecision
from flinkscale.core.shedding import ShedSettings, ShedState
from flinkscale.core.sim.run import simulate
from flinkscale.core.sim.scenario import parse_scenario
from flinkscale.core.snapshot import ClusterResources, MetricsSnapshot
from flinkscale.flink.autoscaler import AutoscaleLoop, LoopConfig, LoopShedding
from flinkscale.flink.shedder import ShedController, ShedLoop
from flinkscale.testing import FakeClock, ScriptedSampler, load_snapshots

EXAMPLES = Path(__file__).parents[3] / "examples"
HISTORY = EXAMPLES / "snapshots" / "clickstream-p1-overload-history.jsonl"
RECORDED = load_snapshots(HISTORY)
ONE_SLOT = ClusterResources(task_managers=1, slots_total=1, slots_available=0, slots_per_task_manager=1,
                            max_task_managers=1)
OVERLOAD = [replace(s, cluster=ONE_SLOT) for s in RECORDED[-3:]]
SHEDDING = ControlSettings(interval_seconds=60, shedding=ShedSettings())


class Grow:
    """Asks for one more subtask everywhere (a policy that scales up)."""

    name = "grow"

    def decide(self, snapshot: MetricsSnapshot, history: History) -> Decision:
        return Decision(snapshot.timestamp, self.name, tuple(
            VertexDecision(v.id, v.name, v.parallelism, v.parallelism + 1, "more") for v in snapshot.vertices))


# --- the rules ---------------------------------------------------------------------------------------------
def test_an_incomplete_snapshot_is_a_hold_and_leaves_the_history_alone() -> None:
    restarting = replace(RECORDED[-1], job_state="RESTARTING")
    result = control.step(restarting, History(), ControllerState(), SHEDDING, make_policy("flinkscale"))
    assert result.decision is None and result.held == "job is RESTARTING"
    assert result.actions == (Hold("job is RESTARTING"),) and result.history == History()


def test_missing_busy_time_holds_for_the_grace_steps_then_decides_without_it() -> None:
    source = RECORDED[-1].vertices[0]
    no_busy = replace(RECORDED[-1], vertices=(
        replace(source, metrics=replace(source.metrics, busy_time_ms_per_second_max=None)),
        *RECORDED[-1].vertices[1:]))
    state, held = ControllerState(), 0
    settings = ControlSettings(interval_seconds=60, busy_time_grace_ticks=2)
    for _ in range(3):
        result = control.step(no_busy, History(), state, settings, make_policy("flinkscale"))
        state = result.state
        held += result.decision is None
    assert held == 2 and result.decision is not None and result.notes == (control.NO_BUSY_TIME_NOTE,)


def test_at_the_ceiling_the_step_sheds_and_every_decision_carries_the_fraction() -> None:
    result = control.step(OVERLOAD[-1], History(), ControllerState(), SHEDDING, make_policy("flinkscale"))
    (action,) = [a for a in result.actions if isinstance(a, SetKeepProbability)]
    assert 0.5 < action.keep_probability < 1.0 and action.seq == 0 and "offered" in action.reason
    assert result.state.shed.keep_probability == action.keep_probability
    assert result.decision is not None and result.decision.shed_fraction == pytest.approx(1 - action.keep_probability)
    assert result.history.decisions == (result.decision,)


def test_below_the_ceiling_the_step_scales_instead_of_shedding() -> None:
    result = control.step(RECORDED[-1], History(), ControllerState(), SHEDDING, Grow())
    assert [type(a) for a in result.actions] == [Rescale]
    assert result.shed is None and result.decision is not None and result.decision.shed_fraction == 0.0


def test_no_shedding_while_scaling_up_nor_while_a_rescale_settles() -> None:
    growing = control.step(OVERLOAD[-1], History(), ControllerState(), SHEDDING, Grow())
    assert growing.shed is None
    just_rescaled = History(rescales=(RescaleRecord(OVERLOAD[-1].timestamp - 90, OVERLOAD[-1].timestamp - 60, {}, {}),))
    settling = control.step(OVERLOAD[-1], just_rescaled, ControllerState(), SHEDDING, make_policy("flinkscale"))
    assert settling.shed is None  # 60 s after the rescale: under two 60 s intervals


def test_no_scale_down_while_shedding() -> None:
    shrink = Decision(0, "shrink", ())

    class Shrink:
        name = "shrink"

        def decide(self, snapshot: MetricsSnapshot, history: History) -> Decision:
            return replace(shrink, timestamp=snapshot.timestamp, vertices=tuple(
                VertexDecision(v.id, v.name, 2, 1, "less") for v in snapshot.vertices))

    shedding = ControllerState(shed=ShedState(keep_probability=0.5))
    at_two = RECORDED[-1].with_parallelism({v.id: 2 for v in RECORDED[-1].vertices})
    result = control.step(at_two, History(), shedding, SHEDDING, Shrink())
    assert result.decision is not None and not result.decision.rescale
    assert "load shedding in force" in str(result.decision.blocked_reason)
    assert not any(isinstance(a, Rescale) for a in result.actions)


def test_without_a_policy_the_step_only_sheds() -> None:
    # shed auto: scaling is not ours, so shedding does not wait for a ceiling.
    result = control.step(RECORDED[-1], History(), ControllerState(), SHEDDING, None)
    assert result.decision is not None and result.decision.policy == control.SHED_ONLY
    assert not result.decision.rescale and any(isinstance(a, SetKeepProbability) for a in result.actions)


# --- one step, three drivers --------------------------------------------------------------------------------
def test_the_live_loop_the_simulator_and_shed_auto_run_the_same_step(monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:
    calls: list[tuple[str, control.ControlResult]] = []
    real_step = control.step

    def spy(*args: Any, **kwargs: Any) -> control.ControlResult:
        result = real_step(*args, **kwargs)
        calls.append((args[0].job_id, result))
        return result

    monkeypatch.setattr(control, "step", spy)

    # The live loop, dry run, with shedding, over recorded snapshots of an overloaded job at its ceiling.
    published: list[tuple[float, int]] = []
    clock = FakeClock(OVERLOAD[0].timestamp - 60)
    sampler = ScriptedSampler([None, *OVERLOAD])  # the first read primes the counters
    loop = AutoscaleLoop(make_policy("flinkscale"), lambda _job: sampler, OVERLOAD[0].job_id,
                         config=LoopConfig(interval_seconds=60, dry_run=True, duration_seconds=60 * 3.5,
                                           run_dir=tmp_path),
                         clock=clock, sleep=clock.sleep,
                         shedding=LoopShedding(ShedController(lambda p, seq: published.append((p, seq)))))
    loop.run_forever()
    live = [result for job, result in calls if job == OVERLOAD[0].job_id]
    logged = [json.loads(line)["decision"] for line in (tmp_path / "decisions.jsonl").read_text().splitlines()]
    assert len(live) == 3 and logged == [r.decision.to_dict() for r in live if r.decision is not None]
    # What the step decided to publish is exactly what the loop published.
    assert published == [(a.keep_probability, a.seq) for r in live for a in r.actions
                         if isinstance(a, SetKeepProbability)] != []

    # The simulator on a scenario over its ceiling.
    calls.clear()
    scenario = parse_scenario((EXAMPLES / "scenarios" / "shed-at-ceiling.yaml").read_text())
    sim = simulate(scenario.pipeline, scenario.rates(), make_policy("flinkscale"), scenario.config)
    simulated = [result for job, result in calls if job.startswith("sim-")]
    assert simulated and [r.decision for r in simulated if r.decision is not None] == list(sim.history.decisions)
    assert any(isinstance(a, SetKeepProbability) for r in simulated for a in r.actions)
    assert sim.outcome.records_dropped > 0

    # shed auto, one tick.
    calls.clear()
    shed_published: list[tuple[float, int]] = []
    shed_auto = ShedLoop(ShedController(lambda p, seq: shed_published.append((p, seq))), interval_seconds=60)
    result = shed_auto.tick(RECORDED[-1])
    assert calls == [(RECORDED[-1].job_id, result)]
    assert shed_published == [(a.keep_probability, a.seq) for a in result.actions
                               if isinstance(a, SetKeepProbability)] != []


def test_shed_auto_resumes_from_the_control_topic_and_stops_shedding_when_capacity_is_back() -> None:
    published: list[tuple[float, int]] = []
    controller = ShedController.resuming(lambda p, seq: published.append((p, seq)), ShedSettings(), (0.5, 7))
    shed_auto = ShedLoop(controller, interval_seconds=60)
    quiet = replace(RECORDED[-1], vertices=tuple(
        replace(v, metrics=replace(v.metrics, num_records_in_per_second=1000.0, pending_records=0.0,
                                   pending_records_per_second=0.0, busy_time_ms_per_second_avg=200.0))
        for v in RECORDED[-1].vertices))
    shed_auto.tick(quiet)
    assert published == [(1.0, 8)] and controller.keep_probability == 1.0


def test_the_step_keeps_the_history_bounded_over_a_long_run() -> None:
    settings = ControlSettings(interval_seconds=60, history_seconds=3600)
    history, state = History(), ControllerState()
    policy = make_policy("flinkscale")
    base = RECORDED[0]
    for i in range(200):  # 200 minutes
        result = control.step(replace(base, timestamp=base.timestamp + 60 * i), history, state, settings, policy)
        history, state = result.history, result.state
    assert len(history.snapshots) <= 61 and len(history.decisions) <= 61
    assert history.decisions[-1].timestamp - history.decisions[0].timestamp <= 3600
    assert np.isclose(history.snapshots[-1].timestamp, base.timestamp + 60 * 199)


# --- rule 5: stabilization from the job's own start -------------------------------------------------------
STABLE = ControlSettings(interval_seconds=60, stabilization_seconds=120.0)


def test_no_decision_before_the_stabilization_after_the_jobs_start() -> None:
    now = RECORDED[-1]
    started = now.timestamp - 60.0  # started a minute ago, the interval is two
    result = control.step(now, History(), ControllerState(), STABLE, Grow(), job_started_at=started)
    assert result.decision is not None and not result.decision.rescale
    assert all(v.new_parallelism == v.current_parallelism for v in result.decision.vertices)
    (action,) = result.actions
    assert isinstance(action, Hold) and action.reason.startswith("stabilizing: the job started at")
    assert "60s more" in action.reason
    assert result.history.snapshots == (now,)  # the window after stabilization starts filled


def test_the_first_sample_of_a_job_with_an_empty_history_is_never_decided_on() -> None:
    now = RECORDED[-1]
    long_ago = now.timestamp - 86_400.0
    first = control.step(now, History(), ControllerState(), STABLE, Grow(), job_started_at=long_ago)
    assert isinstance(first.actions[0], Hold) and "first sample" in first.actions[0].reason
    later = replace(now, timestamp=now.timestamp + 60)
    second = control.step(later, first.history, first.state, STABLE, Grow(), job_started_at=long_ago)
    assert second.decision is not None and second.decision.rescale
    assert isinstance(second.actions[0], Rescale)


@pytest.mark.parametrize("age", [0.0, 30.0, 119.0, 120.0, 500.0])
def test_decisions_start_exactly_at_start_plus_stabilization(age: float) -> None:
    now = RECORDED[-1]
    history = History().append(snapshot=RECORDED[-2])
    result = control.step(now, history, ControllerState(), STABLE, Grow(), job_started_at=now.timestamp - age)
    assert (result.decision is not None and result.decision.rescale) == (age >= 120.0)


def test_without_a_job_start_the_rule_is_off_as_in_the_simulator() -> None:
    result = control.step(RECORDED[-1], History(), ControllerState(), STABLE, Grow())
    assert result.decision is not None and result.decision.rescale


def test_stabilization_seconds_is_the_policys_own_setting() -> None:
    assert control.stabilization_seconds(make_policy("flinkscale")) == 120.0
    assert control.stabilization_seconds(make_policy("flink-operator", {"job.autoscaler.stabilization.interval": "5m"})
                                         ) == 300.0
    assert control.stabilization_seconds(Grow()) == 0.0


def test_the_live_loop_holds_a_new_job_until_its_stabilization_ends() -> None:
    clock = FakeClock(RECORDED[0].timestamp)
    base = RECORDED[-1]
    script = [replace(base, timestamp=clock.now + 60.0 * i) for i in range(1, 6)]
    sampler = ScriptedSampler([None, *script], started_at=clock.now)
    loop = AutoscaleLoop(Grow(), lambda _job: sampler, base.job_id, clock=clock, sleep=clock.sleep,
                         config=LoopConfig(interval_seconds=60, dry_run=True, duration_seconds=300))
    loop.control = replace(loop.control, stabilization_seconds=150.0)
    loop.run_forever()
    decided = list(loop.status.decisions)
    assert [d.decision.rescale for d in decided] == [False, False, True, True, True]
    assert "stabilizing" in decided[0].decision.vertices[0].reason
