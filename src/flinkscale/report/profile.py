"""Rendering a profile: a terminal table, the profile JSON, and one self-contained HTML page.

Everything here reads a ``core.profile.ProfileAnalysis`` (and the compact per-sample summaries of the profile
document) and formats it; no figure is computed that the core did not define. The HTML page embeds plotly.js once,
as ``report.sim`` does, so it opens offline: the DAG with each vertex coloured by the utilization of its busiest
subtask, busy / backpressured / idle bars per vertex, a per-subtask skew chart per keyed vertex, rate and busy
timelines over the window, the checkpoint table and the findings.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

# plotly ships no type information; mypy treats these as Any.
import plotly.graph_objects as go  # type: ignore[import-untyped]
from plotly.subplots import make_subplots  # type: ignore[import-untyped]
from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from flinkscale.core.profile import ProfileAnalysis, VertexProfile, short_name
from flinkscale.core.skew import SkewReport
from flinkscale.core.units import format_bytes, format_duration, format_rate

DEFINITIONS = (
    "busy / bp / idle: ms per second (busy and bp: busiest subtask; idle: mean); util = busy max / 1000; "
    "capacity = records in / util (the input at which the busiest subtask saturates); amp = records into the "
    "vertex per source record (product of output ratios along the paths); sustainable = capacity / amp; "
    "skew = busiest subtask / mean (busy time, else records)."
)


def _f(value: float | None, kind: str = "num") -> str:
    if value is None:
        return "-"
    if value == float("inf"):
        return "inf"
    if kind == "rate":
        return format_rate(value)
    if kind == "bytes":
        return format_bytes(value)
    if kind == "ms":
        return f"{value:.0f}"
    if kind == "pct":
        return f"{value * 100:.0f}%"
    if kind == "x":
        return f"{value:.2f}x"
    return f"{value:.3g}"


def vertex_rows(analysis: ProfileAnalysis) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for v in analysis.vertices:
        marks = ("*" if v.vertex_id == analysis.bottleneck else "") + (
            "!" if v.vertex_id == analysis.backpressure_root else "")
        rows.append((
            f"{marks}{short_name(v.name)}", str(v.parallelism), _f(v.records_in_per_second, "rate"),
            _f(v.records_out_per_second, "rate"), _f(v.busy_ms_per_second_max, "ms"),
            _f(v.backpressured_ms_per_second_max, "ms"), _f(v.idle_ms_per_second_avg, "ms"),
            _f(v.utilization, "pct"), _f(v.capacity.value, "rate"), _f(v.amplification.value),
            _f(v.sustainable_source_rate.value, "rate"), _f(v.skew.observed_max_over_mean, "x"),
            _f(v.bytes_per_record_in, "num")))
    return rows


VERTEX_COLUMNS = ("vertex", "p", "in", "out", "busy", "bp", "idle", "util", "capacity", "amp", "sustainable",
                  "skew", "B/rec in")


def _summary_lines(analysis: ProfileAnalysis) -> list[str]:
    lines = [f"max sustainable source rate: {_f(analysis.max_sustainable_source_rate.value, 'rate')}  "
             f"({analysis.max_sustainable_source_rate.formula})",
             f"current source rate: {_f(analysis.current_source_rate.value, 'rate')}  "
             f"({analysis.current_source_rate.formula})",
             f"headroom: {_f(analysis.headroom.value, 'x')}  ({analysis.headroom.formula})"]
    if analysis.checkpoints:
        c = analysis.checkpoints
        lines.append(f"checkpoints: {c.completed} completed, {c.failed} failed; last "
                     f"{_f(c.last_duration_ms, 'ms')} ms, avg {_f(c.avg_duration_ms, 'ms')} ms, max "
                     f"{_f(c.max_duration_ms, 'ms')} ms; size {_f(c.last_size_bytes, 'bytes')}; state "
                     f"{_f(c.state_size_bytes, 'bytes')}")
    return lines


def render_table(analysis: ProfileAnalysis, skipped: Sequence[str] = ()) -> Group:
    title = (f"{analysis.job_name} ({analysis.job_id}) over {format_duration(analysis.window_seconds)}; "
             f"* bottleneck, ! backpressure root")
    # Job and vertex names come from Flink (SQL names hold [...]): escaped, rich reads markup in table text.
    table = Table(title=escape(title), title_justify="left", caption=DEFINITIONS, caption_justify="left")
    for column in VERTEX_COLUMNS:
        table.add_column(column, justify="left" if column == "vertex" else "right", no_wrap=column == "vertex")
    for row in vertex_rows(analysis):
        table.add_row(*(escape(cell) for cell in row))
    parts: list[Any] = [table]
    parts.extend(Text(line) for line in _summary_lines(analysis))
    parts.append(Text("Findings:", style="bold"))
    parts.extend(Text(f"- {f}") for f in analysis.findings)
    if skipped:
        parts.append(Text(f"Skipped samples: {'; '.join(skipped)}", style="yellow"))
    return Group(*parts)


def render_skew_table(report: SkewReport) -> Group:
    table = Table(title=escape(f"skew of {report.job_name} ({report.job_id}); threshold {report.threshold:g}x"),
                  title_justify="left", caption="max/mean = busiest subtask / mean (busy time, else records); "
                  "layout = key-group layout share, ceil(maxP/p) x p / maxP; hot = max/mean / layout",
                  caption_justify="left")
    for column in ("vertex", "p", "maxP", "keyed", "max/mean", "basis", "layout", "hot", "flink skew", "skewed"):
        table.add_column(column, justify="left" if column in ("vertex", "basis") else "right")
    for v in report.vertices:
        table.add_row(escape(short_name(v.vertex_name)), str(v.parallelism), str(v.max_parallelism),
                      "yes" if v.keyed else "",
                      _f(v.observed_max_over_mean, "x"), v.observed_basis, _f(v.layout_imbalance, "x"),
                      _f(v.hot_key_imbalance, "x"), _f(v.flink_skew), "SKEWED" if v.skewed else "")
    parts: list[Any] = [table]
    for v in report.vertices:
        for r in v.recommendations:
            parts.append(Text(f"- {short_name(v.vertex_name)}: {r.title} (max/mean -> "
                              f"{r.expected_max_over_mean:.2f}, capacity x{r.expected_gain:.2f})"))
            parts.append(Text(f"    {r.explanation}", style="dim"))
            if r.config:
                parts.append(Text("    " + ", ".join(f"{k}={val}" for k, val in r.config.items()), style="dim"))
        for note in v.notes:
            parts.append(Text(f"  note ({short_name(v.vertex_name)}): {note}", style="dim"))
    if not report.skewed_vertices:
        parts.append(Text("No skewed vertex."))
    return Group(*parts)


def render_json(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, allow_nan=False)


# --- HTML ----------------------------------------------------------------------------------------------------
def _depths(analysis: ProfileAnalysis) -> dict[str, int]:
    depth: dict[str, int] = {}
    for v in analysis.vertices:  # topological order
        ups = [depth[e.source] for e in analysis.edges if e.target == v.vertex_id]
        depth[v.vertex_id] = 1 + max(ups) if ups else 0
    return depth


def _dag_figure(analysis: ProfileAnalysis) -> go.Figure:
    depth = _depths(analysis)
    rows: dict[int, int] = {}
    position: dict[str, tuple[float, float]] = {}
    for v in analysis.vertices:
        level = depth[v.vertex_id]
        position[v.vertex_id] = (float(level), -float(rows.get(level, 0)))
        rows[level] = rows.get(level, 0) + 1
    figure = go.Figure()
    for e in analysis.edges:
        (x0, y0), (x1, y1) = position[e.source], position[e.target]
        figure.add_annotation(x=x1, y=y1, ax=x0, ay=y0, xref="x", yref="y", axref="x", ayref="y",
                              showarrow=True, arrowhead=3, arrowsize=1.5, standoff=28, startstandoff=28,
                              arrowcolor="#777")
        figure.add_annotation(x=(x0 + x1) / 2, y=(y0 + y1) / 2 + 0.12, showarrow=False,
                              text=f"{e.ship_strategy} {_f(e.records_per_second, 'rate')}<br>"
                                   f"ratio {_f(e.output_ratio.value)}, {_f(e.bytes_per_second, 'bytes')}/s")
    utilization = [v.utilization if v.utilization is not None else 0.0 for v in analysis.vertices]
    hover = [f"{html.escape(v.name)}<br>p={v.parallelism} util={_f(v.utilization, 'pct')}<br>"
             f"in {_f(v.records_in_per_second, 'rate')} out {_f(v.records_out_per_second, 'rate')}<br>"
             f"capacity {_f(v.capacity.value, 'rate')}; "
             f"sustainable source {_f(v.sustainable_source_rate.value, 'rate')}"
             for v in analysis.vertices]
    labels = [("BOTTLENECK<br>" if v.vertex_id == analysis.bottleneck else "") + html.escape(short_name(v.name, 36))
              + f"<br>p={v.parallelism}, {_f(v.utilization, 'pct')} busy" for v in analysis.vertices]
    figure.add_trace(go.Scatter(
        x=[position[v.vertex_id][0] for v in analysis.vertices],
        y=[position[v.vertex_id][1] for v in analysis.vertices],
        mode="markers+text", text=labels, textposition="bottom center", hovertext=hover, hoverinfo="text",
        marker={"size": 46, "color": utilization, "cmin": 0, "cmax": 1, "colorscale": "RdYlGn", "reversescale": True,
                "colorbar": {"title": "utilization"}, "line": {"width": [4 if v.vertex_id == analysis.bottleneck else 1
                                                                          for v in analysis.vertices]}},
        showlegend=False))
    levels = max(depth.values()) if depth else 0
    figure.update_xaxes(visible=False, range=[-0.6, levels + 0.6])
    figure.update_yaxes(visible=False, range=[-max(rows.values()) + 0.3, 0.6])
    figure.update_layout(title_text="job graph (colour: busiest subtask utilization)", height=360,
                         margin={"t": 50, "b": 20, "l": 20, "r": 20})
    return figure


def _time_bars(analysis: ProfileAnalysis) -> go.Figure:
    names = [short_name(v.name, 40) for v in analysis.vertices]
    figure = go.Figure()
    for label, values, colour in (
            ("busy (mean)", [v.busy_ms_per_second_avg for v in analysis.vertices], "#d62728"),
            ("backpressured (mean)", [v.backpressured_ms_per_second_avg for v in analysis.vertices], "#9467bd"),
            ("idle (mean)", [v.idle_ms_per_second_avg for v in analysis.vertices], "#2ca02c")):
        figure.add_trace(go.Bar(y=names, x=[x or 0.0 for x in values], name=label, orientation="h",
                                marker_color=colour))
    figure.add_trace(go.Scatter(y=names, x=[v.busy_ms_per_second_max or 0.0 for v in analysis.vertices],
                                mode="markers", name="busy (busiest subtask)", marker={"symbol": "line-ns-open",
                                                                                      "size": 22, "color": "black"}))
    figure.update_layout(barmode="stack", title_text="time per second by vertex (ms/s)", height=140 + 50 * len(names),
                         xaxis={"range": [0, 1050]}, margin={"t": 50, "b": 30})
    return figure


def _skew_figure(vertex: VertexProfile, subtasks: Sequence[Mapping[str, Any]]) -> go.Figure:
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    index = [f"#{s['index']}" for s in subtasks]
    figure.add_trace(go.Bar(x=index, y=[s.get("num_records_in_per_second") or 0.0 for s in subtasks],
                            name="records in /s", offsetgroup=0), secondary_y=False)
    figure.add_trace(go.Bar(x=index, y=[s.get("busy_time_ms_per_second") or 0.0 for s in subtasks],
                            name="busy ms/s", offsetgroup=1), secondary_y=True)
    ratio = vertex.skew.observed_max_over_mean
    figure.update_layout(
        title_text=f"skew of {short_name(vertex.name)}: max/mean {_f(ratio, 'x')}"
                   f"{' (SKEWED)' if vertex.skew.skewed else ''}; key groups per subtask "
                   f"{vertex.key_groups_per_subtask_min}-{vertex.key_groups_per_subtask_max}",
        height=320, barmode="group", margin={"t": 50, "b": 30})
    figure.update_yaxes(title_text="records/s", secondary_y=False)
    figure.update_yaxes(title_text="busy ms/s", secondary_y=True, range=[0, 1050])
    return figure


def _timeline_figure(analysis: ProfileAnalysis, samples: Sequence[Mapping[str, Any]]) -> go.Figure:
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.12,
                           subplot_titles=("records in per second", "busiest subtask busy / backpressured (ms/s)"))
    start = samples[0]["timestamp"] - samples[0]["window_seconds"] if samples else 0.0
    times = [s["timestamp"] - start for s in samples]
    for v in analysis.vertices:
        label = short_name(v.name, 30)
        series = [s["vertices"].get(v.vertex_id, {}) for s in samples]
        figure.add_trace(go.Scatter(x=times, y=[p.get("records_in_per_second") for p in series], name=f"in {label}",
                                    legendgroup=v.vertex_id, mode="lines+markers"), 1, 1)
        figure.add_trace(go.Scatter(x=times, y=[p.get("busy_ms_per_second_max") for p in series],
                                    name=f"busy {label}", legendgroup=v.vertex_id, mode="lines+markers"), 2, 1)
        figure.add_trace(go.Scatter(x=times, y=[p.get("backpressured_ms_per_second_max") for p in series],
                                    name=f"bp {label}", legendgroup=v.vertex_id, mode="lines",
                                    line={"dash": "dot"}), 2, 1)
    figure.update_xaxes(title_text="seconds into the window", row=2, col=1)
    figure.update_yaxes(range=[0, 1050], row=2, col=1)
    figure.update_layout(height=560, title_text="timelines over the window", margin={"t": 70, "b": 40})
    return figure


def _html_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(document: Mapping[str, Any], analysis: ProfileAnalysis) -> str:
    """One self-contained HTML page (plotly.js embedded once) for a profile document and its analysis."""
    samples: Sequence[Mapping[str, Any]] = document.get("samples", [])
    snapshot_vertices = {v["id"]: v for v in document.get("snapshot", {}).get("vertices", [])}
    figures = [_dag_figure(analysis), _time_bars(analysis)]
    for v in analysis.vertices:
        subtasks = snapshot_vertices.get(v.vertex_id, {}).get("metrics", {}).get("subtasks", [])
        if v.keyed and subtasks:
            figures.append(_skew_figure(v, subtasks))
    if samples:
        figures.append(_timeline_figure(analysis, samples))
    charts = "".join(f.to_html(full_html=False, include_plotlyjs=i == 0, config={"displaylogo": False})
                     for i, f in enumerate(figures))
    c = analysis.checkpoints
    checkpoint_rows = [] if c is None else [
        ("completed / failed / in progress", f"{c.completed} / {c.failed} / {c.in_progress}"),
        ("last duration", f"{_f(c.last_duration_ms, 'ms')} ms"),
        ("average duration", f"{_f(c.avg_duration_ms, 'ms')} ms"),
        ("max duration", f"{_f(c.max_duration_ms, 'ms')} ms"), ("last size", _f(c.last_size_bytes, "bytes")),
        ("state size", _f(c.state_size_bytes, "bytes")), ("average alignment", f"{_f(c.avg_alignment_ms, 'ms')} ms"),
        ("interval", f"{_f(c.interval_ms, 'ms')} ms")]
    skipped = document.get("skipped", [])
    findings = "".join(f"<li>{html.escape(f)}</li>" for f in analysis.findings)
    explain = "".join(f"<li>{html.escape(line)}</li>" for line in _summary_lines(analysis))
    derivations = "".join(
        f"<li><b>{html.escape(short_name(v.name))}</b>: {html.escape(v.capacity.formula)}; "
        f"{html.escape(v.amplification.formula)}; {html.escape(v.sustainable_source_rate.formula)}</li>"
        for v in analysis.vertices)
    recommendations = "".join(
        f"<li>{html.escape(short_name(v.name))}: {html.escape(r.title)} (max/mean &rarr; "
        f"{r.expected_max_over_mean:.2f}, capacity x{r.expected_gain:.2f})</li>"
        for v in analysis.vertices for r in v.skew.recommendations)
    advice = ""
    if analysis.state_advice is not None:
        advice = (f"<h2>State advice</h2><pre>"
                  f"{html.escape(json.dumps(analysis.to_dict()['state_advice'], indent=2, default=str))}</pre>")
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>flinkscale profile: {html.escape(analysis.job_name)}</title>
<style>body{{font-family:sans-serif;margin:1.5em;max-width:1300px}} table{{border-collapse:collapse;margin:0.5em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}} td:first-child,th:first-child{{text-align:left}}
.findings li{{margin:0.3em 0;font-size:1.05em}} small{{color:#555}}</style></head><body>
<h1>Profile of {html.escape(analysis.job_name)} <small>{html.escape(analysis.job_id)}</small></h1>
<p>Window {html.escape(format_duration(analysis.window_seconds))}, {len(samples)} sample(s),
{int(document.get("calls_per_sample", 0))} REST calls per sample.</p>
<h2>Findings</h2><ul class="findings">{findings}</ul>
<ul>{explain}</ul>
{_html_table(VERTEX_COLUMNS, vertex_rows(analysis))}
<p><small>{html.escape(DEFINITIONS)} * bottleneck, ! backpressure root.</small></p>
{charts}
<h2>Checkpoints</h2>{_html_table(("checkpoints", "value"), checkpoint_rows) if checkpoint_rows else "<p>none</p>"}
<h2>Skew remedies</h2>{"<ul>" + recommendations + "</ul>" if recommendations else "<p>No skewed vertex.</p>"}
{advice}
<h2>How each number was derived</h2><ul><small>{derivations}</small></ul>
{"<h2>Skipped samples</h2><ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in skipped) + "</ul>" if skipped else ""}
</body></html>
"""
