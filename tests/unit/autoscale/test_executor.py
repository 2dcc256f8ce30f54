"""Executor: in place vs savepoint path, never a cancel or a stop without a savepoint, waits, TaskManagers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flinkscale.core.errors import RuntimeFailure
from flinkscale.core.policy.base import Decision, VertexDecision
from flinkscale.flink.executor import Executor, ExecutorConfig, k8s_patch
from flinkscale.testing import FAKE_JOB_ID, FakeClock, FakeJob, FakeSlots

JOB = FAKE_JOB_ID
NEW_JOB = "b" * 32


def decision(target: dict[str, int], current: dict[str, int] | None = None, blocked: str | None = None) -> Decision:
    current = current or dict.fromkeys(target, 1)
    return Decision(0.0, "test", tuple(VertexDecision(vid, f"vertex {vid}", current[vid], p, "r")
                                       for vid, p in target.items()), blocked)


def make(flink: FakeJob, **kwargs: Any) -> Executor:
    return Executor(flink, JOB, clock=flink.clock, sleep=flink.clock.sleep,
                    config=kwargs.pop("config", ExecutorConfig(poll_seconds=0.5)), **kwargs)


def puts(flink: FakeJob) -> list[Any]:
    return [args for kind, args in flink.calls if kind == "put"]


def test_adaptive_scheduler_rescales_in_place_with_every_vertex_bounded_1_to_p() -> None:
    flink = FakeJob(FakeClock())
    record = make(flink).apply(decision({"src": 2, "agg": 1}))
    assert puts(flink) == [{"src": (1, 2), "agg": (1, 1)}]
    assert flink.parallelism == {"src": 2, "agg": 1}
    assert record is not None and record.new_parallelism == {"src": 2, "agg": 1}
    assert record.old_parallelism == {"src": 1, "agg": 1}
    assert record.duration_seconds > 0
    assert not any(kind in ("stop", "cancel") for kind, _ in flink.calls)


@pytest.mark.parametrize("blocked", ["cooldown", "backlog draining"])
def test_blocked_or_unchanged_decisions_touch_nothing(blocked: str) -> None:
    flink = FakeJob(FakeClock())
    ex = make(flink)
    assert ex.apply(decision({"src": 1, "agg": 1})) is None
    assert ex.apply(decision({"src": 3, "agg": 1}, blocked=blocked)) is None
    assert flink.calls == []


def test_non_adaptive_scheduler_stops_with_savepoint_and_resubmits_then_reaches_target() -> None:
    flink = FakeJob(FakeClock(), scheduler="default")
    savepoints: list[str] = []

    def resubmit(savepoint: str) -> str:
        savepoints.append(savepoint)
        flink.job_id = NEW_JOB
        flink.scheduler = "adaptive"  # the resubmitted job reaches its per-vertex target in place
        return NEW_JOB

    ex = make(flink, resubmit=resubmit)
    record = ex.apply(decision({"src": 2, "agg": 2}))
    assert savepoints == ["file:///savepoints/sp-1"]
    assert ex.job_id == NEW_JOB
    kinds = [kind for kind, _ in flink.calls]
    assert kinds.index("savepoint") < kinds.index("put")
    assert record is not None and record.new_parallelism == {"src": 2, "agg": 2}
    assert "cancel" not in kinds


def test_non_adaptive_without_resubmit_refuses_before_stopping_anything() -> None:
    flink = FakeJob(FakeClock(), scheduler="default")
    with pytest.raises(RuntimeFailure, match="nothing was stopped"):
        make(flink).apply(decision({"src": 2, "agg": 1}))
    assert not any(kind in ("stop", "cancel") for kind, _ in flink.calls)


def test_failed_savepoints_leave_the_job_running_and_never_cancel() -> None:
    flink = FakeJob(FakeClock(), scheduler="default", savepoint_failures=5)
    resubmitted: list[str] = []
    def resubmit(savepoint: str) -> str:
        resubmitted.append(savepoint)
        return NEW_JOB

    ex = make(flink, resubmit=resubmit,
              config=ExecutorConfig(poll_seconds=0.5, savepoint_attempts=3))
    with pytest.raises(RuntimeFailure, match="left running"):
        ex.apply(decision({"src": 2, "agg": 1}))
    kinds = [kind for kind, _ in flink.calls]
    assert kinds.count("savepoint-failed") == 3
    assert resubmitted == [] and "cancel" not in kinds and ex.job_id == JOB


def test_a_savepoint_that_fails_once_is_retried_after_the_next_checkpoint() -> None:
    flink = FakeJob(FakeClock(), scheduler="default", savepoint_failures=1)

    def resubmit(savepoint: str) -> str:
        flink.job_id, flink.parallelism = NEW_JOB, {"src": 2, "agg": 1}
        return NEW_JOB

    record = make(flink, resubmit=resubmit).apply(decision({"src": 2, "agg": 1}))
    assert record is not None
    assert [k for k, _ in flink.calls].count("stop") == 2


def test_restarting_job_and_rest_outage_are_waited_out_before_the_put() -> None:
    flink = FakeJob(FakeClock(), states=["RESTARTING", "OUTAGE", "RESTARTING"])
    make(flink).apply(decision({"src": 2, "agg": 1}))
    job_polls_before_put = flink.calls.index(("put", {"src": (1, 2), "agg": (1, 1)}))
    assert job_polls_before_put == 4  # three unhealthy answers, then RUNNING


def test_restarting_longer_than_the_timeout_fails_without_any_change() -> None:
    flink = FakeJob(FakeClock(), states=["RESTARTING"] * 1000)
    ex = make(flink, config=ExecutorConfig(poll_seconds=1.0, ready_timeout_seconds=20.0))
    with pytest.raises(RuntimeFailure, match="not fully RUNNING"):
        ex.apply(decision({"src": 2, "agg": 1}))
    assert puts(flink) == []


def test_second_rescale_waits_out_the_schedulers_cooldown() -> None:
    clock = FakeClock()
    flink = FakeJob(clock, cooldown="30 s")
    ex = make(flink)
    first = ex.apply(decision({"src": 2, "agg": 1}))
    assert first is not None
    second_asked = clock.now
    second = ex.apply(decision({"src": 1, "agg": 1}, current={"src": 2, "agg": 1}))
    assert second is not None
    # the PUT went out no earlier than the cooldown after the first rescale completed
    assert second.requested_at >= first.completed_at + 30.0 > second_asked


def test_more_slots_than_exist_adds_task_managers_capped_at_the_maximum() -> None:
    flink = FakeJob(FakeClock())
    cluster = FakeSlots(flink)
    ex = make(flink, cluster=cluster, config=ExecutorConfig(poll_seconds=0.5, max_task_managers=4))
    ex.apply(decision({"src": 3, "agg": 1}))
    assert cluster.started == [1] and cluster.counts[0] == 3  # 3 slots needed, 2 TaskManagers x 1 slot
    ex.apply(decision({"src": 6, "agg": 1}, current={"src": 3, "agg": 1}))
    assert cluster.counts[-1] <= 4 and flink.tm_count <= 4


def test_scale_down_stops_only_idle_task_managers() -> None:
    flink = FakeJob(FakeClock(), parallelism={"src": 3, "agg": 1}, tm_count=3)
    cluster = FakeSlots(flink, supervised=1)  # the cluster was started with 1; 2 were added for this job
    # TaskManager i (data port 50000+i) runs as pid 100+i; busy ones come first in the fake
    ex = make(flink, cluster=cluster)
    ex.apply(decision({"src": 1, "agg": 1}, current={"src": 3, "agg": 1}))
    assert sorted(cluster.stopped) == [101, 102]  # TaskManagers 1 and 2 had no busy slot
    assert cluster.counts[0] == 1  # the supervisor is told first, so it does not restart them


def test_scale_down_never_shrinks_the_cluster_below_its_starting_size() -> None:
    flink = FakeJob(FakeClock(), parallelism={"src": 2, "agg": 1}, tm_count=2)
    cluster = FakeSlots(flink)  # started with 2 TaskManagers
    make(flink, cluster=cluster).apply(decision({"src": 1, "agg": 1}, current={"src": 2, "agg": 1}))
    assert cluster.stopped == [] and flink.tm_count == 2


def test_grown_cluster_gives_back_what_it_added_after_scale_down() -> None:
    flink = FakeJob(FakeClock(), tm_count=2)
    cluster = FakeSlots(flink)
    ex = make(flink, cluster=cluster)
    ex.apply(decision({"src": 3, "agg": 1}))
    assert flink.tm_count == 3
    ex.apply(decision({"src": 1, "agg": 1}, current={"src": 3, "agg": 1}))
    assert flink.tm_count == 2 and cluster.supervised == 2


def test_a_task_manager_that_cannot_be_identified_is_never_stopped() -> None:
    flink = FakeJob(FakeClock(), parallelism={"src": 2, "agg": 1}, tm_count=3)
    cluster = FakeSlots(flink, identifiable=False)
    make(flink, cluster=cluster).apply(decision({"src": 1, "agg": 1}, current={"src": 2, "agg": 1}))
    assert cluster.stopped == [] and cluster.counts == []


def test_k8s_mode_writes_the_operator_override_patch_and_applies_nothing(tmp_path: Path) -> None:
    flink = FakeJob(FakeClock())
    ex = make(flink, config=ExecutorConfig(k8s_patch_dir=tmp_path, k8s_deployment_name="clicks"))
    assert ex.apply(decision({"src": 3, "agg": 2})) is None
    assert flink.calls == []
    (path,) = tmp_path.iterdir()
    patch = json.loads(path.read_text())
    assert patch == k8s_patch("clicks", {"src": 3, "agg": 2})
    assert patch["spec"]["flinkConfiguration"]["pipeline.jobvertex-parallelism-overrides"] == "agg:2,src:3"


def test_parallelism_above_max_parallelism_is_rejected_before_any_call() -> None:
    flink = FakeJob(FakeClock())
    with pytest.raises(Exception, match="max parallelism"):
        make(flink).apply(decision({"src": 121, "agg": 1}))
    assert puts(flink) == []
