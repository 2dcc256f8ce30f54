"""The plan's terminal table grows linearly with the operators, and still says what decides each figure.

Every operator of a forward chain is explained as "forward edges: equal to <every other operator of the
chain>" and the slots figure as the max over every operator, so the table's "why" cells held the square of the
operators in names, and rich folds them in time that grows with that (a valid 1,500-operator spec: 13 s for the
table, 1 s for JSON). The table's cells are now brief; JSON and Markdown keep every name. Work is measured as
the characters the table lays out (what rich folds), not as time, so the bound holds on a loaded machine.
"""

from __future__ import annotations

import json
from typing import Any

from flinkscale.core.plan import Plan, build_plan
from flinkscale.core.workload import parse_workload
from flinkscale.report.plan import operator_rows, render, render_table, summary_rows


def chain(length: int) -> Plan:
    """A source, ``length`` operators chained by forward edges, and a costly operator behind hash edges."""
    ops: list[dict[str, Any]] = [{"id": "src", "role": "source"}]
    ops += [{"id": f"o{i}", "inputs": ["src" if i == 0 else f"o{i - 1}"]} for i in range(length)]
    ops.append({"id": "hot", "inputs": [{"from": f"o{length - 1}", "ship": "hash"}], "cost_us_per_record": 2000})
    ops.append({"id": "out", "role": "sink", "inputs": [{"from": "hot", "ship": "hash"}]})
    return build_plan(parse_workload({"name": "chain", "volume": {"rate": "20k/s", "event_size": "1kB"},
                                      "pipeline": {"operators": ops}}))


def test_the_table_grows_linearly_with_the_operators() -> None:
    small, large = (len(render_table(chain(length))) for length in (200, 400))
    assert large < 3 * small, (small, large)


def test_table_cells_are_bounded_whatever_the_operators() -> None:
    for length in (50, 400):
        plan = chain(length)
        cells = [cell for row in summary_rows(plan, brief=True) + operator_rows(plan, brief=True) for cell in row]
        assert max(map(len, cells)) < 500


def test_the_brief_cells_say_what_decides_and_how_many_more() -> None:
    plan = chain(400)
    slots = {row[0]: row[2] for row in summary_rows(plan, brief=True)}["slots"]
    hot = int(next(o.parallelism.value for o in plan.capacity.operators if o.operator.id == "hot"))
    assert int(plan.capacity.cluster.slots.value) == hot > 1
    assert slots.startswith(f"max parallelism over operators (one slot sharing group) [hot={hot}, ")
    assert slots.endswith(", o5=1, ... and 395 more (the largest shown; all in --format json)]")
    why = {row[0]: row[7] for row in operator_rows(plan, brief=True)}["o7"]
    assert why.startswith("cpu: ceil(required / per_subtask) = 1; forward edges: equal to o0, o1, o10, o100, ")
    assert why.endswith(", ... and 377 more (all in --format json) [cpu=1]")


def test_json_and_markdown_keep_every_name() -> None:
    plan = chain(400)
    data = json.loads(render(plan, "json"))
    assert len(data["cluster"]["slots"]["inputs"]) == 403
    markdown = render(plan, "markdown")
    assert "o398, o399, o4, o40, o41" in markdown and "src=1, o0=1" in markdown
