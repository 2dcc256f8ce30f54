"""The collector and the profile analysis over a recorded real Flink conversation (a 60 s clickstream run across a
4k -> 12k ev/s step, one vertex at parallelism 1), and edited copies of it: the string "NaN" for busy time, a
missing counter, and a restart / rescale in the middle of the window."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flinkscale.core.profile import analyze_profile, profile_document
from flinkscale.flink.collector import Collector, collect_window, merge_window
from flinkscale.flink.rest import FlinkRestClient
from flinkscale.flink.testing import ReplayTransport

from .conftest import JOB_ID, VirtualClock, job_reads, replay_client, vertex_details


def _profile(exchanges: list[dict[str, Any]], clock: VirtualClock) -> tuple[dict[str, Any], Collector]:
    collector = Collector(replay_client(exchanges), JOB_ID, clock=clock.time, refresh_seconds=0)
    snapshots = collect_window(collector, 60.0, 5.0, sleep=clock.sleep)
    merged = merge_window(snapshots)
    analysis = analyze_profile(merged)
    document = profile_document(merged, snapshots, analysis, calls_per_sample=collector.calls_per_sample,
                                skipped=collector.skipped)
    return json.loads(json.dumps(document, allow_nan=False)), collector


def _counters(exchange: dict[str, Any]) -> dict[str, Any]:
    metrics: dict[str, Any] = exchange["body"]["subtasks"][0]["metrics"]
    return metrics


def test_recorded_run_profiles_the_source(exchanges: list[dict[str, Any]], clock: VirtualClock) -> None:
    document, collector = _profile(exchanges, clock)
    analysis = document["analysis"]
    (vertex,) = analysis["vertices"]
    merged = document["snapshot"]["vertices"][0]["metrics"]
    # One vertex: it is the bottleneck, and capacity = records in / (busy max / 1000) of the merged window.
    assert analysis["bottleneck"] == vertex["vertex_id"]
    expected_capacity = merged["num_records_in_per_second"] / (merged["busy_time_ms_per_second_max"] / 1000)
    assert vertex["capacity"]["value"] == pytest.approx(expected_capacity)
    assert analysis["max_sustainable_source_rate"]["value"] == pytest.approx(expected_capacity)
    growth = max(merged["pending_records_per_second"], 0.0)
    assert analysis["headroom"]["value"] == pytest.approx(
        expected_capacity / (merged["num_records_in_per_second"] + growth))
    # V + S + 4 calls per sample for 1 vertex that is a source
    assert collector.calls_per_sample == document["calls_per_sample"] == 1 + 4 + 1
    assert document["skipped"] == []
    assert len(document["samples"]) >= 5
    assert document["snapshot"]["vertices"][0]["partitions"] == 4


def test_nan_busy_time_is_reported_not_fatal(exchanges: list[dict[str, Any]], clock: VirtualClock) -> None:
    for exchange in vertex_details(exchanges):
        _counters(exchange)["accumulated-busy-time"] = "NaN"
    document, _ = _profile(exchanges, clock)
    vertex = document["analysis"]["vertices"][0]
    assert vertex["busy_ms_per_second_max"] is None
    assert vertex["capacity"]["value"] is None
    assert document["analysis"]["bottleneck"] is None
    assert any("NaN" in f for f in document["analysis"]["findings"])
    assert vertex["records_in_per_second"] > 0  # the counters that did arrive are still used


def test_missing_metric_on_a_vertex(exchanges: list[dict[str, Any]], clock: VirtualClock) -> None:
    for exchange in vertex_details(exchanges):
        _counters(exchange).pop("accumulated-backpressured-time", None)
        _counters(exchange).pop("write-bytes", None)
    document, _ = _profile(exchanges, clock)
    vertex = document["analysis"]["vertices"][0]
    assert vertex["backpressured_ms_per_second_max"] is None
    assert vertex["bytes_out_per_second"] is None
    assert vertex["capacity"]["value"] is not None  # busy time and records still give the capacity


def test_counters_going_back_skip_the_sample_and_say_so(exchanges: list[dict[str, Any]],
                                                        clock: VirtualClock) -> None:
    details = vertex_details(exchanges)
    # From the 7th read on the task runs again from zero: a restart; only the one interval that spans it is lost.
    offset = _counters(details[6])["read-records"]
    for exchange in details[6:]:
        metrics = _counters(exchange)
        for key in ("read-records", "read-bytes", "write-records", "accumulated-busy-time",
                    "accumulated-idle-time", "accumulated-backpressured-time"):
            if isinstance(metrics.get(key), (int, float)):
                metrics[key] = max(metrics[key] - (offset if key == "read-records" else 0), 0)
    document, _ = _profile(exchanges, clock)
    assert len(document["skipped"]) == 1 and "counters went back" in document["skipped"][0]
    assert document["analysis"]["bottleneck"] is not None


def test_parallelism_change_skips_the_sample(exchanges: list[dict[str, Any]], clock: VirtualClock) -> None:
    for exchange in job_reads(exchanges)[8:]:
        exchange["body"]["vertices"][0]["parallelism"] = 2
    document, _ = _profile(exchanges, clock)
    assert len(document["skipped"]) == 1 and "rescaled" in document["skipped"][0]


def test_every_read_starts_the_metric_stores_refresh_then_waits_before_the_counters(
        exchanges: list[dict[str, Any]], clock: VirtualClock) -> None:
    # Flink answers from its metric store as it was and refreshes it afterwards: without a request first and
    # the wait, a read shows the counters of the previous request's time.
    transport = ReplayTransport(exchanges)
    waits: list[tuple[float, int]] = []  # (seconds, requests sent before the wait)
    collector = Collector(FlinkRestClient("http://flink.test:8081", transport=transport, retries=0), JOB_ID,
                          clock=clock.time, refresh_seconds=0.5,
                          sleep=lambda seconds: waits.append((seconds, len(transport.requests))))
    collector.read()
    assert transport.requests[0] == f"GET /jobs/{JOB_ID}?"
    assert waits == [(0.5, 1)]  # after the request that starts the refresh, before any counter is read
    assert all(r.startswith(f"GET /jobs/{JOB_ID}/vertices/") for r in transport.requests[1:2])
    assert len(transport.requests) == collector.calls_per_sample


def test_a_redeployed_subtask_skips_the_sample_even_when_its_counters_pass_the_old_ones(
        exchanges: list[dict[str, Any]], clock: VirtualClock) -> None:
    # A failover redeploys the subtask: its counters restart from 0, and catching up from the last checkpoint they
    # can pass the old run's before the next read. Only its start-time (or attempt) tells: the interval that spans
    # it mixes two runs and must not be read as one.
    baseline, _ = _profile(json.loads(json.dumps(exchanges)), clock)
    details = vertex_details(exchanges)
    for exchange in details[4:]:
        exchange["body"]["subtasks"][0]["start-time"] += 30_000
    document, _ = _profile(exchanges, VirtualClock())
    redeployed = [s for s in document["skipped"] if "subtask 0 was redeployed" in s]
    assert len(redeployed) == 1
    assert len(document["skipped"]) == len(baseline["skipped"]) + 1
