"""Profile analysis on hand-built snapshots; every expected value is derived here from the documented formulas:
capacity = records in / (busy max / 1000), amplification = product of output ratios (records per source record),
sustainable source rate = capacity / amplification, bottleneck = smallest sustainable source rate,
headroom = max sustainable / (read rate + lag growth)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flinkscale.core.errors import InputError
from flinkscale.core.explained import Explained
from flinkscale.core.profile import (
    PROFILE_SCHEMA,
    analyze_profile,
    check_profile_document,
    profile_document,
    short_name,
)
from flinkscale.core.skew import analyze_skew
from flinkscale.core.snapshot import (
    CheckpointStats,
    Edge,
    MetricsSnapshot,
    ShipStrategy,
    SubtaskMetrics,
    Vertex,
    VertexMetrics,
)
from flinkscale.core.units import parse_rate
from flinkscale.core.workload import profile_snapshot, workload_from_profile


def _vertex(vid: str, p: int, records_in: float, records_out: float, busy: float | None, *, bp: float = 0.0,
            source: bool = False, subtasks: tuple[SubtaskMetrics, ...] = (), lag_growth: float | None = None,
            bytes_in: float | None = None, bytes_out: float | None = None) -> Vertex:
    return Vertex(id=vid, name=f"{vid} -> chained", parallelism=p, max_parallelism=120, is_source=source,
                  metrics=VertexMetrics(num_records_in_per_second=records_in, num_records_out_per_second=records_out,
                                        num_bytes_in_per_second=bytes_in, num_bytes_out_per_second=bytes_out,
                                        busy_time_ms_per_second_max=busy, busy_time_ms_per_second_avg=busy,
                                        back_pressured_time_ms_per_second_max=bp,
                                        back_pressured_time_ms_per_second_avg=bp,
                                        idle_time_ms_per_second_avg=None if busy is None else 1000 - busy - bp,
                                        pending_records_per_second=lag_growth, subtasks=subtasks))


def _chain(src_busy: float, agg_busy: float | None, *, src_bp: float = 0.0, lag_growth: float | None = None,
           agg_subtasks: tuple[SubtaskMetrics, ...] = ()) -> MetricsSnapshot:
    # source: 10k in, 2k out (local pre-aggregation); agg: 2k in over a HASH edge
    return MetricsSnapshot(
        timestamp=100.0, job_id="j", job_name="job",
        vertices=(_vertex("src", 1, 10_000, 2_000, src_busy, bp=src_bp, source=True, lag_growth=lag_growth,
                          bytes_in=1_000_000, bytes_out=100_000),
                  _vertex("agg", 2, 2_000, 0, agg_busy, subtasks=agg_subtasks)),
        edges=(Edge("src", "agg", ShipStrategy.HASH),),
        checkpoints=CheckpointStats(completed=3, failed=1, last_duration_ms=120.0, state_size_bytes=5_000_000))


def test_source_saturates_first() -> None:
    analysis = analyze_profile(_chain(src_busy=800, agg_busy=500))
    src, agg = analysis.vertex("src"), analysis.vertex("agg")
    assert src.capacity.value == pytest.approx(10_000 / 0.8)
    assert agg.capacity.value == pytest.approx(2_000 / 0.5)
    assert analysis.edges[0].output_ratio.value == pytest.approx(2_000 / 10_000)
    assert agg.amplification.value == pytest.approx(0.2)
    assert agg.sustainable_source_rate.value == pytest.approx(4_000 / 0.2)
    assert analysis.bottleneck == "src"
    assert analysis.max_sustainable_source_rate.value == pytest.approx(12_500)
    assert analysis.headroom.value == pytest.approx(12_500 / 10_000)
    assert src.bytes_per_record_in == pytest.approx(100.0)
    assert analysis.findings[0].startswith("src (+1 chained) is the bottleneck: 80% busy at 10.0k/s")
    assert "12.5k/s" in analysis.findings[0]


def test_every_derived_figure_is_an_explained_number_and_the_json_keeps_value_and_formula() -> None:
    analysis = analyze_profile(_chain(src_busy=800, agg_busy=500))
    assert isinstance(analysis.headroom, Explained) and analysis.headroom.unit == "x"
    assert analysis.vertex("agg").capacity.unit == "records/s"
    assert analysis.vertex("agg").amplification.unit == "records per source record"
    data = json.loads(json.dumps(analysis.to_dict()))
    # flinkscale.profile/v1: a derived figure is written as its value and formula (no unit, no inputs).
    assert data["headroom"] == {"value": pytest.approx(1.25), "formula": analysis.headroom.formula}
    assert set(data["vertices"][1]["capacity"]) == {"value", "formula"}
    assert set(data["edges"][0]["output_ratio"]) == {"value", "formula"}


def test_downstream_vertex_saturates_first() -> None:
    analysis = analyze_profile(_chain(src_busy=800, agg_busy=900))
    # agg: capacity 2000 / 0.9, amplification 0.2 -> 11,111 < src's 12,500
    assert analysis.bottleneck == "agg"
    assert analysis.max_sustainable_source_rate.value == pytest.approx(2_000 / 0.9 / 0.2)


def test_lag_growth_counts_in_the_current_rate() -> None:
    analysis = analyze_profile(_chain(src_busy=800, agg_busy=500, lag_growth=500))
    assert analysis.current_source_rate.value == pytest.approx(10_500)
    assert analysis.headroom.value == pytest.approx(12_500 / 10_500)


def test_overloaded_job_says_it_cannot_keep_up() -> None:
    analysis = analyze_profile(_chain(src_busy=1000, agg_busy=500, lag_growth=5_000))
    assert analysis.headroom.value == pytest.approx(10_000 / 15_000)
    assert any("cannot keep up" in f for f in analysis.findings)


@pytest.mark.parametrize(("agg_busy", "root"), [(950.0, "agg"), (200.0, None)])
def test_backpressure_root_is_the_busy_vertex_below_backpressure(agg_busy: float, root: str | None) -> None:
    analysis = analyze_profile(_chain(src_busy=500, agg_busy=agg_busy, src_bp=400))
    assert analysis.backpressure_root == root


def test_nan_busy_time_leaves_capacity_unknown_and_says_so() -> None:
    analysis = analyze_profile(_chain(src_busy=800, agg_busy=None))
    agg = analysis.vertex("agg")
    assert agg.capacity.value is None and agg.sustainable_source_rate.value is None
    assert analysis.bottleneck == "src"  # the only vertex with a known capacity
    assert any("NaN" in f for f in analysis.findings)
    json.dumps(analysis.to_dict(), allow_nan=False)


def test_skewed_keyed_vertex_reuses_the_skew_analysis() -> None:
    hot = (SubtaskMetrics(0, 1_500, 0, 750, 0, 250), SubtaskMetrics(1, 500, 0, 250, 0, 750))
    snapshot = _chain(src_busy=500, agg_busy=750, agg_subtasks=hot)
    analysis = analyze_profile(snapshot)
    agg = analysis.vertex("agg")
    assert agg.keyed
    assert agg.skew == analyze_skew(snapshot, sql_job=False).vertices[1]
    assert agg.skew.skewed and agg.skew.observed_max_over_mean == pytest.approx(750 / 500)
    # per subtask: records / busy seconds
    assert agg.true_processing_rate_per_subtask == pytest.approx((1_500 / 0.75, 500 / 0.25))
    # TPR(busiest) x p / record share of the busiest = 2000 x 2 / 1.5 = records in / util
    assert agg.capacity.value == pytest.approx(2_000 * 2 / 1.5)
    assert agg.key_groups_per_subtask_min == 60 and agg.key_groups_per_subtask_max == 60
    assert any("is skewed" in f for f in analysis.findings)


def test_uniform_keyed_vertex_is_not_skewed() -> None:
    even = (SubtaskMetrics(0, 1_000, 0, 500, 0, 500), SubtaskMetrics(1, 1_000, 0, 500, 0, 500))
    agg = analyze_profile(_chain(src_busy=500, agg_busy=500, agg_subtasks=even)).vertex("agg")
    assert not agg.skew.skewed


def test_fan_in_adds_the_paths() -> None:
    snapshot = MetricsSnapshot(
        timestamp=1.0, job_id="j", job_name="job",
        vertices=(_vertex("a", 1, 3_000, 3_000, 300, source=True), _vertex("b", 1, 1_000, 1_000, 100, source=True),
                  _vertex("join", 1, 4_000, 0, 800)),
        edges=(Edge("a", "join", ShipStrategy.HASH), Edge("b", "join", ShipStrategy.HASH)))
    analysis = analyze_profile(snapshot)
    assert analysis.vertex("a").amplification.value == pytest.approx(0.75)
    assert analysis.vertex("join").amplification.value == pytest.approx(0.75 * 1 + 0.25 * 1)
    assert analysis.bottleneck == "join"
    assert analysis.max_sustainable_source_rate.value == pytest.approx(4_000 / 0.8)


@settings(max_examples=60, deadline=None)
@given(rate=st.floats(100, 1e6), selectivities=st.lists(st.floats(0.01, 3.0), min_size=1, max_size=5),
       busies=st.lists(st.floats(1.0, 1000.0), min_size=6, max_size=6))
def test_chain_saturates_at_the_busiest_vertex(rate: float, selectivities: list[float], busies: list[float]) -> None:
    # In a chain the vertex input is R x product of ratios, so capacity / amplification = R / util: the job's
    # limit is R x 1000 / (the highest busy time), reached at the busiest vertex.
    rates = [rate]
    for s in selectivities:
        rates.append(rates[-1] * s)
    n = len(rates)
    vertices = tuple(_vertex(f"v{i}", 1, rates[i], rates[i + 1] if i + 1 < n else 0.0, busies[i], source=i == 0)
                     for i in range(n))
    edges = tuple(Edge(f"v{i}", f"v{i + 1}", ShipStrategy.FORWARD) for i in range(n - 1))
    analysis = analyze_profile(MetricsSnapshot(timestamp=0.0, job_id="j", job_name="j", vertices=vertices, edges=edges))
    top = max(busies[:n])
    assert analysis.max_sustainable_source_rate.value == pytest.approx(rate * 1000 / top, rel=1e-9)
    assert analysis.bottleneck is not None and busies[int(analysis.bottleneck[1:])] == pytest.approx(top)
    assert analysis.headroom.value == pytest.approx(1000 / top, rel=1e-9)


def test_profile_document_round_trips_and_feeds_plan() -> None:
    snapshot = _chain(src_busy=800, agg_busy=500)
    analysis = analyze_profile(snapshot)
    document = profile_document(snapshot, [snapshot], analysis, calls_per_sample=7, skipped=["x"])
    text = json.dumps(document, allow_nan=False)
    data = check_profile_document(json.loads(text))
    assert data["schema"] == PROFILE_SCHEMA
    assert profile_snapshot(data).to_dict() == snapshot.to_dict()
    assert data["analysis"]["bottleneck"] == "src"
    assert data["samples"][0]["vertices"]["agg"]["busy_ms_per_second_max"] == 500
    spec = workload_from_profile(profile_snapshot(data), parse_rate("20k/s", field="target"))
    assert spec.volume.average_events_per_second == pytest.approx(20_000)


def test_a_document_with_another_schema_is_refused() -> None:
    with pytest.raises(InputError) as caught:
        check_profile_document({"schema": "flinkscale.profile/v0", "snapshot": {}, "samples": [], "analysis": {}})
    assert caught.value.field == "schema"


def test_short_names_drop_the_sql_catalog() -> None:
    assert short_name("Source: KafkaSource-default_catalog.default_database.clicks -> PythonCalc[2] -> Calc[3]") \
        == "Source: KafkaSource-clicks (+2 chained)"
    assert not math.isnan(len(short_name("x" * 100)))
