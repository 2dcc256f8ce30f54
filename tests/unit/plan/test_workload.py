"""Spec validation: bad input is rejected with the field path; the CLI prints one line and exits 2."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from flinkscale.cli import main
from flinkscale.core.errors import InputError
from flinkscale.core.snapshot import Edge, MetricsSnapshot, ShipStrategy, Vertex, VertexMetrics
from flinkscale.core.units import parse_rate
from flinkscale.core.workload import parse_workload, workload_from_profile

from .conftest import BASE_SPEC


def _mutate(path: list[Any], value: Any) -> dict[str, Any]:
    spec = copy.deepcopy(BASE_SPEC)
    node: Any = spec
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return spec


_DELETE = object()


@pytest.mark.parametrize(("path", "value", "field"), [
    (["pipeline", "operators", 2, "selectivity"], 0, "pipeline.operators[2].selectivity"),
    (["pipeline", "operators", 2, "selectivity"], -1, "pipeline.operators[2].selectivity"),
    (["pipeline", "operators", 1, "cost_us_per_record"], "fast", "pipeline.operators[1].cost_us_per_record"),
    (["pipeline", "operators", 1, "inputs"], ["nope"], "pipeline.operators[1].inputs[0].from"),
    (["pipeline", "operators", 2, "inputs"], [{"from": "parse", "ship": "zigzag"}],
     "pipeline.operators[2].inputs[0].ship"),
    (["pipeline", "operators", 1, "id"], "src", "pipeline.operators[1].id"),
    (["pipeline", "operators", 0, "connector", "partitions"], 0, "pipeline.operators[0].connector.partitions"),
    (["pipeline", "operators", 0, "colour"], "red", "pipeline.operators[0]"),
    (["volume", "event_size"], _DELETE, "volume.event_size"),
    (["volume", "event_size"], "12 parsecs", "volume.event_size"),
    (["volume", "peak_factor"], 0.5, "volume.peak_factor"),
    (["volume", "events_per_day"], 5, "volume"),
    (["targets", "utilization"], 1.5, "targets.utilization"),
    (["targets", "utilization"], 0, "targets.utilization"),
    (["targets", "delivery"], "maybe-once", "targets.delivery"),
    (["targets", "rto"], "soon", "targets.rto"),
    (["state", "ttl"], "0s", "state.ttl"),
    (["cluster", "max_task_managers"], 0, "cluster.max_task_managers"),
    (["cluster", "nic_bandwidth"], "10k/s", "cluster.nic_bandwidth"),
    (["pipeline"], _DELETE, "pipeline"),
])
def test_invalid_specs_are_rejected_with_the_field_path(path: list[Any], value: Any, field: str) -> None:
    with pytest.raises(InputError) as error:
        parse_workload(_mutate(path, value))
    assert error.value.field == field
    assert str(error.value).startswith(f"{field}: ")


@settings(max_examples=60, deadline=None)
@given(index=st.integers(min_value=0, max_value=3),
       field=st.sampled_from(["selectivity", "cost_us_per_record", "share"]),
       value=st.one_of(st.floats(min_value=-1e12, max_value=-1e-9), st.just(float("nan")),
                       st.text(alphabet="xyz", min_size=1, max_size=4)))
def test_any_bad_operator_number_is_rejected_with_its_path(index: int, field: str, value: object) -> None:
    with pytest.raises(InputError) as error:
        parse_workload(_mutate(["pipeline", "operators", index, field], value))
    assert error.value.field == f"pipeline.operators[{index}].{field}"


def test_cli_reports_a_bad_spec_in_one_line_with_exit_code_2(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    spec_file = tmp_path / "bad.yaml"
    spec_file.write_text(yaml.safe_dump(_mutate(["pipeline", "operators", 2, "selectivity"], 0)))
    assert main(["plan", str(spec_file)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "flinkscale: error: pipeline.operators[2].selectivity: must be > 0"
    assert "Traceback" not in err


def test_cli_reports_malformed_yaml_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec_file = tmp_path / "broken.yaml"
    spec_file.write_text("volume: [1, 2\n")
    assert main(["plan", str(spec_file)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_volume_units() -> None:
    spec = parse_workload(BASE_SPEC)
    # 1 TB/day (10^12 bytes) of 1 kB (1000 byte) events.
    assert spec.volume.average_events_per_second == pytest.approx(1e12 / 86400 / 1000)
    tib = parse_workload(_mutate(["volume", "bytes_per_day"], "1TiB"))
    assert tib.volume.average_events_per_second == pytest.approx(2**40 / 86400 / 1000)


def test_hourly_profile_gives_the_peak_factor() -> None:
    profile = [1.0] * 23 + [3.0]
    spec = parse_workload(_mutate(["volume"], {"events_per_second": 1000, "event_size": "500B",
                                               "hourly_profile": profile}))
    assert spec.volume.peak_factor == pytest.approx(3.0 / (sum(profile) / 24))


def _profile() -> MetricsSnapshot:
    def vertex(vid: str, p: int, rin: float, rout: float, busy: float, bytes_out: float, **kw: Any) -> Vertex:
        return Vertex(id=vid, name=vid, parallelism=p, max_parallelism=128, metrics=VertexMetrics(
            num_records_in_per_second=rin, num_records_out_per_second=rout, num_bytes_out_per_second=bytes_out,
            busy_time_ms_per_second_avg=busy, busy_time_ms_per_second_max=busy), **kw)
    return MetricsSnapshot(
        timestamp=0.0, job_id="j", job_name="clicks", vertices=(
            vertex("src", 2, 0.0, 4000.0, 100.0, 4000.0 * 800, is_source=True, partitions=8),
            vertex("agg", 4, 4000.0, 400.0, 500.0, 400.0 * 100),
            vertex("sink", 1, 400.0, 0.0, 50.0, 0.0, is_sink=True)),
        edges=(Edge("src", "agg", ShipStrategy.HASH), Edge("agg", "sink", ShipStrategy.REBALANCE)))


def test_profile_costs_follow_the_documented_formula() -> None:
    spec = workload_from_profile(_profile(), parse_rate("1TB/day"))
    ops = {op.id: op for op in spec.pipeline.operators}
    # busy_avg x parallelism x 1000 / records_in: 100 ms/s x 2 x 1000 / 4000 = 50 us.
    assert ops["src"].cost_us_per_record == pytest.approx(100 * 2 * 1000 / 4000)
    assert ops["agg"].cost_us_per_record == pytest.approx(500 * 4 * 1000 / 4000)
    assert ops["agg"].selectivity == pytest.approx(0.1)
    assert ops["agg"].keyed_state
    assert ops["src"].connector is not None and ops["src"].connector.partitions == 8
    assert spec.volume.event_bytes == pytest.approx(800)
    assert spec.volume.average_events_per_second == pytest.approx(1e12 / 86400 / 800)


def test_an_event_size_the_spec_states_wins_over_the_source_chains_output_bytes() -> None:
    # A source chained to a local aggregate emits small partial rows: 800 B here stands for that output, while the
    # spec knows its events are 500 B. 1 TB/day must then mean 1e12 / 86400 / 500 events per second.
    base = parse_workload(_mutate(["volume"], {"events_per_second": 1000, "event_size": "500B"}))
    spec = workload_from_profile(_profile(), parse_rate("1TB/day"), base)
    assert spec.volume.event_bytes == pytest.approx(500)
    assert spec.volume.average_events_per_second == pytest.approx(1e12 / 86400 / 500)
    assert any("from the spec" in note for note in spec.notes)


def test_a_source_with_a_chained_sink_is_measured_by_the_records_it_reads() -> None:
    # The collector reports what a source read as records in; with its sink chained, its records out are 0.
    source = Vertex(id="src", name="src", parallelism=2, max_parallelism=120, is_source=True, partitions=4,
                    metrics=VertexMetrics(num_records_in_per_second=5000.0, num_records_out_per_second=0.0,
                                          num_bytes_in_per_second=5000.0 * 130, busy_time_ms_per_second_avg=250.0,
                                          busy_time_ms_per_second_max=300.0))
    snapshot = MetricsSnapshot(timestamp=0.0, job_id="j", job_name="clicks", vertices=(source,))
    spec = workload_from_profile(snapshot, parse_rate("1TB/day"))
    (op,) = spec.pipeline.operators
    assert op.cost_us_per_record == pytest.approx(250 * 2 * 1000 / 5000)  # 100 us per event read
    assert spec.volume.event_bytes == pytest.approx(130)


def test_a_real_recorded_profile_plans(capsys: pytest.CaptureFixture[str]) -> None:
    recorded = Path(__file__).parents[2] / "fixtures" / "rest" / "collector_clickstream_step_snapshot.json"
    assert main(["plan", "--from-profile", str(recorded), "--target", "1TB/day", "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan


def test_cli_plans_from_a_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({"snapshot": _profile().to_dict()}))
    assert main(["plan", "--from-profile", str(profile), "--target", "1TB/day", "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [op["cost_origin"] for op in plan["operators"]] == ["measured"] * 3


def test_a_plan_from_a_profile_overrides_the_profiled_vertices() -> None:
    from flinkscale.core.plan import build_plan

    ids = ["bc764cd8ddf7a0cff126f51c16239658", "0a448493b4782967b150582570326227", "ea632d67b7d595e5b851708ae9ad79d6"]
    snapshot = _profile()
    snapshot = MetricsSnapshot.from_dict({**snapshot.to_dict(), "vertices": [
        {**v, "id": new} for v, new in zip(snapshot.to_dict()["vertices"], ids, strict=True)], "edges": [
        {"source": ids[0], "target": ids[1], "ship_strategy": "HASH"},
        {"source": ids[1], "target": ids[2], "ship_strategy": "FORWARD"}]})
    plan = build_plan(workload_from_profile(snapshot, parse_rate("1TB/day")))
    # Every profiled vertex keeps its own JobVertexID (measured vertices are never merged into chains).
    assert [v.job_vertex_id for v in plan.vertices] == ids
    assert {v.job_vertex_id_source for v in plan.vertices} == {"profile"}


def test_a_stated_vertex_id_is_used_as_is() -> None:
    from flinkscale.core.plan import build_plan

    stated = "cbc357ccb763df2852fee8c4fc7d55f2"
    plan = build_plan(parse_workload(_mutate(["pipeline", "operators", 2, "vertex_id"], stated.upper())))
    vertex = next(v for v in plan.vertices if v.head == "agg")
    assert vertex.job_vertex_id == stated and vertex.job_vertex_id_source == "stated"
    with pytest.raises(InputError) as error:
        parse_workload(_mutate(["pipeline", "operators", 2, "vertex_id"], "not-hex"))
    assert error.value.field == "pipeline.operators[2].vertex_id"


def test_profile_without_target_is_an_input_error(tmp_path: Path) -> None:
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps(_profile().to_dict()))
    assert main(["plan", "--from-profile", str(profile)]) == 2
