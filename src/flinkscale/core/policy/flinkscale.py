"""``flinkscale``: our policy. Predictive first: it plans its rescales on a forecast of the job's load;
when the forecast cannot be trusted it falls back to reactive rules (same evaluation maths as
``flink-operator``, different rules, each aimed at one of the operator's user complaints, anchors.md 1).

Planned rescales (``forecast.horizon`` > 0, once ``History.load`` holds a day): ``core.forecast`` learns the
daily (or, with two weeks, weekly) load shape and forecasts the next 24 h in 15-minute blocks with a band;
the sizes the job can take are built from the measured per-subtask costs below; ``_schedule.solve`` (the
oracle's planner) picks the cheapest size per block with at most ``rescales.max-per-day`` less
``rescales.reserve`` changes a day, pricing each change by the learned restart time and the seconds of lag
over ``latency.target`` its catch-up causes (each at ``plan.lateness-price`` seconds of the largest size),
with each block's size carrying the forecast's UPPER band at ``plan.headroom``. When that plan changes size
in the current block by at least ``plan.min-change`` of the slots, the policy rescales now; else it holds and
names the next planned change. A planned scale-down takes the fewest slots that carry the band until the
plan's next change with ``forecast.miss-tolerance`` to spare (anything short of a forecast miss), or none: a
size that carries the band with nothing to spare is reversed by the next upward revision of the forecast, a
restart each way. It leaves planning to the
reactive rules (and says so in the reason) when the load is above the band by more than
``forecast.miss-tolerance`` (or nothing was read for a whole ``scale-down.interval`` while the forecast
expects load), a backlog is not draining within
``catch-up.duration``, a reactive trigger other than a busy subtask under saturation fires (the plan sized
the job for the band at ``plan.headroom``, so a subtask above ``utilization.max`` that still keeps up is the
plan's business: it is made again every block from the costs measured then), or the plan's share of the
day's budget is spent. After a
miss above the band the reactive rules size for the current target (no trend), scale down only to a size
that also carries the band for the rest of the day, and not at all while the load is above the band; with
nothing to read they decide without the forecast (a holiday is not held at the size forecast for it).
A backlog whose lag
shrinks fast enough is being drained at full speed: no trigger. Every rescale, planned or reactive, counts
against ``rescales.max-per-day`` (calendar days of the history's clock).

Reactive rules:

Model. A vertex's cost is measured per subtask: ``c = λ / (p x busy_avg)`` records/s for one fully busy
subtask (records over busy seconds, so the average, not the max). Where the records land is modelled
separately: over ``K`` key groups (or a source's partitions) the busiest of ``p`` subtasks owns
``ceil(K/p)`` groups, ``layout(p) = ceil(K/p) / (K/p)`` times its fair share, and whatever imbalance
the measured ``busy_max / busy_avg`` shows beyond that layout is hot keys, ``residual`` measured at
``p``. A hot key stays on one subtask however many there are, so at ``p' > p`` the residual grows as one
key's would: ``1 + h (p' - 1)`` with ``h = (residual - 1) / (p - 1)``; at ``p' < p`` it is kept as measured
(a scale-down does not count on it evening out). The busiest subtask at ``p'`` then runs at
``utilization(p') = load x layout(p') x residual(p') / (p' x c)``. Sizing solves this for the fewest
subtasks (``smallest_parallelism_for_load``), so a keyed vertex lands on a parallelism that
spreads its key groups as evenly as any larger one: skew-aware, and aligned by construction. A vertex
above ``utilization.max`` that no allowed parallelism would relieve (at its most subtasks, or one key group
per subtask already) triggers nothing: a restart would only add lag. With nothing flowing (a job closed at
night) nothing can be measured: the cost last measured, and the vertex's records per source record, are
carried on in each decision's numbers (``remembered_costs``), so the plan can still size the morning's
scale-up before the first records arrive. Nor is the skew measured in a window in which the sources drained a
backlog (after a restart): the subtasks are then busy unevenly by what each had to catch up on, not by the
load, and the skew measured before is kept (``_drained_in_window``); the cost per record still counts.

Rules:
1. Whole-graph sizing in one step: the target rate ``λ + d(lag)/dt`` at each source, from the latest
   snapshot (a step shows at once, not diluted by a window mean), carried to every vertex by edge
   output ratios. Optionally (``prediction.horizon`` > 0) a rescale is sized for the target plus the
   rising trend (Theil-Sen slope over ``prediction.window``) x horizon; the trend never triggers one. Each
   vertex needs capacity ``R = max(target / utilization.target, target + (lag + target x restart) /
   catch-up.duration)`` at full speed: the utilization headroom doubles as catch-up capacity, and extra
   capacity is added only while the backlog could not drain within ``catch-up.duration`` otherwise.
2. Scale up when any vertex's busiest subtask would run above ``utilization.max`` at the target rate,
   or the lag cannot drain within ``catch-up.duration`` at full speed. Then every vertex is set to its
   own need in the same rescale (vertices whose need is lower also come down if rule 3 allows).
3. Scale down only when nothing has changed for ``scale-down.interval``, no source lags by more than
   ``backlog-processing.lag-threshold`` of input, heap usage is under ``memory.heap-usage.threshold``,
   and the highest load seen during the interval (averaged over ``metrics.window``, so that one noisy
   sample does not count as a peak) would still leave the busiest subtask at no more than
   ``utilization.target - scale-down.margin`` at the lower parallelism (hysteresis: a scale-down never
   lands where the next rate bump triggers a scale-up), and only when it saves at least
   ``max(scale-down.min-saving, 2 x restart / scale-down.interval)`` of the job's subtasks or slots: the
   restart must pay for itself twice over in the time the new size holds. A job that has had nothing to read
   for the whole interval (an idle night: no cost can be measured, none is needed) goes down to
   ``vertex.min-parallelism``; its first records measure the costs again.
4. Restart cost is the mean duration of the rescales in the history (``restart.time`` until the first).
5. Ceilings: never above a vertex's max parallelism, ``vertex.max-parallelism``, a source's partition
   count or the slots the job may use. When a vertex cannot reach its need, the whole graph is sized
   for the fraction of the target that vertex can carry (more capacity elsewhere would only wait on it),
   and the reason says which ceiling binds.
6. Ineffective scaling: if the vertex's last scale-up realised less than ``scaling.effectiveness.threshold``
   of the TPR gain it should have (hot key, external bottleneck), it is not scaled up again. Judged only
   for a vertex that was at least half busy before (an idle vertex's TPR is mostly noise).
7. GC pressure over ``memory.gc-pressure.threshold`` blocks scale-ups (a GC-bound job needs memory, not
   parallelism); heap usage over ``memory.heap-usage.threshold`` blocks scale-downs (fewer subtasks
   hold more state each).

Keys are accepted bare (``utilization.target``) or with the operator's ``job.autoscaler.`` prefix, so a
user's operator configuration carries over for the keys that mean the same thing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from flinkscale.core import rates
from flinkscale.core.keygroups import UPPER_BOUND_MAX_PARALLELISM
from flinkscale.core.policy import _evaluate as ev
from flinkscale.core.policy._frame import WindowedPolicy
from flinkscale.core.policy._settings import Setting, parse_settings
from flinkscale.core.policy.base import LOAD_SAMPLE_SECONDS, Decision, History, VertexDecision
from flinkscale.core.snapshot import MetricsSnapshot, Vertex, frozen_instances
from flinkscale.core.units import SECONDS_PER_DAY as DAY

if TYPE_CHECKING:
    from flinkscale.core.forecast import Forecast
    from flinkscale.core.policy._schedule import Level, Plan

# numpy, the forecaster and the schedule solver load on the first planned decision, not with the policy: a
# `decide` on one snapshot (no load history, no forecast) starts without them (bench/cli_startup.py).

NAME = "flinkscale"
#: How a trigger by the busiest subtask's utilization begins (the plan tells it from saturation by the number).
_BUSY_TRIGGER = "busiest subtask at"

SETTINGS: tuple[Setting, ...] = (
    Setting("scaling.enabled", "bool", "true", "apply decisions; false = recommend only"),
    Setting("utilization.target", "fraction", "0.8", "busiest-subtask utilization a rescale sizes for"),
    Setting("utilization.max", "fraction", "0.95", "busiest-subtask utilization that triggers a scale-up"),
    Setting("scale-down.margin", "fraction", "0.1", "scale down only to <= utilization.target - margin"),
    Setting("scale-down.interval", "duration", "1h", "no scale-down until this long without change"),
    Setting("scale-down.min-saving", "fraction", "0.1",
            "a scale-down must save this fraction of the job's subtasks or slots to be worth a restart"),
    Setting("stabilization.interval", "duration", "2m", "no decision this long after a (re)start or rescale"),
    Setting("metrics.window", "duration", "5m", "window over which the per-subtask cost is averaged"),
    Setting("catch-up.duration", "duration", "30m", "the backlog must drain within this"),
    Setting("restart.time", "duration", "5m", "restart cost until the history has a rescale"),
    Setting("backlog-processing.lag-threshold", "duration", "1m", "lag (seconds of input) that blocks scale-down"),
    Setting("vertex.min-parallelism", "int", "1", "lowest parallelism set"),
    Setting("vertex.max-parallelism", "int", "200", "highest parallelism set", maximum=UPPER_BOUND_MAX_PARALLELISM),
    Setting("scaling.effectiveness.threshold", "fraction", "0.3",
            "a scale-up realising less of its expected TPR gain blocks further scale-ups (0 = off)"),
    Setting("prediction.horizon", "duration", "2h", "size a rescale for the rising trend this far ahead (0 = off)"),
    Setting("prediction.window", "duration", "30m", "the trend is the median slope over this window"),
    Setting("memory.gc-pressure.threshold", "fraction", "0.3", "GC time ratio that blocks scale-ups"),
    Setting("memory.heap-usage.threshold", "fraction", "0.9", "heap usage ratio that blocks scale-downs"),
    Setting("forecast.horizon", "duration", "24h",
            "plan rescales on the seasonal load forecast this far ahead (0 = reactive rules only)",
            maximum=7 * DAY),
    Setting("forecast.quantile", "fraction", "0.8", "the forecast's upper band is this quantile of past ratios"),
    Setting("forecast.miss-tolerance", "fraction", "0.1",
            "load above the upper band by more than this is a forecast miss: reactive rules take over"),
    Setting("rescales.max-per-day", "int", "4", "at most this many rescales in a calendar day (planned or not)"),
    Setting("latency.target", "duration", "60s", "lag (seconds of input) a rescale's catch-up is priced against"),
    Setting("plan.headroom", "fraction", "0.95",
            "a planned size carries the forecast's upper band at this share of its full-speed capacity"),
    Setting("plan.block", "duration", "15m", "the plan holds one size per block of this length",
            minimum=LOAD_SAMPLE_SECONDS, maximum=DAY),
    Setting("rescales.reserve", "non_negative", "1",
            "of rescales.max-per-day, this many are kept for reactive rescales (a spike, a forecast miss); "
            "plans keep at least one"),
    Setting("plan.lateness-price", "non_negative", "6",
            "a second of lag over latency.target costs this many seconds of the largest size (the oracle's is 1)"),
    Setting("plan.min-change", "fraction", "0.2",
            "a planned change of less than this share of the job's slots (of the larger size) is not made"),
)


@dataclass(frozen=True)
class FlinkscaleSettings:
    """Our policy's settings; durations in seconds. ``from_mapping`` builds them, with the SETTINGS rows'
    defaults for what is not given."""

    scaling_enabled: bool
    utilization_target: float
    utilization_max: float
    scale_down_margin: float
    scale_down_interval: float
    scale_down_min_saving: float
    stabilization_interval: float
    metrics_window: float
    catch_up_duration: float
    restart_time: float
    backlog_lag_threshold: float
    vertex_min_parallelism: int
    vertex_max_parallelism: int
    effectiveness_threshold: float
    prediction_horizon: float
    prediction_window: float
    gc_pressure_threshold: float
    heap_usage_threshold: float
    forecast_horizon: float
    forecast_quantile: float
    forecast_miss_tolerance: float
    max_rescales_per_day: int
    latency_target: float
    plan_headroom: float
    plan_block: float
    plan_lateness_price: float
    rescales_reserve: int
    plan_min_change: float

    @classmethod
    def from_mapping(cls, given: Mapping[str, str] | None) -> FlinkscaleSettings:
        v = parse_settings(NAME, SETTINGS, given, aliases=("kubernetes.operator.", "job.autoscaler."),
                           ordered=(("vertex.min-parallelism", "vertex.max-parallelism"),))
        return cls(
            scaling_enabled=v.flag("scaling.enabled"),
            utilization_target=v.number("utilization.target"),
            utilization_max=v.number("utilization.max"),
            scale_down_margin=v.number("scale-down.margin"),
            scale_down_interval=v.number("scale-down.interval"),
            scale_down_min_saving=v.number("scale-down.min-saving"),
            stabilization_interval=v.number("stabilization.interval"),
            metrics_window=v.number("metrics.window"),
            catch_up_duration=v.number("catch-up.duration"),
            restart_time=v.number("restart.time"),
            backlog_lag_threshold=v.number("backlog-processing.lag-threshold"),
            vertex_min_parallelism=v.integer("vertex.min-parallelism"),
            vertex_max_parallelism=v.integer("vertex.max-parallelism"),
            effectiveness_threshold=v.number("scaling.effectiveness.threshold"),
            prediction_horizon=v.number("prediction.horizon"),
            prediction_window=v.number("prediction.window"),
            gc_pressure_threshold=v.number("memory.gc-pressure.threshold"),
            heap_usage_threshold=v.number("memory.heap-usage.threshold"),
            forecast_horizon=v.number("forecast.horizon"),
            forecast_quantile=v.number("forecast.quantile"),
            forecast_miss_tolerance=v.number("forecast.miss-tolerance"),
            max_rescales_per_day=v.integer("rescales.max-per-day"),
            latency_target=v.number("latency.target"),
            plan_headroom=v.number("plan.headroom"),
            plan_block=v.number("plan.block"),
            plan_lateness_price=v.number("plan.lateness-price"),
            rescales_reserve=int(v.number("rescales.reserve")),
            plan_min_change=v.number("plan.min-change"),
        ).validated()

    def validated(self) -> FlinkscaleSettings:
        from flinkscale.core.errors import InputError

        if self.utilization_target <= 0:
            raise InputError("must be > 0", field="utilization.target")
        if self.utilization_max < self.utilization_target:
            raise InputError(f"must be >= utilization.target ({self.utilization_target})", field="utilization.max")
        if self.scale_down_margin >= self.utilization_target:
            raise InputError(f"must be < utilization.target ({self.utilization_target})", field="scale-down.margin")
        if not 0.5 < self.forecast_quantile < 1:
            raise InputError(f"must be in (0.5, 1), got {self.forecast_quantile}", field="forecast.quantile")
        if self.plan_headroom <= 0:
            raise InputError("must be > 0", field="plan.headroom")
        if self.plan_block <= 0:
            raise InputError("must be > 0", field="plan.block")
        if self.plan_lateness_price < 0:
            raise InputError("must be >= 0", field="plan.lateness-price")
        if not 0 <= self.plan_min_change < 1:
            raise InputError(f"must be in [0, 1), got {self.plan_min_change}", field="plan.min-change")
        return self


class VertexCost(NamedTuple):
    """What one subtask of a vertex can process, and how unevenly records land on its subtasks (a named tuple:
    one per vertex at every decision).

    The skew beyond the key-group layout is measured at one parallelism (``measured_at``). Spread over more
    subtasks it grows as if one hot key caused it: a key with share ``h`` of the records stays on one subtask,
    which then carries ``h + (1 - h) / p``, so the busiest / mean is ``1 + h (p - 1)`` with ``h = (s - 1) /
    (p0 - 1)`` from the measured ``s`` at ``p0``. Over fewer subtasks it is taken as measured (never less):
    a scale-down does not count on the skew evening out."""

    records_per_subtask_second: float  # c: records/s of one fully busy subtask (inf = never busy)
    residual_skew: float  # imbalance beyond the key-group layout (hot keys) at measured_at, >= 1
    groups: int | None
    measured_at: int = 1  # the parallelism residual_skew was measured at

    def skew_at(self, parallelism: int) -> float:
        if parallelism <= self.measured_at or self.measured_at <= 1 or self.residual_skew <= 1.0:
            return self.residual_skew
        hot_share = (self.residual_skew - 1.0) / (self.measured_at - 1)
        return 1.0 + hot_share * (parallelism - 1)

    def busiest_utilization(self, load: float, parallelism: int) -> float:
        if math.isinf(self.records_per_subtask_second) or load <= 0:
            return 0.0
        return (load * ev.layout_factor(parallelism, self.groups) * self.skew_at(parallelism)
                / (parallelism * self.records_per_subtask_second))

    def full_speed_capacity(self, parallelism: int) -> float:
        """Records/s the vertex takes when its busiest subtask is fully busy."""
        return (parallelism * self.records_per_subtask_second
                / (ev.layout_factor(parallelism, self.groups) * self.skew_at(parallelism)))

    def parallelism_for(self, full_speed_load: float, lower: int, upper: int) -> int:
        """The fewest subtasks within [lower, upper] whose busiest one carries ``full_speed_load`` at full
        speed (``upper`` when none does). The skew grows with p, so the answer at the skew of a guess is a
        lower bound: raise the guess until it holds."""
        c = self.records_per_subtask_second
        skew = self.residual_skew
        p = ev.smallest_parallelism_for_load(full_speed_load, c / skew, self.groups, lower, upper)
        while p < upper and self.skew_at(p) != skew:  # at the same skew the answer is the same p
            skew = self.skew_at(p)
            found = ev.smallest_parallelism_for_load(full_speed_load, c / skew, self.groups, lower, upper)
            if found <= p:
                break
            p = found
        return p


def vertex_cost(metrics: ev.WindowMetrics, parallelism: int, groups: int | None) -> VertexCost | None:
    """Per-subtask cost from window means; ``None`` when the metrics cannot say (nothing flowed, or
    busy time missing). A vertex busy while no record flows (a source stalled on its reads, timers firing) says
    nothing about the cost of a record either: a cost from it would be 0 records per busy second."""
    rate = metrics.input_rate
    busy_avg, busy_max = metrics.busy_time_ms_per_second_avg, metrics.busy_time_ms_per_second_max
    if rate is None or rate <= 0 or (busy_avg is None and busy_max is None):
        return None
    layout_now = ev.layout_factor(parallelism, groups)
    if busy_avg is not None and busy_avg > 0:
        imbalance = (busy_max / busy_avg) if busy_max else 1.0
        return VertexCost(rates.per_subtask_capacity(rate, busy_avg, parallelism), max(1.0, imbalance / layout_now),
                          groups, parallelism)
    if busy_max is not None and busy_max > 0:
        # Without the mean, the busiest subtask's share is assumed to be the layout's alone.
        return VertexCost(rates.per_subtask_capacity(rate, busy_max, parallelism) * layout_now, 1.0, groups)
    return VertexCost(math.inf, 1.0, groups)


@dataclass(frozen=True)
class _DownBlock:
    """Why no scale-down may happen now; ``due_at``: when it may (scale-down.interval), None if not by time."""

    reason: str
    due_at: float | None = None


class _Plan(NamedTuple):
    """What the reactive rules make of one vertex (a named tuple: one per vertex at every decision, built in a
    fraction of a frozen dataclass's time)."""

    vertex: Vertex
    cost: VertexCost | None
    numbers: dict[str, float]
    need: int  # parallelism for the target (up or down)
    floor: int | None  # lowest parallelism a scale-down may go to (None = no scale-down)
    trigger: str | None  # why this vertex forces a rescale
    reason: str
    # With nothing flowing, the cost is the one measured before (``remembered_costs``); then also the vertex's
    # records per source record, which the idle graph's ratios (1 on every edge) cannot say.
    load_factor: float | None = None


class FlinkscalePolicy(WindowedPolicy[FlinkscaleSettings]):
    """Whole-graph, skew-aware, ceiling-aware sizing with hysteresis; see the module docstring."""

    name = NAME
    default_settings = FlinkscaleSettings
    stabilization_key = "stabilization.interval"

    def decide_running(self, snapshot: MetricsSnapshot, history: History) -> Decision:
        s = self.settings
        now = snapshot.timestamp
        stable = self.stable_window(snapshot, history)
        if isinstance(stable, Decision):
            return stable
        since, window = stable.since, stable.snapshots
        metrics = ev.window_metrics(window)
        ratios = ev.output_ratios(snapshot, metrics)
        source_targets = ev.source_targets_at(window, len(window) - 1)
        targets = ev.propagate_rates(snapshot, source_targets, ratios)
        # The trend only sizes a rescale that current conditions trigger; it never triggers one itself.
        sized_for = targets
        if s.prediction_horizon > 0:
            recent = [h for h in history.snapshots
                      if now - s.prediction_window <= h.timestamp < now and h.job_state == "RUNNING"]
            trend = rate_trend([*recent, snapshot])
            sized_for = ev.propagate_rates(snapshot, {
                k: v + max(0.0, trend.get(k, 0.0)) * s.prediction_horizon for k, v in source_targets.items()}, ratios)
        graph_sources = snapshot.graph_sources
        lags = ev.propagate_rates(snapshot, {v.id: metrics[v.id].lag or 0.0 for v in graph_sources}, ratios)
        backlog = max((_lag_seconds(metrics[v.id].lag, source_targets.get(v.id, 0.0)) for v in graph_sources),
                      default=0.0)
        learned = ev.learned_restart_seconds(history)
        restart = s.restart_time if learned is None else learned
        ceiling = ev.job_slot_ceiling(snapshot)
        peak_loads, down_block = self._scale_down_window(snapshot, history, since, ratios, backlog)

        # A backlog that shrinks fast enough to be gone within catch-up.duration is being drained at full speed:
        # the busy time it causes is not a lack of capacity, and it triggers nothing.
        draining = _draining_seconds(metrics, graph_sources)
        drains_in_time = draining is not None and draining <= s.catch_up_duration
        # So is one still shrinking within catch-up.duration of the rescale that was sized to drain it: a
        # shrinking backlog proves the job carries what arrives, and another restart would only add to it.
        last = history.rescales[-1] if history.rescales else None
        if draining is not None and last is not None and now - last.completed_at < s.catch_up_duration:
            drains_in_time = True
        groups = ev.layout_groups_by_id(snapshot)
        bounds = ev.parallelism_bounds_by_id(snapshot, s.vertex_min_parallelism, s.vertex_max_parallelism, ceiling)
        changes = ev.parallelism_changes(snapshot, history) if s.effectiveness_threshold > 0 else None
        idle_vertices = {v.id for v in snapshot.vertices if metrics[v.id].input_rate == 0.0}
        memory = remembered_costs(history, idle_vertices) if idle_vertices else {}
        # A window in which the sources drained a backlog shows each vertex's subtasks uneven by what they had to
        # catch up on, not by their load: the skew is the one measured before (the cost per record still counts).
        skews = (remembered_costs(history, set(ev.parallelism_of(snapshot)) - idle_vertices)
                 if _drained_in_window(metrics, graph_sources, source_targets) else {})
        source_total = sum(source_targets.values())
        plans = [self._plan_vertex(snapshot, history, v, metrics[v.id], targets[v.id], sized_for[v.id], lags[v.id],
                                   restart, groups[v.id], bounds[v.id], peak_loads.get(v.id), down_block,
                                   learned is not None, drains_in_time, changes, memory.get(v.id), source_total,
                                   skews.get(v.id))
                 for v in snapshot.vertices]
        triggers = [f"{p.vertex.name}: {p.trigger}" for p in plans if p.trigger]
        # A plan sized the job for the forecast's band at plan.headroom: while the forecast holds, a subtask busy
        # above utilization.max but not saturated still keeps up, and the plan (made again every block, from the
        # costs measured now) says whether it needs a change. Only saturation, lag or a ceiling overrule it.
        urgent = [f"{p.vertex.name}: {p.trigger}" for p in plans
                  if p.trigger and not (p.trigger.startswith(_BUSY_TRIGGER) and p.numbers["utilization"] < 1.0)]
        used_today = rescales_today(history, now)

        idle = down_block is None and bool(peak_loads) and not any(peak_loads.values())
        fallback = None
        if s.forecast_horizon > 0:
            forecast = self._forecast(history, now)
            # Nothing to read for a whole interval while the forecast expected load all through it (a holiday, an
            # outage upstream): the forecast is what is wrong, and the reactive rules alone decide, so that a day
            # with nothing to read is not held at the size forecast for it.
            unread = (idle and forecast is not None and forecast.at(now)[2] > 0
                      and self._expected_all_interval(history, now))
            planned = self._planned(snapshot, forecast, history, plans, ratios, source_targets, restart, ceiling,
                                    used_today, urgent, backlog, draining, unread)
            if isinstance(planned, Decision):
                return planned
            fallback = planned
            if forecast is not None and not unread:
                # The forecast knows the day's shape. A miss (a spike, a break) is sized for the rate it brings,
                # not for its slope extrapolated over prediction.horizon (a spike's slope is steep); a reactive
                # scale-down must also carry the forecast's upper band for the rest of the day (the budget may
                # allow no scale-up after it before midnight) or scale-down.interval if longer, and none is made
                # while the load is above the band (a ramp earlier or steeper than forecast).
                sized_for = targets
                until = max((math.floor(now / DAY) + 1) * DAY - forecast.start, s.scale_down_interval)
                ahead = forecast.upper[: max(1, math.ceil(until / forecast.bin_seconds))]
                expected = ev.propagate_rates(snapshot, _spread(float(ahead.max()), source_targets), ratios)
                peak_loads = {k: max(v, expected.get(k, 0.0)) for k, v in peak_loads.items()}
                if sum(source_targets.values()) > forecast.at(now)[2] and down_block is None:
                    down_block = _DownBlock("the load is above its forecast's band")
                plans = [self._plan_vertex(snapshot, history, v, metrics[v.id], targets[v.id], targets[v.id],
                                           lags[v.id], restart, groups[v.id], bounds[v.id], peak_loads.get(v.id),
                                           down_block, learned is not None, drains_in_time, changes,
                                           memory.get(v.id), source_total, skews.get(v.id))
                         for v in snapshot.vertices]
        # The reactive rules' reasons, after why they decide (the plan's fallback) when there is one.
        reasons = [f"{fallback}; {p.reason}" for p in plans] if fallback else [p.reason for p in plans]
        downs = [p for p in plans if p.floor is not None and p.floor < p.vertex.parallelism]
        if not triggers and not downs:
            return Decision(now, NAME, _held(plans, reasons))
        if used_today >= s.max_rescales_per_day:
            why = (f"{used_today} rescales today already (rescales.max-per-day {s.max_rescales_per_day}): held"
                   + (f" although {'; '.join(triggers)}" if triggers else ""))
            return Decision(now, NAME, _held(plans, [f"{reason}; {why}" for reason in reasons]),
                            blocked_reason=why if triggers else None)
        new, binding = self._size_graph(snapshot, plans, sized_for, lags, restart, ceiling)
        if not triggers:
            saving = _saving(ev.parallelism_of(snapshot), new)
            # The restart must pay for itself twice over within the interval the new size will hold.
            worth = max(s.scale_down_min_saving, 2 * restart / s.scale_down_interval if s.scale_down_interval else 0.0)
            if saving < worth:
                why = (f"a scale-down would save only {saving:.1%} of the job's subtasks or slots, < {worth:.1%} "
                       f"(scale-down.min-saving, or 2 x restart / scale-down.interval): not worth a restart")
                return Decision(now, NAME, _held(plans, [f"{reason}; {why}" for reason in reasons]))
        why_rescale = "; ".join(triggers) if triggers else "rate stayed low for scale-down.interval"
        decisions = []
        for plan, plan_reason in zip(plans, reasons, strict=True):
            p_new = new[plan.vertex.id]
            numbers = {**plan.numbers, "new_parallelism": float(p_new)}
            if plan.cost is not None:
                numbers["utilization_after"] = plan.cost.busiest_utilization(targets[plan.vertex.id], p_new)
            reason = f"{plan_reason}; rescale of the whole graph ({why_rescale})"
            if binding:
                reason += f"; {binding}"
            decisions.append(VertexDecision(plan.vertex.id, plan.vertex.name, plan.vertex.parallelism, p_new,
                                            reason, numbers))
        blocked = None
        if not s.scaling_enabled and any(d.changed for d in decisions):
            blocked = "scaling.enabled=false (recommendation only)"
            decisions = [VertexDecision(d.vertex_id, d.vertex_name, d.current_parallelism, d.current_parallelism,
                                        f"{blocked}; would set {d.new_parallelism}: {d.reason}",
                                        {**d.numbers, "recommended_parallelism": float(d.new_parallelism),
                                         "new_parallelism": float(d.current_parallelism)})
                         for d in decisions]
        return Decision(now, NAME, tuple(decisions), blocked_reason=blocked)

    # --- per vertex --------------------------------------------------------------------------------
    def _plan_vertex(self, snapshot: MetricsSnapshot, history: History, vertex: Vertex, metrics: ev.WindowMetrics,
                     target: float, sized_for: float, lag: float, restart: float, groups: int | None,
                     bounds: tuple[int, int], peak_load: float | None, down_block: _DownBlock | None,
                     restart_learned: bool, drains_in_time: bool = False,
                     changes: ev.ParallelismChanges | None = None, remembered: Mapping[str, float] | None = None,
                     source_total: float = 0.0, skew_before: Mapping[str, float] | None = None) -> _Plan:
        """``groups``: ``ev.layout_groups`` of the vertex; ``bounds``: its ``ev.parallelism_bounds``; ``changes``:
        ``ev.parallelism_changes(snapshot, history)`` (or None); ``remembered``: the vertex's cost numbers from
        ``remembered_costs`` (nothing flows now); ``source_total``: the graph's sources' target rate;
        ``skew_before``: when the window's sources drained a backlog (``_drained_in_window``), the vertex's cost
        numbers from ``remembered_costs``, whose skew is taken instead of the one measured now."""
        s = self.settings
        p = vertex.parallelism
        lower, upper = bounds
        numbers: dict[str, float] = {"target_rate": target, "lag": float(lag), "restart_seconds": restart,
                                     "restart_learned": float(restart_learned)}
        if metrics.input_rate is not None:
            numbers["input_rate"] = metrics.input_rate
        cost = vertex_cost(metrics, p, groups)
        over_ceiling = f"parallelism {p} above the {upper} allowed (slots, partitions or max parallelism)" \
            if p > upper else None
        if cost is None:
            # Nothing flows (a closed shop at night): the cost measured before, if any, still sizes the plan
            # (a scale-up before the morning needs it); the first records measure it again.
            kept, load_factor = _recalled(remembered, groups)
            memo = ""
            if kept is not None and remembered is not None:
                numbers.update({key: remembered[key] for key in _COST_KEYS}, cost_remembered=1.0)
                memo = (f" (sized from the cost measured before: {kept.records_per_subtask_second:,.1f}/s a "
                        f"subtask at p {kept.measured_at})")
            if peak_load == 0.0 and min(p, upper) > lower:
                # Nothing arrived over scale-down.interval (nor is forecast for the rest of the day): none is
                # needed. Down to the fewest subtasks.
                reason = f"no records over scale-down.interval: down to p {lower}{memo}"
                return _Plan(vertex, kept, numbers, lower, lower, over_ceiling, reason, load_factor)
            reason = f"no usable busyTimeMsPerSecond / numRecordsInPerSecond: kept{memo}"
            return _Plan(vertex, kept, numbers, min(p, upper), None, over_ceiling, reason, load_factor)
        skew_note = ""
        before, _ = _recalled(skew_before, groups)
        if before is not None and cost.records_per_subtask_second < math.inf:
            cost = VertexCost(cost.records_per_subtask_second, before.residual_skew, groups, before.measured_at)
            numbers["skew_carried"] = 1.0
            skew_note = (f"; skew {cost.residual_skew:.3f} as measured at p {cost.measured_at} before the backlog "
                         "(subtasks draining one are uneven by what they catch up on)")
        c = cost.records_per_subtask_second
        utilization = cost.busiest_utilization(target, p)
        capacity = cost.full_speed_capacity(p)
        numbers["records_per_subtask_second"] = c
        numbers["residual_skew"] = cost.residual_skew
        numbers["cost_parallelism"] = float(cost.measured_at)
        numbers["layout_factor"] = ev.layout_factor(p, groups)
        numbers["true_processing_rate"] = capacity
        numbers["utilization"] = utilization
        if groups:
            numbers["key_groups_or_partitions"] = float(groups)
        if source_total > 0:
            numbers["load_factor"] = target / source_total
        if sized_for != target:
            numbers["predicted_target_rate"] = sized_for
        need_load = self._need_load(sized_for, lag, restart)
        numbers["required_capacity"] = need_load
        need = cost.parallelism_for(need_load, lower, upper)
        drain_load = target + lag / s.catch_up_duration if s.catch_up_duration > 0 else target
        trigger = over_ceiling
        if utilization > s.utilization_max + 1e-9 and not drains_in_time:  # exactly at the bound is inside it
            trigger = trigger or f"{_BUSY_TRIGGER} {utilization:.2f} > utilization.max {s.utilization_max}"
        elif lag > 0 and drain_load > capacity * (1 + 1e-9) and not drains_in_time:
            trigger = trigger or f"lag {lag:.0f} cannot drain within catch-up.duration"
        reason = (f"target {target:.1f}/s, busiest subtask at {utilization:.2f} now; needs "
                  f"{need_load:.1f}/s at full speed -> p {need}{skew_note}")
        if trigger is not None and trigger is not over_ceiling and need <= p:
            # More subtasks would not relieve it (at its most subtasks, or one key group or partition per
            # subtask already): a restart of the whole graph for it would only add lag.
            reason += f"; {trigger}, but no parallelism up to {upper} carries more than p {p}: no rescale for it"
            trigger = over_ceiling
        if need > p:
            outcome = None
            if s.effectiveness_threshold > 0:
                outcome = ev.last_scale_up_outcome(snapshot, history, vertex.id, s.stabilization_interval,
                                                   max(s.metrics_window, s.stabilization_interval), changes)
            # Judged only where the vertex was a bottleneck before: an idle vertex's TPR is noise.
            if (outcome is not None and outcome.busy_ratio_before >= 0.5
                    and not outcome.effective(s.effectiveness_threshold)):
                numbers.update(expected_tpr_gain=outcome.expected_gain, actual_tpr_gain=outcome.actual_gain)
                reason = (f"ineffective scaling: the scale-up {outcome.old_parallelism}->{outcome.new_parallelism} "
                          f"gained {outcome.actual_gain:.1f}/s of the {outcome.expected_gain:.1f}/s expected "
                          f"(hot key or outside bottleneck?): not scaling up again ({reason})")
                need, trigger = p if p <= upper else upper, over_ceiling
            gc = ev.gc_pressure(snapshot)
            if gc is not None and gc > s.gc_pressure_threshold and need > p:
                reason = (f"GC pressure {gc:.2f} > memory.gc-pressure.threshold: no scale-up (give TaskManagers "
                          f"more memory) ({reason})")
                need, trigger = p, over_ceiling
        floor: int | None = None
        if down_block is None and peak_load is not None and need <= p:
            floor_load = (peak_load / (s.utilization_target - s.scale_down_margin))
            floor = max(need, cost.parallelism_for(floor_load, lower, upper))
            numbers["peak_target_rate_in_interval"] = peak_load
            numbers["scale_down_floor"] = float(floor)
            bound = s.utilization_target - s.scale_down_margin
            if floor < p:
                reason += f"; peak {peak_load:.1f}/s over scale-down.interval fits p {floor} at <= {bound:.2f}"
            elif need < p:
                reason += (f"; no scale-down yet: the peak {peak_load:.1f}/s over the last scale-down.interval "
                           f"needs p {floor} at <= {bound:.2f}")
        elif down_block is not None and need < p:
            reason += f"; no scale-down: {down_block.reason}"
            if down_block.due_at is not None:  # the timer, as numbers (the state store and `autoscale status`)
                numbers.update(scale_down_target=float(need), scale_down_due_at=down_block.due_at)
        numbers["recommended_parallelism"] = float(need)
        return _Plan(vertex, cost, numbers, need, floor, trigger, reason)

    # --- planned rescales on the load forecast --------------------------------------------------------
    def _forecast(self, history: History, now: float) -> Forecast | None:
        """The seasonal forecast from the load history; None under a day of it (numpy loads only past that)."""
        s = self.settings
        load = history.load
        # seasonal_forecast's own test (under two samples before ``now``, or first to last under a day: None),
        # made here on the two ends alone, without copying 15 days of samples or loading numpy.
        first = next((i for i, (t, _) in enumerate(load) if t < now), None)
        last = next((i for i in range(len(load) - 1, -1, -1) if load[i][0] < now), None)
        if first is None or last is None or last <= first or load[last][0] - load[first][0] < DAY - s.plan_block:
            return None
        import numpy as np

        from flinkscale.core.forecast import seasonal_forecast

        times = np.array([t for t, _ in history.load], dtype=np.float64)
        values = np.array([v for _, v in history.load], dtype=np.float64)
        return seasonal_forecast(times, values, now, s.forecast_horizon, bin_seconds=s.plan_block,
                                 quantile=s.forecast_quantile)

    def _expected_all_interval(self, history: History, now: float) -> bool:
        """Whether the forecast made at the start of the last scale-down.interval expected load then (with the
        forecast expecting load now: all through the interval, not from a few minutes ago, an opening)."""
        since = now - self.settings.scale_down_interval
        past = self._forecast(history, since)
        return past is not None and past.at(since)[2] > 0

    def _planned(self, snapshot: MetricsSnapshot, forecast: Forecast | None, history: History, plans: Sequence[_Plan],
                 ratios: Mapping[tuple[str, str], float], source_targets: Mapping[str, float], restart: float,
                 ceiling: int | None, used_today: int, triggers: Sequence[str], backlog: float,
                 draining: float | None, unread: bool) -> Decision | str | None:
        """A decision from the rescale plan on the forecast, or why the reactive rules decide instead; ``unread``:
        nothing was read over scale-down.interval while the forecast expected load all through it."""
        s = self.settings
        now = snapshot.timestamp
        load_now = sum(source_targets.values())
        if forecast is None:
            return _NO_FORECAST
        from flinkscale.core.policy._schedule import PlanProblem, solve

        lower, median, upper = forecast.at(now)
        if load_now > upper * (1 + s.forecast_miss_tolerance):
            return (f"forecast missed: load {load_now:,.0f}/s is above the {forecast.season_name} forecast's band "
                    f"[{lower:,.0f}, {upper:,.0f}]/s by more than forecast.miss-tolerance: reactive rules")
        if unread:
            return (f"forecast missed: nothing to read for scale-down.interval, although the {forecast.season_name} "
                    f"forecast expects {median:,.0f}/s now (band {lower:,.0f}-{upper:,.0f}): reactive rules, "
                    "without the forecast")
        if backlog > s.backlog_lag_threshold and not (draining is not None and draining <= s.catch_up_duration):
            return f"a backlog of {backlog:.0f}s of input is not draining in time: reactive rules"
        if any(p.cost is None for p in plans if (p.numbers.get("target_rate") or 0.0) > 0):
            return "some vertex has no usable busy time to size from: reactive rules"
        if triggers and (draining is None or draining > s.catch_up_duration):
            return f"{'; '.join(triggers)}: reactive rules"
        # Plans use the budget less the reserve, so that a spike or a forecast miss can still be answered.
        # (A budget of one leaves the plan its one change.) With the plan's share spent (a spike took one), a
        # plan could only hold: the reactive rules decide, so that a size taken for a spike can come down.
        planned_budget = max(1, s.max_rescales_per_day - s.rescales_reserve)
        if used_today >= planned_budget:
            return (f"{used_today} rescales today leave the plan none (rescales.max-per-day "
                    f"{s.max_rescales_per_day} less rescales.reserve {s.rescales_reserve}): reactive rules")
        # The plan is made once per block: later in the same block, a plan that said "hold" still holds (the
        # forecast for the block has not changed; the reactive checks above run at every decision).
        last = history.decisions[-1] if history.decisions else None
        if (last is not None and last.policy == NAME and last.vertices
                and math.floor(last.timestamp / s.plan_block) == math.floor(now / s.plan_block)
                and last.vertices[0].reason.startswith("plan: hold")
                and all(v.new_parallelism == v.current_parallelism for v in last.vertices)):
            return Decision(now, NAME, tuple(
                VertexDecision(p.vertex.id, p.vertex.name, p.vertex.parallelism, p.vertex.parallelism,
                               last.vertices[0].reason, {**p.numbers, "new_parallelism": float(p.vertex.parallelism)})
                for p in plans))
        levels, start = self._levels(snapshot, plans, ratios, source_targets, forecast, ceiling)
        if len(levels) < 2:
            return "the forecast leaves no size to choose from: reactive rules"
        problem = PlanProblem(levels=levels, start_level=start, block_seconds=forecast.bin_seconds,
                              start_time=forecast.start, peak=forecast.upper, mean=forecast.median,
                              downtime_seconds=restart, lag_target_seconds=s.latency_target,
                              max_changes_per_day=planned_budget,
                              changes_used_today=used_today, headroom=s.plan_headroom,
                              lateness_weight=s.plan_lateness_price * max(level.slots for level in levels))
        plan = solve(problem)
        change = plan.change_now()
        if change is not None and levels[change].capacity < levels[start].capacity:
            change = self._spared(levels, start, plan, forecast)
        small = ""
        if change is not None:
            # A change of a few slots is the measured costs moving, not the forecast: not worth a restart.
            # Measured against the larger of the two sizes, so that halving and doubling count alike (50%).
            shift = (abs(levels[change].slots - levels[start].slots)
                     / max(levels[change].slots, levels[start].slots, 1.0))
            if shift < s.plan_min_change:
                small = (f" (the planned change to {levels[change].capacity:,.0f}/s moves only {shift:.1%} of the "
                         f"slots, < plan.min-change {s.plan_min_change:.0%})")
                change = None
            elif levels[change].capacity < levels[start].capacity and backlog > s.backlog_lag_threshold:
                # The plan sizes for the forecast load, not for records already waiting: no scale-down while a
                # backlog drains (the reactive rules' backlog-processing.lag-threshold).
                small = (f" (no planned scale-down while a backlog of {backlog:.0f}s of input drains: "
                         "backlog-processing.lag-threshold)")
                change = None
        numbers = {"forecast_median": median, "forecast_upper": upper, "forecast_lower": lower,
                   "forecast_level": forecast.level, "load": load_now, "rescales_today": float(used_today),
                   "restart_seconds": restart, "plan_late_seconds": plan.late_seconds}
        later = [(t, lv) for t, lv in plan.changes if t > 0]
        next_change = (f"next planned change at {_clock(forecast.start + later[0][0])} to "
                       f"{levels[later[0][1]].capacity:,.0f}/s" if later else "no further change planned")
        basis = (f"{forecast.season_name} forecast {median:,.0f}/s now (band {lower:,.0f}-{upper:,.0f}), "
                 f"load {load_now:,.0f}/s; rescale priced at {restart:.0f}s down")
        if change is None or dict(levels[change].parallelism) == ev.parallelism_of(snapshot):
            why = f"plan: hold this size{small} ({next_change}); {basis}"
            return Decision(now, NAME, tuple(
                VertexDecision(p.vertex.id, p.vertex.name, p.vertex.parallelism, p.vertex.parallelism,
                               why, {**p.numbers, **numbers, "new_parallelism": float(p.vertex.parallelism)})
                for p in plans))
        target = levels[change]
        until = _clock(forecast.start + later[0][0]) if later else "the end of the horizon"
        peak_until = _peak_until_next_change(plan, forecast)
        direction = "up" if target.capacity > levels[start].capacity else "down"
        spare = (f" with forecast.miss-tolerance {s.forecast_miss_tolerance:.0%} to spare"
                 if direction == "down" else "")
        why = (f"plan: scale {direction} to carry {target.capacity:,.0f}/s at full speed, sized for the forecast "
               f"peak {peak_until:,.0f}/s until {until}{spare} ({next_change}); {basis}")
        if not s.scaling_enabled:
            blocked = "scaling.enabled=false (recommendation only)"
            return Decision(now, NAME, tuple(
                VertexDecision(p.vertex.id, p.vertex.name, p.vertex.parallelism, p.vertex.parallelism,
                               f"{blocked}; would set {target.parallelism.get(p.vertex.id, p.vertex.parallelism)}: "
                               f"{why}", {**p.numbers, **numbers}) for p in plans), blocked_reason=blocked)
        return Decision(now, NAME, tuple(
            VertexDecision(p.vertex.id, p.vertex.name, p.vertex.parallelism,
                           target.parallelism.get(p.vertex.id, p.vertex.parallelism), why,
                           {**p.numbers, **numbers,
                            "new_parallelism": float(target.parallelism.get(p.vertex.id, p.vertex.parallelism))})
            for p in plans))

    def _spared(self, levels: Sequence[Level], start: int, plan: Plan, forecast: Forecast) -> int | None:
        """The size a planned scale-down takes: the fewest slots that carry the forecast's band until the plan's
        next change at plan.headroom with forecast.miss-tolerance to spare (None: none below the current size).
        A size that carries the band with nothing to spare is reversed by the next upward revision of the
        forecast, a restart each way."""
        s = self.settings
        needed = _peak_until_next_change(plan, forecast) * (1 + s.forecast_miss_tolerance) / s.plan_headroom
        fitting = [i for i, level in enumerate(levels) if needed <= level.capacity < levels[start].capacity]
        return min(fitting, key=lambda i: levels[i].slots) if fitting else None

    def _levels(self, snapshot: MetricsSnapshot, plans: Sequence[_Plan], ratios: Mapping[tuple[str, str], float],
                source_targets: Mapping[str, float], forecast: Forecast, ceiling: int | None
                ) -> tuple[list[Level], int]:
        """Sizes to plan with, from the measured per-subtask costs: for source rates on a geometric grid
        (5% apart) over the forecast's range, the fewest subtasks per vertex that carry it at full speed.
        The current size is level ``start`` (its capacity from the same costs)."""
        import numpy as np

        from flinkscale.core.policy._schedule import Level

        s = self.settings
        total = sum(source_targets.values())
        shares = ({k: v / total for k, v in source_targets.items()} if total > 0 else
                  {k: 1.0 / len(source_targets) for k in source_targets})
        factor = ev.propagate_rates(snapshot, shares, ratios)
        factor.update({p.vertex.id: p.load_factor for p in plans if p.load_factor is not None})
        bounds = ev.parallelism_bounds_by_id(snapshot, s.vertex_min_parallelism, s.vertex_max_parallelism, ceiling)

        def carried(parallelism: Mapping[str, int]) -> float:
            capacity = math.inf
            for p in plans:
                if p.cost is not None and factor.get(p.vertex.id, 0.0) > 0:
                    capacity = min(capacity, p.cost.full_speed_capacity(parallelism[p.vertex.id])
                                   / factor[p.vertex.id])
            return capacity

        current = ev.parallelism_of(snapshot)
        levels = [Level(current, float(sum(current.values())), carried(current))]
        high = max(float(np.max(forecast.upper)) / s.plan_headroom * 1.1, 1e-3)
        # A load that drops to nothing (closed at night) needs no size finer than 2% of the peak's.
        low = max(float(np.min(forecast.lower)) * 0.8, high * 0.02)
        rate = low
        seen = {tuple(sorted(current.items()))}
        fewest = {p.vertex.id: bounds[p.vertex.id][0] for p in plans}
        if all(p.cost is not None for p in plans) and tuple(sorted(fewest.items())) not in seen:
            # Every vertex at its fewest subtasks: the size for a night with nothing (or next to nothing) to read.
            seen.add(tuple(sorted(fewest.items())))
            levels.append(Level(fewest, float(sum(fewest.values())), carried(fewest)))
        while rate <= high:
            parallelism = {}
            for p in plans:
                lower, upper = bounds[p.vertex.id]
                if p.cost is None:
                    parallelism[p.vertex.id] = min(p.vertex.parallelism, upper)
                else:
                    parallelism[p.vertex.id] = p.cost.parallelism_for(rate * factor.get(p.vertex.id, 0.0), lower,
                                                                      upper)
            key = tuple(sorted(parallelism.items()))
            if key not in seen:
                seen.add(key)
                levels.append(Level(parallelism, float(sum(parallelism.values())), carried(parallelism)))
            rate *= 1.05
        return levels, 0

    def _need_load(self, target: float, lag: float, restart: float) -> float:
        """Full-speed capacity: the target at the utilization target, or enough to drain the lag plus the
        restart's backlog within catch-up.duration, whichever is more."""
        s = self.settings
        need = target / s.utilization_target
        if s.catch_up_duration > 0:
            need = max(need, rates.required_capacity(target, 1.0, restart, s.catch_up_duration,
                                                     catch_up_rate=lag / s.catch_up_duration))
        return need

    # --- whole graph -------------------------------------------------------------------------------
    def _size_graph(self, snapshot: MetricsSnapshot, plans: Sequence[_Plan], targets: Mapping[str, float],
                    lags: Mapping[str, float], restart: float, ceiling: int | None) -> tuple[dict[str, int], str]:
        """New parallelism per vertex for a rescale, and which ceiling binds (empty when none)."""
        s = self.settings
        bounds = ev.parallelism_bounds_by_id(snapshot, s.vertex_min_parallelism, s.vertex_max_parallelism, ceiling)
        fraction, binding_vertex = 1.0, None
        for plan in plans:
            if plan.cost is None:
                continue
            lower, upper = bounds[plan.vertex.id]
            need_load = self._need_load(targets[plan.vertex.id], lags[plan.vertex.id], restart)
            reachable = plan.cost.full_speed_capacity(upper)
            if need_load > 0 and reachable < need_load and reachable / need_load < fraction:
                fraction, binding_vertex = reachable / need_load, plan.vertex
        new: dict[str, int] = {}
        for plan in plans:
            p = plan.vertex.parallelism
            lower, upper = bounds[plan.vertex.id]
            need = plan.need  # without a cost: p (or upper), or its floor when nothing arrived
            if fraction < 1.0 and need > p and plan.cost is not None:
                scaled = self._need_load(targets[plan.vertex.id], lags[plan.vertex.id], restart) * fraction
                need = max(p if p <= upper else upper, plan.cost.parallelism_for(scaled, lower, upper))
            if need > p:
                new[plan.vertex.id] = min(need, upper)
            elif plan.floor is not None and plan.floor < p:
                new[plan.vertex.id] = plan.floor
            else:
                new[plan.vertex.id] = min(p, upper)
        binding = ""
        if binding_vertex is not None:
            _, upper = bounds[binding_vertex.id]
            limits = [f"max parallelism {binding_vertex.max_parallelism}",
                      f"vertex.max-parallelism {s.vertex_max_parallelism}"]
            if binding_vertex.partitions and ev.is_graph_source(snapshot, binding_vertex.id):
                limits.append(f"{binding_vertex.partitions} partitions")
            if ceiling is not None:
                limits.append(f"{ceiling} slots for this job")
            binding = (f"capacity ceiling binds at {binding_vertex.name} (p <= {upper}: {', '.join(limits)}): "
                       f"the graph is sized for {fraction:.0%} of the target rate")
        return new, binding

    def _scale_down_window(self, snapshot: MetricsSnapshot, history: History, since: float | None,
                           ratios: Mapping[tuple[str, str], float], backlog_seconds: float
                           ) -> tuple[dict[str, float], _DownBlock | None]:
        """Per-vertex peak target rate over scale-down.interval, or why no scale-down may happen."""
        s = self.settings
        now = snapshot.timestamp
        if since is None:
            return {}, _DownBlock("no history: the rate has not been seen low for scale-down.interval")
        if now - since < s.scale_down_interval:
            return {}, _DownBlock(f"{now - since:.0f}s since the last change < scale-down.interval "
                                  f"{s.scale_down_interval:.0f}s", due_at=since + s.scale_down_interval)
        if backlog_seconds > s.backlog_lag_threshold:
            return {}, _DownBlock(f"backlog of {backlog_seconds:.0f}s of input is draining "
                                  "(backlog-processing.lag-threshold)")
        heap = ev.heap_usage(snapshot)
        if heap is not None and heap > s.heap_usage_threshold:
            return {}, _DownBlock(f"heap usage {heap:.2f} > memory.heap-usage.threshold (fewer subtasks hold more "
                                  "state)")
        # One sample's λ + d(lag)/dt is noisy (pendingRecords refreshes unevenly), so the peak is that of the
        # load averaged over metrics.window: a sustained peak holds the size, a one-sample blip does not. The
        # averages take samples from inside the interval only, so that the load before it cannot leak in.
        # All samples and vertices at once: a (samples, vertices) table of loads, then the running window mean
        # over it row by row (for each vertex the same additions and subtractions, in the same order, as
        # summing that vertex's samples one at a time) and its running peak.
        import numpy as np

        start = now - s.scale_down_interval
        window = ev.window_snapshots(snapshot, history, start)
        targets = [ev.source_targets_at(window, i) for i in range(len(window))]
        source_rows = {v.id: np.array([t.get(v.id, 0.0) for t in targets], dtype=np.float64)
                       for v in snapshot.graph_sources}
        vertex_ids, loads = ev.propagate_rate_rows(snapshot, source_rows, ratios)
        peaks = np.zeros(len(vertex_ids))
        sums = np.zeros(len(vertex_ids))
        first = 0
        for index, sample in enumerate(window):
            sums = sums + loads[index]
            while window[first].timestamp <= sample.timestamp - s.metrics_window:
                sums = sums - loads[first]
                first += 1
            count = index - first + 1
            if count <= 0:  # metrics.window 0: no sample is inside its own window
                raise ZeroDivisionError("the metrics window holds no sample (metrics.window must be > 0)")
            mean = sums / count
            peaks = np.where(mean > peaks, mean, peaks)  # max(peak, mean): the peak stays unless exceeded
        return dict(zip(vertex_ids, peaks.tolist(), strict=True)), None


def _held(plans: Sequence[_Plan], reasons: Sequence[str]) -> tuple[VertexDecision, ...]:
    """Every vertex kept at its parallelism, ``reasons[i]`` for ``plans[i]``, with the plan's numbers (built
    column by column: a decision that holds is what most decisions are). The decisions take over the plans'
    numbers dicts, completed with ``new_parallelism`` (the plans are the decision's own, made for it)."""
    numbers = []
    for p in plans:
        p.numbers["new_parallelism"] = float(p.vertex.parallelism)
        numbers.append(p.numbers)
    parallelism = [p.vertex.parallelism for p in plans]
    return tuple(frozen_instances(VertexDecision, {
        "vertex_id": [p.vertex.id for p in plans], "vertex_name": [p.vertex.name for p in plans],
        "current_parallelism": parallelism, "new_parallelism": parallelism, "reason": reasons,
        "numbers": numbers}))


_NO_FORECAST = "no forecast yet (less than a day of load history): reactive rules"


#: The numbers of a decision that say a vertex's measured cost (``VertexCost``) and its records per source record.
_COST_KEYS = ("records_per_subtask_second", "residual_skew", "cost_parallelism", "load_factor")


def remembered_costs(history: History, vertex_ids: Set[str]) -> dict[str, Mapping[str, float]]:
    """For each of ``vertex_ids``, the cost numbers (``_COST_KEYS``) of the latest decision of this policy that
    has them: measured while records flowed, or carried on since by an idle decision (which repeats them, so
    the memory outlasts the history's reach). Holds without numbers (a rescale's stabilization) are skipped."""
    found: dict[str, Mapping[str, float]] = {}
    for decision in reversed(history.decisions):
        if decision.policy != NAME:
            continue
        for vertex in decision.vertices:
            n = vertex.numbers
            if vertex.vertex_id in vertex_ids and vertex.vertex_id not in found and all(k in n for k in _COST_KEYS):
                found[vertex.vertex_id] = n
        if len(found) == len(vertex_ids):
            break
    return found


def _recalled(numbers: Mapping[str, float] | None, groups: int | None) -> tuple[VertexCost | None, float | None]:
    """The ``VertexCost`` and load factor that ``remembered_costs`` numbers say (None, None without them)."""
    if numbers is None or not numbers["records_per_subtask_second"] > 0:
        return None, None
    cost = VertexCost(numbers["records_per_subtask_second"], max(1.0, numbers["residual_skew"]), groups,
                      max(1, int(numbers["cost_parallelism"])))
    return cost, numbers["load_factor"]


def rescales_today(history: History, now: float) -> int:
    """Rescales requested in the calendar day (of the history's clock) that holds ``now``."""
    day = math.floor(now / DAY)
    return sum(1 for r in history.rescales if math.floor(r.requested_at / DAY) == day)


#: The sources read this share more than arrived over the window (their lag shrank): a backlog was drained in it.
_DRAINED_SHARE = 0.02


def _drained_in_window(metrics: Mapping[str, ev.WindowMetrics], sources: Sequence[Vertex],
                       source_targets: Mapping[str, float]) -> bool:
    """Whether the sources' lag shrank over the window by more than ``_DRAINED_SHARE`` of what arrived: some
    of what they read was a backlog, so their subtasks (and those downstream) were busy unevenly, by how much
    each had to catch up on."""
    shrink = sum(max(0.0, -metrics[v.id].lag_growth_rate) for v in sources)
    arrived = sum(source_targets.get(v.id, 0.0) for v in sources)
    return shrink > _DRAINED_SHARE * arrived if arrived > 0 else False


def _draining_seconds(metrics: Mapping[str, ev.WindowMetrics], sources: Sequence[Vertex]) -> float | None:
    """Seconds until the sources' backlog is gone at its current shrink rate; ``None`` when there is no
    backlog or some source's lag is not shrinking."""
    longest: float | None = None
    for vertex in sources:
        lag, growth = metrics[vertex.id].lag or 0.0, metrics[vertex.id].lag_growth_rate
        if lag <= 0:
            continue
        if growth >= 0:
            return None
        longest = max(longest or 0.0, lag / -growth)
    return longest


def _peak_until_next_change(plan: Plan, forecast: Forecast) -> float:
    """The forecast's upper band at its highest from now until the plan's next change (the whole horizon
    without one): what the size the plan takes now must carry."""
    later = [t for t, _ in plan.changes if t > 0]
    blocks = forecast.upper[: max(1, int(later[0] // forecast.bin_seconds))] if later else forecast.upper
    return float(blocks.max())


def _spread(total: float, source_targets: Mapping[str, float]) -> dict[str, float]:
    """``total`` records/s split over the sources in the shares of their current targets (evenly at none)."""
    current = sum(source_targets.values())
    if current > 0:
        return {k: total * v / current for k, v in source_targets.items()}
    return {k: total / len(source_targets) for k in source_targets} if source_targets else {}


def _clock(seconds: float) -> str:
    """A time of day on the history's clock (day N, HH:MM)."""
    day, rest = divmod(seconds, DAY)
    return f"day {int(day)} {int(rest // 3600):02d}:{int(rest % 3600 // 60):02d}"


def _saving(old: Mapping[str, int], new: Mapping[str, int]) -> float:
    """Fraction of subtasks (sum) or slots (max, in one slot sharing group) a change saves."""
    total_old, total_new = sum(old.values()), sum(new.get(k, v) for k, v in old.items())
    slots_old, slots_new = max(old.values()), max(new.get(k, v) for k, v in old.items())
    return max(1 - total_new / total_old, 1 - slots_new / slots_old)


def _lag_seconds(lag: float | None, target: float) -> float:
    if not lag or lag <= 0:
        return 0.0
    return math.inf if target <= 0 else lag / target


def rate_trend(snapshots: Sequence[MetricsSnapshot], max_points: int = 30) -> dict[str, float]:
    """Per source, the Theil-Sen slope (median of pairwise slopes) of its target rate, records/s per s.

    A median of slopes follows a steady ramp but ignores a step (the few pairs straddling the step are
    outvoted), where a least-squares slope would extrapolate the step into a steep trend and overshoot.
    At most ``max_points`` snapshots, thinned evenly, keep the pairwise work bounded.
    """
    if len(snapshots) < 3:
        return {}
    stride = max(1, math.ceil(len(snapshots) / max_points))
    picked = list(snapshots[::stride])
    if picked[-1] is not snapshots[-1]:
        picked.append(snapshots[-1])
    series = [(s.timestamp, ev.source_targets_at(picked, i)) for i, s in enumerate(picked)]
    slopes: dict[str, float] = {}
    for source in series[-1][1]:
        pairwise = sorted((b[1].get(source, 0.0) - a[1].get(source, 0.0)) / (b[0] - a[0])
                          for i, a in enumerate(series) for b in series[i + 1:] if b[0] > a[0])
        if pairwise:
            middle = len(pairwise) // 2
            slopes[source] = (pairwise[middle] if len(pairwise) % 2 else
                              (pairwise[middle - 1] + pairwise[middle]) / 2)
    return slopes
