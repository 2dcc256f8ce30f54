"""Names from Flink and from the user's files reach the terminal tables as text, not as rich markup.

Flink SQL names its vertices after the plan (``TableSourceScan(table=[[default_catalog, db, clicks]], ...)``):
read as markup, ``[[default_catalog, db, clicks]]`` vanished from the table, and a name holding a closing tag
such as ``[/x]`` ended the command with rich's MarkupError."""

from __future__ import annotations

import io
import json
from pathlib import Path

import yaml
from rich.console import Console

from flinkscale.cli import main
from flinkscale.core._snapshot_json import snapshot_from_dict
from flinkscale.core.profile import analyze_profile
from flinkscale.core.skew import analyze_skew
from flinkscale.report.profile import render_skew_table, render_table

ROOT = Path(__file__).resolve().parents[2]
SQL_NAME = "Sink[/x] [[default_catalog, db, clicks]]"


def _printed(renderable: object) -> str:
    console = Console(file=io.StringIO(), width=400)
    console.print(renderable)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(text, str)
    return text


def _snapshot_with_names() -> object:
    data = json.loads((ROOT / "examples" / "snapshots" / "clickstream-p1-overloaded.json").read_text())
    data["job_name"] = "shop [bold]jobs[/bold]"
    for vertex in data["vertices"]:
        vertex["name"] = SQL_NAME
    return snapshot_from_dict(data)


def test_profile_and_skew_tables_show_names_as_written() -> None:
    snapshot = _snapshot_with_names()
    profile = _printed(render_table(analyze_profile(snapshot)))  # type: ignore[arg-type]
    skew = _printed(render_skew_table(analyze_skew(snapshot)))  # type: ignore[arg-type]
    for text in (profile, skew):  # the rows show short names, cut before the first [ (Flink's operator ids)
        assert "shop [bold]jobs[/bold]" in text


def test_simulate_table_shows_the_scenario_name_as_written(tmp_path: Path,
                                                          capsys: object) -> None:
    scenario = {"name": "shop [/bold] [[default_catalog, db]]", "duration": "5m", "decision_interval": "60s",
                "trace": {"type": "constant", "rate": "1k/s"},
                "pipeline": {"vertices": [{"id": "source", "source": True, "partitions": 4, "parallelism": 1,
                                           "capacity": "5000/s"},
                                          {"id": "sink", "parallelism": 1, "capacity": "4000/s"}],
                             "edges": [{"from": "source", "to": "sink", "ship": "REBALANCE"}]}}
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario))
    assert main(["simulate", str(path), "--no-progress", "--policies", "static"]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "shop [/bold] [[default_catalog, db]]" in " ".join(out.split())
