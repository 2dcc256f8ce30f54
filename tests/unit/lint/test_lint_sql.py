"""SQL lint: every case of the bad corpus is flagged with its rule, nothing in the clean corpus is.

Each bad file names the rule it must raise in a ``-- expect: FSQLnnn`` header; the bad and clean corpora are
linted with ``--partitions 2`` as a user with two-partition topics would (FSQL006 needs a partition count).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from flinkscale.cli import main as cli_main
from flinkscale.core.errors import InputError
from flinkscale.core.lint_sql import lint_python_sql, lint_sql
from flinkscale.pipelines.clickstream_sql import SqlClickstreamOptions, render_sql

CORPUS = Path(__file__).resolve().parents[2] / "fixtures" / "lint_sql"
BAD = sorted((CORPUS / "bad").glob("*.sql"))
CLEAN = sorted((CORPUS / "clean").glob("*.sql"))


def expected_rule(path: Path) -> str:
    found = re.search(r"--\s*expect:\s*(FSQL\d+)", path.read_text())
    assert found, f"{path.name} names no expected rule"
    return found.group(1)


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_every_bad_case_is_flagged_with_its_rule_at_a_real_position(path: Path) -> None:
    text = path.read_text()
    findings = lint_sql(text, str(path), partitions=2)
    rule = expected_rule(path)
    assert rule in {f.rule_id for f in findings}, [f.format_text() for f in findings]
    lines = text.splitlines()
    for finding in findings:
        assert 1 <= finding.line <= len(lines)
        assert 0 <= finding.column < len(lines[finding.line - 1])
        assert not lines[finding.line - 1][finding.column].isspace()


@pytest.mark.parametrize("path", CLEAN, ids=[p.stem for p in CLEAN])
def test_nothing_in_the_clean_corpus_is_flagged(path: Path) -> None:
    assert lint_sql(path.read_text(), str(path), partitions=2) == ()


@pytest.mark.parametrize("shed", [False, True])
def test_the_reference_sql_pipeline_is_clean(shed: bool) -> None:
    options = SqlClickstreamOptions(bootstrap="localhost:9092", events_dir="file:///e", agg_dir="file:///a",
                                    agg_topic="out", shed_control_topic="ctl" if shed else "")
    assert lint_sql(render_sql(options), "clickstream.sql", partitions=4, parallelism=4) == ()


def test_findings_point_at_the_offending_text() -> None:
    text = "CREATE TABLE t (a STRING) WITH ('connector' = 'datagen');\n\nINSERT INTO s\n  SELECT * FROM t;\n"
    (finding,) = lint_sql(text, "x.sql")
    assert (finding.rule_id, finding.line, finding.column + 1) == ("FSQL004", 4, 10)  # the star


def test_a_source_within_its_partitions_or_with_scan_parallelism_is_fine() -> None:
    text = (CORPUS / "bad" / "few_partitions.sql").read_text()
    assert lint_sql(text, "x.sql", partitions=4) == ()
    assert lint_sql(text, "x.sql", partitions={"other": 1}) == ()
    assert lint_sql(text, "x.sql", partitions=2, parallelism=2) == ()
    fixed = text.replace("'format' = 'json'", "'format' = 'json', 'scan.parallelism' = '2'")
    assert lint_sql(fixed, "x.sql", partitions=2) == ()


@pytest.mark.parametrize(("text", "where"), [
    ("SELECT a FROM\n t WHERE x >> 2 FROM", "2:20"),
    ("CREATE TABLE t (a INT) WITH ('connector' = 'datagen');\nINSERT INTO s SELEC a FROM t;", "2:"),
])
def test_a_script_that_does_not_parse_gives_the_parsers_message_at_line_and_column(text: str, where: str) -> None:
    with pytest.raises(InputError, match=rf"bad\.sql:{where}.*does not parse"):
        lint_sql(text, "bad.sql")


def test_sql_strings_in_a_pyflink_file_are_linted_at_their_place_in_the_file() -> None:
    source = '''from pyflink.table import TableEnvironment

t_env = TableEnvironment.create(settings)
t_env.execute_sql("CREATE TABLE src (user_id STRING) WITH ('connector' = 'datagen')")
t_env.execute_sql("""
    INSERT INTO snk
    SELECT user_id, COUNT(*) FROM src GROUP BY user_id""")
'''
    (finding,) = lint_python_sql(source, "job.py")
    assert (finding.rule_id, finding.line) == ("FSQL001", 7)
    assert source.splitlines()[6][finding.column:].startswith("user_id")


def test_cli_exit_codes_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = CORPUS / "clean" / "windowed_counts.sql"
    assert cli_main(["lint", str(clean)]) == 0
    bad = CORPUS / "bad" / "select_star_sink.sql"
    capsys.readouterr()
    assert cli_main(["lint", str(bad), "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert [f["rule_id"] for f in data["findings"]] == ["FSQL004"]
    broken = tmp_path / "broken.sql"
    broken.write_text("SELECT (a FROM t;\n")
    assert cli_main(["lint", str(broken)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"flinkscale: error: {broken}:1:") and "does not parse" in err and len(err.splitlines()) == 1
