"""Pure helpers of the multi-job daemon: a job's share of the cluster's slots, and the scale-down timers a
decision states."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flinkscale.core import control
from flinkscale.core.policy._evaluate import job_slot_ceiling
from flinkscale.core.policy.base import Decision, VertexDecision
from flinkscale.core.snapshot import ClusterResources
from flinkscale.testing import snapshot, vertex


@given(ceiling=st.integers(1, 500), used=st.integers(1, 100), held=st.integers(0, 600),
       per_tm=st.integers(1, 8))
def test_a_jobs_slot_ceiling_is_the_cluster_ceiling_minus_what_others_hold(ceiling: int, used: int, held: int,
                                                                            per_tm: int) -> None:
    cluster = ClusterResources(3, 3 * per_tm, 0, per_tm, 3)
    share = control.cluster_share(cluster, ceiling=ceiling, used_by_job=used, held_by_others=held)
    snap = replace(snapshot([vertex("v", used)]), cluster=share)
    expected = max(1, ceiling - held) if used + held <= ceiling else None
    if expected is not None:
        assert job_slot_ceiling(snap) == expected
    assert share.slots_available == max(0, ceiling - used - held)
    assert share.slots_per_task_manager == per_tm


def test_extra_slots_counts_only_growth_of_the_widest_vertex() -> None:
    assert control.extra_slots({"a": 2, "b": 1}, {"b": 3}) == 1
    assert control.extra_slots({"a": 2, "b": 1}, {"a": 1}) == 0
    assert control.extra_slots({"a": 2}, {"a": 6}) == 4


def _decision(reason: str, numbers: dict[str, float] | None = None, current: int = 4) -> Decision:
    return Decision(1000.0, "p", (VertexDecision("v", "V", current, current, reason, numbers or {}),))


def test_scale_down_timers_are_the_numbers_a_policy_states() -> None:
    (timer,) = control.pending_scale_downs(_decision(
        "scale-down to 2 delayed until 4600 (job.autoscaler.scale-down.interval) (rate low)",
        {"scale_down_target": 2.0, "scale_down_due_at": 4600.0}))
    assert (timer.vertex_id, timer.target, timer.due_at) == ("v", 2, 4600.0)


@pytest.mark.parametrize("numbers", [
    {}, {"scale_down_target": 2.0}, {"scale_down_due_at": 4600.0},
    {"scale_down_target": 4.0, "scale_down_due_at": 4600.0},            # not lower than the current 4
    {"scale_down_target": float("nan"), "scale_down_due_at": 4600.0}])
def test_no_timer_without_a_pending_scale_down(numbers: dict[str, float]) -> None:
    # The reason's text is for people: a timer is only what the numbers state.
    assert control.pending_scale_downs(_decision("scale-down to 2 delayed until 4600", numbers)) == ()
