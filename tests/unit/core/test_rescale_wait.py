"""The rescale wait: the longest a rescale may take, from the job's checkpoint interval and scheduler settings."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from flinkscale.core.errors import EndpointError, InputError, NotFoundError, RuntimeFailure
from flinkscale.core.rescale_wait import (
    DEFAULT_RESTART_ALLOWANCE_SECONDS,
    MIN_WAIT_SECONDS,
    SchedulerTimings,
    rescale_wait,
    trigger_delay,
    wait_for_parallelism,
)
from flinkscale.testing import FakeClock


def test_the_terms_add_up_and_the_text_names_each_with_its_source() -> None:
    wait = rescale_wait(SchedulerTimings(5.0, cooldown_seconds=5.0, source="GET /jobs/x/rescales/config"))
    assert wait.seconds == 5 + 60 + 15 + DEFAULT_RESTART_ALLOWANCE_SECONDS
    assert wait.describe() == ("rescale wait 140 s = cooldown 5 s + resource stabilization 60 s + trigger delay "
                               "15 s (3 x checkpoint interval 5 s) + restart allowance 60 s (none measured yet) "
                               "(settings from GET /jobs/x/rescales/config)")


@pytest.mark.parametrize(("interval", "failures", "max_delay", "expected"), [
    (5.0, 2, None, 15.0),      # Flink's default: interval x (max-checkpoint-failures + 1)
    (120.0, 2, None, 360.0),   # a job checkpointing every 2 minutes waits up to 6 for its rescale
    (30.0, 0, None, 30.0),
    (None, 2, None, 0.0),      # no checkpoints: the scheduler does not wait for one
    (5.0, 2, 40.0, 40.0),      # rescale-trigger.max-delay set: it wins
])
def test_the_trigger_delay_follows_the_checkpoint_interval(interval: float | None, failures: int,
                                                           max_delay: float | None, expected: float) -> None:
    timings = SchedulerTimings(interval, max_checkpoint_failures=failures, trigger_max_delay_seconds=max_delay)
    assert trigger_delay(timings)[0] == expected


def test_the_wait_grows_with_the_checkpoint_interval_instead_of_a_fixed_300_s() -> None:
    fast, slow = (rescale_wait(SchedulerTimings(i)).seconds for i in (5.0, 120.0))
    assert fast < 300 < slow and slow - fast == pytest.approx(3 * (120 - 5))


def test_a_reported_max_delay_says_when_it_is_the_default_one() -> None:
    reported = SchedulerTimings(5.0, trigger_max_delay_seconds=15.0)  # what Flink 2.3's rescales/config says
    assert trigger_delay(reported) == (15.0, "rescale-trigger.max-delay = 3 x checkpoint interval 5 s")
    assert trigger_delay(SchedulerTimings(5.0, trigger_max_delay_seconds=40.0))[1] == "rescale-trigger.max-delay"


def test_a_measured_restart_replaces_the_default_allowance() -> None:
    wait = rescale_wait(SchedulerTimings(None, cooldown_seconds=0, resource_stabilization_seconds=0), 9.0)
    assert wait.seconds == MIN_WAIT_SECONDS  # 18 s of allowance, under the floor
    assert "restart allowance 18 s (2 x measured 9 s)" in wait.describe() and "at least 30 s" in wait.describe()
    assert rescale_wait(SchedulerTimings(10.0), 20.0).seconds == 30 + 60 + 30 + 40


@pytest.mark.parametrize("bad", [{"checkpoint_interval_seconds": 0.0}, {"cooldown_seconds": -1.0},
                                 {"trigger_max_delay_seconds": -5.0}, {"max_checkpoint_failures": -1}])
def test_out_of_range_settings_name_the_field(bad: dict[str, float]) -> None:
    fields = {"checkpoint_interval_seconds": 5.0, **bad}
    with pytest.raises(InputError) as err:
        SchedulerTimings(**fields)  # type: ignore[arg-type]
    assert next(iter(bad)) in str(err.value)


# --- wait_for_parallelism: the wait both appliers (executor, FlinkDeployment realizer) run ------------------

@dataclass(frozen=True)
class _Vertex:
    id: str
    parallelism: int


@dataclass(frozen=True)
class _Job:
    vertices: tuple[_Vertex, ...]
    all_running: bool = True


def _job(running: bool = True, **parallelism: int) -> _Job:
    return _Job(tuple(_Vertex(vid, p) for vid, p in parallelism.items()), running)


def _wait(reads: list[_Job | Exception], target: dict[str, int], timeout: float = 10.0) -> tuple[_Job, FakeClock]:
    clock = FakeClock()
    pending = list(reads)

    def read() -> _Job:
        item = pending.pop(0) if len(pending) > 1 else pending[0]
        if isinstance(item, Exception):
            raise item
        return item

    job = wait_for_parallelism(read, target, timeout_seconds=timeout, poll_seconds=2.0, clock=clock,
                               sleep=clock.sleep, timed_out=lambda seen: f"not there; runs at {seen}")
    return job, clock


def test_the_wait_ends_at_the_first_read_with_every_task_running_at_the_target() -> None:
    there = _job(src=1, agg=2)
    job, clock = _wait([_job(src=1, agg=1), _job(False, src=1, agg=2), there, _job(src=1, agg=1)], {"agg": 2})
    assert job is there
    assert clock.sleeps == [2.0, 2.0]


def test_rest_errors_are_waited_out_but_a_404_is_raised_at_once() -> None:
    away = EndpointError("connection refused", endpoint="http://jm:8081")
    job, clock = _wait([away, away, _job(agg=3)], {"agg": 3})
    assert job.vertices[0].parallelism == 3 and len(clock.sleeps) == 2
    gone = NotFoundError("job not found", endpoint="http://jm:8081/jobs/x", status=404)
    with pytest.raises(NotFoundError):
        _wait([_job(agg=1), gone, _job(agg=3)], {"agg": 3})


@pytest.mark.parametrize(("reads", "seen"), [
    ([_job(src=1, agg=1)], "{'src': 1, 'agg': 1}"),
    ([EndpointError("refused", endpoint="http://jm:8081")], "{}"),  # nothing read: nothing seen
    ([_job(src=1, agg=1), EndpointError("refused", endpoint="http://jm:8081")], "{'src': 1, 'agg': 1}"),
])
def test_at_the_deadline_the_caller_s_message_names_the_parallelism_last_seen(reads: list[_Job | Exception],
                                                                              seen: str) -> None:
    with pytest.raises(RuntimeFailure) as raised:
        _wait(reads, {"agg": 2}, timeout=10.0)
    assert str(raised.value) == f"not there; runs at {seen}"
