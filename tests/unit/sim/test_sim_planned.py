"""A workload spec and its plan as a simulated day (core/sim/planned.py, core/_plan_json.py).

Expected values come from the spec's numbers and the documented formulas: a vertex's subtask capacity is
10^6 / (sum over its chain of reach x cost_us_per_record), capped by a sink's connection throughput.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flinkscale.core.errors import InputError
from flinkscale.core.plan import Plan, build_plan, planned_deployment_from_json
from flinkscale.core.policy.registry import make_policy
from flinkscale.core.sim.compare import compare
from flinkscale.core.sim.planned import workload_scenario
from flinkscale.core.sim.scenario import Scenario, apply_overrides, parse_scenario
from flinkscale.core.sim.traces import DiurnalTrace, ReplayTrace
from flinkscale.core.snapshot import ShipStrategy
from flinkscale.core.workload import WorkloadSpec, parse_workload, parse_workload_text

WORKLOADS = Path(__file__).resolve().parents[3] / "examples" / "workloads"


@pytest.fixture(scope="module")
def spec() -> WorkloadSpec:
    return parse_workload_text((WORKLOADS / "clickstream-1tb.yaml").read_text())


@pytest.fixture(scope="module")
def plan(spec: WorkloadSpec) -> Plan:
    return build_plan(spec)


def _scenario(spec: WorkloadSpec, plan: Plan, **overrides: Any) -> Scenario:
    return parse_scenario(apply_overrides(workload_scenario(spec, plan.deployment()), overrides))


def _plan_json(plan: Plan) -> dict[str, Any]:
    """What `flinkscale plan --format json` writes, read back as JSON."""
    data: dict[str, Any] = json.loads(json.dumps(plan.to_dict()))
    return data


def test_the_vertices_are_the_plans_chains_at_the_plans_parallelism(spec: WorkloadSpec, plan: Plan) -> None:
    pipeline = _scenario(spec, plan).pipeline
    assert {v.id: v.parallelism for v in pipeline.vertices} == {v.head: v.parallelism for v in plan.vertices}
    # The 1 TB example chains the source with parse and sessionize with its sink (forward edges, equal p).
    assert [v.name for v in pipeline.vertices] == ["clicks -> parse", "sessionize -> sessions_sink", "page_counts",
                                                   "counts_sink"]
    assert all(v.max_parallelism == 120 for v in pipeline.vertices)
    assert pipeline.vertex("clicks").is_source and pipeline.vertex("clicks").partitions == 10


def test_capacities_follow_the_chain_cost_per_record(spec: WorkloadSpec, plan: Plan) -> None:
    pipeline = _scenario(spec, plan).pipeline
    # clicks 8 us + parse 25 us for every record read.
    assert pipeline.vertex("clicks").capacity == pytest.approx(1e6 / (8 + 25))
    # sessionize 40 us, and its chained sink 30 us for the 10% of records sessionize emits.
    assert pipeline.vertex("sessionize").capacity == pytest.approx(1e6 / (40 + 0.1 * 30))
    assert pipeline.vertex("page_counts").capacity == pytest.approx(1e6 / 15)
    # 200 us would allow 5,000/s; the sink's connection carries 2k/s.
    assert pipeline.vertex("counts_sink").capacity == pytest.approx(2000)


def test_edges_between_chains_carry_the_selectivities_inside_them(spec: WorkloadSpec, plan: Plan) -> None:
    edges = {(e.source, e.target): e for e in _scenario(spec, plan).pipeline.edges}
    assert set(edges) == {("clicks", "sessionize"), ("clicks", "page_counts"), ("page_counts", "counts_sink")}
    # parse (selectivity 0.98) is inside the clicks chain: 0.98 records on each keyed edge per record read.
    assert edges["clicks", "sessionize"].selectivity == pytest.approx(0.98)
    assert edges["clicks", "sessionize"].ship_strategy is ShipStrategy.HASH
    assert edges["page_counts", "counts_sink"].selectivity == pytest.approx(0.01)
    assert edges["page_counts", "counts_sink"].ship_strategy is ShipStrategy.REBALANCE


@pytest.mark.parametrize("workload", ["clickstream-1tb.yaml", "clickstream-10tb.yaml", "seed-1tb-subsecond.yaml",
                                      "local-demo.yaml"])
def test_at_the_provisioned_rate_each_vertex_is_as_busy_as_the_planner_says(workload: str) -> None:
    """The simulator's vertex at the planner's provisioned rate is busy the sum of its operators'
    utilization_at_peak: the same graph and the same per-record costs, seen chained."""
    spec = parse_workload_text((WORKLOADS / workload).read_text())
    plan = build_plan(spec)
    pipeline = parse_scenario(workload_scenario(spec, plan.deployment())).pipeline
    provisioned = plan.capacity.rates.provisioned_events_per_second.value
    factors = pipeline.vertex_rate_factors()
    for vertex in plan.vertices:
        sim = pipeline.vertex(vertex.head)
        busy = provisioned * factors[vertex.head] / (sim.parallelism * sim.capacity)
        connection_bound = sim.capacity < 1e6 / sum(spec.pipeline.operator(o).cost_us_per_record
                                                    for o in vertex.operators)
        if not connection_bound:
            planned = sum(plan.capacity.operator(o).utilization_at_peak.value for o in vertex.operators)
            assert busy == pytest.approx(planned, rel=1e-9), vertex.head
        assert factors[vertex.head] * provisioned == pytest.approx(
            plan.capacity.operator(vertex.head).input_records_per_second.value, rel=1e-9)


def test_the_slot_ceiling_is_the_plans_task_managers_times_slots(spec: WorkloadSpec, plan: Plan) -> None:
    scenario = _scenario(spec, plan)
    cluster = scenario.config.cluster
    assert cluster.max_slots == int(plan.capacity.cluster.task_managers.value) * \
        plan.capacity.cluster.slots_per_task_manager == 8
    assert cluster.slot_sharing  # one slot sharing group, as planned: slots = the largest vertex parallelism
    assert scenario.peak_provisioned == ()  # static is the plan itself
    assert scenario.config.latency_target_seconds == 0.5
    assert scenario.config.checkpoints.interval_seconds == plan.capacity.checkpoints.interval_seconds.value
    # A rescale: 15 s restart + 11.26 GB of projected state restored by 2 TaskManagers at 200 MB/s each.
    assert scenario.config.rescale.downtime_seconds(scenario.pipeline.state_bytes()) == pytest.approx(
        15 + plan.capacity.state.projected_bytes.value / (2 * 200e6))


def test_the_day_is_the_specs_volume(spec: WorkloadSpec, plan: Plan) -> None:
    scenario = _scenario(spec, plan)
    assert scenario.config.duration_seconds == 86400
    assert isinstance(scenario.trace, DiurnalTrace)
    rates = scenario.rates()
    assert rates.mean() == pytest.approx(1e12 / 86400 / 1000, rel=1e-3)  # 1 TB/day of 1 kB events
    assert rates.max() == pytest.approx(3.5 * 1e12 / 86400 / 1000, rel=1e-3)


def test_an_hourly_profile_is_replayed_hour_by_hour() -> None:
    raw = _spec_mapping("clickstream-1tb.yaml")
    del raw["volume"]["peak_factor"]
    raw["volume"]["hourly_profile"] = [1] * 12 + [3] * 12
    spec = parse_workload(raw)
    scenario = parse_scenario(workload_scenario(spec, build_plan(spec).deployment()))
    assert isinstance(scenario.trace, ReplayTrace)
    rates = scenario.rates()
    average = spec.volume.average_events_per_second
    assert rates.mean() == pytest.approx(average)
    assert rates[0] == pytest.approx(average * 0.5) and rates[-1] == pytest.approx(average * 1.5)


def _spec_mapping(name: str) -> dict[str, Any]:
    import yaml

    data: dict[str, Any] = yaml.safe_load((WORKLOADS / name).read_text())
    return data


def test_a_plan_read_back_from_its_json_is_the_same_deployment(plan: Plan) -> None:
    assert planned_deployment_from_json(_plan_json(plan), "plan.json") == plan.deployment()


def test_the_plan_carries_the_peak_and_half_of_it_does_not(spec: WorkloadSpec, plan: Plan) -> None:
    """The plan as deployed (static) keeps the lag under the spec's target through the peak; the same
    deployment at half the parallelism, read from an edited plan, falls behind."""
    window = {"trace.peak_at": "1h", "duration": "2h"}
    planned = compare(_scenario(spec, plan, **window), {"static": make_policy("static", {})}).runs[0].outcome
    assert planned.seconds_over_target == 0 and planned.rescales == 0
    edited = _plan_json(plan)
    for vertex in edited["vertices"]:
        vertex["parallelism"] = max(1, vertex["parallelism"] // 2)
    halved = planned_deployment_from_json(edited, "plan.json")
    scenario = parse_scenario(apply_overrides(workload_scenario(spec, halved), window))
    starved = compare(scenario, {"static": make_policy("static", {})}).runs[0].outcome
    assert starved.seconds_over_target > 600 and starved.peak_lag_seconds > 60


def _edited(plan: Plan, edit: Any) -> dict[str, Any]:
    data = _plan_json(plan)
    edit(data)
    return data


@pytest.mark.parametrize(("edit", "field"), [
    (lambda d: d.pop("cluster"), "plan.json: cluster"),
    (lambda d: d["vertices"][0].update(parallelism="2"), "plan.json: vertices[0].parallelism"),
    (lambda d: d["vertices"][1].update(parallelism=0), "plan.json: vertices[1].parallelism"),
    (lambda d: d["vertices"][1].update(parallelism=121), "plan.json: vertices[1].parallelism"),
    # More subtasks than the plan's slots (its simulation would also take minutes: one column per subtask).
    (lambda d: d["vertices"][1].update(parallelism=d["max_parallelism"]["value"]),
     "plan.json: vertices[1].parallelism"),
    (lambda d: d["cluster"]["task_managers"].update(value=2.5), "plan.json: cluster.task_managers.value"),
    (lambda d: d["checkpoints"]["interval_seconds"].update(value=-1), "plan.json: checkpoints.interval_seconds"),
    (lambda d: d.update(vertices=[]), "plan.json: vertices"),
    (lambda d: d["vertices"][0].update(head="nobody"), "plan.json: vertices[0].head"),
    (lambda d: d["vertices"][2]["operators"].append("parse"), "plan.json: vertices[2]"),
])
def test_a_bad_plan_json_names_the_field(plan: Plan, edit: Any, field: str) -> None:
    with pytest.raises(InputError) as caught:
        planned_deployment_from_json(_edited(plan, edit), "plan.json")
    assert str(caught.value).startswith(field)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("data", [None, [], "plan", 3])
def test_a_plan_that_is_not_an_object_is_refused(data: Any) -> None:
    with pytest.raises(InputError, match=r"plan\.json: a plan must be the JSON object"):
        planned_deployment_from_json(data, "plan.json")


def test_a_plan_for_another_workload_is_refused(spec: WorkloadSpec) -> None:
    other = build_plan(parse_workload_text((WORKLOADS / "clickstream-10tb.yaml").read_text()))
    with pytest.raises(InputError, match=r"plan\.json: the plan is for workload 'clickstream-10tb', the spec is "
                                         r"'clickstream-1tb'"):
        workload_scenario(spec, other.deployment(), source="plan.json")


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["vertices"][2].update(head="pages", operators=["pages"]), r"operator\(s\) \['pages'\]"),
    (lambda d: d["vertices"].pop(3), r"no vertex for operator\(s\) \['counts_sink'\]"),
    # page_counts reads parse over a keyed edge: it cannot be chained into the source's vertex.
    (lambda d: (d["vertices"][0]["operators"].append("page_counts"), d["vertices"].pop(2)),
     "operator 'page_counts' is chained to 'clicks'"),
])
def test_a_plan_whose_vertices_do_not_fit_the_spec_is_refused(spec: WorkloadSpec, plan: Plan, edit: Any,
                                                              message: str) -> None:
    deployment = planned_deployment_from_json(_edited(plan, edit), "plan.json")
    with pytest.raises(InputError, match=message):
        workload_scenario(spec, deployment, source="plan.json")


def test_unequal_source_shares_are_refused_not_silently_evened() -> None:
    raw = _spec_mapping("clickstream-1tb.yaml")
    raw["pipeline"]["operators"].insert(1, {"id": "app_clicks", "role": "source", "cost_us_per_record": 8,
                                            "share": 0.25})
    raw["pipeline"]["operators"][0]["share"] = 0.75
    spec = parse_workload(raw)
    with pytest.raises(InputError, match="unequal shares"):
        workload_scenario(spec, build_plan(spec).deployment())


def test_a_free_operator_gets_the_largest_capacity_a_scenario_states() -> None:
    raw = _spec_mapping("clickstream-1tb.yaml")
    for op in raw["pipeline"]["operators"]:
        op["cost_us_per_record"] = 0
        op.get("connector", {}).pop("connection_throughput", None)
    spec = parse_workload(raw)
    pipeline = parse_scenario(workload_scenario(spec, build_plan(spec).deployment())).pipeline
    assert all(math.isfinite(v.capacity) and v.capacity == 1e12 for v in pipeline.vertices)


_SHIPS = ("forward", "hash", "rebalance", "broadcast")


@st.composite
def _random_specs(draw: st.DrawFn) -> dict[str, Any]:
    """Small DAGs: 1-2 sources, up to 6 operators, each reading 1-2 earlier ones over any ship strategy."""
    sources = draw(st.integers(1, 2))
    count = draw(st.integers(sources + 1, 7))
    operators: list[dict[str, Any]] = []
    for i in range(count):
        op: dict[str, Any] = {"id": f"op{i}", "cost_us_per_record": draw(st.floats(1, 200)),
                              "selectivity": draw(st.floats(0.05, 2.0))}
        if i < sources:
            op["role"] = "source"
        else:
            upstream = draw(st.lists(st.integers(0, i - 1), min_size=1, max_size=2, unique=True))
            op["inputs"] = [{"from": f"op{u}", "ship": draw(st.sampled_from(_SHIPS))} for u in upstream]
            op["keyed_state"] = draw(st.booleans())
        operators.append(op)
    return {"name": "random", "volume": {"events_per_second": draw(st.floats(100, 50_000)), "event_size": "500B",
                                         "peak_factor": draw(st.floats(1, 3))},
            "state": {"keys": 1e5, "bytes_per_key": "100B"}, "pipeline": {"operators": operators}}


@settings(max_examples=60, deadline=None)
@given(_random_specs())
def test_any_spec_simulates_its_plan_as_busy_as_planned(raw: dict[str, Any]) -> None:
    """Whatever the graph (chains with branches and selectivities, several inputs, broadcast edges), each
    simulated vertex at the provisioned rate is busy the sum of its operators' planned utilization_at_peak.

    Except below an operator fed by a broadcast edge: every one of its subtasks processes every broadcast
    record, and the simulator has each of them emit its selectivity's share, where the planner counts the
    broadcast stream once in that operator's output (docs/simulate.md says so)."""
    spec = parse_workload(raw)
    plan = build_plan(spec)
    pipeline = parse_scenario(workload_scenario(spec, plan.deployment())).pipeline
    assert {v.id: v.parallelism for v in pipeline.vertices} == {v.head: v.parallelism for v in plan.vertices}
    provisioned = plan.capacity.rates.provisioned_events_per_second.value
    factors = pipeline.vertex_rate_factors()
    below_broadcast: set[str] = set()
    for op in spec.pipeline.topological_order():
        if any(e.source in below_broadcast or any(b.ship_strategy is ShipStrategy.BROADCAST
                                                 for b in spec.pipeline.inputs_of(e.source))
               for e in spec.pipeline.inputs_of(op.id)):
            below_broadcast.add(op.id)
    for vertex in plan.vertices:
        if below_broadcast & set(vertex.operators):
            continue
        sim = pipeline.vertex(vertex.head)
        busy = provisioned * factors[vertex.head] / (sim.parallelism * sim.capacity)
        planned = sum(plan.capacity.operator(o).utilization_at_peak.value for o in vertex.operators)
        assert busy == pytest.approx(planned, rel=1e-9), vertex.head
