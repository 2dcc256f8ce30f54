"""Profile analysis: what a measured job does per vertex, where it saturates first, and how far it can go.

Pure: it reads ``MetricsSnapshot``s (the merged window, and optionally the individual samples for timelines) and
returns a ``ProfileAnalysis``. The collector (``flinkscale.flink.collector``) does the sampling, the report
(``flinkscale.report.profile``) the rendering.

The capacity model (anchors.md, section "true processing rate"):

* **True processing rate** of a subtask = its records in / its busy seconds: what it would process if it were busy
  all the time. The busiest subtask saturates first, so a vertex's **capacity** is
  ``records_in / (busy_max / 1000)`` (= the vertex's true processing rate in Flink's operator-autoscaler sense):
  the vertex input at which its busiest subtask reaches 1000 ms/s, with today's key/partition spread. Written
  per subtask it is ``TPR(busiest) x p / (records max/mean)``, the same number.
* **Amplification** of a vertex = the records it receives per record read by the sources, the product of the
  **output ratios** (records shipped on an edge / records into its upstream vertex) along every path, summed over
  paths. A source's amplification is its share of all source records.
* A vertex's **sustainable source rate** = capacity / amplification: the total source rate at which this vertex
  saturates. The **bottleneck** is the vertex with the smallest one (it saturates first as the source rate grows),
  and that smallest value is the job's **maximum sustainable source rate** at today's parallelism.
  **Headroom** = maximum sustainable / current offered source rate (read rate plus lag growth).
* The **backpressure root** is what saturates *now*: the first vertex downstream of backpressured vertices that is
  not backpressured itself and is busy. When it exists it is reported next to the projection.

Every derived number carries its unit and the formula (with its inputs written in) that produced it
(``core.explained.Explained``), so the report can explain itself. Skew comes from ``core.skew.analyze_skew``
and key-group layout from ``core.keygroups``; neither is recomputed here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from flinkscale.core.errors import InputError
from flinkscale.core.explained import Explained
from flinkscale.core.keygroups import key_groups_per_subtask, layout_imbalance
from flinkscale.core.rates import true_processing_rate
from flinkscale.core.skew import SkewReport, VertexSkew, analyze_skew
from flinkscale.core.snapshot import CheckpointStats, MetricsSnapshot, Vertex, json_finite
from flinkscale.core.state_advice import StateAdvice, advise_state
from flinkscale.core.units import format_rate

PROFILE_SCHEMA = "flinkscale.profile/v1"
#: A vertex whose busiest subtask is backpressured at least this long per second is "backpressured".
BACKPRESSURED_MS_PER_SECOND = 100.0
#: A backpressure root must be at least this busy (ms/s) on its busiest subtask.
ROOT_BUSY_MS_PER_SECOND = 500.0
#: Below this busy time the capacity is an extrapolation over more than 10x: said so in the findings.
LOW_BUSY_MS_PER_SECOND = 100.0
#: Vertex names of Flink's SQL planner operators: skew remedies then include the two-phase aggregation config.
_SQL_OPERATOR_MARKERS = ("WindowAggregate", "GroupAggregate", "Calc[", "TableSourceScan", "PythonCalc[")


#: A derived figure of a profile: unknown (None) when the metrics behind it are missing; the formula says why.
Derived = Explained[float | None]
RATE = "records/s"
AMPLIFICATION = "records per source record"


@dataclass(frozen=True)
class EdgeProfile:
    source: str
    target: str
    ship_strategy: str
    records_per_second: float | None
    output_ratio: Derived
    bytes_per_second: float | None
    bytes_per_record: float | None


@dataclass(frozen=True)
class VertexProfile:
    """One vertex over the window. Rates are sums over subtasks; times are ms per second."""

    vertex_id: str
    name: str
    parallelism: int
    max_parallelism: int
    is_source: bool
    is_sink: bool
    keyed: bool
    records_in_per_second: float | None
    records_out_per_second: float | None
    bytes_in_per_second: float | None
    bytes_out_per_second: float | None
    bytes_per_record_in: float | None
    bytes_per_record_out: float | None
    busy_ms_per_second_max: float | None
    busy_ms_per_second_avg: float | None
    backpressured_ms_per_second_max: float | None
    backpressured_ms_per_second_avg: float | None
    idle_ms_per_second_avg: float | None
    utilization: float | None
    # Per subtask: records in / busy seconds (None where busy time is unknown or zero).
    true_processing_rate_per_subtask: tuple[float | None, ...]
    true_processing_rate_busiest_subtask: Derived
    capacity: Derived
    amplification: Derived
    sustainable_source_rate: Derived
    pending_records: float | None
    pending_records_per_second: float | None
    key_groups_per_subtask_min: int | None
    key_groups_per_subtask_max: int | None
    key_group_layout_imbalance: float | None
    skew: VertexSkew
    notes: tuple[str, ...] = ()

    @property
    def backpressured(self) -> bool:
        return (self.backpressured_ms_per_second_max or 0.0) >= BACKPRESSURED_MS_PER_SECOND


@dataclass(frozen=True)
class CheckpointProfile:
    completed: int
    failed: int
    in_progress: int
    last_duration_ms: float | None
    avg_duration_ms: float | None
    max_duration_ms: float | None
    last_size_bytes: int | None
    state_size_bytes: int | None
    avg_alignment_ms: float | None
    interval_ms: float | None


@dataclass(frozen=True)
class ProfileAnalysis:
    job_id: str
    job_name: str
    timestamp: float
    window_seconds: float
    vertices: tuple[VertexProfile, ...]
    edges: tuple[EdgeProfile, ...]
    source_read_rate: float | None
    source_lag_growth_per_second: float | None
    current_source_rate: Derived
    bottleneck: str | None
    backpressure_root: str | None
    max_sustainable_source_rate: Derived
    headroom: Derived
    checkpoints: CheckpointProfile | None
    state_size_bytes: int | None
    skew: SkewReport
    findings: tuple[str, ...]
    state_advice: tuple[StateAdvice, ...] | None = None
    notes: tuple[str, ...] = ()

    def vertex(self, vertex_id: str) -> VertexProfile:
        for v in self.vertices:
            if v.vertex_id == vertex_id:
                return v
        raise KeyError(vertex_id)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["skew"] = self.skew.to_dict()
        _value_and_formula(self, data)
        for edge, raw in zip(self.edges, data["edges"], strict=True):
            _value_and_formula(edge, raw)
        for vertex, raw in zip(self.vertices, data["vertices"], strict=True):
            _value_and_formula(vertex, raw)
            raw["skew"] = json_finite(asdict(vertex.skew))
            raw["backpressured"] = vertex.backpressured
        data["state_advice"] = _jsonable(self.state_advice)
        cleaned: dict[str, Any] = json_finite(data)
        return cleaned


def _value_and_formula(item: Any, raw: dict[str, Any]) -> None:
    """The profile's JSON (``flinkscale.profile/v1``) writes a derived figure as its value and formula."""
    for name, value in vars(item).items():
        if isinstance(value, Explained):
            raw[name] = {"value": value.value, "formula": value.formula}


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def looks_like_sql_job(snapshot: MetricsSnapshot) -> bool:
    """True when vertex names carry Flink SQL planner operators (then SQL skew remedies apply)."""
    return any(marker in v.name for v in snapshot.vertices for marker in _SQL_OPERATOR_MARKERS)


def short_name(name: str, limit: int = 48) -> str:
    """A vertex name people can read: Flink chains names with ' -> ' and they get long."""
    # SQL jobs name every table with its catalog and database: noise for people.
    name = name.replace("default_catalog.default_database.", "")
    parts = name.split(" -> ")
    first = parts[0].split("[")[0].strip()
    label = first if len(parts) == 1 else f"{first} (+{len(parts) - 1} chained)"
    return label if len(label) <= limit else label[: limit - 1] + "…"


# --- analysis -------------------------------------------------------------------------------------------------
def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def _vertex_input(vertex: Vertex) -> float | None:
    """Records into a vertex; a source that reports no input counts what it emits."""
    m = vertex.metrics
    if vertex.is_source and not m.num_records_in_per_second and m.num_records_out_per_second:
        return m.num_records_out_per_second
    return m.num_records_in_per_second


def _edge_profiles(snapshot: MetricsSnapshot) -> tuple[EdgeProfile, ...]:
    edges = []
    for edge in snapshot.edges:
        upstream, downstream = snapshot.vertex(edge.source), snapshot.vertex(edge.target)
        fan_out, fan_in = len(snapshot.outputs_of(edge.source)), len(snapshot.inputs_of(edge.target))
        # Flink counts records per vertex, not per edge: an edge's rate is exact when it is the target's only
        # input or the upstream's only output, and an even split of the upstream's output otherwise.
        if fan_in == 1:
            records, basis = downstream.metrics.num_records_in_per_second, f"records in of {edge.target}"
            shipped_bytes = downstream.metrics.num_bytes_in_per_second
        else:
            out = upstream.metrics.num_records_out_per_second
            records = None if out is None else out / fan_out
            basis = f"records out of {edge.source}" + (f" / {fan_out} outputs" if fan_out > 1 else "")
            out_bytes = upstream.metrics.num_bytes_out_per_second
            shipped_bytes = None if out_bytes is None else out_bytes / fan_out
        upstream_in = _vertex_input(upstream)
        ratio = _ratio(records, upstream_in)
        formula = (f"output ratio = {basis} / records in of {edge.source} = "
                   f"{_num(records)} / {_num(upstream_in)} = {_num(ratio, 4)}")
        output_ratio: Derived = Explained(ratio, "records per record in", formula)
        edges.append(EdgeProfile(edge.source, edge.target, edge.ship_strategy.value, records, output_ratio,
                                 shipped_bytes, _ratio(shipped_bytes, records)))
    return tuple(edges)


def _amplifications(snapshot: MetricsSnapshot, edges: Sequence[EdgeProfile],
                    source_total: float | None) -> dict[str, Derived]:
    by_target: dict[str, list[EdgeProfile]] = {}
    for e in edges:
        by_target.setdefault(e.target, []).append(e)
    result: dict[str, Derived] = {}
    for vertex in snapshot.topological_order():
        inputs = by_target.get(vertex.id, [])
        if not inputs:
            own = _vertex_input(vertex)
            share = _ratio(own, source_total)
            result[vertex.id] = Explained(share, AMPLIFICATION, f"source share = {_num(own)} / {_num(source_total)} "
                                                                f"records/s read by all sources = {_num(share, 4)}")
            continue
        terms = [(result[e.source].value, e.output_ratio.value, e.source) for e in inputs]
        if any(a is None or r is None for a, r, _ in terms):
            result[vertex.id] = Explained(None, AMPLIFICATION, "unknown: an upstream rate is missing")
            continue
        total = sum(a * r for a, r, _ in terms if a is not None and r is not None)
        parts = " + ".join(f"amp({s}) {a:.4g} x ratio {r:.4g}" for a, r, s in terms)
        result[vertex.id] = Explained(total, AMPLIFICATION,
                                      f"amplification = {parts} = {total:.4g} records per source record")
    return result


def _vertex_profile(snapshot: MetricsSnapshot, vertex: Vertex, skew: VertexSkew,
                    amplification: Derived) -> VertexProfile:
    m = vertex.metrics
    notes: list[str] = []
    records_in = _vertex_input(vertex)
    per_subtask = tuple(
        _ratio(s.num_records_in_per_second, None if s.busy_time_ms_per_second is None
               else s.busy_time_ms_per_second / 1000) for s in m.subtasks)
    busy_max = m.busy_time_ms_per_second_max
    busiest = max(m.subtasks, key=lambda s: s.busy_time_ms_per_second or -1.0) if m.subtasks else None
    tpr: Derived
    capacity: Derived
    sustainable: Derived
    if busiest is not None and busiest.busy_time_ms_per_second and busiest.num_records_in_per_second is not None:
        tpr_value = true_processing_rate(busiest.num_records_in_per_second, busiest.busy_time_ms_per_second)
        tpr = Explained(tpr_value, "records per busy second",
                        f"TPR(subtask {busiest.index}) = {_num(busiest.num_records_in_per_second)} "
                        f"records/s / {busiest.busy_time_ms_per_second / 1000:.3f} busy s/s = "
                        f"{_num(tpr_value)} records per busy second")
    else:
        tpr = Explained(None, "records per busy second", "unknown: no per-subtask records and busy time")
    if busy_max is None:
        capacity = Explained(None, RATE, "unknown: Flink reported no busy time (NaN)")
        notes.append("no busy time reported (NaN): capacity unknown")
    elif busy_max <= 0:
        capacity = Explained(math.inf, RATE, "unbounded: busy 0 ms/s")
    elif records_in is None:
        capacity = Explained(None, RATE, "unknown: no input rate")
    else:
        value = true_processing_rate(records_in, busy_max)
        capacity = Explained(value, RATE, f"capacity = records in / (busy max / 1000) = {_num(records_in)} / "
                                          f"{busy_max / 1000:.3f} = {_num(value)} records/s into the vertex "
                                          f"(= TPR of the busiest subtask x p / its record share)")
        if busy_max < LOW_BUSY_MS_PER_SECOND:
            notes.append(f"only {busy_max:.0f} ms/s busy: capacity extrapolated {1000 / busy_max:.0f}x, rough")
    amp = amplification.value
    if capacity.value is None or amp is None:
        sustainable = Explained(None, RATE, "unknown: " + ("capacity" if capacity.value is None
                                                           else "amplification") + " unknown")
    elif amp <= 0:
        sustainable = Explained(math.inf, RATE, "unbounded: the vertex receives no records")
    else:
        value = capacity.value / amp
        sustainable = Explained(value, RATE, f"sustainable source rate = capacity / amplification = "
                                             f"{_num(capacity.value)} / {amp:.4g} = {_num(value)} records/s")
    keyed = snapshot.is_keyed(vertex.id)
    groups = key_groups_per_subtask(vertex.max_parallelism, vertex.parallelism) if keyed else ()
    return VertexProfile(
        vertex_id=vertex.id, name=vertex.name, parallelism=vertex.parallelism, max_parallelism=vertex.max_parallelism,
        is_source=vertex.is_source or not snapshot.inputs_of(vertex.id), is_sink=vertex.is_sink, keyed=keyed,
        records_in_per_second=records_in, records_out_per_second=m.num_records_out_per_second,
        bytes_in_per_second=m.num_bytes_in_per_second, bytes_out_per_second=m.num_bytes_out_per_second,
        bytes_per_record_in=_ratio(m.num_bytes_in_per_second, m.num_records_in_per_second),
        bytes_per_record_out=_ratio(m.num_bytes_out_per_second, m.num_records_out_per_second),
        busy_ms_per_second_max=busy_max, busy_ms_per_second_avg=m.busy_time_ms_per_second_avg,
        backpressured_ms_per_second_max=m.back_pressured_time_ms_per_second_max,
        backpressured_ms_per_second_avg=m.back_pressured_time_ms_per_second_avg,
        idle_ms_per_second_avg=m.idle_time_ms_per_second_avg,
        utilization=None if busy_max is None else busy_max / 1000,
        true_processing_rate_per_subtask=per_subtask, true_processing_rate_busiest_subtask=tpr,
        capacity=capacity, amplification=amplification, sustainable_source_rate=sustainable,
        pending_records=m.pending_records, pending_records_per_second=m.pending_records_per_second,
        key_groups_per_subtask_min=min(groups) if groups else None,
        key_groups_per_subtask_max=max(groups) if groups else None,
        key_group_layout_imbalance=layout_imbalance(vertex.max_parallelism, vertex.parallelism) if keyed else None,
        skew=skew, notes=tuple(notes))


def backpressure_root(snapshot: MetricsSnapshot, vertices: Mapping[str, VertexProfile]) -> str | None:
    """The first busy, not backpressured vertex downstream of a backpressured one (what slows the job now)."""
    for vertex in snapshot.topological_order():
        if not vertices[vertex.id].backpressured:
            continue
        frontier = [e.target for e in snapshot.outputs_of(vertex.id)]
        seen: set[str] = set()
        while frontier:
            vid = frontier.pop(0)
            if vid in seen:
                continue
            seen.add(vid)
            candidate = vertices[vid]
            if candidate.backpressured:
                frontier.extend(e.target for e in snapshot.outputs_of(vid))
            elif (candidate.busy_ms_per_second_max or 0.0) >= ROOT_BUSY_MS_PER_SECOND:
                return vid
    return None


def _checkpoint_profile(stats: CheckpointStats | None) -> CheckpointProfile | None:
    if stats is None:
        return None
    return CheckpointProfile(stats.completed, stats.failed, stats.in_progress, stats.last_duration_ms,
                             stats.avg_duration_ms, stats.max_duration_ms, stats.last_size_bytes,
                             stats.state_size_bytes, stats.avg_alignment_ms, stats.interval_ms)


def analyze_profile(snapshot: MetricsSnapshot, *, skew_threshold: float | None = None,
                    include_state_advice: bool = True) -> ProfileAnalysis:
    """The profile of one (merged) snapshot: per-vertex figures, bottleneck, limits, findings."""
    if not snapshot.vertices:
        raise InputError("the snapshot has no vertices", field="snapshot.vertices")
    skew_kwargs: dict[str, Any] = {"sql_job": looks_like_sql_job(snapshot)}
    if skew_threshold is not None:
        skew_kwargs["threshold"] = skew_threshold
    skew = analyze_skew(snapshot, **skew_kwargs)
    skew_by_id = {v.vertex_id: v for v in skew.vertices}
    sources = snapshot.sources()
    read = [_vertex_input(v) for v in sources]
    source_total = None if any(r is None for r in read) else sum(r for r in read if r is not None)
    lag_growth_values = [v.metrics.pending_records_per_second for v in sources
                         if v.metrics.pending_records_per_second is not None]
    lag_growth = sum(lag_growth_values) if lag_growth_values else None
    edges = _edge_profiles(snapshot)
    amplifications = _amplifications(snapshot, edges, source_total)
    profiles = {v.id: _vertex_profile(snapshot, v, skew_by_id[v.id], amplifications[v.id])
                for v in snapshot.topological_order()}
    ordered = tuple(profiles.values())

    known = [v for v in ordered if v.sustainable_source_rate.value is not None]
    bottleneck = min(known, key=lambda v: v.sustainable_source_rate.value or 0.0) if known else None
    max_rate: Derived = (bottleneck.sustainable_source_rate if bottleneck
                         else Explained(None, RATE, "unknown: no vertex capacity"))
    if bottleneck is not None:
        max_rate = Explained(max_rate.value, RATE, f"min over vertices of the sustainable source rate, reached at "
                                                   f"{short_name(bottleneck.name)}: {max_rate.formula}")
    growth = max(lag_growth or 0.0, 0.0)
    current_value = None if source_total is None else source_total + growth
    current = Explained(current_value, RATE, f"current source rate = read {_num(source_total)} + lag growth "
                                             f"{_num(growth)} = {_num(current_value)} records/s")
    headroom_value = _ratio(max_rate.value, current_value)
    headroom = Explained(headroom_value, "x", f"headroom = max sustainable / current = {_num(max_rate.value)} / "
                                              f"{_num(current_value)} = {_num(headroom_value, 3)}")
    root = backpressure_root(snapshot, profiles)
    checkpoints = _checkpoint_profile(snapshot.checkpoints)
    state_size = snapshot.checkpoints.state_size_bytes if snapshot.checkpoints else None
    analysis = ProfileAnalysis(
        job_id=snapshot.job_id, job_name=snapshot.job_name, timestamp=snapshot.timestamp,
        window_seconds=snapshot.window_seconds, vertices=ordered, edges=edges, source_read_rate=source_total,
        source_lag_growth_per_second=lag_growth, current_source_rate=current,
        bottleneck=bottleneck.vertex_id if bottleneck else None, backpressure_root=root,
        max_sustainable_source_rate=max_rate, headroom=headroom, checkpoints=checkpoints,
        state_size_bytes=state_size, skew=skew, findings=(),
        state_advice=advise_state(snapshot) if include_state_advice else None, notes=snapshot.notes)
    return _with_findings(analysis)


def _with_findings(analysis: ProfileAnalysis) -> ProfileAnalysis:
    from dataclasses import replace

    return replace(analysis, findings=tuple(findings(analysis)))


def findings(analysis: ProfileAnalysis) -> list[str]:
    """Plain-language findings, most important first."""
    out: list[str] = []
    if analysis.bottleneck is not None:
        b = analysis.vertex(analysis.bottleneck)
        util = f"{(b.utilization or 0) * 100:.0f}% busy" if b.utilization is not None else "busy time unknown"
        out.append(f"{short_name(b.name)} is the bottleneck: {util} at {_rate(b.records_in_per_second)}; "
                   f"sustainable source rate ~{_rate(analysis.max_sustainable_source_rate.value)}.")
    else:
        out.append("No bottleneck could be computed: no vertex reported both input rate and busy time.")
    if analysis.headroom.value is not None:
        h = analysis.headroom.value
        if h < 1.0:
            out.append(f"The job cannot keep up: offered {_rate(analysis.current_source_rate.value)} is "
                       f"{1 / h:.2f}x what it can sustain; consumer lag grows.")
        else:
            out.append(f"Headroom {h:.2f}x: the sources read {_rate(analysis.current_source_rate.value)} of a "
                       f"sustainable ~{_rate(analysis.max_sustainable_source_rate.value)}.")
    if analysis.backpressure_root is not None:
        root = analysis.vertex(analysis.backpressure_root)
        same = analysis.backpressure_root == analysis.bottleneck
        out.append(f"Backpressure: {short_name(root.name)} is the root of the backpressure chain "
                   f"({(root.busy_ms_per_second_max or 0):.0f} ms/s busy)"
                   + ("." if same else "; it limits the job now, ahead of the projected bottleneck."))
    for v in analysis.vertices:
        # A skewed vertex that is nearly idle limits nothing: the skew report keeps it, the findings do not.
        if v.skew.skewed and v.skew.bottleneck and v.skew.observed_max_over_mean is not None:
            best = v.skew.recommendations[0].title if v.skew.recommendations else "no remedy found"
            out.append(f"{short_name(v.name)} is skewed: busiest subtask {v.skew.observed_max_over_mean:.2f}x the "
                       f"mean ({v.skew.observed_basis.replace('_', ' ')}); key-group layout explains "
                       f"{v.skew.layout_imbalance:.2f}x; suggested: {best}.")
        for note in v.notes:
            out.append(f"{short_name(v.name)}: {note}.")
    if analysis.checkpoints and analysis.checkpoints.failed:
        out.append(f"{analysis.checkpoints.failed} checkpoint(s) failed.")
    return out


def _num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "?"
    if math.isinf(value):
        return "inf"
    return f"{value:,.{digits}f}" if digits == 0 else f"{value:.{digits}g}"


def _rate(value: float | None) -> str:
    if value is None:
        return "? ev/s"
    if math.isinf(value):
        return "unbounded"
    return format_rate(value)


# --- the profile document ------------------------------------------------------------------------------------
def sample_summary(snapshot: MetricsSnapshot) -> dict[str, Any]:
    """One sample, compact, for timelines: per vertex rates, busy and backpressure (max), lag."""
    return {
        "timestamp": snapshot.timestamp, "window_seconds": snapshot.window_seconds,
        "vertices": {v.id: {"records_in_per_second": v.metrics.num_records_in_per_second,
                            "records_out_per_second": v.metrics.num_records_out_per_second,
                            "busy_ms_per_second_max": v.metrics.busy_time_ms_per_second_max,
                            "backpressured_ms_per_second_max": v.metrics.back_pressured_time_ms_per_second_max,
                            "pending_records": v.metrics.pending_records}
                     for v in snapshot.vertices},
    }


def profile_document(merged: MetricsSnapshot, samples: Sequence[MetricsSnapshot], analysis: ProfileAnalysis, *,
                     calls_per_sample: int, skipped: Sequence[str]) -> dict[str, Any]:
    """The profile JSON (docs/profile-schema.md); ``flinkscale plan --from-profile`` reads its ``snapshot``."""
    document: dict[str, Any] = json_finite({
        "schema": PROFILE_SCHEMA, "snapshot": merged.to_dict(), "samples": [sample_summary(s) for s in samples],
        "analysis": analysis.to_dict(), "calls_per_sample": calls_per_sample, "skipped": list(skipped)})
    return document


def check_profile_document(data: Any) -> Mapping[str, Any]:
    """Validates the envelope of a profile JSON read back (schema name and required keys)."""
    if not isinstance(data, Mapping):
        raise InputError("a profile must be a JSON object", field="profile")
    if data.get("schema") != PROFILE_SCHEMA:
        raise InputError(f"expected {PROFILE_SCHEMA!r}, got {data.get('schema')!r}", field="schema")
    for key in ("snapshot", "samples", "analysis"):
        if key not in data:
            raise InputError("is required", field=key)
    return data
