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
from flinkscale.core.policy import _evaluate as ev
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
)
SETTINGS: tuple[Setting, ...] = tuple(Setting(_PREFIX + key, kind, default, text)
                                      for key, kind, default, text in _OPTIONS)


@dataclass(frozen=True)
class FlinkOperatorSettings:
    """The operator's options; durations in seconds. Defaults are the operator's."""

    scaling_enabled: bool = True
    metrics_window: float = 900.0
    stabilization_interval: float = 300.0
    utilization_target: float = 0.7
    utilization_upper: float = 1.0
    utilization_lower: float = 0.4
    scale_down_interval: float = 3600.0
    vertex_min_parallelism: int = 1
    vertex_max_parallelism: int = 200
    scale_down_max_factor: float = 0.6
    scale_up_max_factor: float = 100000.0
    catch_up_duration: float = 1800.0
    restart_time: float = 300.0
    restart_time_tracking: bool = False
    restart_time_tracking_limit: float = 900.0
    backlog_lag_threshold: float = 300.0
    observed_lag_threshold: float = 30.0
    observed_switch_threshold: float = 0.15
    observed_min_observations: int = 2
    effectiveness_detection: bool = False
    effectiveness_threshold: float = 0.1
    gc_pressure_threshold: float = 1.0
    heap_usage_threshold: float = 1.0

    @classmethod
    def from_mapping(cls, given: Mapping[str, str] | None) -> FlinkOperatorSettings:
        values = parse_settings(NAME, SETTINGS, given, aliases=("kubernetes.operator.",))

        def key(name: str) -> str:
            return _PREFIX + name

        target = values.number(key("utilization.target"))
        boundary = values.number(key("target.utilization.boundary"))
        upper = values.optional_number(key("utilization.max"))
        lower = values.optional_number(key("utilization.min"))
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
        )


def target_capacity(target_rate: float, catch_up_rate: float, utilization: float, restart_seconds: float,
                    catch_up_seconds: float) -> float:
    """``catch_up + target x restart / catch_up_duration + target / u`` (the operator's capacity)."""
    return rates.required_capacity(target_rate, utilization, restart_seconds, catch_up_seconds, catch_up_rate)


def clamp_scale_factor(factor: float, scale_down_max_factor: float, scale_up_max_factor: float) -> float:
    if factor < 1.0:
        return max(factor, 1.0 - scale_down_max_factor)
    return min(factor, 1.0 + scale_up_max_factor)


@dataclass(frozen=True)
class _Evaluated:
    decision: VertexDecision
    out_of_bounds: bool


class FlinkOperatorPolicy:
    """The Flink Kubernetes Operator autoscaler's rules over a snapshot and its history."""

    name = NAME

    def __init__(self, settings: FlinkOperatorSettings | None = None) -> None:
        self.settings = settings or FlinkOperatorSettings()

    @property
    def history_seconds(self) -> float:
        """Snapshots and decisions the rules read: a scale-down interval of recommendations, the metrics
        window and the stabilization before it."""
        s = self.settings
        return max(7200.0, s.scale_down_interval + s.metrics_window + s.stabilization_interval + 600.0)

    def decide(self, snapshot: MetricsSnapshot, history: History) -> Decision:
        s = self.settings
        if snapshot.job_state != "RUNNING":
            return ev.hold_decision(snapshot, NAME, f"job is {snapshot.job_state}", f"job is {snapshot.job_state}")
        gc, heap = ev.gc_pressure(snapshot), ev.heap_usage(snapshot)
        if gc is not None and gc > s.gc_pressure_threshold:
            why = f"GC pressure {gc:.2f} > job.autoscaler.memory.gc-pressure.threshold {s.gc_pressure_threshold}"
            return ev.hold_decision(snapshot, NAME, why, why)
        if heap is not None and heap > s.heap_usage_threshold:
            why = f"heap usage {heap:.2f} > job.autoscaler.memory.heap-usage.threshold {s.heap_usage_threshold}"
            return ev.hold_decision(snapshot, NAME, why, why)

        now = snapshot.timestamp
        stable = ev.stable_window(snapshot, history, s.stabilization_interval, s.metrics_window)
        since, window = stable.since, stable.snapshots
        if stable.stabilizing_seconds > 0:
            why = f"stabilizing for {stable.stabilizing_seconds:.0f}s more (job.autoscaler.stabilization.interval)"
            return ev.hold_decision(snapshot, NAME, why, why)
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
        backlog = max((ev.lag_seconds(metrics[v.id]) for v in graph_sources), default=0.0)
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

    def _evaluate_vertex(self, snapshot: MetricsSnapshot, history: History, vertex: Vertex,
                         metrics: ev.WindowMetrics, target: float, catch_up: float, restart: float,
                         in_backlog: bool, backlog_seconds: float, ceiling: int | None,
                         since: float | None) -> _Evaluated:
        s = self.settings
        p = vertex.parallelism
        rate, busy = metrics.input_rate, metrics.busy_time_ms_per_second_max
        if rate is None or busy is None:
            missing = "numRecordsInPerSecond" if rate is None else "busyTimeMsPerSecond"
            return _Evaluated(VertexDecision(vertex.id, vertex.name, p, p, f"no {missing}: not evaluated"), False)
        numbers: dict[str, float] = {"input_rate": rate, "busy_ratio_max": busy / 1000.0, "target_rate": target,
                                     "catch_up_rate": catch_up, "restart_seconds": restart}
        tpr = rates.true_processing_rate(rate, busy)
        numbers["true_processing_rate_busy_time"] = tpr
        tpr_note = "busy time"
        is_source = ev.is_graph_source(snapshot, vertex.id)
        if is_source:
            numbers["lag"] = float(metrics.lag or 0.0)
            numbers["lag_seconds"] = ev.lag_seconds(metrics)
            observed = self._observed_tprs(snapshot, history, vertex.id, since)
            if observed:
                mean_observed = sum(observed) / len(observed)
                numbers["observed_true_processing_rate"] = mean_observed
                switch = tpr > (1 + s.observed_switch_threshold) * mean_observed
                if len(observed) >= s.observed_min_observations and switch:
                    tpr, tpr_note = mean_observed, f"observed (backpressure, {len(observed)} observations)"
        numbers["true_processing_rate"] = tpr
        numbers["utilization"] = 0.0 if math.isinf(tpr) else target / tpr

        up_threshold = target_capacity(target, catch_up, s.utilization_upper, 0.0, s.catch_up_duration)
        down_threshold = target_capacity(target, catch_up, s.utilization_lower, restart, s.catch_up_duration)
        capacity = target_capacity(target, catch_up, s.utilization_target, restart, s.catch_up_duration)
        numbers.update(scale_up_threshold=up_threshold, scale_down_threshold=down_threshold,
                       target_capacity=capacity)
        raw_factor = 0.0 if math.isinf(tpr) else capacity / tpr
        factor = clamp_scale_factor(raw_factor, s.scale_down_max_factor, s.scale_up_max_factor)
        numbers.update(scale_factor_unclamped=raw_factor, scale_factor=factor)

        lower, upper = ev.parallelism_bounds(snapshot, vertex, s.vertex_min_parallelism, s.vertex_max_parallelism,
                                             None)
        wanted = min(max(ev.ceil_safe(factor * p), lower), upper)
        # The operator aligns sources with known partitions and vertices with a keyed input only.
        groups = vertex.partitions if is_source and vertex.partitions else (
            vertex.max_parallelism if snapshot.is_keyed(vertex.id) else None)
        if groups:
            wanted = ev.align_like_operator(wanted, groups, lower, upper)
        numbers["recommended_parallelism"] = float(wanted)
        out_up, out_down = tpr < up_threshold, tpr > down_threshold
        bounds_note = ("TPR below scale-up threshold" if out_up else
                       "TPR above scale-down threshold" if out_down else "TPR within bounds")
        reason = (f"{bounds_note}: TPR {tpr:.1f}/s ({tpr_note}), target {target:.1f}/s, capacity at "
                  f"u={s.utilization_target} {capacity:.1f}/s, factor {factor:.3f} -> p {wanted}")
        new_p = wanted

        if new_p > p and s.effectiveness_detection:
            outcome = ev.last_scale_up_outcome(snapshot, history, vertex.id, s.stabilization_interval,
                                               s.metrics_window)
            if outcome is not None and not outcome.effective(s.effectiveness_threshold):
                numbers.update(expected_tpr_gain=outcome.expected_gain, actual_tpr_gain=outcome.actual_gain)
                new_p = p
                reason = (f"ineffective scaling: last scale-up {outcome.old_parallelism}->{outcome.new_parallelism} "
                          f"gained {outcome.actual_gain:.1f}/s of {outcome.expected_gain:.1f}/s expected; "
                          f"no further scale-up ({reason})")
        if new_p < p:
            if in_backlog:
                new_p = p
                reason = (f"backlog {backlog_seconds:.0f}s of input > job.autoscaler.backlog-processing.lag-threshold:"
                          f" no scale-down ({reason})")
            elif s.scale_down_interval > 0:
                first, highest = self._scale_down_requests(history, vertex.id, p, since)
                first = snapshot.timestamp if first is None else first
                highest = max(highest, wanted)
                numbers["max_recommended_in_interval"] = float(highest)
                if snapshot.timestamp - first < s.scale_down_interval:
                    new_p = p
                    reason = (f"scale-down to {wanted} delayed until {first + s.scale_down_interval:.0f} "
                              f"(job.autoscaler.scale-down.interval) ({reason})")
                else:
                    new_p = highest
                    reason = f"scale-down to the highest recommended within the interval, {highest} ({reason})"
        if ceiling is not None and new_p > ceiling:
            new_p = ceiling
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


def _keep(decision: VertexDecision, why: str) -> VertexDecision:
    if not decision.changed:
        return decision
    return VertexDecision(decision.vertex_id, decision.vertex_name, decision.current_parallelism,
                          decision.current_parallelism,
                          f"{why}; would set {decision.new_parallelism}: {decision.reason}",
                          {**decision.numbers, "new_parallelism": float(decision.current_parallelism)})
