"""The rescale wait and measured durations from the job's own settings and Flink 2.3's rescale history, over
real responses (``recorded_rescale``: a job checkpointing every 5 s and one without checkpoints, on a cluster
with ``web.adaptive-scheduler.rescale-history.size: 20``, and one on a cluster that leaves the history off)."""

from __future__ import annotations

from typing import Any

import pytest
from recorded_rescale import JOB_ID, OTHER_JOB_ID, SOURCE, WINDOW, polls, recorded

from flinkscale.core.errors import RuntimeFailure
from flinkscale.flink.executor import Executor, ExecutorConfig, scheduler_timings
from flinkscale.flink.rest import FlinkRestClient
from flinkscale.flink.testing import ReplayTransport
from flinkscale.testing import FakeClock, FakeJob

RESCALE = polls("rescale_checkpointed.json")
TARGET = {SOURCE: 1, WINDOW: 2}
FLINK_DURATION = 3.804  # the rescale's entry in the recorded history: end - start timestamps


def client(exchanges: list[dict[str, Any]]) -> tuple[FlinkRestClient, ReplayTransport]:
    transport = ReplayTransport(exchanges)
    return FlinkRestClient("http://flink.test:8081", transport=transport, retries=0), transport


def rescales(name: str, job_id: str = JOB_ID) -> list[dict[str, Any]]:
    return recorded(name, f"/jobs/{job_id}/rescales/config")


def job_settings(job_id: str) -> list[dict[str, Any]]:
    return recorded("config.json", f"/jobs/{job_id}/checkpoints/config")


# --- where the settings come from ------------------------------------------------------------------------------
def test_flink_2_3_reports_the_schedulers_settings_for_the_job() -> None:
    rest, _ = client([*job_settings(JOB_ID), *rescales("config.json"),
                      *job_settings(OTHER_JOB_ID), *rescales("config.json", OTHER_JOB_ID)])
    checkpointed = scheduler_timings(rest, JOB_ID, rest.rescale_config(JOB_ID))
    assert (checkpointed.checkpoint_interval_seconds, checkpointed.cooldown_seconds,
            checkpointed.resource_stabilization_seconds, checkpointed.trigger_max_delay_seconds) == (5, 5, 60, 15)
    assert "rescales/config" in checkpointed.source
    # the job without checkpoints: Flink writes its interval as Long.MAX_VALUE and its trigger delay as 0
    plain = scheduler_timings(rest, OTHER_JOB_ID, rest.rescale_config(OTHER_JOB_ID))
    assert plain.checkpoint_interval_seconds is None and plain.trigger_max_delay_seconds is None


def test_a_cluster_without_the_rescales_endpoints_falls_back_to_the_jobmanager_config() -> None:
    rest, transport = client([*job_settings(JOB_ID), *recorded("config.json", "/jobmanager/config")])
    answered = rest.rescale_config(JOB_ID)
    assert answered is None  # 404: not there, no error
    timings = scheduler_timings(rest, JOB_ID, answered)
    # the cluster sets cooldown-after-rescaling to "5 s" and leaves the rest to Flink's defaults
    assert (timings.checkpoint_interval_seconds, timings.cooldown_seconds, timings.resource_stabilization_seconds,
            timings.trigger_max_delay_seconds, timings.max_checkpoint_failures) == (5, 5, 60, None, 2)
    assert "/jobmanager/config" in timings.source
    assert any("rescales/config" in r for r in transport.requests)


# --- the executor's waits ---------------------------------------------------------------------------------------
def test_the_executor_waits_the_jobs_rescale_wait_and_says_how_it_came_about() -> None:
    clock = FakeClock()
    job = FakeJob(clock, rescale_polls=10**6)  # never lands
    events: list[tuple[str, str]] = []
    executor = Executor(job, job.job_id, clock=clock, sleep=clock.sleep,
                        event=lambda kind, message: events.append((kind, message)))
    started = clock()
    with pytest.raises(RuntimeFailure, match=r"within 140s"):
        executor.rescale_in_place({"src": 2, "agg": 2})
    assert 140 <= clock() - started < 150
    (wait,) = [message for kind, message in events if kind == "rescale-wait"]
    assert wait.startswith("rescale wait 140 s = cooldown 5 s + resource stabilization 60 s + trigger delay 15 s "
                           "(3 x checkpoint interval 5 s) + restart allowance 60 s (none measured yet)")


def test_a_job_that_checkpoints_every_two_minutes_gets_more_than_the_old_fixed_300_s() -> None:
    clock = FakeClock()
    job = FakeJob(clock, rescale_polls=10**6, checkpoint_interval_ms=120_000.0)
    executor = Executor(job, job.job_id, clock=clock, sleep=clock.sleep)
    assert executor.rescale_wait().seconds == 5 + 60 + 360 + 60
    with pytest.raises(RuntimeFailure, match=r"within 485s"):
        executor.rescale_in_place({"src": 2, "agg": 2})


def test_a_configured_timeout_still_overrides_the_derived_wait() -> None:
    clock = FakeClock()
    job = FakeJob(clock, rescale_polls=10**6)
    executor = Executor(job, job.job_id, clock=clock, sleep=clock.sleep,
                        config=ExecutorConfig(ready_timeout_seconds=20.0))
    with pytest.raises(RuntimeFailure, match=r"within 20s"):
        executor.rescale_in_place({"src": 2, "agg": 2})


# --- measured durations from Flink's rescale history -------------------------------------------------------------
def rescale_exchanges(rescale_config: list[dict[str, Any]], history: bool) -> list[dict[str, Any]]:
    """The recorded rescale: the job before the PUT, the PUT, the job polled until it runs at the target."""
    out = [poll[0] for poll in RESCALE] + [e for e in recorded("rescale_checkpointed.json",
                                                                f"/jobs/{JOB_ID}/resource-requirements")]
    out += job_settings(JOB_ID) + rescale_config
    if history:  # what the history held before the request (from the settings read), then after it
        out += recorded("config.json", f"/jobs/{JOB_ID}/rescales/history")
        out += recorded("rescale_checkpointed.json", f"/jobs/{JOB_ID}/rescales/history")
    return out


def run_rescale(exchanges: list[dict[str, Any]]) -> tuple[float, list[tuple[str, str]], ReplayTransport]:
    clock = FakeClock(RESCALE[0][0]["body"]["now"] / 1000.0)
    rest, transport = client(exchanges)
    events: list[tuple[str, str]] = []
    executor = Executor(rest, JOB_ID, clock=clock, sleep=clock.sleep, config=ExecutorConfig(poll_seconds=1.0),
                        event=lambda kind, message: events.append((kind, message)))
    record = executor.rescale_in_place(TARGET)
    assert dict(record.new_parallelism) == TARGET and record.completed_at == clock()
    return record.duration_seconds, events, transport


def test_with_the_rescale_history_on_the_duration_is_flinks_own() -> None:
    duration, events, _ = run_rescale(rescale_exchanges(rescales("config.json"), history=True))
    assert duration == pytest.approx(FLINK_DURATION)
    (note,) = [message for kind, message in events if kind == "rescale-history"]
    assert "3.8s from the scheduler taking the new requirements" in note


def test_with_the_history_off_the_executors_measurement_stands() -> None:
    # a real answer of a cluster without the history (rescaleHistoryMax 0), recorded for another job
    off = [{**e, "path": f"/jobs/{JOB_ID}/rescales/config"} for e in recorded("config_history_off.json",
           "/jobs/c5addbd0ce11ea6bbb119e4796c84c8e/rescales/config")]
    assert off and off[0]["body"]["rescaleHistoryMax"] == 0
    duration, events, transport = run_rescale(rescale_exchanges(off, history=False))
    assert duration > 10 and duration != pytest.approx(FLINK_DURATION)  # ~one poll a second until it landed
    assert not any(kind == "rescale-history" for kind, _ in events)
    assert not any("rescales/history" in r for r in transport.requests)


def test_without_the_endpoints_404_falls_back_silently() -> None:
    exchanges = rescale_exchanges([], history=False) + recorded("config.json", "/jobmanager/config")
    duration, events, transport = run_rescale(exchanges)
    assert duration > 10
    assert [kind for kind, _ in events] == ["rescale-wait", "rescale", "rescaled"]
    assert sum("rescales/config" in r for r in transport.requests) == 1
