"""Bad SQL-side inputs of ``plan --sql`` and ``lint`` end with one line naming the field or file (the contract of
``_contract.py``), run through ``flinkscale.cli.main`` in this process.

- a spec entry whose ``id`` is not an id (a list, a mapping, null, a boolean) is named by its field path, not
  turned into an "internal error" by hashing it;
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.unit.fuzz._contract import Case, check

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
