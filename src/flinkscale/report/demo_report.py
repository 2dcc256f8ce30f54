"""The demo's report: one HTML page with the timeline, every decision and its reason, the profile and the plan.

Rendering only: ``flinkscale.app.demo`` runs the story and hands the figures (``DemoResult``), the snapshots
and the decision log here.
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from flinkscale.core.snapshot import MetricsSnapshot
from flinkscale.kafka.loadgen import LoadGenerator


@dataclass
class DemoResult:
    output_dir: str
    wall_seconds: float
    job_id: str
    phases: list[dict[str, Any]]
    rescales: list[dict[str, Any]]
    decisions: int
    applied_scale_ups: int
    produced: int
    findings: list[str]
    max_shed_fraction: float = 0.0
    shed_decisions: int = 0  # decisions (ticks) with shedding in force
    plan_summary: list[list[str]] = field(default_factory=list)
    dashboard_url: str | None = None


def _timeline(snapshots: Sequence[MetricsSnapshot], decisions: Sequence[dict[str, Any]], generator: LoadGenerator,
              t0: float) -> go.Figure:
    figure = make_subplots(rows=4, cols=1, shared_xaxes=True, vertical_spacing=0.05,
                           row_heights=[0.3, 0.2, 0.3, 0.2],
                           subplot_titles=("events/s: offered vs read by the source", "source lag (records)",
                                           "parallelism and utilization per vertex",
                                           "shed fraction (load shedding in force)"))
    offered = generator.manifest.seconds
    start_wall = offered[0][0] if offered else t0
    figure.add_scatter(x=[t - start_wall for t, _, _ in offered], y=[r for _, r, _ in offered], name="offered",
                       row=1, col=1, line={"dash": "dot", "shape": "hv"})
    times = [s.timestamp - start_wall for s in snapshots]
    sources = [s.sources()[0] if s.sources() else None for s in snapshots]
    figure.add_scatter(x=times, y=[v.metrics.num_records_in_per_second if v else None for v in sources],
                       name="read by source", row=1, col=1)
    figure.add_scatter(x=times, y=[s.source_lag() for s in snapshots], name="lag", row=2, col=1)
    names = {v.id: v.name.split(" -> ")[0][:30] for s in snapshots for v in s.vertices}
    for vid, name in names.items():
        figure.add_scatter(x=times, y=[_parallelism(s, vid) for s in snapshots], name=f"p {name}", row=3, col=1,
                           line={"shape": "hv"})
        figure.add_scatter(x=times, y=[_utilization(s, vid) for s in snapshots], name=f"util {name}", row=3,
                           col=1, line={"dash": "dot"})
    figure.add_scatter(x=[e["timestamp"] - start_wall for e in decisions],
                       y=[e["decision"].get("shed_fraction", 0.0) for e in decisions], name="shed fraction",
                       row=4, col=1, line={"shape": "hv"})
    figure.update_layout(height=950, margin={"t": 40, "l": 50, "r": 20, "b": 40})
    figure.update_xaxes(title_text="seconds since the load started", row=4, col=1)
    return figure


def _parallelism(snapshot: MetricsSnapshot, vertex_id: str) -> int | None:
    return next((v.parallelism for v in snapshot.vertices if v.id == vertex_id), None)


def _utilization(snapshot: MetricsSnapshot, vertex_id: str) -> float | None:
    vertex = next((v for v in snapshot.vertices if v.id == vertex_id), None)
    return vertex.metrics.busy_ratio_max if vertex else None


def render_report(result: DemoResult, snapshots: Sequence[MetricsSnapshot], decisions: Sequence[dict[str, Any]],
                  generator: LoadGenerator, has_plan: bool) -> str:
    figure = _timeline(snapshots, decisions, generator, time.time()) if snapshots else None
    rows = []
    for entry in decisions:
        decision = entry["decision"]
        changed = [v for v in decision.get("vertices", []) if v["new_parallelism"] != v["current_parallelism"]]
        what = "; ".join(f"{v['vertex_name'][:40]}: {v['current_parallelism']} -> {v['new_parallelism']} "
                         f"({v['reason']})" for v in changed) or (decision.get("blocked_reason") or "no change")
        status = "applied" if entry.get("applied") else ("error: " + entry["error"] if entry.get("error") else "-")
        seconds = f"{entry['rescale_seconds']:.1f}s" if entry.get("rescale_seconds") else ""
        rows.append(f"<tr><td>{time.strftime('%H:%M:%S', time.gmtime(entry['timestamp']))}</td>"
                    f"<td>{html.escape(what)}</td><td>{html.escape(status)}</td><td>{seconds}</td></tr>")
    phases = "".join(f"<li>{html.escape(p['name'])}: {p['rate']:,.0f} events/s for {p['seconds']} s</li>"
                     for p in result.phases)
    rescales = "".join(f"<li>{r['old']} &rarr; {r['new']} in {r['seconds']} s</li>" for r in result.rescales)
    plan_rows = "".join(f"<tr><td>{html.escape(a)}</td><td>{html.escape(b)}</td><td>{html.escape(c)}</td></tr>"
                        for a, b, c in result.plan_summary)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>flinkscale demo</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}}td,th{{border-bottom:1px solid #ddd;
padding:4px 8px;text-align:left;vertical-align:top}}table{{border-collapse:collapse}}</style></head><body>
<h1>flinkscale demo</h1>
<p>Wall time {result.wall_seconds:.0f} s; {result.produced:,} events produced; {result.decisions} decisions;
{len(result.rescales)} rescales ({result.applied_scale_ups} scale-ups) of job <code>{result.job_id}</code>;
load shedding in force for {result.shed_decisions} decisions, at most {result.max_shed_fraction:.0%} of the input
(2% error bound at 95% confidence).</p>
<h2>The load</h2><ul>{phases}</ul>
<h2>Timeline</h2>{figure.to_html(full_html=False, include_plotlyjs=True) if figure else "<p>no samples</p>"}
<h2>Rescales</h2><ul>{rescales or "<li>none</li>"}</ul>
<h2>Every decision, with its reason</h2>
<table><tr><th>time (UTC)</th><th>decision</th><th>outcome</th><th>rescale took</th></tr>{"".join(rows)}</table>
<h2>Profile of the step phase</h2><ul>{"".join(f"<li>{html.escape(f)}</li>" for f in result.findings)}</ul>
<p><a href="profile.html">full profile report</a> &middot; <a href="profile.json">profile.json</a></p>
<h2>The same pipeline at 1 TB/day</h2>
{"<table>" + plan_rows + "</table><p><a href='plan/plan.md'>plan</a> &middot; <a href='plan/config.yaml'>config.yaml"
 "</a> &middot; <a href='plan/flinkdeployment.yaml'>FlinkDeployment</a></p>" if has_plan else "<p>no plan</p>"}
</body></html>"""
