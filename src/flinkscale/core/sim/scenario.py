"""Scenario files: a pipeline, a workload trace, a cluster and the policies to compare, in YAML.

``parse_scenario`` takes the YAML text (or the already-loaded mapping) and returns a validated ``Scenario``;
``parse_trace`` reads just a ``trace:`` mapping (the load generator shares the trace format).
It reads no files itself: a ``replay`` trace names a CSV file, and the caller passes ``read_text`` to fetch it
(the CLI reads the file relative to the scenario), keeping this module pure. Every error is an
``InputError`` with the path of the offending field (``pipeline.vertices[2].capacity: ...``), and unknown
keys are errors too, because a typo silently ignored is a wrong simulation.

Rates and sizes use the one unit parser (``40k/s``, ``1TB/day``, ``500mb``); a byte rate becomes a record
rate through ``event_bytes``. The format is documented with examples in docs/simulate.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from flinkscale.core.errors import InputError, float_of
from flinkscale.core.inputs import load_yaml
from flinkscale.core.keygroups import default_max_parallelism
from flinkscale.core.policy.base import LOAD_KEEP_SECONDS, LOAD_SAMPLE_SECONDS, History
from flinkscale.core.shedding import ShedSettings
from flinkscale.core.sim.keyload import FloatArray, KeyDistribution
from flinkscale.core.sim.model import CheckpointSpec, ClusterSpec, RescaleSpec, SimEdge, SimPipeline, SimVertex
from flinkscale.core.sim.run import SimConfig
from flinkscale.core.sim.traces import (
    ConstantTrace,
    DiurnalTrace,
    Noise,
    RampTrace,
    SpikesTrace,
    StepTrace,
    Trace,
    parse_rate_csv,
)
from flinkscale.core.snapshot import ShipStrategy
from flinkscale.core.units import parse_duration, parse_rate, parse_size

ReadText = Callable[[str], str]

TRACE_TYPES = ("constant", "step", "ramp", "diurnal", "spikes", "replay")


@dataclass(frozen=True)
class Scenario:
    name: str
    pipeline: SimPipeline
    trace: Trace
    config: SimConfig
    description: str = ""
    event_bytes: float | None = None
    policies: tuple[str, ...] = ()
    policy_settings: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # Policies that start at the peak-provisioned parallelism (static = peak capacity all day).
    peak_provisioned: tuple[str, ...] = ("static",)
    peak_utilization: float = 0.8
    # Seconds of the trace BEFORE the simulated period whose load the policies start with (the history a
    # state store would hold): the trace runs for history + duration, the first part is not simulated.
    history_seconds: float = 0.0

    def _all_rates(self) -> FloatArray:
        return self.trace.rates(self.history_seconds + self.config.duration_seconds, self.config.step_seconds)

    def rates(self) -> FloatArray:
        """The offered rate of every simulated step."""
        skip = round(self.history_seconds / self.config.step_seconds)
        rates: FloatArray = self._all_rates()[skip:]
        return rates

    def prior_history(self) -> History:
        """A ``History`` holding only the load of the ``history_seconds`` before the run (one sample a
        minute, at negative timestamps: the run starts at 0)."""
        if self.history_seconds <= 0:
            return History()
        step = self.config.step_seconds
        skip = round(self.history_seconds / step)
        prior = self._all_rates()[:skip]
        per_sample = max(1, round(LOAD_SAMPLE_SECONDS / step))
        samples = []
        for start in range(0, len(prior) - per_sample + 1, per_sample):
            end_time = (start + per_sample) * step - self.history_seconds
            samples.append((end_time, float(prior[start:start + per_sample].mean())))
        return History(load=tuple(samples))


_T = TypeVar("_T")

# Bounds that keep a scenario's numbers finite through the model (rates, capacities, factors) and its run
# bounded in memory and time: at most MAX_STEPS steps (about 11 days at 1 s steps, a year at 1 min steps).
MAX_NUMBER = 1e12
MAX_SECONDS = 10 * 365 * 86400.0
MAX_STEPS = 1_000_000


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _v(value: _T | None) -> _T:
    """A field read with a default or as required, which therefore cannot be None."""
    if value is None:
        raise AssertionError("a defaulted or required field read as None")
    return value


class _Fields:
    """A mapping read field by field; ``done()`` rejects any key nobody asked for."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, Mapping):
            raise InputError(f"must be a mapping, got {type(data).__name__}", field=where)
        self.data = data
        self.where = where
        self.seen: set[str] = set()

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = None, required: bool = False) -> Any:
        self.seen.add(key)
        if key not in self.data or self.data[key] is None:
            if required:
                raise InputError("is required", field=self.path(key))
            return default
        return self.data[key]

    def _in_range(self, key: str, value: float, above: float | None, minimum: float | None,
                  maximum: float | None) -> None:
        if above is not None and not value > above:
            raise InputError(f"must be > {above:g}, got {value:g}", field=self.path(key))
        if minimum is not None and not value >= minimum:
            raise InputError(f"must be >= {minimum:g}, got {value:g}", field=self.path(key))
        if maximum is not None and not value <= maximum:
            raise InputError(f"must be <= {maximum:g}, got {value:g}", field=self.path(key))

    def number(self, key: str, default: float | None = None, required: bool = False, *, above: float | None = None,
               minimum: float | None = None, maximum: float | None = MAX_NUMBER) -> float | None:
        value = self.raw(key, default, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"must be a number, got {_short(value)}", field=self.path(key))
        number = float_of(value, self.path(key))
        if not math.isfinite(number):
            raise InputError(f"must be a finite number, got {number}", field=self.path(key))
        self._in_range(key, number, above, minimum, maximum)
        return number

    def integer(self, key: str, default: int | None = None, required: bool = False, *, minimum: int | None = None,
                maximum: int | None = 2**31 - 1) -> int | None:
        value = self.raw(key, default, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"must be an integer, got {_short(value)}", field=self.path(key))
        self._in_range(key, value, None, minimum, maximum)
        return value

    def duration(self, key: str, default: float | None = None, required: bool = False, *,
                 above: float | None = None, maximum: float | None = MAX_SECONDS) -> float | None:
        value = self.raw(key, default, required)
        if value is None:
            return None
        seconds = parse_duration(value, field=self.path(key))
        self._in_range(key, seconds, above, None, maximum)
        return seconds

    def rate(self, key: str, event_bytes: float | None, required: bool = False,
             default: float | None = None, *, above: float | None = None) -> float | None:
        value = self.raw(key, default, required)
        if value is None:
            return None
        parsed = parse_rate(value, field=self.path(key))
        if parsed.is_bytes:
            if event_bytes is None:
                raise InputError(f"{_short(value)} is a byte rate: set event_bytes to turn it into records/s",
                                 field=self.path(key))
            records = parsed.records_per_second(event_bytes)
        else:
            records = parsed.per_second
        self._in_range(key, records, above, None, MAX_NUMBER)
        return records

    def boolean(self, key: str, default: bool) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise InputError(f"must be true or false, got {value!r}", field=self.path(key))
        return value

    def fraction(self, key: str, default: float) -> float:
        """A number or a percentage ("2%" = 0.02)."""
        value = self.raw(key, default)
        if isinstance(value, str) and value.strip().endswith("%"):
            try:
                return float(value.strip()[:-1]) / 100.0
            except ValueError:
                raise InputError(f"not a percentage: {value!r}", field=self.path(key)) from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"must be a number or a percentage, got {value!r}", field=self.path(key))
        return float_of(value, self.path(key))

    def text(self, key: str, default: str = "") -> str:
        value = self.raw(key, default)
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise InputError(f"must be a text, got {_short(value)}", field=self.path(key))
        return str(value)

    def done(self) -> None:
        unknown = sorted(set(map(str, self.data)) - self.seen)
        if unknown:
            raise InputError(f"unknown field(s) {unknown}", field=self.where or "scenario")


def parse_scenario(source: str | Mapping[str, Any], read_text: ReadText | None = None) -> Scenario:
    """A validated ``Scenario`` from YAML text or a mapping."""
    data = load_yaml(source, "scenario") if isinstance(source, str) else source
    top = _Fields(data, "")
    event_bytes_value = top.raw("event_bytes")
    event_bytes = None if event_bytes_value is None else float(parse_size(event_bytes_value, field="event_bytes"))
    if event_bytes is not None and event_bytes <= 0:
        raise InputError("must be > 0", field="event_bytes")
    name = top.text("name", "scenario")
    pipeline = _pipeline(top.raw("pipeline", required=True), event_bytes, name)
    trace = parse_trace(top.raw("trace", required=True), event_bytes, read_text)
    cluster = _cluster(top.raw("cluster", {}))
    rescale = _rescale(top.raw("rescale", {}))
    checkpoints = _checkpoints(top.raw("checkpoints", {}))
    shedding = _shedding(top.raw("shedding"), event_bytes)
    duration = _v(top.duration("duration", 3600.0, above=0))
    step = _v(top.duration("step", 1.0, above=0))
    if duration / step > MAX_STEPS:
        raise InputError(f"{duration:g}s at {step:g}s steps is more than {MAX_STEPS:,} steps; use a longer step",
                         field="step" if top.has("step") else "duration")
    config = SimConfig(
        duration_seconds=duration,
        step_seconds=step,
        decision_interval_seconds=_v(top.duration("decision_interval", 60.0, above=0)),
        metrics_window_seconds=_v(top.duration("metrics_window", 60.0, above=0)),
        latency_target_seconds=_v(top.duration("latency_target", 60.0, above=0)),
        buffer_seconds=_v(top.duration("buffer", 4.0)),
        cluster=cluster, rescale=rescale, checkpoints=checkpoints,
        subtask_metrics=top.boolean("subtask_metrics", False), shedding=shedding)
    policies, settings = _policies(top.raw("policies", []))
    peak = _Fields(top.raw("peak_provisioning", {}), "peak_provisioning")
    peak_policies = peak.raw("policies", ["static"])
    if not isinstance(peak_policies, list):
        raise InputError("must be a list of policy names", field="peak_provisioning.policies")
    peak_utilization = _v(peak.number("utilization", 0.8, above=0, maximum=1))
    if not 0 < peak_utilization <= 1:
        raise InputError(f"must be in (0, 1], got {peak_utilization}", field="peak_provisioning.utilization")
    peak.done()
    description = top.text("description", "")
    history_seconds = _v(top.duration("history", 0.0))
    if history_seconds < 0:
        raise InputError(f"must be >= 0, got {history_seconds}", field="history")
    if history_seconds > LOAD_KEEP_SECONDS:  # the trace is evaluated over the history too, step by step
        raise InputError(f"must be at most {LOAD_KEEP_SECONDS / 86400:g} days (the load a policy keeps), got "
                         f"{history_seconds / 86400:g} days", field="history")
    if config.metrics_window_seconds > duration:  # the engine keeps a window of per-subtask samples that long
        raise InputError(f"{config.metrics_window_seconds:g}s is longer than the run ({duration:g}s)",
                         field="metrics_window")
    top.done()
    return Scenario(name=name, description=description.strip(), pipeline=pipeline, trace=trace, config=config,
                    event_bytes=event_bytes, policies=policies, policy_settings=settings,
                    peak_provisioned=tuple(str(p) for p in peak_policies), peak_utilization=peak_utilization,
                    history_seconds=history_seconds)


def _pipeline(data: Any, event_bytes: float | None, name: str) -> SimPipeline:
    fields = _Fields(data, "pipeline")
    default_max_p = fields.integer("max_parallelism")
    raw_vertices = fields.raw("vertices", required=True)
    if not isinstance(raw_vertices, list) or not raw_vertices:
        raise InputError("must be a non-empty list", field="pipeline.vertices")
    vertices = []
    not_sources: dict[str, str] = {}  # vertices declared `source: false` -> where
    for i, raw in enumerate(raw_vertices):
        where = f"pipeline.vertices[{i}]"
        v = _Fields(raw, where)
        vid = v.text("id")
        if v.has("source") and v.boolean("source", False) is False:
            not_sources[vid] = where
        parallelism = _v(v.integer("parallelism", 1, minimum=1, maximum=32768))
        max_p = v.integer("max_parallelism", default_max_p, minimum=1, maximum=32768)
        if max_p is None:
            max_p = default_max_parallelism(max(parallelism, 1))
        state = v.raw("state", 0)
        vertices.append(SimVertex(
            id=vid, name=v.text("name", ""), parallelism=parallelism, max_parallelism=max_p,
            capacity=_v(v.rate("capacity", event_bytes, required=True, above=0)),
            is_source=v.boolean("source", False), partitions=v.integer("partitions", minimum=1),
            state_bytes=float(parse_size(state, field=f"{where}.state")), where=where))
        v.done()
    edges = []
    raw_edges = fields.raw("edges", []) or []
    if not isinstance(raw_edges, list):
        raise InputError(f"must be a list of edges, got {_short(raw_edges)}", field="pipeline.edges")
    for i, raw in enumerate(raw_edges):
        where = f"pipeline.edges[{i}]"
        e = _Fields(raw, where)
        ship_text = e.text("ship", "REBALANCE")
        ship = ShipStrategy.parse(ship_text)
        if ship is ShipStrategy.UNKNOWN:
            raise InputError(f"unknown ship strategy {ship_text!r} (HASH, REBALANCE, FORWARD, RESCALE, BROADCAST, "
                             "GLOBAL)", field=f"{where}.ship")
        keys = KeyDistribution()
        if e.has("keys"):
            if ship is not ShipStrategy.HASH:
                raise InputError("only a HASH (keyed) edge has a key distribution", field=f"{where}.keys")
            keys = _keys(e.raw("keys"), f"{where}.keys")
        edges.append(SimEdge(source=e.text("from"), target=e.text("to"), ship_strategy=ship,
                             selectivity=_v(e.number("selectivity", 1.0, minimum=0, maximum=1e6)),
                             key_distribution=keys, where=where))
        e.done()
    fields.done()
    fed = {edge.target for edge in edges}
    for vid, where in not_sources.items():
        if vid not in fed:  # the simulator feeds the trace to every vertex without inputs, as Flink reads sources
            raise InputError("has no input edge, so records enter the job here: a vertex without inputs is a source "
                             "(drop 'source: false', or give it an edge in)", field=f"{where}.source")
    return SimPipeline(tuple(vertices), tuple(edges), name=name)


def _keys(data: Any, where: str) -> KeyDistribution:
    k = _Fields(data, where)
    try:
        distribution = KeyDistribution(kind=k.text("distribution", "uniform"),
                                       keys=k.integer("count", minimum=1, maximum=10**8),
                                       exponent=_v(k.number("exponent", 1.0, minimum=0, maximum=100)))
    except InputError as exc:
        raise InputError(str(exc).split(": ", 1)[-1], field=f"{where}.{exc.field}") from None
    k.done()
    return distribution


def _noise(t: _Fields) -> Noise:
    return Noise(relative_stddev=_v(t.number("noise", 0.0, minimum=0, maximum=100)),
                 seed=_v(t.integer("seed", 0, minimum=0, maximum=2**63 - 1)))


def parse_trace(data: Any, event_bytes: float | None = None, read_text: ReadText | None = None) -> Trace:
    """A validated ``Trace`` from a scenario's ``trace:`` mapping (also what ``flinkscale load --profile`` reads).

    ``event_bytes`` turns byte rates (``1TB/day``) into records/s (a byte rate without it is an error);
    ``read_text(path)`` fetches a replay trace's CSV (none given: only ``csv_text`` works). Errors name the
    field as ``trace.<key>``; unknown keys are errors.
    """
    t = _Fields(data, "trace")
    kind = t.text("type", "")
    trace: Trace
    if kind == "constant":
        trace = ConstantTrace(rate=_v(t.rate("rate", event_bytes, required=True)), noise=_noise(t))
    elif kind == "step":
        trace = StepTrace(before=_v(t.rate("before", event_bytes, required=True)),
                          after=_v(t.rate("after", event_bytes, required=True)),
                          at_seconds=_v(t.duration("at", required=True)), noise=_noise(t))
    elif kind == "ramp":
        trace = RampTrace(start_rate=_v(t.rate("from", event_bytes, required=True)),
                          end_rate=_v(t.rate("to", event_bytes, required=True)),
                          start_seconds=_v(t.duration("start", 0.0)),
                          duration_seconds=_v(t.duration("over", required=True)), noise=_noise(t))
    elif kind == "diurnal":
        trace = DiurnalTrace(average=_v(t.rate("average", event_bytes, required=True)),
                             peak_factor=_v(t.number("peak_factor", 2.0, maximum=1e4)),
                             peak_at_seconds=_v(t.duration("peak_at", 14 * 3600.0)),
                             period_seconds=_v(t.duration("period", 86400.0, above=0)),
                             sharpness=t.number("sharpness", above=0, maximum=1000), noise=_noise(t))
    elif kind == "spikes":
        trace = SpikesTrace(base=_v(t.rate("base", event_bytes, required=True)),
                            factor=_v(t.number("factor", required=True, minimum=0, maximum=1e6)),
                            duration_seconds=_v(t.duration("duration", required=True)),
                            every_seconds=_v(t.duration("every", required=True)),
                            start_seconds=_v(t.duration("start", 0.0)), noise=_noise(t))
    elif kind == "replay":
        text = t.raw("csv_text")
        if text is None:
            path = t.raw("csv", required=True)
            if read_text is None:
                raise InputError("a replay trace needs its CSV text (no file reader given)", field="trace.csv")
            text = read_text(str(path))
        replay = parse_rate_csv(str(text))
        scale = _v(t.number("scale", 1.0, minimum=0, maximum=1e6))
        trace = replace(replay, rates_per_second=tuple(r * scale for r in replay.rates_per_second), noise=_noise(t))
    else:
        raise InputError(f"unknown trace type {kind!r} (one of {', '.join(TRACE_TYPES)})", field="trace.type")
    t.done()
    return trace


def _cluster(data: Any) -> ClusterSpec:
    c = _Fields(data, "cluster")
    spec = ClusterSpec(max_slots=_v(c.integer("max_slots", 10_000, minimum=1, maximum=10**7)),
                       slots_per_task_manager=_v(c.integer("slots_per_task_manager", 4, minimum=1, maximum=10**4)),
                       slot_sharing=c.boolean("slot_sharing", False))
    c.done()
    return spec


def _rescale(data: Any) -> RescaleSpec:
    r = _Fields(data, "rescale")
    bandwidth = r.raw("restore_bandwidth", "200MB/s")
    parsed = parse_rate(bandwidth, field="rescale.restore_bandwidth")
    if not parsed.is_bytes or not 0 < parsed.per_second <= 1e16:
        raise InputError(f"must be a byte rate above 0 such as 200MB/s, got {_short(bandwidth)}",
                         field="rescale.restore_bandwidth")
    spec = RescaleSpec(restart_seconds=_v(r.duration("restart_time", 30.0)),
                       restore_bytes_per_second=parsed.per_second, mode=r.text("mode", "savepoint"))
    r.done()
    return spec


def _checkpoints(data: Any) -> CheckpointSpec:
    c = _Fields(data, "checkpoints")
    spec = CheckpointSpec(interval_seconds=_v(c.duration("interval", 180.0, above=0)),
                          pause_seconds=_v(c.duration("pause", 0.0)))
    c.done()
    return spec


def _shedding(data: Any, event_bytes: float | None) -> ShedSettings | None:
    """``shedding:`` (absent = none): the accuracy target and the controller's knobs, as ``shed auto`` takes
    them (``target_error: 2%``, ``confidence: 95%``, ``window: 10s``, ``headroom: 0.9``, ...)."""
    if data is None:
        return None
    s = _Fields(data, "shedding")
    defaults = ShedSettings()
    try:
        settings = ShedSettings(
            target_error=s.fraction("target_error", defaults.target_error),
            confidence=s.fraction("confidence", defaults.confidence),
            window_seconds=_v(s.duration("window", defaults.window_seconds)),
            records_per_group=s.number("records_per_group"),
            sustainable_rate=s.rate("sustainable_rate", event_bytes),
            headroom=s.fraction("headroom", defaults.headroom),
            drain_seconds=_v(s.duration("drain", defaults.drain_seconds)),
            min_change=s.fraction("min_change", defaults.min_change),
            value_cv=_v(s.number("value_cv", defaults.value_cv)))
    except InputError as exc:
        if exc.field and not exc.field.startswith("shedding."):
            key = {"window_seconds": "window", "drain_seconds": "drain"}.get(exc.field, exc.field)
            raise InputError(str(exc).split(": ", 1)[-1], field=f"shedding.{key}") from None
        raise
    s.done()
    return settings


def _setting_text(value: Any) -> str:
    # Policies read settings as command-line text; YAML's true/false must read back the same way.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _policies(data: Any) -> tuple[tuple[str, ...], dict[str, Mapping[str, str]]]:
    if isinstance(data, str):
        return tuple(p.strip() for p in data.split(",") if p.strip()), {}
    if isinstance(data, list):
        return tuple(str(p) for p in data), {}
    if isinstance(data, Mapping):
        settings: dict[str, Mapping[str, str]] = {}
        for name, value in data.items():
            if value is not None and not isinstance(value, Mapping):
                raise InputError("policy settings must be a mapping", field=f"policies.{name}")
            settings[str(name)] = {str(k): _setting_text(v) for k, v in (value or {}).items()}
        return tuple(settings), settings
    raise InputError("must be a list of policy names or a mapping name -> settings", field="policies")


def apply_overrides(data: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the scenario mapping with dotted-path overrides applied (``trace.peak_factor`` -> 2.5)."""
    result: dict[str, Any] = _deep_copy(data)
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        node: Any = result
        for depth, part in enumerate(parts[:-1]):
            if isinstance(node, list):
                node = _list_item(node, part, ".".join(parts[: depth + 1]))
                continue
            if not isinstance(node, dict):
                raise InputError("cannot set a field inside a value", field=".".join(parts[:depth]))
            node = node.setdefault(part, {})
        last = parts[-1]
        if isinstance(node, list):
            index = _list_index(node, last, dotted)
            node[index] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise InputError("cannot set a field inside a value", field=dotted)
    return result


def _list_index(node: list[Any], part: str, where: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise InputError(f"no item {part!r} in a list of {len(node)}", field=where)
    return int(part)


def _list_item(node: list[Any], part: str, where: str) -> Any:
    # Vertices are easier to address by id than by position: pipeline.vertices.sessionize.capacity
    for item in node:
        if isinstance(item, dict) and str(item.get("id")) == part:
            return item
    return node[_list_index(node, part, where)]


def _deep_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value
