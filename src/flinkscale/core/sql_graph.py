"""The operator graph of a Flink SQL script, as the ``pipeline.operators`` of a workload spec (``plan --sql``).

Flink compiles a SQL job into job vertices along a simple rule this module follows: each source table becomes
a source vertex with its stateless filters and projections chained in (FORWARD); every keyed stage (a GROUP BY,
a window aggregation, DISTINCT or a regular join) starts a new vertex behind a HASH edge and holds keyed state;
each sink table is a sink chained to the vertex that feeds it. Views are followed to the tables they read.

A view is resolved once (its vertices, each once, are remembered): views that each read several views of the
level below (a diamond, a UNION ALL of UNION ALLs) would otherwise be re-expanded along every path, twice as
much work per level. The work is the script's reads times the distinct vertices a view resolves to; the
vertices' order (first read first) and so the graph are what a full expansion gives.

Costs are not in SQL: they come from the spec's ``pipeline.operators`` entries whose ids match the generated
ones (``<source table>``, ``<view>`` or ``<sink>_agg`` for a keyed stage, ``<sink table>``), or default to
the spec model's defaults. A spec entry naming an id the SQL does not produce is an error that lists the ids
it does produce. The result is a plain mapping, validated by ``workload.parse_workload`` like any spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flinkscale.core.errors import InputError, text_of
from flinkscale.core.lint_sql import ScriptModel, read_script

_GENERATED = frozenset({"id", "role", "inputs"})


def sql_operators(model: ScriptModel) -> list[dict[str, Any]]:
    """Operators (spec form, in topological order) for the script's INSERTs."""
    operators: dict[str, dict[str, Any]] = {}
    produced_by: dict[str, list[str]] = {}  # view -> node(view), computed once

    def node(name: str, depth: int = 0) -> list[str]:
        """The vertices that produce the rows of table/view ``name``, each once, in first-read order."""
        if depth > 50:
            raise InputError(f"views nest too deep at {name!r}", field="sql")
        if name in model.views:
            if name not in produced_by:
                upstream = list(dict.fromkeys(v for source in model.views[name] for v in node(source, depth + 1)))
                produced_by[name] = [keyed(name, upstream)] if name in model.keyed_views else upstream
            return produced_by[name]
        if name not in operators:
            table = model.tables.get(name)
            operator: dict[str, Any] = {"id": name, "role": "source"}
            if table is not None and table.options.get("connector"):
                operator["connector"] = _connector(table.options)
            operators[name] = operator
        return [name]

    def keyed(name: str, upstream: list[str]) -> str:
        if name not in operators:
            operators[name] = {"id": name, "keyed_state": True,
                               "inputs": [{"from": u, "ship": "hash"} for u in dict.fromkeys(upstream)]}
        return name

    for sink, tables, own_keyed in model.inserts:
        upstream = [v for table in tables for v in node(table)]
        if own_keyed:
            upstream = [keyed(f"{sink}_agg", upstream)]
        if not upstream:
            continue
        sink_id = sink if sink not in operators else f"{sink}_sink"
        operator: dict[str, Any] = {"id": sink_id, "role": "sink", "inputs": list(dict.fromkeys(upstream))}
        table = model.tables.get(sink)
        if table is not None and table.options.get("connector"):
            operator["connector"] = _connector(table.options)
        operators[sink_id] = operator
    if not any(op.get("role") == "sink" for op in operators.values()):
        raise InputError("the SQL script has no INSERT INTO (nothing to plan)", field="--sql")
    return list(operators.values())


def _connector(options: Mapping[str, str]) -> dict[str, Any]:
    kind = options.get("connector", "")
    # The spec model knows Kafka (partitions, per-partition throughput) and "other" (per-connection rate).
    connector: dict[str, Any] = {"type": "kafka" if kind in ("kafka", "upsert-kafka") else "other"}
    if options.get("topic"):
        connector["topic"] = options["topic"]
    return connector


def pipeline_from_sql(text: str, filename: str, spec_operators: Any = None) -> dict[str, Any]:
    """The spec's ``pipeline`` section built from SQL, with the spec's per-operator numbers merged in by id."""
    operators = sql_operators(read_script(text, filename))
    if spec_operators in (None, []):
        return {"operators": operators}
    if not isinstance(spec_operators, list):
        raise InputError("must be a list of operators (costs by the ids the SQL produces)", field="pipeline.operators")
    by_id = {op["id"]: op for op in operators}
    for index, raw in enumerate(spec_operators):
        where = f"pipeline.operators[{index}]"
        if not isinstance(raw, Mapping) or "id" not in raw:
            raise InputError("needs an id", field=where)
        spec_id = text_of(raw["id"], f"{where}.id")  # as the spec parser reads an operator id
        if spec_id not in by_id:
            raise InputError(f"the SQL has no operator {spec_id!r} (it has: {', '.join(by_id)})", field=f"{where}.id")
        extra = sorted(set(raw) & (_GENERATED - {"id"}))
        if extra:
            raise InputError(f"{', '.join(extra)} come from the SQL; give costs only", field=f"{where}.{extra[0]}")
        target = by_id[spec_id]
        for key, value in raw.items():
            if key == "connector" and isinstance(value, Mapping) and isinstance(target.get("connector"), Mapping):
                target["connector"] = {**target["connector"], **value}
            elif key != "id":
                target[key] = value
    return {"operators": operators}
