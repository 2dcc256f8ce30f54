"""``flink-operator``: the Flink Kubernetes Operator's autoscaler, rule for rule, as a pure policy.

Users compare and migrate with it, and we measure our own policy against it, so it reproduces the
operator's decisions rather than improving on them. It reads the operator's own option names
(``job.autoscaler.*``, also under the legacy ``kubernetes.operator.`` prefix) with the operator's
defaults. The rules, in the order they apply:

1. Blocks: the job is not RUNNING; GC pressure or heap usage over ``memory.*.threshold``; within
   ``stabilization.interval`` of the last (re)start or rescale; the ``metrics.window`` after the
   stabilization is not yet covered by snapshots (the operator never decides on a partial window).
2. Per vertex, from metrics averaged over the window: ``TPR = λ / busy ratio`` (busiest subtask). For a
   source whose lag is at least ``observed-true-processing-rate.lag-threshold`` of input, the observed
   ``λ / (1 - backpressured ratio)`` replaces it once ``min-observations`` exist and the busy-time TPR
   is more than ``1 + switch-threshold`` times their mean.
3. Target rate: ``λ + d(lag)/dt`` at sources, carried downstream by edge output ratios; the catch-up rate
   ``lag / catch-up.duration`` is carried the same way.
4. ``capacity(u) = catch_up + target x restart / catch_up_duration + target / u``. Out of bounds upward
   when ``TPR < catch_up + target / upper`` (no restart term), downward when ``TPR > capacity(lower)``;
   ``upper/lower = utilization.target +- target.utilization.boundary`` (or ``utilization.max/min``).
5. ``factor = capacity(utilization.target) / TPR`` clamped to ``[1 - scale-down.max-factor,
   1 + scale-up.max-factor]``; ``p' = ceil(factor x p)`` clamped to ``[vertex.min-parallelism,
   min(max parallelism, vertex.max-parallelism, partitions)]``, then, for a keyed vertex (or a source
   with known partitions), aligned to its key groups (partitions): the operator's search up for a
   divisor, else down to the fewest subtasks with the same busiest share.
6. Scale-down: none while any source's lag exceeds ``backlog-processing.lag-threshold`` of input;
   otherwise delayed until it has been asked for continuously for ``scale-down.interval`` and then to
   the highest parallelism recommended in that time (read back from earlier decisions in the history,
   ``numbers["recommended_parallelism"]``).
7. Optional (off by default, as in the operator): a vertex whose last scale-up realised less than
   ``scaling.effectiveness.threshold`` of the expected TPR gain is not scaled up again.
8. Nothing scales unless at least one vertex whose parallelism would change is out of its bounds; then
   every vertex with a changed parallelism is rescaled together.

One departure, for the property that no policy asks for slots that do not exist: a new parallelism is
capped at the slots the job may use (``snapshot.cluster``), which is what Flink's adaptive scheduler
would run anyway; the reason says when that cap bit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from flinkscale.core import rates
from flinkscale.core.keygroups import UPPER_BOUND_MAX_PARALLELISM
from flinkscale.core.policy import _evaluate as ev
from flinkscale.core.policy._frame import WindowedPolicy
from flinkscale.core.policy._settings import Setting, SettingKind, parse_settings
from flinkscale.core.policy.base import Decision, History, VertexDecision
from flinkscale.core.snapshot import MetricsSnapshot, Vertex

NAME = "flink-operator"
_PREFIX = "job.autoscaler."

_OPTIONS: tuple[tuple[str, SettingKind, str, str], ...] = (
    ("scaling.enabled", "bool", "true", "apply decisions; false = recommend only"),
    ("metrics.window", "duration", "15m", "metrics are averaged over this window, which must be full"),
    ("stabilization.interval", "duration", "5m", "no decision this long after a (re)start or rescale"),
    ("utilization.target", "fraction", "0.7", "target busy ratio of the busiest subtask"),
    ("target.utilization.boundary", "fraction", "0.3", "bounds = target +- boundary"),
    ("utilization.max", "fraction", "", "upper bound (overrides target + boundary)"),
    ("utilization.min", "fraction", "", "lower bound (overrides target - boundary)"),
    ("scale-down.interval", "duration", "1h", "a scale-down waits this long, then uses the max recommended"),
    ("vertex.min-parallelism", "int", "1", "lowest parallelism the autoscaler sets"),
    ("vertex.max-parallelism", "int", "200", "highest parallelism the autoscaler sets"),
    ("scale-down.max-factor", "fraction", "0.6", "a scale-down keeps at least (1 - this) of p"),
    ("scale-up.max-factor", "non_negative", "100000", "a scale-up sets at most (1 + this) x p"),
    ("catch-up.duration", "duration", "30m", "time to drain the lag after a rescale (0 = ignore lag)"),
    ("restart.time", "duration", "5m", "expected restart time of a rescale"),
    ("restart.time-tracking.enabled", "bool", "false", "use the max observed rescale time instead"),
    ("restart.time-tracking.limit", "duration", "15m", "cap on the tracked restart time"),
    ("backlog-processing.lag-threshold", "duration", "5m", "lag (in seconds of input) that blocks scale-down"),
    ("observed-true-processing-rate.lag-threshold", "duration", "30s", "lag that enables the observed TPR"),
    ("observed-true-processing-rate.switch-threshold", "non_negative", "0.15",
     "switch when busy-time TPR > (1 + this) x observed TPR"),
    ("observed-true-processing-rate.min-observations", "int", "2", "observations needed to switch"),
    ("scaling.effectiveness.detection.enabled", "bool", "false", "block scale-ups that did not help"),
    ("scaling.effectiveness.threshold", "fraction", "0.1", "fraction of the expected TPR gain that counts"),
    ("memory.gc-pressure.threshold", "fraction", "1.0", "GC time ratio that blocks scaling (1 = never)"),
    ("memory.heap-usage.threshold", "fraction", "1.0", "heap usage ratio that blocks scaling (1 = never)"),
    ("scaling.parallelism-alignment.mode", "choice", "",
     "BALANCED (default when neither alignment key is set), EVENLY_SPREAD or OFF"),
    ("scaling.key-group.partitions.adjust.mode", "choice", "",
     "legacy alignment (EVENLY_SPREAD or MAXIMIZE_UTILISATION), honoured when the new key is unset"),
    ("observed-scalability.enabled", "bool", "false", "divide the scale factor by the observed scaling coefficient"),
    ("observed-scalability.min-observations", "int", "3", "rescales needed before the coefficient is fitted"),
    ("observed-scalability.coefficient-min", "fraction", "0.5", "lowest coefficient the fit may return"),
)
_CHOICES = {"scaling.parallelism-alignment.mode": ("BALANCED", "EVENLY_SPREAD", "OFF"),
            "scaling.key-group.partitions.adjust.mode": ("EVENLY_SPREAD", "MAXIMIZE_UTILISATION")}
_MAXIMA: dict[str, float] = {"vertex.max-parallelism": UPPER_BOUND_MAX_PARALLELISM}
SETTINGS: tuple[Setting, ...] = tuple(Setting(_PREFIX + key, kind, default, text, _CHOICES.get(key, ()),
                                              maximum=_MAXIMA.get(key))
                                      for key, kind, default, text in _OPTIONS)


@dataclass(frozen=True)
class FlinkOperatorSettings:
    """The operator's options; durations in seconds. ``from_mapping`` builds them; its defaults (the SETTINGS
    rows) are the operator's."""

    scaling_enabled: bool
    metrics_window: float
    stabilization_interval: float
    utilization_target: float
    utilization_upper: float
    utilization_lower: float  # unless set, target - boundary as the operator derives it (0.7 - 0.3 = 0.3999...)
    scale_down_interval: float
    vertex_min_parallelism: int
    vertex_max_parallelism: int
    scale_down_max_factor: float
    scale_up_max_factor: float
    catch_up_duration: float
    restart_time: float
    restart_time_tracking: bool
    restart_time_tracking_limit: float
    backlog_lag_threshold: float
    observed_lag_threshold: float
    observed_switch_threshold: float
    observed_min_observations: int
    effectiveness_detection: bool
    effectiveness_threshold: float
    gc_pressure_threshold: float
    heap_usage_threshold: float
    # The resolved alignment: BALANCED, EVENLY_SPREAD, OFF (the new key) or LEGACY_EVENLY_SPREAD,
    # LEGACY_MAXIMIZE_UTILISATION (the deprecated key, with its blocking fallback).
    alignment_mode: str
    observed_scalability: bool
    observed_scalability_min_observations: int
    observed_scalability_coefficient_min: float

    @classmethod
    def from_mapping(cls, given: Mapping[str, str] | None) -> FlinkOperatorSettings:
        values = parse_settings(NAME, SETTINGS, given, aliases=("kubernetes.operator.",),
                                ordered=((_PREFIX + "vertex.min-parallelism", _PREFIX + "vertex.max-parallelism"),))

        def key(name: str) -> str:
            return _PREFIX + name

        target = values.number(key("utilization.target"))
        boundary = values.number(key("target.utilization.boundary"))
        upper = values.optional_number(key("utilization.max"))
        lower = values.optional_number(key("utilization.min"))
        mode = "BALANCED"
        if key("scaling.parallelism-alignment.mode") in values.values:
            mode = values.text(key("scaling.parallelism-alignment.mode"))
        elif key("scaling.key-group.partitions.adjust.mode") in values.values:
            mode = "LEGACY_" + values.text(key("scaling.key-group.partitions.adjust.mode"))
        return cls(
            scaling_enabled=values.flag(key("scaling.enabled")),
            metrics_window=values.number(key("metrics.window")),
            stabilization_interval=values.number(key("stabilization.interval")),
            utilization_target=target,
            utilization_upper=upper if upper is not None else target + boundary,
            utilization_lower=lower if lower is not None else target - boundary,
            scale_down_interval=values.number(key("scale-down.interval")),
            vertex_min_parallelism=values.integer(key("vertex.min-parallelism")),
            vertex_max_parallelism=values.integer(key("vertex.max-parallelism")),
            scale_down_max_factor=values.number(key("scale-down.max-factor")),
            scale_up_max_factor=values.number(key("scale-up.max-factor")),
            catch_up_duration=values.number(key("catch-up.duration")),
            restart_time=values.number(key("restart.time")),
            restart_time_tracking=values.flag(key("restart.time-tracking.enabled")),
            restart_time_tracking_limit=values.number(key("restart.time-tracking.limit")),
            backlog_lag_threshold=values.number(key("backlog-processing.lag-threshold")),
            observed_lag_threshold=values.number(key("observed-true-processing-rate.lag-threshold")),
            observed_switch_threshold=values.number(key("observed-true-processing-rate.switch-threshold")),
            observed_min_observations=values.integer(key("observed-true-processing-rate.min-observations")),
            effectiveness_detection=values.flag(key("scaling.effectiveness.detection.enabled")),
            effectiveness_threshold=values.number(key("scaling.effectiveness.threshold")),
            gc_pressure_threshold=values.number(key("memory.gc-pressure.threshold")),
            heap_usage_threshold=values.number(key("memory.heap-usage.threshold")),
            alignment_mode=mode,
            observed_scalability=values.flag(key("observed-scalability.enabled")),
            observed_scalability_min_observations=values.integer(key("observed-scalability.min-observations")),
            observed_scalability_coefficient_min=values.number(key("observed-scalability.coefficient-min")),
        )


def target_capacity(target_rate: float, catch_up_rate: float, utilization: float, restart_seconds: float,
                    catch_up_seconds: float) -> float:
    """``round(catch_up + target x restart / catch_up_duration + target / u)``, the operator's capacity.

    ``u`` is clamped to [0, 1] first; at ``u = 0`` the capacity is infinite (no rate is "above" it, so
    nothing is ever out of bounds downward: how backlog mode turns scale-down triggers off)."""
    utilization = min(1.0, max(0.0, utilization))
    capacity = rates.required_capacity(target_rate, utilization, restart_seconds, catch_up_seconds, catch_up_rate)
    return capacity if math.isinf(capacity) else float(round(capacity))


def clamp_scale_factor(factor: float, scale_down_max_factor: float, scale_up_max_factor: float) -> float:
    if factor < 1.0:
        return max(factor, 1.0 - scale_down_max_factor)
    return min(factor, 1.0 + scale_up_max_factor)


def align_parallelism(mode: str, current: int, new: int, groups: int, lower: int, upper: int) -> int:
    """The operator's alignment of a computed (already clamped) parallelism ``new`` to ``groups`` key groups
    or source partitions.

    The search region depends on the direction: a scale-up scans ``[new, min(groups, upper)]``, a
    scale-down ``[new, min(current, groups, upper)]`` (it never crosses into a scale-up), upward from
    ``new``. ``EVENLY_SPREAD`` accepts a divisor of ``groups``; ``BALANCED`` also the first ``q`` whose
    per-subtask share ``groups // q`` is below that of ``new``. Both keep ``new`` when nothing in the region
    qualifies. ``OFF`` keeps ``new``. The legacy modes (``LEGACY_EVENLY_SPREAD``,
    ``LEGACY_MAXIMIZE_UTILISATION``, from ``scaling.key-group.partitions.adjust.mode``) search the same
    region, then fall back downward to the fewest subtasks with the same busiest share (stepped up to a
    divisor, never under ``lower``) and keep ``current`` when that would invert the direction.
    """
    if mode == "OFF" or new == current:
        return new
    scale_up = new > current
    bound = min(groups, upper)
    region_end = bound if scale_up else min(current, bound)
    accept_share = mode in ("BALANCED", "LEGACY_MAXIMIZE_UTILISATION")
    for candidate in range(new, region_end + 1):
        if groups % candidate == 0 or (accept_share and groups // candidate < groups // new):
            return candidate
    if not mode.startswith("LEGACY_"):
        return new
    candidate = new
    while candidate > 0:
        if groups // candidate > groups // new:
            if groups % candidate != 0:
                candidate += 1
            break
        candidate -= 1
    candidate = max(candidate, lower)
    if (scale_up and candidate <= current) or (not scale_up and candidate >= current):
        return current
    return candidate


def observed_scaling_coefficient(summaries: list[tuple[int, float]], min_observations: int,
                                 lower_bound: float) -> float:
    """The operator's observed scalability: fit ``TPR_i = beta x alpha x p_i`` by least squares over the
    past rescales ``(parallelism before, TPR then)``; ``beta`` is the TPR per subtask at the smallest
    parallelism observed (the latest such). ``alpha`` is clamped to [lower_bound, 1] and rounded up to 2
    decimals; 1.0 (linear) with fewer than ``min_observations`` rescales or unusable data."""
    if not summaries or len(summaries) < min_observations:
        return 1.0
    if any(not math.isfinite(rate) for _, rate in summaries):
        return 1.0
    smallest = min(p for p, _ in summaries)
    baseline_p, baseline_rate = next((p, r) for p, r in reversed(summaries) if p == smallest)
    baseline = baseline_rate / baseline_p
    squares = sum(p * p for p, _ in summaries)
    if squares == 0 or baseline <= 0:
        return 1.0
    alpha = sum(p * r for p, r in summaries) / (squares * baseline)
    alpha = max(lower_bound, min(1.0, alpha))
    return math.ceil(alpha * 100 - 1e-9) / 100


@dataclass(frozen=True)
class _Evaluated:
    decision: VertexDecision
    out_of_bounds: bool


@dataclass(frozen=True)
class _ScalingSummary:
    """One vertex's part in an earlier rescale (the operator's ``ScalingSummary``)."""

    current_parallelism: int
    new_parallelism: int
    true_processing_rate: float
    expected_processing_rate: float


def _scaling_summary(decision: Decision, vertex_id: str) -> _ScalingSummary | None:
    """The vertex's part in ``decision`` if it was an applied rescale of this policy that changed the vertex."""
    if decision.policy != NAME or not decision.rescale:
        return None
    vertex = next((v for v in decision.vertices if v.vertex_id == vertex_id), None)
    if vertex is None or not vertex.changed:
        return None
    return _ScalingSummary(vertex.current_parallelism, vertex.new_parallelism,
                           vertex.numbers.get("true_processing_rate", math.nan),
                           vertex.numbers.get("expected_processing_rate", math.nan))


def _scaling_summaries(history: History, vertex_id: str) -> list[_ScalingSummary]:
    """Every applied rescale of this policy that changed the vertex, oldest first, from its decisions."""
    return [summary for decision in history.decisions
            if (summary := _scaling_summary(decision, vertex_id)) is not None]


def _last_scaling_summary(history: History, vertex_id: str) -> _ScalingSummary | None:
    """The latest entry of ``_scaling_summaries`` (scanned from the end: the history grows all day)."""
    return next((summary for decision in reversed(history.decisions)
                 if (summary := _scaling_summary(decision, vertex_id)) is not None), None)


class FlinkOperatorPolicy(WindowedPolicy[FlinkOperatorSettings]):
    """The Flink Kubernetes Operator autoscaler's rules over a snapshot and its history."""

    name = NAME
    default_settings = FlinkOperatorSettings
    stabilization_key = "job.autoscaler.stabilization.interval"

    def decide_running(self, snapshot: MetricsSnapshot, history: History) -> Decision:
        s = self.settings
        gc, heap = ev.gc_pressure(snapshot), ev.heap_usage(snapshot)
        if gc is not None and gc > s.gc_pressure_threshold:
            why = f"GC pressure {gc:.2f} > job.autoscaler.memory.gc-pressure.threshold {s.gc_pressure_threshold}"
            return ev.hold_decision(snapshot, NAME, why, why)
        if heap is not None and heap > s.heap_usage_threshold:
            why = f"heap usage {heap:.2f} > job.autoscaler.memory.heap-usage.threshold {s.heap_usage_threshold}"
            return ev.hold_decision(snapshot, NAME, why, why)

        now = snapshot.timestamp
        stable = self.stable_window(snapshot, history)
        if isinstance(stable, Decision):
            return stable
        since, window = stable.since, stable.snapshots
        if since is not None:
            coverage = ev.window_coverage_seconds(window)
            # Live samples drift (5.2 s apart, not 5 s), so the snapshot that straddles the window's start is left
            # out and coverage stays up to one sampling interval short for ever: full within one interval.
            if coverage + snapshot.window_seconds + 1e-6 < s.metrics_window:
                why = (f"metrics window not full: {coverage:.0f}s of {s.metrics_window:.0f}s "
                       "(job.autoscaler.metrics.window)")
                return ev.hold_decision(snapshot, NAME, why, why)

        metrics = ev.window_metrics(window)
        ratios = ev.output_ratios(snapshot, metrics)
        graph_sources = [v for v in snapshot.vertices if ev.is_graph_source(snapshot, v.id)]
        targets = ev.propagate_rates(snapshot, {v.id: ev.source_target_rate(metrics[v.id]) for v in graph_sources},
                                     ratios)
        catch_up = ev.propagate_rates(snapshot, {
            v.id: (metrics[v.id].lag or 0.0) / s.catch_up_duration if s.catch_up_duration > 0 else 0.0
            for v in graph_sources}, ratios)
        # Backlog: the latest lag over the window's mean INPUT rate (what the sources read), as released.
        backlog = max((_backlog_seconds(metrics[v.id]) for v in graph_sources), default=0.0)
        in_backlog = backlog > s.backlog_lag_threshold
        restart = self._restart_seconds(history)
        ceiling = ev.job_slot_ceiling(snapshot)

        evaluated = [self._evaluate_vertex(snapshot, history, v, metrics[v.id], targets[v.id], catch_up[v.id],
                                           restart, in_backlog, backlog, ceiling, since)
                     for v in snapshot.vertices]
        changed = [e for e in evaluated if e.decision.changed]
        if not changed:
            return Decision(now, NAME, tuple(e.decision for e in evaluated))
        if not any(e.out_of_bounds for e in changed):
            return Decision(now, NAME, tuple(_keep(e.decision, "within bounds: no vertex whose parallelism would "
                                                   "change is out of its utilization bounds")
                                             for e in evaluated))
        if not s.scaling_enabled:
            why = "job.autoscaler.scaling.enabled=false (recommendation only)"
            return Decision(now, NAME, tuple(_keep(e.decision, why) for e in evaluated), blocked_reason=why)
        return Decision(now, NAME, tuple(e.decision for e in evaluated))

    def _restart_seconds(self, history: History) -> float:
        s = self.settings
        if s.restart_time_tracking:
            durations = [r.duration_seconds for r in history.rescales]
            if durations:
                return min(max(durations), s.restart_time_tracking_limit)
        return s.restart_time

    def _true_processing_rate(self, snapshot: MetricsSnapshot, history: History, vertex: Vertex,
                              metrics: ev.WindowMetrics, since: float | None,
                              numbers: dict[str, float]) -> tuple[float, str]:
        """Busy-time TPR, or the observed one (sources under backpressure) when the operator switches:
        the busy-time TPR is missing or infinite, or more than ``1 + switch-threshold`` times the observed
        mean (which needs ``min-observations``). NaN when neither is known."""
        s = self.settings
        rate, busy = metrics.input_rate, metrics.busy_time_ms_per_second_max
        busy_tpr = math.nan
        if rate is not None and busy is not None:
            # Nothing coming in: infinite processing power until data flows (never a division by zero).
            busy_tpr = math.inf if rate == 0 else rates.true_processing_rate(rate, busy)
            numbers["true_processing_rate_busy_time"] = busy_tpr
        observed_mean = math.nan
        if ev.is_graph_source(snapshot, vertex.id):
            observed = self._observed_tprs(snapshot, history, vertex.id, since)
            if observed:
                numbers["observed_true_processing_rate"] = sum(observed) / len(observed)
            if observed and len(observed) >= s.observed_min_observations:
                observed_mean = sum(observed) / len(observed)
        if math.isnan(observed_mean):
            return busy_tpr, "busy time"
        if math.isnan(busy_tpr) or math.isinf(busy_tpr):
            return observed_mean, "observed (busy time unusable)"
        if busy_tpr > observed_mean * (1 + s.observed_switch_threshold):
            return observed_mean, "observed (backpressure)"
        return busy_tpr, "busy time"

    def _evaluate_vertex(self, snapshot: MetricsSnapshot, history: History, vertex: Vertex,
                         metrics: ev.WindowMetrics, target: float, catch_up: float, restart: float,
                         in_backlog: bool, backlog_seconds: float, ceiling: int | None,
                         since: float | None) -> _Evaluated:
        s = self.settings
        p = vertex.parallelism
        rate = metrics.input_rate
        numbers: dict[str, float] = {"target_rate": target, "catch_up_rate": catch_up, "restart_seconds": restart}
        if rate is not None:
            numbers["input_rate"] = rate
        if metrics.busy_time_ms_per_second_max is not None:
            numbers["busy_ratio_max"] = metrics.busy_time_ms_per_second_max / 1000.0
        is_source = ev.is_graph_source(snapshot, vertex.id)
        if is_source:
            numbers["lag"] = float(metrics.lag or 0.0)
            numbers["lag_seconds"] = backlog_seconds
        tpr, tpr_note = self._true_processing_rate(snapshot, history, vertex, metrics, since, numbers)
        if math.isnan(tpr):
            missing = "numRecordsInPerSecond" if rate is None else "busyTimeMsPerSecond"
            return _Evaluated(VertexDecision(vertex.id, vertex.name, p, p,
                                             f"no {missing} and no observed rate: not evaluated", numbers), False)
        numbers["true_processing_rate"] = tpr
        numbers["utilization"] = 0.0 if math.isinf(tpr) else target / tpr

        # Backlog mode: bounds 1.0 and 0.0, so a busy vertex may run flat out and nothing triggers a scale-down.
        upper_u, lower_u = (1.0, 0.0) if in_backlog else (s.utilization_upper, s.utilization_lower)
        up_threshold = target_capacity(target, catch_up, upper_u, 0.0, s.catch_up_duration)
        down_threshold = target_capacity(target, catch_up, lower_u, restart, s.catch_up_duration)
        capacity = target_capacity(target, catch_up, s.utilization_target, restart, s.catch_up_duration)
        numbers.update(scale_up_threshold=up_threshold, scale_down_threshold=down_threshold,
                       target_capacity=capacity)
        raw_factor = 0.0 if math.isinf(tpr) else capacity / tpr
        if s.observed_scalability:
            coefficient = observed_scaling_coefficient(
                [(x.current_parallelism, x.true_processing_rate) for x in _scaling_summaries(history, vertex.id)],
                s.observed_scalability_min_observations, s.observed_scalability_coefficient_min)
            numbers["observed_scaling_coefficient"] = coefficient
            raw_factor /= coefficient
        factor = clamp_scale_factor(raw_factor, s.scale_down_max_factor, s.scale_up_max_factor)
        numbers.update(scale_factor_unclamped=raw_factor, scale_factor=factor)

        # The limits always admit the current parallelism; the upper one never exceeds max parallelism.
        lower = min(p, s.vertex_min_parallelism)
        upper = min(vertex.max_parallelism, max(p, s.vertex_max_parallelism))
        lower = min(lower, upper)
        wanted = min(max(lower, ev.ceil_safe(factor * p)), upper)
        groups = vertex.partitions if is_source and vertex.partitions else (
            vertex.max_parallelism if snapshot.is_keyed(vertex.id) else None)
        if groups:
            wanted = align_parallelism(s.alignment_mode, p, wanted, groups, lower, upper)
        if is_source and vertex.partitions and wanted > vertex.partitions:
            # A reader beyond the partition count sits idle: capped in every mode (FLINK-40389).
            wanted = max(vertex.partitions, min(p, wanted))
        numbers["recommended_parallelism"] = float(wanted)
        out_up, out_down = tpr < up_threshold, tpr > down_threshold
        bounds_note = ("TPR below scale-up threshold" if out_up else
                       "TPR above scale-down threshold" if out_down else "TPR within bounds")
        if in_backlog:
            bounds_note += (f" (backlog {backlog_seconds:.0f}s of input > job.autoscaler.backlog-processing."
                            "lag-threshold: bounds 1.0/0.0, no scale-down trigger)")
        reason = (f"{bounds_note}: TPR {tpr:.1f}/s ({tpr_note}), target {target:.1f}/s, capacity at "
                  f"u={s.utilization_target} {capacity:.1f}/s, factor {factor:.3f} -> p {wanted}")
        new_p = wanted
        if new_p != p:
            # What this rescale should achieve; read back to judge its effectiveness later.
            numbers["expected_processing_rate"] = (0.0 if math.isinf(tpr) else tpr) * factor

        if new_p > p:
            last = _last_scaling_summary(history, vertex.id)
            if (last is not None and last.new_parallelism == p and last.new_parallelism > last.current_parallelism
                    and math.isfinite(tpr)):
                expected = last.expected_processing_rate - last.true_processing_rate
                actual = tpr - last.true_processing_rate
                numbers.update(expected_tpr_gain=expected, actual_tpr_gain=actual)
                ineffective = expected > 0 and actual / expected < s.effectiveness_threshold
                if ineffective and s.effectiveness_detection:
                    new_p = p
                    reason = (f"ineffective scaling: last scale-up {last.current_parallelism}->{last.new_parallelism}"
                              f" gained {actual:.1f}/s of {expected:.1f}/s expected; no further scale-up ({reason})")
        elif new_p < p and s.scale_down_interval > 0:
            first, highest = self._scale_down_requests(history, vertex.id, p, since)
            first = snapshot.timestamp if first is None else first
            highest = max(highest, wanted)
            numbers["max_recommended_in_interval"] = float(highest)
            if snapshot.timestamp - first < s.scale_down_interval:
                new_p = p
                # The timer, as numbers (the state store and `autoscale status`): the highest asked for so far.
                numbers.update(scale_down_target=float(highest), scale_down_due_at=first + s.scale_down_interval)
                reason = (f"scale-down to {wanted} delayed until {first + s.scale_down_interval:.0f} "
                          f"(job.autoscaler.scale-down.interval) ({reason})")
            else:
                new_p = highest
                reason = f"scale-down to the highest recommended within the interval, {highest} ({reason})"
        if ceiling is not None and new_p > ceiling:
            new_p = max(ceiling, min(p, new_p))
            reason += f"; capped at {new_p}: the job may use {ceiling} slots (the adaptive scheduler's limit)"
        numbers["new_parallelism"] = float(new_p)
        return _Evaluated(VertexDecision(vertex.id, vertex.name, p, new_p, reason, numbers),
                          out_of_bounds=out_up or out_down)

    def _observed_tprs(self, snapshot: MetricsSnapshot, history: History, vertex_id: str,
                       since: float | None) -> list[float]:
        """Observed TPR in every snapshot since the last change where the source lagged enough."""
        s = self.settings
        current = ev.parallelism_of(snapshot)
        candidates = [h for h in history.snapshots
                      if h.timestamp < snapshot.timestamp and (since is None or h.timestamp >= since)
                      and ev.parallelism_of(h) == current]
        candidates.append(snapshot)
        observed: list[float] = []
        for h in candidates:
            vertex = h.vertex(vertex_id)
            rate, lag = ev.vertex_input_rate(vertex), vertex.metrics.pending_records
            back_pressured = (vertex.metrics.back_pressured_time_ms_per_second_avg
                              if vertex.metrics.back_pressured_time_ms_per_second_avg is not None
                              else vertex.metrics.back_pressured_time_ms_per_second_max)
            if rate and lag is not None and back_pressured is not None and lag / rate >= s.observed_lag_threshold:
                observed.append(rates.observed_true_processing_rate(rate, back_pressured))
        return observed

    def _scale_down_requests(self, history: History, vertex_id: str, parallelism: int,
                             since: float | None) -> tuple[float | None, int]:
        """When the current unbroken run of scale-down recommendations began, and its highest value."""
        first: float | None = None
        highest = 0
        for decision in reversed(history.decisions):
            if decision.policy != NAME or (since is not None and decision.timestamp < since):
                break
            vertex = next((v for v in decision.vertices if v.vertex_id == vertex_id), None)
            recommended = None if vertex is None else vertex.numbers.get("recommended_parallelism")
            if vertex is None or recommended is None:
                continue
            if vertex.current_parallelism != parallelism or recommended >= parallelism:
                break
            first, highest = decision.timestamp, max(highest, int(recommended))
        return first, highest


def _backlog_seconds(metrics: ev.WindowMetrics) -> float:
    """Lag in seconds of the source's mean input rate (what it read); none without a rate."""
    lag, rate = metrics.lag or 0.0, metrics.input_rate
    if lag <= 0 or rate is None or math.isnan(rate):
        return 0.0
    return math.inf if rate <= 0 else lag / rate


def _keep(decision: VertexDecision, why: str) -> VertexDecision:
    if not decision.changed:
        return decision
    return VertexDecision(decision.vertex_id, decision.vertex_name, decision.current_parallelism,
                          decision.current_parallelism,
                          f"{why}; would set {decision.new_parallelism}: {decision.reason}",
                          {**decision.numbers, "new_parallelism": float(decision.current_parallelism)})
