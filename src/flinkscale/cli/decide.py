"""``flinkscale decide``: run a policy offline over a recorded snapshot (and its history), print decisions.

Argument handling and output only: files are read here, parsed by ``MetricsSnapshot.from_dict``, the
history is rebuilt with ``replay_history`` (so rules that read earlier decisions see what the live loop
would have seen) and the policy comes from ``make_policy``. Every bad file, line or key becomes an
``InputError`` naming it, which ``flinkscale.cli.main`` prints as one line with exit code 2.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ConfigDict, Field

from flinkscale.cli._inputs import check_choice, parse_set_options, read_json, read_text
from flinkscale.core.errors import InputError
from flinkscale.core.inputs import load_json, validate
from flinkscale.core.policy import (
    POLICY_NAMES,
    Decision,
    RescaleRecord,
    describe_policy_settings,
    make_policy,
    replay_history,
)
from flinkscale.core.snapshot import MetricsSnapshot

_HELP = f"""Decide what a policy would do for a recorded job snapshot.

Prints, per vertex, the current and new parallelism, the reason and the numbers behind it
(true_processing_rate, target_rate, utilization, lag, scale factor, ...). Nothing is applied.

The snapshot format is documented in docs/snapshot-format.md. --history is a JSONL file: one
snapshot per line (oldest first), and optionally rescale records
{{"requested_at": T, "completed_at": T, "old_parallelism": {{...}}, "new_parallelism": {{...}}}}.

Policies: {", ".join(POLICY_NAMES)}. Settings (--set key=value) per policy, with defaults:
`flinkscale decide --policy NAME --settings-help`.

Examples:

  flinkscale decide --snapshot examples/snapshots/clickstream-p1-overloaded.json

  flinkscale decide --snapshot examples/snapshots/clickstream-p1-overloaded.json \\
      --history examples/snapshots/clickstream-p1-overload-history.jsonl \\
      --policy flink-operator --set job.autoscaler.metrics.window=2m --format json

  flinkscale decide --snapshot snap.json --policy cpu-threshold --set scale-up.duration=5m
"""


def _read_json(path: Path) -> Any:
    return read_json(path, "snapshot file")


def _snapshot(data: Any, where: str) -> MetricsSnapshot:
    try:
        return MetricsSnapshot.from_dict(data)
    except InputError as exc:
        raise InputError(str(exc), field=where) from None


_Finite = Annotated[float, Field(ge=0, le=1e11, allow_inf_nan=False)]
_Parallelisms = dict[str, Annotated[int, Field(ge=1, le=32768)]]


class _RescaleIn(BaseModel):
    """One rescale record of a --history file (strict types, finite times)."""

    model_config = ConfigDict(strict=True, extra="forbid")
    requested_at: _Finite
    completed_at: _Finite
    old_parallelism: _Parallelisms | None = None
    new_parallelism: _Parallelisms | None = None


def load_history_file(path: Path) -> tuple[list[MetricsSnapshot], list[RescaleRecord]]:
    """Snapshots and rescale records from a JSONL file; each bad line is named ``FILE:LINE``."""
    lines = read_text(path, "history file").splitlines()
    snapshots: list[MetricsSnapshot] = []
    rescales: list[RescaleRecord] = []
    for number, line in enumerate(lines, start=1):
        where = f"{path}:{number}"
        if not line.strip():
            continue
        data = load_json(line, where)
        if isinstance(data, dict) and "requested_at" in data and "vertices" not in data:
            record = validate(_RescaleIn, data, where)
            rescales.append(RescaleRecord(record.requested_at, record.completed_at, dict(record.old_parallelism or {}),
                                          dict(record.new_parallelism or {})))
        else:
            snapshots.append(_snapshot(data, where))
    return snapshots, rescales


def _format_number(value: float) -> str:
    if math.isinf(value):
        return "inf"
    if math.isnan(value):
        return "-"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _print_table(decision: Decision, snapshot: MetricsSnapshot) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{decision.policy} on {snapshot.job_name} at {snapshot.timestamp:.0f}", show_lines=True)
    for column in ("vertex", "p", "new p", "utilization", "TPR/s", "target/s", "reason"):
        table.add_column(column, overflow="fold")
    for v in decision.vertices:
        numbers = v.numbers
        table.add_row(
            v.vertex_name, str(v.current_parallelism),
            f"[bold]{v.new_parallelism}[/bold]" if v.changed else str(v.new_parallelism),
            _format_number(numbers.get("utilization", math.nan)),
            _format_number(numbers.get("true_processing_rate", math.nan)),
            _format_number(numbers.get("target_rate", math.nan)), v.reason)
    console = Console(width=160)
    console.print(table)
    verdict = "rescale" if decision.rescale else "no rescale"
    console.print(f"{verdict}" + (f" (blocked: {decision.blocked_reason})" if decision.blocked_reason else ""))


def decide(
    snapshot: Annotated[Path | None, typer.Option(
        "--snapshot", help="Snapshot JSON file (docs/snapshot-format.md).")] = None,
    history: Annotated[Path | None, typer.Option(
        "--history", help="JSONL of earlier snapshots (oldest first).")] = None,
    policy: Annotated[str, typer.Option("--policy", help=f"One of: {', '.join(POLICY_NAMES)}.")] = "flinkscale",
    set_: Annotated[list[str] | None, typer.Option("--set", help="Policy setting key=value; repeatable.")] = None,
    output_format: Annotated[str, typer.Option("--format", help="table (people) or json (scripts).")] = "table",
    settings_help: Annotated[bool, typer.Option(
        "--settings-help", help="List the policy's settings with defaults and exit.")] = False,
) -> None:
    check_choice(output_format, ("table", "json"), "--format")
    settings = parse_set_options(set_ or [])
    chosen = make_policy(policy, settings)
    if settings_help:
        typer.echo(describe_policy_settings(policy))
        return
    if snapshot is None:
        raise InputError("is required", field="--snapshot")
    current = _snapshot(_read_json(snapshot), str(snapshot))
    earlier: list[MetricsSnapshot] = []
    rescales: list[RescaleRecord] = []
    if history is not None:
        earlier, rescales = load_history_file(history)
        earlier = [s for s in earlier if s.timestamp < current.timestamp]
    past = replay_history(chosen, earlier, rescales)
    decision = chosen.decide(current, past)
    if output_format == "json":
        typer.echo(json.dumps({"job_id": current.job_id, "job_name": current.job_name, **decision.to_dict()},
                              indent=2))
    else:
        _print_table(decision, current)


def register(app: typer.Typer) -> None:
    app.command("decide", help=_HELP, no_args_is_help=True)(decide)
