"""`plan --sql` over views that read views: the work grows with the script, not with the paths through it.

Views ``aN`` and ``bN`` that each read both views of the level below (UNION ALL) make 2^N paths from the
INSERT down to the source table. Following views along every path (``sql_graph.sql_operators`` building the
graph, ``lint_sql`` resolving a view to its tables for a GROUP BY key or a window) doubled the work per level:
depth 22 took 6 s, depth 25 over 30 s. Work is counted as Python calls made in the module under test (a
profile hook), not timed, so the bound holds on a loaded machine: twice the levels must cost under 3x.
The graph is the one a full expansion gives, checked against that expansion on scripts small enough for it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from tests.unit.fuzz._contract import run_cli

import flinkscale.core.lint_sql as lint_sql_module
import flinkscale.core.sql_graph as sql_graph_module
from flinkscale.core.lint_sql import lint_sql, read_script
from flinkscale.core.sql_graph import pipeline_from_sql

HEAD = """CREATE TABLE clicks (u STRING, ts TIMESTAMP(3)) WITH ('connector'='kafka','topic'='c');
CREATE TABLE views (u STRING, ts TIMESTAMP(3)) WITH ('connector'='kafka','topic'='v');
CREATE TABLE o (u STRING, n BIGINT) WITH ('connector'='kafka','topic'='o');
"""
GROUPED = "INSERT INTO o SELECT u, COUNT(*) FROM {top} GROUP BY u;"
WINDOWED = ("INSERT INTO o SELECT u, COUNT(*) FROM TABLE(TUMBLE(TABLE {top}, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) "
            "GROUP BY u, window_start, window_end;")


def diamond(depth: int, insert: str = "INSERT INTO o SELECT * FROM {top};", keyed_every: int = 0) -> str:
    """Views a0..aN, b0..bN; level i reads both views of level i - 1; every ``keyed_every``-th level groups."""
    lines = ["CREATE VIEW a0 AS SELECT * FROM clicks;", "CREATE VIEW b0 AS SELECT * FROM views;"]
    for level in range(1, depth + 1):
        for name in ("a", "b"):
            union = f"SELECT * FROM a{level - 1} UNION ALL SELECT * FROM b{level - 1}"
            if keyed_every and level % keyed_every == 0 and name == "a":
                union = f"SELECT u, MAX(ts) AS ts FROM ({union}) GROUP BY u"
            lines.append(f"CREATE VIEW {name}{level} AS {union};")
    return HEAD + "\n".join(lines) + "\n" + insert.format(top=f"a{depth}") + "\n"


def calls_in(module: Any, work: Callable[[], object]) -> int:
    """How many Python function calls ``work`` makes in ``module``'s own code (closures and comprehensions too)."""
    filename = module.__file__
    count = 0

    def profile(frame: FrameType, event: str, _arg: object) -> None:
        nonlocal count
        if event == "call" and frame.f_code.co_filename == filename:
            count += 1

    sys.setprofile(profile)
    try:
        work()
    finally:
        sys.setprofile(None)
    return count


def test_building_the_graph_grows_linearly_with_the_views() -> None:
    small, large = (read_script(diamond(depth), "d.sql") for depth in (8, 16))
    small_work = calls_in(sql_graph_module, lambda: sql_graph_module.sql_operators(small))
    large_work = calls_in(sql_graph_module, lambda: sql_graph_module.sql_operators(large))
    assert large_work < 3 * small_work, (small_work, large_work)


@pytest.mark.parametrize("insert", [GROUPED, WINDOWED], ids=["group-by", "window"])
def test_resolving_views_to_their_tables_grows_linearly(insert: str) -> None:
    small, large = (diamond(depth, insert) for depth in (8, 16))
    small_work = calls_in(lint_sql_module, lambda: lint_sql(small, "d.sql"))
    large_work = calls_in(lint_sql_module, lambda: lint_sql(large, "d.sql"))
    assert large_work < 3 * small_work, (small_work, large_work)


def test_views_deeper_than_twenty_levels_still_reach_their_tables() -> None:
    findings = lint_sql(diamond(24, WINDOWED), "d.sql")
    assert "FSQL002" in {f.rule_id for f in findings}  # the window's time column has no WATERMARK in clicks


def _full_expansion(model: Any) -> list[tuple[str, tuple[str, ...]]]:
    """(id, inputs) of every operator, by the expansion along every path that sql_operators did before."""
    ids: list[str] = []
    inputs: dict[str, tuple[str, ...]] = {}

    def node(name: str) -> list[str]:
        if name in model.views:
            upstream = [v for source in model.views[name] for v in node(source)]
            if name in model.keyed_views:
                if name not in inputs:
                    ids.append(name)
                    inputs[name] = tuple(dict.fromkeys(upstream))
                return [name]
            return upstream
        if name not in inputs:
            ids.append(name)
            inputs[name] = ()
        return [name]

    for sink, tables, own_keyed in model.inserts:
        upstream = [v for table in tables for v in node(table)]
        if own_keyed:
            ids.append(f"{sink}_agg")
            inputs[f"{sink}_agg"] = tuple(dict.fromkeys(upstream))
            upstream = [f"{sink}_agg"]
        sink_id = sink if sink not in inputs else f"{sink}_sink"
        ids.append(sink_id)
        inputs[sink_id] = tuple(dict.fromkeys(upstream))
    return [(i, inputs[i]) for i in ids]


@pytest.mark.parametrize(("depth", "insert", "keyed_every"), [
    (6, "INSERT INTO o SELECT * FROM {top};", 0), (6, GROUPED, 0), (7, GROUPED, 2), (7, GROUPED, 3),
    (5, "INSERT INTO o SELECT * FROM {top} UNION ALL SELECT * FROM b3 UNION ALL SELECT * FROM clicks;", 2),
])
def test_the_graph_is_the_one_the_full_expansion_gives(depth: int, insert: str, keyed_every: int) -> None:
    text = diamond(depth, insert, keyed_every)
    operators = pipeline_from_sql(text, "d.sql")["operators"]
    got = [(op["id"], tuple(i if isinstance(i, str) else i["from"] for i in op.get("inputs", [])))
           for op in operators]
    assert got == _full_expansion(read_script(text, "d.sql"))


def test_the_fuzzed_diamond_of_25_levels_plans_in_bounded_time(tmp_path: Path) -> None:
    sql, spec = tmp_path / "diamond.sql", tmp_path / "spec.yaml"
    sql.write_text(diamond(25))
    spec.write_text("volume: {rate: 10k/s, event_size: 1kB}\n")
    outcome = run_cli(["plan", "--sql", str(sql), str(spec), "--format", "json"], timeout=20)
    assert outcome.exit_code == 0 and not outcome.timed_out, outcome.stderr
