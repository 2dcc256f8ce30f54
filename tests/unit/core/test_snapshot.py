"""MetricsSnapshot: the graph queries every consumer relies on, and a lossless, validated JSON form."""

from __future__ import annotations

import json
import math
from dataclasses import FrozenInstanceError, replace
from pathlib import Path

import pytest

from flinkscale.core.errors import InputError
from flinkscale.core.snapshot import (
    Edge,
    MetricsSnapshot,
    ShipStrategy,
    SubtaskMetrics,
    Vertex,
    VertexMetrics,
    frozen_instances,
)

EXAMPLES = Path(__file__).parents[3] / "examples" / "snapshots"


def _job() -> MetricsSnapshot:
    return MetricsSnapshot(
        timestamp=100.0, job_id="j", job_name="job",
        vertices=(
            Vertex("sink", "Sink", 1, 120, is_sink=True),
            Vertex("agg", "Agg", 2, 120, metrics=VertexMetrics(
                busy_time_ms_per_second_max=math.nan,
                subtasks=(SubtaskMetrics(0, 10.0), SubtaskMetrics(1, 30.0)))),
            Vertex("src", "Source", 1, 120, is_source=True, partitions=4,
                   metrics=VertexMetrics(pending_records=500.0)),
        ),
        edges=(Edge("src", "agg", ShipStrategy.HASH), Edge("agg", "sink", ShipStrategy.FORWARD)))


def test_topological_order_puts_every_vertex_after_its_inputs() -> None:
    assert [v.id for v in _job().topological_order()] == ["src", "agg", "sink"]


def test_graph_queries() -> None:
    job = _job()
    assert [v.id for v in job.sources()] == ["src"]
    assert job.is_keyed("agg") and not job.is_keyed("sink")
    assert job.source_lag() == 500.0
    assert job.total_parallelism() == 4
    assert job.with_parallelism({"agg": 4}).vertex("agg").parallelism == 4


def test_json_round_trip_turns_nan_into_null() -> None:
    job = _job()
    text = json.dumps(job.to_dict())
    assert "NaN" not in text
    again = MetricsSnapshot.from_dict(json.loads(text))
    assert again.vertex("agg").metrics.busy_time_ms_per_second_max is None
    assert again.vertex("agg").metrics.subtasks[1].num_records_in_per_second == 30.0
    assert again.edges == job.edges


def test_json_round_trip_turns_infinity_into_null() -> None:
    """An infinite metric is written as null (JSON has no Infinity), so the file reads back."""
    job = _job()
    agg = replace(job.vertex("agg"), metrics=VertexMetrics(num_records_in_per_second=math.inf))
    job = replace(job, vertices=tuple(agg if v.id == "agg" else v for v in job.vertices))
    text = json.dumps(job.to_dict(), allow_nan=False)
    again = MetricsSnapshot.from_dict(json.loads(text))
    assert again.vertex("agg").metrics.num_records_in_per_second is None


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda d: d["vertices"][0].pop("parallelism"), "vertices[0].parallelism"),
    (lambda d: d["vertices"][1].update(parallelism=500), "vertices[1].parallelism"),
    (lambda d: d["vertices"][1]["metrics"].update(busy=1), "vertices[1].metrics.busy"),
    (lambda d: d.update(schema_version=99), "schema_version"),
    (lambda d: d["edges"].append({"source": "src", "target": "nowhere"}), "edges[2]"),
    (lambda d: d.pop("job_id"), "job_id"),
])
def test_invalid_snapshots_name_the_field(mutate: object, field: str) -> None:
    data = _job().to_dict()
    mutate(data)  # type: ignore[operator]
    with pytest.raises(InputError) as info:
        MetricsSnapshot.from_dict(data)
    assert str(info.value).startswith(f"{field}: ")


def test_a_cycle_is_rejected() -> None:
    data = _job().to_dict()
    data["edges"].append({"source": "sink", "target": "src", "ship_strategy": "FORWARD"})
    with pytest.raises(InputError, match="cycle"):
        MetricsSnapshot.from_dict(data).topological_order()


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.name)
def test_shipped_example_snapshots_load(path: Path) -> None:
    snapshot = MetricsSnapshot.from_dict(json.loads(path.read_text()))
    assert snapshot.vertices


# --- what the simulator and the policies build per vertex at every decision ----------------------------------

def test_frozen_instances_are_the_constructors_instances() -> None:
    columns = {"num_records_in_per_second": [1.5, None, 0.0], "busy_time_ms_per_second_max": [300.0, 1000.0, None],
               "pending_records": [None, 7.0, math.nan]}
    same = {name: None for name in VertexMetrics.__dataclass_fields__ if name not in columns} | {"subtasks": ()}
    built = frozen_instances(VertexMetrics, columns, same)
    expected = [VertexMetrics(num_records_in_per_second=rate, busy_time_ms_per_second_max=busy, pending_records=lag)
                for rate, busy, lag in zip(*columns.values(), strict=True)]
    assert len(built) == 3
    for got, want in zip(built, expected, strict=True):
        assert type(got) is VertexMetrics
        assert repr(got) == repr(want)
        assert list(vars(got).items()) == list(vars(want).items())  # every field, in field order
        assert hash(got) == hash(want)
    assert built[:2] == expected[:2]  # (NaN != NaN: the third compares unequal to itself too)
    with pytest.raises(FrozenInstanceError):
        built[0].pending_records = 1.0  # type: ignore[misc]


def test_frozen_instances_need_every_field_once_and_no_post_init() -> None:
    rates = {"num_records_in_per_second": [1.0]}
    with pytest.raises(TypeError, match="every field"):
        frozen_instances(VertexMetrics, rates)  # the other fields missing
    with pytest.raises(TypeError, match="every field"):
        frozen_instances(VertexMetrics, rates, {name: None for name in VertexMetrics.__dataclass_fields__})
    with pytest.raises(TypeError, match="__post_init__"):
        frozen_instances(MetricsSnapshot, {"timestamp": [1.0]})
    with pytest.raises(ValueError):  # columns of different lengths
        frozen_instances(Edge, {"source": ["a", "b"], "target": ["b"]}, {"ship_strategy": ShipStrategy.HASH})


def test_a_snapshot_is_validated_even_when_it_shares_the_edges_of_a_valid_one() -> None:
    edges = (Edge("a", "b"),)
    MetricsSnapshot(1.0, "j", "job", (Vertex("a", "a", 1, 8), Vertex("b", "b", 1, 8)), edges)
    with pytest.raises(InputError, match="unknown vertex"):
        MetricsSnapshot(2.0, "j", "job", (Vertex("a", "a", 1, 8), Vertex("c", "c", 1, 8)), edges)
    with pytest.raises(InputError, match="unique"):
        MetricsSnapshot(3.0, "j", "job", (Vertex("a", "a", 1, 8), Vertex("a", "a", 1, 8)), edges)
    again = MetricsSnapshot(4.0, "j", "job", (Vertex("a", "a", 2, 8), Vertex("b", "b", 1, 8)), edges)
    assert again.vertex_ids == ("a", "b")


def test_layout_derived_is_shared_until_the_layout_changes() -> None:
    edges = (Edge("a", "b", ShipStrategy.HASH),)
    calls: list[float] = []

    def compute(snapshot: MetricsSnapshot) -> tuple[int, ...]:
        calls.append(snapshot.timestamp)
        return snapshot.parallelisms

    def job(t: float, p: int, name: str = "b", busy: float = 1.0) -> MetricsSnapshot:
        metrics = VertexMetrics(busy_time_ms_per_second_max=busy)
        return MetricsSnapshot(t, "j", "job", (Vertex("a", "a", 1, 8), Vertex("b", name, p, 8, metrics=metrics)), edges)

    assert job(1.0, 2).layout_derived("test.p", compute) == (1, 2)
    assert job(2.0, 2, busy=9.0).layout_derived("test.p", compute) == (1, 2)  # other metrics, same layout
    assert job(3.0, 3).layout_derived("test.p", compute) == (1, 3)  # a rescale
    assert job(4.0, 3, name="B").layout_derived("test.p", compute) == (1, 3)  # another name
    assert calls == [1.0, 3.0, 4.0]
