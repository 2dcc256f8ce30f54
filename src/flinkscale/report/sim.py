"""Rendering a simulator comparison: a terminal table, markdown, JSON, and a self-contained HTML report.

Everything here reads a ``core.sim.compare.Comparison`` and formats it; no number is computed that the core
did not already define (``SimOutcome`` documents each column). The HTML report embeds plotly.js once, so the
file opens offline, and shows per policy the offered and processed rates, the lag (seconds and records,
per-step lag reduced to its maximum per plotted point so that short spikes are not averaged away), the
parallelism of every vertex, and the busiest subtask's utilization per vertex.
"""

from __future__ import annotations

import html
import json
from typing import Any

import numpy as np

# plotly ships no type information; mypy treats these as Any.
import plotly.graph_objects as go  # type: ignore[import-untyped]
from plotly.subplots import make_subplots  # type: ignore[import-untyped]
from rich.markup import escape
from rich.table import Table

from flinkscale.core.sim.compare import Comparison
from flinkscale.core.sim.run import SimRun
from flinkscale.core.units import format_duration

COLUMNS: tuple[tuple[str, str], ...] = (
    ("policy", "policy"),
    ("core_hours", "core-hours"),
    ("core_hours_vs_operator", "/ flink-operator"),
    ("core_hours_vs_oracle", "/ oracle"),
    ("seconds_over_target", "s lag > target"),
    ("peak_lag_records", "peak lag (records)"),
    ("peak_lag_seconds", "peak lag (s)"),
    ("rescales", "rescales"),
    ("downtime_seconds", "downtime (s)"),
    ("records_dropped", "dropped"),
    ("peak_slots", "peak slots"),
)

_MAX_PLOT_POINTS = 2000


def comparison_rows(comparison: Comparison) -> list[dict[str, float | int | str]]:
    """One row per run: the outcome, plus its core-hours over flink-operator's and the oracle's ("" when
    that run is not in the comparison)."""
    rows: list[dict[str, float | int | str]] = []
    for run in comparison.runs:
        row: dict[str, float | int | str] = dict(run.outcome.as_row())
        for key, reference in (("core_hours_vs_operator", "flink-operator"), ("core_hours_vs_oracle", "oracle")):
            ratio = comparison.ratio(run.outcome.policy, reference)
            row[key] = "" if ratio is None else f"{ratio:.2f}x"
        rows.append(row)
    return rows


def _cell(key: str, value: float | int | str) -> str:
    if isinstance(value, str):
        return value
    if key in ("peak_lag_records", "records_dropped"):
        return f"{value:,.0f}"
    if key in ("rescales", "peak_slots"):
        return f"{int(value):,}"
    if key == "core_hours":
        return f"{value:,.1f}"
    return f"{value:,.1f}" if isinstance(value, float) else str(value)


def _caption(comparison: Comparison) -> str:
    scenario = comparison.scenario
    config = scenario.config
    return (f"{scenario.name}: {scenario.trace.describe()}; {format_duration(config.duration_seconds)} at "
            f"{config.step_seconds:g}s steps; latency target {config.latency_target_seconds:g}s of lag; "
            f"core-hours = slot-hours (1 slot = 1 core)")


DEFINITIONS = (
    "core-hours = sum of slots in use x seconds / 3600; lag (s) = pending records at the sources / offered "
    "records/s of that second; s lag > target = seconds with lag (s) above the latency target; peak lag = the "
    "maxima over every step; downtime = sum over rescales of restart time + state bytes / restore bandwidth; "
    "dropped = records shed at the sources; / flink-operator and / oracle = core-hours over theirs (oracle = the "
    "clairvoyant plan with at most 4 size changes a day, run on the same simulator)."
)


def render_table(comparison: Comparison) -> Table:
    # The scenario's name and description are the user's text: escaped, rich reads markup in table text.
    table = Table(title=escape(_caption(comparison)), title_justify="left", caption=DEFINITIONS,
                  caption_justify="left")
    for key, title in COLUMNS:
        table.add_column(title, justify="left" if key == "policy" else "right", no_wrap=key == "policy")
    for row in comparison_rows(comparison):
        table.add_row(*[escape(_cell(key, row[key])) for key, _ in COLUMNS])
    return table


def render_markdown(comparison: Comparison) -> str:
    lines = [f"_{_caption(comparison)}_", "", "| " + " | ".join(title for _, title in COLUMNS) + " |",
             "|" + "|".join("---" if key == "policy" else "---:" for key, _ in COLUMNS) + "|"]
    for row in comparison_rows(comparison):
        lines.append("| " + " | ".join(_cell(key, row[key]) for key, _ in COLUMNS) + " |")
    lines += ["", f"_{DEFINITIONS}_"]
    return "\n".join(lines) + "\n"


def comparison_json(comparison: Comparison) -> dict[str, Any]:
    scenario = comparison.scenario
    return {
        "scenario": scenario.name, "trace": scenario.trace.describe(),
        "duration_seconds": scenario.config.duration_seconds, "step_seconds": scenario.config.step_seconds,
        "latency_target_seconds": scenario.config.latency_target_seconds,
        "offered_rate": {"mean": float(comparison.rates.mean()), "peak": float(comparison.rates.max())},
        "policies": [
            {**run.outcome.as_row(), "records_offered": run.outcome.records_offered,
             "records_written": run.outcome.records_written, "records_replayed": run.outcome.records_replayed,
             "start_parallelism": dict(comparison.start_parallelism.get(run.outcome.policy, {})),
             "final_parallelism": dict(run.outcome.final_parallelism)}
            for run in comparison.runs],
    }


def _max_per_bucket(values: np.ndarray[Any, np.dtype[np.float64]], bucket: int) -> np.ndarray[Any, Any]:
    usable = len(values) // bucket * bucket
    head = values[:usable].reshape(-1, bucket).max(axis=1)
    return np.concatenate([head, [values[usable:].max()]]) if usable < len(values) else head


def _figure(run: SimRun, step_seconds: float, vertex_labels: dict[str, str]) -> go.Figure:
    timeline = run.timeline
    hours = timeline.times / 3600
    figure = make_subplots(rows=4, cols=1, shared_xaxes=True, vertical_spacing=0.05,
                           subplot_titles=("records/s", "lag (max per point)", "parallelism per vertex",
                                           "busiest subtask utilization per vertex"),
                           specs=[[{}], [{"secondary_y": True}], [{}], [{}]])
    figure.add_trace(go.Scatter(x=hours, y=timeline.offered_rate, name="offered", line={"width": 1}), 1, 1)
    figure.add_trace(go.Scatter(x=hours, y=timeline.source_rate, name="read by sources", line={"width": 1}), 1, 1)
    figure.add_trace(go.Scatter(x=hours, y=timeline.sink_rate, name="processed by sinks", line={"width": 1}), 1, 1)
    bucket = max(1, len(run.lag_records) // _MAX_PLOT_POINTS)
    lag = _max_per_bucket(run.lag_records, bucket)
    rate = run.offered_rate[::bucket][: len(lag)]
    lag_hours = (np.arange(len(lag)) * bucket + bucket) * step_seconds / 3600
    lag_seconds = lag / np.where(rate > 0, rate, max(float(run.offered_rate.mean()), 1.0))
    figure.add_trace(go.Scatter(x=lag_hours, y=lag_seconds, name="lag (s)", line={"width": 1}), 2, 1)
    figure.add_trace(go.Scatter(x=lag_hours, y=lag, name="lag (records)", line={"width": 1, "dash": "dot"}), 2, 1,
                     secondary_y=True)
    for index, vertex_id in enumerate(timeline.vertex_ids):
        label = vertex_labels.get(vertex_id, vertex_id)
        figure.add_trace(go.Scatter(x=hours, y=timeline.parallelism[:, index], name=f"p {label}",
                                    line={"shape": "hv", "width": 1}, legendgroup=vertex_id), 3, 1)
        figure.add_trace(go.Scatter(x=hours, y=timeline.busy_max[:, index], name=f"busy {label}",
                                    line={"width": 1}, legendgroup=vertex_id), 4, 1)
    figure.update_xaxes(title_text="hours", row=4, col=1)
    figure.update_yaxes(title_text="s", row=2, col=1)
    figure.update_yaxes(title_text="records", row=2, col=1, secondary_y=True)
    figure.update_yaxes(range=[0, 1.05], row=4, col=1)
    figure.update_layout(height=1000, title_text=f"policy: {run.outcome.policy}", margin={"t": 60, "b": 40})
    return figure


def render_html(comparison: Comparison) -> str:
    """One self-contained HTML page: the comparison table, then one timeline figure per policy."""
    scenario = comparison.scenario
    labels = {v.id: v.label for v in scenario.pipeline.vertices}
    header = "".join(f"<th>{html.escape(title)}</th>" for _, title in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(key, row[key]))}</td>" for key, _ in COLUMNS)
                   + "</tr>" for row in comparison_rows(comparison))
    figures = []
    for index, run in enumerate(comparison.runs):
        figure = _figure(run, scenario.config.step_seconds, labels)
        figures.append(figure.to_html(full_html=False, include_plotlyjs=index == 0))
    starts = html.escape(json.dumps({k: dict(v) for k, v in comparison.start_parallelism.items()}))
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>flinkscale simulate: {html.escape(scenario.name)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}} td:first-child,th:first-child{{text-align:left}}
</style></head><body>
<h1>{html.escape(scenario.name)}</h1>
<p>{html.escape(scenario.description)}</p>
<p>{html.escape(_caption(comparison))}</p>
<table><tr>{header}</tr>{body}</table>
<p><small>{html.escape(DEFINITIONS)}</small></p>
<p><small>Start parallelism per policy: {starts}</small></p>
{"".join(figures)}
</body></html>
"""
