"""Scenario YAML: the shipped examples parse, errors name their field, overrides apply."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from flinkscale.core.errors import InputError
from flinkscale.core.sim.model import SimPipeline, SimVertex
from flinkscale.core.sim.provisioning import peak_parallelism
from flinkscale.core.sim.scenario import apply_overrides, parse_scenario, parse_trace
from flinkscale.core.sim.traces import DiurnalTrace, ReplayTrace
from flinkscale.core.snapshot import ShipStrategy

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "scenarios"
MINIMAL: dict[str, Any] = {
    "trace": {"type": "constant", "rate": "1k/s"},
    "pipeline": {"vertices": [{"id": "a", "capacity": "500/s", "parallelism": 2, "source": True},
                              {"id": "b", "capacity": 100, "parallelism": 4}],
                 "edges": [{"from": "a", "to": "b", "ship": "HASH"}]},
}


def test_the_shipped_examples_parse() -> None:
    files = sorted(EXAMPLES.glob("*.yaml"))
    assert len(files) >= 3
    for path in files:
        scenario = parse_scenario(path.read_text())
        assert scenario.pipeline.vertices


def test_the_1tb_example_is_a_day_of_1tb_with_40k_per_second_peaks_and_1000_subtasks() -> None:
    scenario = parse_scenario((EXAMPLES / "clickstream-1tb-diurnal.yaml").read_text())
    assert isinstance(scenario.trace, DiurnalTrace)
    rates = scenario.rates()
    assert scenario.config.duration_seconds == 86400
    assert scenario.event_bytes is not None
    assert rates.mean() * scenario.event_bytes * 86400 == pytest.approx(1e12, rel=0.01)   # TB = 10^12 bytes
    assert rates.max() > 40_000
    peak = peak_parallelism(scenario.pipeline, float(rates.max()), scenario.peak_utilization)
    assert sum(peak.values()) >= 1000


def test_the_10tb_example_carries_10tb_a_day() -> None:
    scenario = parse_scenario((EXAMPLES / "clickstream-10tb-diurnal.yaml").read_text())
    assert scenario.event_bytes is not None
    assert scenario.rates().mean() * scenario.event_bytes * 86400 == pytest.approx(10e12, rel=0.01)


def test_minimal_scenario_defaults() -> None:
    scenario = parse_scenario(MINIMAL)
    assert scenario.config.step_seconds == 1.0
    assert scenario.config.decision_interval_seconds == 60.0
    assert scenario.pipeline.edges[0].ship_strategy is ShipStrategy.HASH
    assert scenario.pipeline.vertex("b").capacity == 100.0
    assert scenario.peak_provisioned == ("static",)


@pytest.mark.parametrize(("override", "field"), [
    ({"pipeline.vertices.b.capacity": 0}, "pipeline.vertices[1].capacity"),
    ({"pipeline.vertices.b.parallelism": 0}, "pipeline.vertices[1].parallelism"),
    ({"pipeline.vertices.b.colour": "red"}, "pipeline.vertices[1]"),
    ({"pipeline.edges.0.selectivity": -1}, "pipeline.edges[0].selectivity"),
    ({"pipeline.edges.0.ship": "TELEPORT"}, "pipeline.edges[0].ship"),
    ({"pipeline.edges.0.to": "nowhere"}, "pipeline.edges[0]"),
    ({"trace.type": "sawtooth"}, "trace.type"),
    ({"trace.rate": "1TB/day"}, "trace.rate"),   # a byte rate without event_bytes
    ({"duration": "soon"}, "duration"),
    ({"cluster.max_slots": 0}, "cluster.max_slots"),
    ({"rescale.restore_bandwidth": "5/s"}, "rescale.restore_bandwidth"),
    ({"rescale.mode": "yolo"}, "rescale.mode"),
    ({"pipeline.edges.0.keys": {"distribution": "zipf"}}, "pipeline.edges[0].keys.keys"),
    ({"typo_field": 1}, "scenario"),
])
def test_errors_name_the_field(override: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_scenario(apply_overrides(MINIMAL, override))
    assert caught.value.field == field


def test_a_cycle_is_rejected() -> None:
    data = apply_overrides(MINIMAL, {"pipeline.edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "a"}]})
    with pytest.raises(InputError):
        parse_scenario(data)


def test_byte_rates_convert_through_event_bytes() -> None:
    scenario = parse_scenario(apply_overrides(MINIMAL, {"event_bytes": "1kb", "trace.rate": "86.4GB/day"}))
    assert scenario.rates()[0] == pytest.approx(1000.0)


@pytest.mark.parametrize("trace", [
    {"type": "step", "before": "2k/s", "after": "6k/s", "at": "15m"},
    {"type": "diurnal", "average": "10k/s", "peak_factor": 1.8},
    {"type": "spikes", "base": 100, "factor": 3, "duration": "1m", "every": "10m", "noise": 0.1, "seed": 4},
])
def test_parse_trace_is_the_trace_a_scenario_gets(trace: dict[str, Any]) -> None:
    # The load generator reads trace files with parse_trace: the same rates as the simulator's, second by second.
    scenario = parse_scenario(apply_overrides(MINIMAL, {"trace": trace}))
    assert parse_trace(trace) == scenario.trace


def test_parse_trace_errors_name_the_trace_field() -> None:
    with pytest.raises(InputError) as caught:
        parse_trace({"type": "ramp", "from": "1k/s", "to": "2k/s"})
    assert caught.value.field == "trace.over"
    with pytest.raises(InputError) as caught:
        parse_trace({"type": "constant", "rate": "1MB/s"})
    assert caught.value.field == "trace.rate"
    assert parse_trace({"type": "constant", "rate": "1MB/s"}, event_bytes=500).rates(2, 1).tolist() == [2000, 2000]


def test_replay_reads_csv_through_the_callback() -> None:
    asked: list[str] = []

    def read_text(path: str) -> str:
        asked.append(path)
        return "0,10\n60,20\n"

    scenario = parse_scenario(apply_overrides(MINIMAL, {"trace": {"type": "replay", "csv": "rates.csv"}}),
                              read_text=read_text)
    assert asked == ["rates.csv"]
    assert isinstance(scenario.trace, ReplayTrace)


def test_policy_settings_become_text() -> None:
    data = apply_overrides(MINIMAL, {"policies": {"flinkscale": {"scaling.enabled": False, "utilization.target": 0.6}}})
    scenario = parse_scenario(yaml.safe_dump(data))
    assert scenario.policies == ("flinkscale",)
    assert scenario.policy_settings["flinkscale"] == {"scaling.enabled": "false", "utilization.target": "0.6"}


def test_overrides_do_not_touch_the_original() -> None:
    changed = apply_overrides(MINIMAL, {"trace.rate": "2k/s"})
    assert MINIMAL["trace"]["rate"] == "1k/s"
    assert changed["trace"]["rate"] == "2k/s"


def test_shedding_reads_the_shed_auto_knobs_with_percentages() -> None:
    scenario = parse_scenario({**MINIMAL, "shedding": {"target_error": "5%", "confidence": 0.99, "window": "30s",
                                                       "headroom": "80%", "sustainable_rate": "4k/s"}})
    shedding = scenario.config.shedding
    assert shedding is not None
    assert (shedding.target_error, shedding.confidence, shedding.window_seconds, shedding.headroom,
            shedding.sustainable_rate) == pytest.approx((0.05, 0.99, 30.0, 0.8, 4000.0))
    assert parse_scenario(MINIMAL).config.shedding is None


@pytest.mark.parametrize(("shedding", "field"), [
    ({"headroom": 2}, "shedding.headroom"),
    ({"target_error": "lots%"}, "shedding.target_error"),
    ({"window": "0s"}, "shedding.window"),
    ({"confidence": True}, "shedding.confidence"),
    ({"keep": 0.5}, "shedding"),
])
def test_shedding_errors_name_the_field(shedding: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_scenario({**MINIMAL, "shedding": shedding})
    assert caught.value.field == field


@pytest.mark.parametrize("capacity", [2.2e-309, 5e-324])
def test_a_capacity_too_small_for_any_parallelism_is_named(capacity: float) -> None:
    # Found by the scenario fuzz test: a subnormal capacity made ceil(rate / budget) an OverflowError.
    pipeline = SimPipeline((SimVertex(id="src", parallelism=1, capacity=capacity, is_source=True, partitions=4,
                                      where="pipeline.vertices[0]"),), ())
    for size in (lambda: peak_parallelism(pipeline, 2_000.0), lambda: pipeline.parallelism_for_rate(2_000.0)):
        with pytest.raises(InputError) as info:
            size()
        assert info.value.field == "pipeline.vertices[0].capacity"
        assert "cannot carry 2000 records/s" in str(info.value)
    # A small capacity that still gives a finite count is valid: capped at max parallelism.
    tiny = SimPipeline((SimVertex(id="src", parallelism=1, capacity=1e-300, is_source=True, max_parallelism=8),), ())
    assert tiny.parallelism_for_rate(2_000.0) == {"src": 8}
