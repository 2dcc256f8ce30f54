"""A planned deployment as a simulator scenario: what a plan does over a day, before it is deployed.

``workload_scenario(spec, deployment)`` turns a workload spec and the deployed shape of its plan
(``flinkscale.core.plan.PlannedDeployment``: from ``build_plan(spec).deployment()`` or from a plan's JSON) into
a scenario in the scenario file format (docs/simulate.md). The scenario reader (``scenario.parse_scenario``)
then validates it like any scenario file, and ``flinkscale simulate --set scenario.PATH=VALUE`` overrides it.
Nothing about the job graph is modelled twice: the simulator's vertices are the plan's job vertices.

Where each number comes from:

- vertices: the plan's job vertices (chains of operators joined by forward edges, ``plan._chains``) at the
  plan's parallelism and max parallelism; a source vertex reads the partitions the plan gives its topic.
- capacity of one subtask of a vertex: ``capacity_from_cost`` (``10^6 / cost``, the planner's formula) of the
  chain's cost per record entering it, ``sum over members of reach x cost_us_per_record``, where ``reach`` is
  the records a member receives per record entering the chain (the product of the selectivities before it
  inside the chain). A sink with a ``connection_throughput`` carries at most that many records/s per subtask,
  as the planner assumes.
- edges between vertices: the spec's ship strategy; selectivity = reach x selectivity of the operator the
  edge leaves (records on the edge per record entering the upstream chain). Keyed edges spread records
  evenly over key groups (a spec states no key skew).
- the trace: a day of the spec's volume: ``hourly_profile`` when given (24 hourly rates, held for the hour),
  else a diurnal cycle with the spec's average and ``peak_factor`` (``traces.DiurnalTrace``, peak at 14:00).
- the cluster: the plan's TaskManagers x slots per TaskManager as the slot ceiling, with slot sharing (the
  planner puts every operator in one slot sharing group, so slots are the largest vertex parallelism).
- a rescale: the planner's restart time (``capacity.RESTART_SECONDS``) plus the projected state restored at the
  stated checkpoint bandwidth by every TaskManager at once (the planner's recovery formula without failure
  detection); checkpoints at the plan's interval; the latency target is the spec's.
- policies: ``static`` is the plan as deployed, never rescaled (not peak-provisioned by the simulator); every
  other policy starts at the plan's parallelism and scales within the slot ceiling.
"""

from __future__ import annotations

from typing import Any

from flinkscale.core.capacity import RESTART_SECONDS
from flinkscale.core.errors import InputError
from flinkscale.core.plan import PlannedDeployment
from flinkscale.core.rates import capacity_from_cost
from flinkscale.core.sim.scenario import MAX_NUMBER
from flinkscale.core.snapshot import ShipStrategy
from flinkscale.core.units import SECONDS_PER_DAY
from flinkscale.core.workload import Role, WorkloadSpec


def check_deployment(spec: WorkloadSpec, deployment: PlannedDeployment, source: str) -> None:
    """The plan must be one of this spec: the same workload name, every operator in exactly one vertex, and
    each vertex a chain (a non-head member's only input is a forward edge from inside its vertex)."""
    if deployment.workload != spec.name:
        raise InputError(f"the plan is for workload {deployment.workload!r}, the spec is {spec.name!r}",
                         field=source)
    pipeline = spec.pipeline
    planned = deployment.parallelism()
    spec_ids = {op.id for op in pipeline.operators}
    unknown = sorted(set(planned) - spec_ids)
    if unknown:
        raise InputError(f"the plan has operator(s) {unknown} that the spec {spec.name!r} does not have", field=source)
    missing = [op.id for op in pipeline.operators if op.id not in planned]
    if missing:
        raise InputError(f"the plan has no vertex for operator(s) {missing} of the spec {spec.name!r}", field=source)
    for i, vertex in enumerate(deployment.vertices):
        members = set(vertex.operators)
        if any(e.source in members for e in pipeline.inputs_of(vertex.head)):
            raise InputError(f"the head {vertex.head!r} has an input inside its own vertex",
                             field=f"{source}: vertices[{i}]")
        for op in vertex.operators:
            if op == vertex.head:
                continue
            inputs = pipeline.inputs_of(op)
            if len(inputs) != 1 or inputs[0].source not in members or inputs[0].ship_strategy is not \
                    ShipStrategy.FORWARD:
                raise InputError(f"operator {op!r} is chained to {vertex.head!r}, but its input is not one forward "
                                 "edge from inside the vertex", field=f"{source}: vertices[{i}]")


def _reach(spec: WorkloadSpec, deployment: PlannedDeployment) -> dict[str, float]:
    """Records each operator receives per record entering its vertex's head."""
    heads = {v.head for v in deployment.vertices}
    reach: dict[str, float] = {}
    for op in spec.pipeline.topological_order():
        if op.id in heads:
            reach[op.id] = 1.0
        else:
            (edge,) = spec.pipeline.inputs_of(op.id)
            reach[op.id] = reach[edge.source] * spec.pipeline.operator(edge.source).selectivity
    return reach


def _subtask_capacity(spec: WorkloadSpec, operators: tuple[str, ...], reach: dict[str, float]) -> float:
    members = [spec.pipeline.operator(o) for o in operators]
    capacity = capacity_from_cost(sum(reach[m.id] * m.cost_us_per_record for m in members))
    for m in members:
        connection = m.connector.connection_records_per_second if m.connector else None
        if m.role is Role.SINK and connection and reach[m.id] > 0:
            capacity = min(capacity, connection / reach[m.id])
    return min(capacity, MAX_NUMBER)  # a free chain (cost 0) is as fast as a scenario can state


def _trace(spec: WorkloadSpec) -> dict[str, Any]:
    volume = spec.volume
    if volume.hourly_profile:
        mean = sum(volume.hourly_profile) / len(volume.hourly_profile)
        rows = "".join(f"{hour * 3600},{volume.average_events_per_second * share / mean!r}\n"
                       for hour, share in enumerate(volume.hourly_profile))
        return {"type": "replay", "csv_text": "seconds,rate\n" + rows}
    return {"type": "diurnal", "average": volume.average_events_per_second, "peak_factor": volume.peak_factor}


def workload_scenario(spec: WorkloadSpec, deployment: PlannedDeployment, *, source: str = "plan") -> dict[str, Any]:
    """The scenario mapping (scenario file format) of a day of ``spec`` on ``deployment``; ``source`` names the
    plan in errors. Raises ``InputError`` when the plan is not one of this spec."""
    check_deployment(spec, deployment, source)
    pipeline = spec.pipeline
    sources = pipeline.sources()
    if len({op.share for op in sources}) > 1:
        raise InputError("the simulator splits the offered rate evenly between sources; this spec gives them "
                         f"unequal shares ({', '.join(f'{op.id} {op.share:g}' for op in sources)})",
                         field="pipeline.operators")
    reach = _reach(spec, deployment)
    vertex_of = {op: v.head for v in deployment.vertices for op in v.operators}
    stateful = [v.head for v in deployment.vertices if any(pipeline.operator(o).keyed_state for o in v.operators)]
    holders = stateful or [v.head for v in deployment.vertices]
    vertices: list[dict[str, Any]] = []
    for v in deployment.vertices:
        head = pipeline.operator(v.head)
        vertex: dict[str, Any] = {
            "id": v.head, "name": " -> ".join(v.operators), "parallelism": v.parallelism,
            "capacity": _subtask_capacity(spec, v.operators, reach),
            "state": deployment.state_bytes / len(holders) if v.head in holders else 0}
        if head.role is Role.SOURCE:
            vertex["source"] = True
            if v.head in deployment.source_partitions:
                vertex["partitions"] = deployment.source_partitions[v.head]
        vertices.append(vertex)
    edges: dict[tuple[str, str, str], float] = {}
    for edge in pipeline.edges:
        upstream, downstream = vertex_of[edge.source], vertex_of[edge.target]
        if upstream == downstream:
            continue  # inside a chain
        key = (upstream, downstream, edge.ship_strategy.value)
        edges[key] = edges.get(key, 0.0) + reach[edge.source] * pipeline.operator(edge.source).selectivity
    restore = spec.cluster.checkpoint_bytes_per_second * deployment.task_managers
    volume = spec.volume
    return {
        "name": spec.name,
        "description": (f"a day of {volume.stated_as} on the planned deployment: {deployment.task_managers} "
                        f"TaskManager{'s' if deployment.task_managers != 1 else ''} x "
                        f"{deployment.slots_per_task_manager} slots, parallelism "
                        + ", ".join(f"{v.head} {v.parallelism}" for v in deployment.vertices)),
        "duration": SECONDS_PER_DAY,
        "latency_target": spec.targets.latency_seconds,
        "event_bytes": volume.event_bytes,
        "trace": _trace(spec),
        "pipeline": {
            "max_parallelism": deployment.max_parallelism,
            "vertices": vertices,
            "edges": [{"from": a, "to": b, "ship": ship, "selectivity": selectivity}
                      for (a, b, ship), selectivity in edges.items()],
        },
        "cluster": {"max_slots": deployment.slots, "slots_per_task_manager": deployment.slots_per_task_manager,
                    "slot_sharing": True},
        "rescale": {"restart_time": RESTART_SECONDS, "restore_bandwidth": f"{restore / 1e6!r}MB/s"},
        "checkpoints": {"interval": deployment.checkpoint_interval_seconds},
        "peak_provisioning": {"policies": []},
    }
