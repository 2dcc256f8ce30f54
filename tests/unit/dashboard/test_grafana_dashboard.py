"""The shipped Grafana dashboard: valid, self-consistent, and querying only metrics that really exist.

The flinkscale metric names are checked against what ``LoopMetrics`` (the autoscaler's exporter) actually
renders, so renaming a metric on either side fails here instead of leaving an empty panel; the Flink metric
names are checked against the list in docs/monitoring.md, which documents the ones the dashboard uses.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from flinkscale.core.policy.base import Decision, VertexDecision
from flinkscale.flink.autoscaler import LoopMetrics, LoopStatus

from .conftest import WINDOW, clickstream_snapshot

REPO = Path(__file__).resolve().parents[3]
DASHBOARD = REPO / "monitoring" / "grafana" / "flinkscale.json"
MONITORING_DOC = REPO / "docs" / "monitoring.md"
METRIC = re.compile(r"(?<![\w$])(flink(?:scale)?_[A-Za-z0-9_:]+)")


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def _queries(dashboard: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [a["expr"] for a in dashboard["annotations"]["list"] if "expr" in a]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    return exprs


def _exported_flinkscale_metrics() -> set[str]:
    metrics = LoopMetrics()
    snapshot = clickstream_snapshot(1.0, parallelism=2, busy_ms=900.0, lag=100.0)
    decision = Decision(1.0, "flinkscale", (VertexDecision(WINDOW, "window", 2, 3, "busy"),))
    metrics.update(LoopStatus(job_id="a" * 32, policy="flinkscale", last_snapshot=snapshot,
                              last_decision=decision, rescales=1))
    names = set()
    for line in metrics.render().splitlines():
        if line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return {n for n in names if not n.endswith("_created")}


def test_panels_have_unique_ids_fit_the_grid_and_unique_ref_ids() -> None:
    panels = _dashboard()["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        refs = [t["refId"] for t in panel.get("targets", [])]
        assert len(set(refs)) == len(refs), panel["title"]


def test_every_variable_a_query_uses_is_defined() -> None:
    dashboard = _dashboard()
    defined = {v["name"] for v in dashboard["templating"]["list"]} | {"__range", "__interval", "__rate_interval"}
    text = json.dumps(dashboard["panels"]) + json.dumps(dashboard["annotations"])
    used = set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", text))
    assert used <= defined


@pytest.mark.parametrize("expr", _queries(_dashboard()))
def test_queries_balance_their_brackets(expr: str) -> None:
    for opening, closing in ("()", "{}", "[]"):
        depth = 0
        for char in expr:
            depth += (char == opening) - (char == closing)
            assert depth >= 0, expr
        assert depth == 0, expr


def test_flinkscale_metrics_in_the_dashboard_are_exactly_the_ones_the_autoscaler_exports() -> None:
    used = {m for expr in _queries(_dashboard()) for m in METRIC.findall(expr) if m.startswith("flinkscale_")}
    assert used == _exported_flinkscale_metrics()


def test_every_metric_the_dashboard_queries_is_documented() -> None:
    doc = MONITORING_DOC.read_text(encoding="utf-8")
    documented = set(re.findall(r"`(flink(?:scale)?_[A-Za-z0-9_:]+)`", doc))
    used = {m for expr in _queries(_dashboard()) for m in METRIC.findall(expr)}
    assert used <= documented, sorted(used - documented)
