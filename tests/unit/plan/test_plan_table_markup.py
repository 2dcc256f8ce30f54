"""The plan's terminal table prints the spec's text as written: rich markup in it is not read as markup.

The table handed its cells to rich as markup, so an operator id or a spec name holding ``[/bold]`` ended the
command with "internal error: MarkupError" (exit 1), an id like ``[red]x`` lost its name, and every "why" cell
lost its ``[inputs]`` (read as an unknown style), which the Markdown and HTML reports print.
"""

from __future__ import annotations

from pathlib import Path

from tests.unit.fuzz._contract import run_cli

from flinkscale.core.plan import build_plan
from flinkscale.core.workload import parse_workload
from flinkscale.report.plan import render_table

SPEC = """name: "m[/]"
volume: {rate: 10k/s, event_size: 1kB}
pipeline:
  operators:
    - {id: "src[/bold]", role: source}
    - {id: "[red]x", inputs: ["src[/bold]"], role: sink}
"""


def test_ids_and_names_with_markup_print_as_written(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    outcome = run_cli(["plan", str(spec)])
    assert outcome.exit_code == 0, outcome.stderr
    assert "flinkscale plan: m[/]" in outcome.stdout
    assert "│ src[/bold] " in outcome.stdout and "│ [red]x " in outcome.stdout


def test_why_cells_show_their_inputs() -> None:
    plan = build_plan(parse_workload({"name": "s", "volume": {"rate": "10k/s", "event_size": "1kB"},
                                      "pipeline": {"operators": [{"id": "a", "role": "source"},
                                                                 {"id": "b", "inputs": ["a"], "role": "sink"}]}}))
    table = render_table(plan, width=400)  # wide enough that no cell folds
    assert "average x peak_factor [average=1e+04, peak_factor=1]" in table
    assert "max parallelism over operators (one slot sharing group) [a=1, b=1]" in table
    assert "forward edges: equal to b [cpu=1]" in table
