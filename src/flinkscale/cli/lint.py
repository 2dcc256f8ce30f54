"""``flinkscale lint``: static checks of PyFlink job files and Flink SQL scripts for what breaks scaling.

Argument handling and output only: the files are read here and handed as text to
``flinkscale.core.lint.lint_source`` (Python) plus ``flinkscale.core.lint_sql.lint_python_sql`` (the SQL
strings in it), or to ``lint_sql`` (``.sql`` files). Exit codes: 0 clean, 1 findings, 2 for an unreadable
file or a syntax error (one line with the line and column, via ``InputError``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from flinkscale.cli._inputs import check_choice, read_text
from flinkscale.core.errors import InputError
from flinkscale.core.lint import RULES, Finding, lint_source
from flinkscale.core.lint_sql import SQL_RULES, lint_python_sql, lint_sql

_RULE_LINES = "\n\n".join(f"  {rule.id} {rule.name}" for rule in [*RULES.values(), *SQL_RULES.values()])
_HELP = f"""Find what quietly defeats scaling in PyFlink jobs and Flink SQL scripts (nothing is run).

PyFlink files (.py) are read with Python's ast, and the SQL strings they pass to execute_sql / sql_query /
add_insert_sql are linted as SQL; .sql files (SET, DDL, views, INSERT, EXECUTE STATEMENT SET) with sqlglot.

Each finding: file:line, rule id, why it breaks scaling, and the fix. Rules:

{_RULE_LINES}

A line ending in `# flinkscale: ignore[FSL001]` (or `# flinkscale: ignore`) silences that line.
Exit code 0 when clean, 1 when there are findings, 2 for unreadable files or syntax errors.

Examples:

  flinkscale lint jobs/clickstream.py

  flinkscale lint jobs/*.py --partitions 12 --format json

  flinkscale lint job.sql --partitions 4 --parallelism 8
"""


def _read(path: Path) -> str:
    return read_text(path, "Python file")


def lint(
    files: Annotated[list[Path], typer.Argument(help="PyFlink job files (.py) or SQL scripts (.sql).",
                                                show_default=False)],
    output_format: Annotated[str, typer.Option("--format", help="text (people) or json (scripts).")] = "text",
    partitions: Annotated[int | None, typer.Option(
        "--partitions", help="Partitions of the source topic, to check source parallelism (FSL006, FSQL006).")] = None,
    parallelism: Annotated[int | None, typer.Option(
        "--parallelism", help="Planned parallelism of SQL jobs (default: their SET 'parallelism.default').")] = None,
) -> None:
    check_choice(output_format, ("text", "json"), "--format")
    if partitions is not None and partitions < 1:
        raise InputError(f"must be >= 1, got {partitions}", field="--partitions")
    if parallelism is not None and parallelism < 1:
        raise InputError(f"must be >= 1, got {parallelism}", field="--parallelism")
    findings: list[Finding] = []
    for path in files:
        text = _read(path)
        if path.suffix.lower() == ".sql":
            findings.extend(lint_sql(text, str(path), partitions=partitions, parallelism=parallelism))
        else:
            findings.extend(lint_source(text, str(path), partitions=partitions))
            findings.extend(lint_python_sql(text, str(path), partitions=partitions, parallelism=parallelism))
    if output_format == "json":
        typer.echo(json.dumps({"files": [str(p) for p in files], "count": len(findings),
                               "findings": [f.to_dict() for f in findings]}, indent=2))
    else:
        for finding in findings:
            typer.echo(finding.format_text())
        noun = "finding" if len(findings) == 1 else "findings"
        typer.echo(f"{len(findings)} {noun} in {len(files)} file{'s' if len(files) != 1 else ''}")
    if findings:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("lint", help=_HELP, no_args_is_help=True)(lint)
