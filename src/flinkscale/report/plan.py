"""Render a ``Plan``: a terminal table, JSON, YAML, Markdown, HTML, a Flink ``config.yaml`` and a FlinkDeployment.

Rendering only: every number comes from ``flinkscale.core.plan`` and keeps its formula. The Markdown and
HTML reports print the formula and inputs beside each figure; the table is the short form for people, and
its "why" cells are brief: a list that names every operator (the slots' inputs, an operator's forward-chain
peers) is cut to its first names (or, for inputs, the largest) and how many more there are, so the table grows
linearly with the operators (rich folds a cell in time that grows with the square of its length). Text from
the spec and the plan (ids, names, formulas with their ``[inputs]``) is escaped before rich reads its markup.
``flink_config_yaml`` writes flat Flink 2.x keys (Flink's standard YAML parser accepts flat keys), and
``flink_deployment`` is the ``flink.apache.org/v1beta1`` FlinkDeployment of ``flinkscale.core.manifest``
(specs with ``deployment.target: kubernetes``), rendered here as YAML with a header saying how to drive it.
"""

from __future__ import annotations

import html
import io
import json
import math
from collections.abc import Sequence
from typing import Any

import yaml
from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table

from flinkscale.core import manifest
from flinkscale.core.explained import Explained
from flinkscale.core.plan import Plan
from flinkscale.core.units import format_bytes, format_duration, format_rate

FORMATS = ("table", "json", "yaml", "markdown", "html")


# Limits of the table's brief "why" cells, above what any figure that does not list operators needs (in the
# shipped examples: formulas up to ~130 characters, up to 4 inputs). JSON, YAML, Markdown and HTML keep them all.
_BRIEF_FORMULA_CHARS = 200
_BRIEF_INPUTS = 8


def _why(value: Explained, brief: bool = False) -> str:
    """The formula and its inputs; ``brief`` (the table) bounds both: long lists end with how many more there
    are, and of many inputs the largest are named (the ones a max, a sum or a limit turns on)."""
    formula = _clip(value.formula, _BRIEF_FORMULA_CHARS) if brief else value.formula
    items = list(value.inputs.items())
    more = ""
    if brief and len(items) > _BRIEF_INPUTS:
        more = f", ... and {len(items) - _BRIEF_INPUTS} more (the largest shown; all in --format json)"
        items = sorted(items, key=lambda item: -item[1] if isinstance(item[1], (int, float)) else math.inf)
        items = items[:_BRIEF_INPUTS]
    inputs = ", ".join(f"{k}={_short(v)}" for k, v in items) + more
    return f"{formula}" + (f" [{inputs}]" if inputs else "")


def _clip(text: str, limit: int) -> str:
    """``text`` cut to about ``limit`` characters after its last whole list item (``, ``) that fits, saying how
    many items follow; only a list of names (operators, peers) grows that long."""
    if len(text) <= limit:
        return text
    cut = text.rfind(", ", 0, limit)
    if cut < 0:
        return f"{text[:limit]}... (all in --format json)"
    return f"{text[:cut]}, ... and {text.count(', ', cut + 2) + 1} more (all in --format json)"


def _short(value: float | str) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def summary_rows(plan: Plan, brief: bool = False) -> list[tuple[str, str, str]]:
    """(figure, value, why) rows shared by the table (``brief`` why cells), Markdown and HTML renderers."""
    c = plan.capacity

    def why(value: Explained) -> str:
        return _why(value, brief)

    cluster, memory, state, ckpt = c.cluster, c.cluster.memory, c.state, c.checkpoints
    rows = [
        ("average rate", f"{format_rate(c.rates.average_events_per_second.value)} "
         f"({format_bytes(c.rates.average_bytes_per_second.value)}/s)", why(c.rates.average_events_per_second)),
        ("peak rate", format_rate(c.rates.peak_events_per_second.value), why(c.rates.peak_events_per_second)),
        ("provisioned rate", format_rate(c.rates.provisioned_events_per_second.value),
         why(c.rates.provisioned_events_per_second)),
        ("max parallelism", f"{int(c.max_parallelism.value)}", why(c.max_parallelism)),
        ("slots", f"{int(cluster.slots.value)}", why(cluster.slots)),
        ("cores needed", f"{int(cluster.cores_needed.value)}", why(cluster.cores_needed)),
        ("TaskManagers", f"{int(cluster.task_managers.value)} x {cluster.cores_per_task_manager} cores, "
         f"{cluster.slots_per_task_manager} slots, {format_bytes(memory.process_size, binary=True)}",
         why(cluster.task_managers)),
        ("TM memory", f"heap {format_bytes(memory.jvm_heap, binary=True)} (task "
         f"{format_bytes(memory.task_heap, binary=True)}), managed {format_bytes(memory.managed, binary=True)}, "
         f"network {format_bytes(memory.network, binary=True)}, metaspace "
         f"{format_bytes(memory.jvm_metaspace, binary=True)}, "
         f"overhead {format_bytes(memory.jvm_overhead, binary=True)}",
         "Flink 2.x memory model from taskmanager.memory.process.size"),
        ("JobManager", f"{format_bytes(cluster.job_manager.process_size, binary=True)} x "
         f"{cluster.job_manager_replicas}, heap {format_bytes(cluster.job_manager.heap, binary=True)}",
         why(cluster.job_manager_heap_needed)),
        ("state", f"{state.backend}: {format_bytes(state.projected_bytes.value)} projected "
         f"({format_bytes(state.per_task_manager_bytes.value)} per TM)", state.backend_reason),
        ("state without TTL", format_bytes(state.projected_bytes_without_ttl.value),
         why(state.projected_bytes_without_ttl)),
        ("checkpoint interval", format_duration(ckpt.interval_seconds.value), why(ckpt.interval_seconds)),
        ("checkpoint duration", format_duration(ckpt.duration_seconds.value), why(ckpt.duration_seconds)),
        ("recovery estimate", format_duration(ckpt.recovery_seconds.value), why(ckpt.recovery_seconds)),
        ("network per TM", f"in {format_bytes(cluster.network_in_bytes_per_second.value)}/s, out "
         f"{format_bytes(cluster.network_out_bytes_per_second.value)}/s",
         why(cluster.network_out_bytes_per_second)),
        ("network buffers per TM", format_bytes(cluster.network_buffers_bytes.value, binary=True),
         why(cluster.network_buffers_bytes)),
    ]
    if ckpt.kafka_transaction_timeout_seconds is not None:
        rows.append(("Kafka transaction.timeout.ms", f"{int(ckpt.kafka_transaction_timeout_seconds.value * 1000)}",
                     why(ckpt.kafka_transaction_timeout_seconds)))
    for topic in c.kafka:
        rows.append((f"topic {topic.topic} ({topic.direction})", f"{int(topic.partitions.value)} partitions",
                     why(topic.partitions_needed)))
    return rows


def operator_rows(plan: Plan, brief: bool = False) -> list[tuple[str, ...]]:
    return [(o.operator.id, o.operator.role.value, format_rate(o.input_records_per_second.value),
             f"{o.operator.cost_us_per_record:.3g}", str(int(o.parallelism_for_cpu.value)),
             str(int(o.parallelism.value)), f"{o.utilization_at_peak.value:.2f}", _why(o.parallelism, brief))
            for o in plan.capacity.operators]


_OPERATOR_HEADERS = ("operator", "role", "in (peak)", "us/record", "p (cpu)", "p", "busy at peak", "why")


def render_table(plan: Plan, width: int = 160) -> str:
    console = Console(width=width, file=io.StringIO(), record=True, force_terminal=False, color_system=None)
    summary = Table(title=f"flinkscale plan: {escape(plan.spec.name)}", show_lines=False)
    for header in ("figure", "value", "why"):
        summary.add_column(header, overflow="fold")
    for row in summary_rows(plan, brief=True):
        summary.add_row(*map(escape, row))
    operators = Table(title="operators")
    for header in _OPERATOR_HEADERS:
        operators.add_column(header, overflow="fold")
    for op_row in operator_rows(plan, brief=True):
        operators.add_row(*map(escape, op_row))
    parts: list[Any] = [summary, operators]
    constraints = plan.capacity.constraints
    verdict = ("[bold]fits[/]: no stated limit binds" if not constraints else
               f"[bold]does not fit[/]: carries {plan.capacity.carried_fraction.value:.0%} of the provisioned peak")
    parts.append(verdict)
    for constraint in constraints:
        parts.append(escape(f"  binding: {constraint.name}: {constraint.message}"))
    for note in plan.capacity.notes:
        parts.append(escape(f"  note: {note}"))
    console.print(Group(*parts))
    return console.export_text()


def render_json(plan: Plan) -> str:
    return json.dumps(plan.to_dict(), indent=2, sort_keys=False, default=_json_default)


def _json_default(value: object) -> object:
    if isinstance(value, float):
        return None
    return str(value)


def render_yaml(plan: Plan) -> str:
    return yaml.safe_dump(json.loads(render_json(plan)), sort_keys=False, width=120)


def render_markdown(plan: Plan) -> str:
    lines = [f"# flinkscale plan: {plan.spec.name}", ""]
    constraints = plan.capacity.constraints
    lines.append("**Fits**: no stated limit binds." if not constraints else
                 f"**Does not fit**: the planned cluster carries {plan.capacity.carried_fraction.value:.0%} "
                 "of the provisioned peak.")
    lines += ["", "| figure | value | why |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {_md(c)} |" for a, b, c in summary_rows(plan)]
    lines += ["", "## Operators", "", "| " + " | ".join(_OPERATOR_HEADERS) + " |",
              "|" + "---|" * len(_OPERATOR_HEADERS)]
    lines += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in operator_rows(plan)]
    if constraints:
        lines += ["", "## Binding constraints", ""]
        lines += [f"- **{c.name}**: {c.message}" for c in constraints]
    memory = plan.capacity.cluster.memory
    lines += ["", "## TaskManager memory (bytes, Flink option names)", "", "| option | bytes |", "|---|---|"]
    lines += [f"| `{k}` | {v} |" for k, v in memory.flink_options().items()]
    lines += ["", "## Flink configuration", "", "```yaml", flink_config_yaml(plan).rstrip(), "```"]
    if plan.capacity.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in plan.capacity.notes]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def render_html(plan: Plan) -> str:
    def table(headers: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    constraints = plan.capacity.constraints
    verdict = ("Fits: no stated limit binds." if not constraints else
               f"Does not fit: carries {plan.capacity.carried_fraction.value:.0%} of the provisioned peak.")
    memory_rows = [(k, str(v)) for k, v in plan.capacity.cluster.memory.flink_options().items()]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>flinkscale plan: {html.escape(plan.spec.name)}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
        "th{background:#f4f4f4}pre{background:#f8f8f8;padding:1em}</style></head><body>",
        f"<h1>flinkscale plan: {html.escape(plan.spec.name)}</h1><p><b>{html.escape(verdict)}</b></p>",
        table(("figure", "value", "why"), summary_rows(plan)),
        "<h2>Operators</h2>", table(_OPERATOR_HEADERS, operator_rows(plan)),
    ]
    if constraints:
        parts.append("<h2>Binding constraints</h2><ul>" + "".join(
            f"<li><b>{html.escape(c.name)}</b>: {html.escape(c.message)}</li>" for c in constraints) + "</ul>")
    parts += ["<h2>TaskManager memory (bytes)</h2>", table(("option", "bytes"), memory_rows),
              "<h2>Flink configuration</h2>", f"<pre>{html.escape(flink_config_yaml(plan))}</pre>",
              "</body></html>"]
    return "\n".join(parts) + "\n"


def render(plan: Plan, output_format: str) -> str:
    renderers = {"table": render_table, "json": render_json, "yaml": render_yaml, "markdown": render_markdown,
                 "html": render_html}
    return renderers[output_format](plan)


def flink_config_yaml(plan: Plan) -> str:
    """A Flink 2.x ``config.yaml`` (flat keys, all values strings) for the planned cluster."""
    header = (f"# Flink 2.x configuration planned by flinkscale for {plan.spec.name!r}.\n"
              "# Every value is explained in the plan report (flinkscale plan --format markdown).\n")
    return header + yaml.safe_dump(dict(plan.flink_config), sort_keys=False, width=1000)


def flink_deployment(plan: Plan) -> dict[str, Any]:
    """A FlinkDeployment (``flink.apache.org/v1beta1``) for the Flink Kubernetes Operator (built in
    ``flinkscale.core.manifest``; only for specs with ``deployment.target: kubernetes``)."""
    return manifest.flink_deployment(plan)


def flink_deployment_yaml(plan: Plan) -> str:
    data = flink_deployment(plan)
    spec = data["spec"]
    config = spec["flinkConfiguration"]
    header = (f"# FlinkDeployment planned by flinkscale for {plan.spec.name!r} (Flink Kubernetes Operator 1.16+).\n"
              f"# job.parallelism {spec['job']['parallelism']} = the largest planned vertex parallelism; no "
              "taskManager.replicas on purpose (they would override it with\n"
              "# replicas x slots, and Flink 2.3.0 ignores the per-vertex overrides at submission). "
              f"{manifest.MIN_SLOTS_KEY} = {config[manifest.MIN_SLOTS_KEY]} starts the\n"
              f"# planned TaskManagers; {manifest.OVERRIDES_KEY} holds each vertex's planned parallelism.\n"
              f"# {manifest.AUTOSCALER_KEY}: {config[manifest.AUTOSCALER_KEY]}: "
              + ("the operator's autoscaler drives this job.\n" if
                 config[manifest.AUTOSCALER_KEY] == "true" else
                 f"run `flinkscale autoscale --k8s-deployment {data['metadata']['namespace']}/"
                 f"{data['metadata']['name']}` to drive it.\n"))
    return header + yaml.safe_dump(data, sort_keys=False, width=1000)
