"""`plan --sql`: the operator graph (sources, keyed stages behind HASH edges, sinks) comes from the SQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flinkscale.cli import main
from flinkscale.core.errors import InputError
from flinkscale.core.sql_graph import pipeline_from_sql
from flinkscale.core.workload import parse_workload
from flinkscale.pipelines.clickstream_sql import SqlClickstreamOptions, render_sql

SPEC = """name: sql
volume: {bytes_per_day: 2GB, event_size: 500B}
state: {keys: 1000, bytes_per_key: 100B, ttl: 1h}
"""
REFERENCE = render_sql(SqlClickstreamOptions(bootstrap="localhost:9092", events_dir="file:///e", agg_dir="file:///a",
                                             agg_topic="counts"))


def edges(pipeline: dict[str, object]) -> set[tuple[str, str, str]]:
    found = set()
    for op in pipeline["operators"]:  # type: ignore[attr-defined]
        for item in op.get("inputs", []):
            upstream, ship = (item, "forward") if isinstance(item, str) else (item["from"], item["ship"])
            found.add((upstream, op["id"], ship))
    return found


def test_the_reference_pipeline_graph_has_its_keyed_window_and_three_sinks() -> None:
    pipeline = pipeline_from_sql(REFERENCE, "clickstream.sql")
    roles = {op["id"]: op.get("role", "operator") for op in pipeline["operators"]}
    assert roles == {"clicks": "source", "per_user": "operator", "events_out": "sink", "agg_out": "sink",
                     "agg_kafka": "sink"}
    assert edges(pipeline) == {("clicks", "events_out", "forward"), ("clicks", "per_user", "hash"),
                               ("per_user", "agg_out", "forward"), ("per_user", "agg_kafka", "forward")}
    by_id = {op["id"]: op for op in pipeline["operators"]}
    assert by_id["per_user"]["keyed_state"] is True
    assert by_id["clicks"]["connector"] == {"type": "kafka", "topic": "clicks"}
    assert by_id["events_out"]["connector"] == {"type": "other"}


def test_joins_and_inline_aggregations_are_keyed_stages() -> None:
    sql = """
    SET 'table.exec.state.ttl' = '1 h';
    CREATE TABLE a (k STRING, v INT) WITH ('connector' = 'kafka', 'topic' = 'a');
    CREATE TABLE b (k STRING, w INT) WITH ('connector' = 'kafka', 'topic' = 'b');
    CREATE TABLE out1 (k STRING, n BIGINT) WITH ('connector' = 'blackhole');
    CREATE VIEW joined AS SELECT a.k, v, w FROM a JOIN b ON a.k = b.k;
    INSERT INTO out1 SELECT k, COUNT(*) FROM joined GROUP BY k;
    """
    pipeline = pipeline_from_sql(sql, "j.sql")
    assert edges(pipeline) == {("a", "joined", "hash"), ("b", "joined", "hash"), ("joined", "out1_agg", "hash"),
                               ("out1_agg", "out1", "forward")}


def test_costs_come_from_the_spec_by_id_and_the_result_is_a_valid_spec() -> None:
    pipeline = pipeline_from_sql(REFERENCE, "c.sql", [{"id": "per_user", "cost_us_per_record": 25,
                                                       "selectivity": 0.1},
                                                      {"id": "clicks", "connector": {"partitions": 4}}])
    by_id = {op["id"]: op for op in pipeline["operators"]}
    assert by_id["per_user"]["cost_us_per_record"] == 25
    assert by_id["clicks"]["connector"] == {"type": "kafka", "topic": "clicks", "partitions": 4}
    spec = parse_workload({"name": "s", "volume": {"bytes_per_day": "1GB", "event_size": "500B"},
                           "pipeline": pipeline})
    assert spec.pipeline.operator("per_user").keyed_state
    assert spec.pipeline.operator("per_user").cost_us_per_record == 25


@pytest.mark.parametrize(("spec_ops", "field"), [
    ([{"id": "nope", "cost_us_per_record": 1}], "pipeline.operators[0].id"),
    ([{"id": "per_user", "inputs": ["clicks"]}], "pipeline.operators[0].inputs"),
    ({"id": "x"}, "pipeline.operators"),
])
def test_spec_entries_that_do_not_fit_the_sql_are_named(spec_ops: object, field: str) -> None:
    with pytest.raises(InputError, match=field.replace("[", r"\[").replace("]", r"\]")):
        pipeline_from_sql(REFERENCE, "c.sql", spec_ops)


def test_cli_plan_sql(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sql, spec = tmp_path / "job.sql", tmp_path / "spec.yaml"
    sql.write_text(REFERENCE)
    spec.write_text(SPEC + "pipeline:\n  operators:\n    - {id: per_user, cost_us_per_record: 15}\n")
    capsys.readouterr()
    assert main(["plan", "--sql", str(sql), str(spec), "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert {op["id"]: op["keyed"] for op in plan["operators"]}["per_user"] is True
    broken = tmp_path / "broken.sql"
    broken.write_text("INSERT INTO x SELEC a FROM t;")
    assert main(["plan", "--sql", str(broken), str(spec)]) == 2
    assert "broken.sql:1:" in capsys.readouterr().err
    assert main(["plan", "--sql", str(sql)]) == 2
