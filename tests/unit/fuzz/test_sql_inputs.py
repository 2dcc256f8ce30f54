"""Bad SQL-side inputs of ``plan --sql`` and ``lint`` end with one line naming the field or file (the contract of
``_contract.py``), run through ``flinkscale.cli.main`` in this process.

- a spec entry whose ``id`` is not an id (a list, a mapping, null, a boolean) is named by its field path, not
  turned into an "internal error" by hashing it;
- a statement nested deeper than sqlglot's recursive parser reaches (about 40 levels of parentheses) is bad
  input naming the file, line and column, for ``lint`` (SQL files and SQL strings in PyFlink files) and
  ``plan --sql`` alike, where Python's RecursionError used to end it with exit 1; SQL within reach still reads.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.unit.fuzz._contract import Case, check, run_cli

JOB_SQL = """CREATE TABLE clicks (u STRING) WITH ('connector'='kafka','topic'='c');
CREATE TABLE o (u STRING, n BIGINT) WITH ('connector'='kafka','topic'='o');
INSERT INTO o SELECT u, COUNT(*) FROM clicks GROUP BY u;
"""
VOLUME = "volume: {rate: 10k/s, event_size: 1kB}\n"


@pytest.mark.parametrize("bad_id", ["[clicks]", "{name: clicks}", "null", "true", "[]"])
def test_a_spec_id_that_is_no_id_is_named_by_its_path(tmp_path: Path, bad_id: str) -> None:
    sql, spec = tmp_path / "job.sql", tmp_path / "spec.yaml"
    sql.write_text(JOB_SQL)
    spec.write_text(VOLUME + f"pipeline:\n  operators:\n    - {{id: clicks, cost_us_per_record: 5}}\n"
                             f"    - {{id: {bad_id}, cost_us_per_record: 5}}\n")
    outcome = check(Case(f"sql-spec-id-{bad_id}", ("plan", "--sql", str(sql), str(spec)),
                         ("pipeline.operators[1].id",)))
    assert "internal error" not in outcome.stderr


def _nested(depth: int) -> str:
    return "INSERT INTO o SELECT " + "(" * depth + "1" + ")" * depth + " FROM t;\n"


@pytest.mark.parametrize(("name", "sql"), [
    ("parens", _nested(50)),
    ("calls", "INSERT INTO o SELECT " + "ABS(" * 60 + "u" + ")" * 60 + " FROM clicks;\n"),
    ("subqueries", "INSERT INTO o SELECT * FROM " + "(SELECT * FROM " * 1000 + "t" + ") x" * 1000 + ";\n"),
], ids=["parens", "calls", "subqueries"])
@pytest.mark.parametrize("command", ["lint", "plan"])
def test_sql_nested_too_deeply_names_the_file(tmp_path: Path, name: str, sql: str, command: str) -> None:
    path, spec = tmp_path / f"deep-{name}.sql", tmp_path / "spec.yaml"
    path.write_text(JOB_SQL + sql)
    spec.write_text(VOLUME)
    argv = ("lint", str(path)) if command == "lint" else ("plan", "--sql", str(path), str(spec))
    outcome = check(Case(f"sql-deep-{name}-{command}", argv, (f"deep-{name}.sql:4:1",)))
    assert "nests too deeply" in outcome.stderr


def test_sql_strings_nested_too_deeply_in_a_pyflink_file_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "job.py"
    path.write_text(f"t_env.execute_sql({_nested(60)!r})\n")
    check(Case("sql-deep-python", ("lint", str(path)), ("job.py:1:",)))


@pytest.mark.parametrize("command", ["lint", "plan"])
def test_sql_nested_within_the_parsers_reach_still_reads(tmp_path: Path, command: str) -> None:
    path, spec = tmp_path / "nested.sql", tmp_path / "spec.yaml"
    path.write_text(JOB_SQL + _nested(20).replace(" FROM t;", " AS u, 1 AS n FROM clicks;"))
    spec.write_text(VOLUME)
    argv = ["lint", str(path)] if command == "lint" else ["plan", "--sql", str(path), str(spec)]
    outcome = run_cli(argv)
    assert outcome.exit_code in (0, 1) and "nests too deeply" not in outcome.stderr, outcome.stderr


@pytest.mark.parametrize(("name", "tail", "line", "says"), [
    ("comment", "/* the rest of the file, forever\nINSERT INTO o SELECT u, 1 FROM clicks;\n", 4, "/* comment"),
    ("quote", "INSERT INTO o SELECT u, 1 FROM clicks WHERE u = 'x;\n", 4, "a ' that"),
    ("backquote", "INSERT INTO `o SELECT u, 1 FROM clicks;\n", 4, "a ` that"),
    ("statement-set", "EXECUTE STATEMENT SET BEGIN\nINSERT INTO o SELECT u, 1 FROM clicks;\n", 4, "without END"),
])
@pytest.mark.parametrize("command", ["lint", "plan"])
def test_a_script_that_never_closes_what_it_opens_is_refused_where_it_opens(
        tmp_path: Path, name: str, tail: str, line: int, says: str, command: str) -> None:
    # Split as it was, the rest of the file vanished into the comment, quote or set, and the script passed.
    path, spec = tmp_path / f"unclosed-{name}.sql", tmp_path / "spec.yaml"
    path.write_text(JOB_SQL + tail)
    spec.write_text(VOLUME)
    argv = ("lint", str(path)) if command == "lint" else ("plan", "--sql", str(path), str(spec))
    outcome = check(Case(f"sql-unclosed-{name}-{command}", argv, (f"{path}:{line}:",)))
    assert says in outcome.stderr


@pytest.mark.parametrize("closed", [
    "SELECT 'it''s';", "SELECT '';", "SELECT `a``b`;", "SELECT 1; /* done */", "SELECT 'x' -- it's\n;",
    "EXECUTE STATEMENT SET BEGIN INSERT INTO o SELECT * FROM c; END;",
    "EXECUTE STATEMENT SET BEGIN INSERT INTO o SELECT * FROM c; END", "", "-- only a comment",
])
def test_what_is_closed_is_not_called_unclosed(closed: str) -> None:
    from flinkscale.core.sql_script import unclosed

    assert unclosed(closed) is None
