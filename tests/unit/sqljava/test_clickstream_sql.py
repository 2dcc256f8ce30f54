"""The reference SQL pipeline's script: what a user and the runner rely on in the rendered text."""

from __future__ import annotations

import argparse

import pytest

from flinkscale.core.errors import InputError
from flinkscale.core.shedding import z_for_confidence
from flinkscale.core.sql_script import split_statements
from flinkscale.pipelines import clickstream
from flinkscale.pipelines.clickstream_sql import SqlClickstreamOptions, render_sql
from flinkscale.pipelines.shedding import sql_weighted_window_columns


def options(**overrides: object) -> SqlClickstreamOptions:
    return SqlClickstreamOptions(bootstrap="localhost:9092", **overrides)  # type: ignore[arg-type]


def test_all_sinks_in_one_statement_set_and_settings_first() -> None:
    script = render_sql(options(events_dir="file:///e", agg_dir="file:///a", agg_topic="out"))
    statements = split_statements(script)
    keywords = [s.keyword for s in statements]
    assert keywords[-1] == "EXECUTE" and keywords.count("EXECUTE") == 1
    assert keywords.index("CREATE") > max(i for i, k in enumerate(keywords) if k == "SET")
    assert statements[-1].text.count("INSERT INTO") == 3
    assert "'table.exec.state.ttl' = '1 h'" in script and "'state.backend.type' = 'rocksdb'" in script
    assert "WATERMARK FOR ts" in script


def test_the_cpu_cost_is_built_in_and_tunable_and_no_python_runs() -> None:
    assert "SHA256(REPEAT(COALESCE(url, ''), 250))" in render_sql(options(cost_rounds=250))
    assert "SHA256" not in render_sql(options(cost_rounds=0))
    assert "LANGUAGE PYTHON" not in render_sql(options(shed_keep=0.5))


def test_without_a_sink_the_job_writes_to_a_blackhole() -> None:
    assert "'connector' = 'blackhole'" in render_sql(options())


def test_shedding_uses_the_java_functions_on_the_event_id_or_the_user() -> None:
    plain = render_sql(options())
    assert "flinkscale_keep" not in plain and "pipeline.global-job-parameters" not in plain
    shed = render_sql(options(shed_control_topic="ctl"))
    assert "WHERE flinkscale_keep(event_id)" in shed and "flinkscale_weight() AS weight" in shed
    assert 'flinkscale.shed.bootstrap:"localhost:9092",flinkscale.shed.control-topic:ctl' in shed
    assert "'dev.flinkscale.shedding.KeepFunction' LANGUAGE JAVA" in shed
    assert "flinkscale_keep(user_id)" in render_sql(options(shed_keep=0.5, shed_mode="key_hash"))


@pytest.mark.parametrize("mode", ["random", "key_hash"])
@pytest.mark.parametrize("keep", [1.0, 0.5])
def test_window_columns_are_the_pyflink_pipelines(mode: str, keep: float) -> None:
    args = argparse.Namespace(shed_keep=keep, shed_control_topic="", shed_mode=mode, shed_confidence=0.9)
    assert clickstream.window_columns(args) == sql_weighted_window_columns(z_for_confidence(0.9), mode,
                                                                           shedding=keep < 1)


@pytest.mark.parametrize(("field", "value", "flag"), [
    ("cost_rounds", -1, "--cost-rounds"), ("shed_keep", 0.0, "--shed-keep"), ("shed_mode", "x", "--shed-mode"),
    ("topic", "a'b", "--topic"), ("window_seconds", 0, "--window-seconds"),
])
def test_bad_options_name_the_flag(field: str, value: object, flag: str) -> None:
    with pytest.raises(InputError, match=flag):
        options(**{field: value})


def test_both_pipelines_name_the_window_columns_they_write() -> None:
    import re

    args = argparse.Namespace(shed_keep=0.5, shed_control_topic="", shed_mode="random", shed_confidence=0.95)
    aliases = re.findall(r"\bAS (\w+)\s*(?:,|$)", clickstream.window_columns(args))
    named = [c.strip() for c in clickstream.AGG_SELECT.removeprefix("SELECT ").split(" FROM ")[0].split(",")]
    assert named == ["user_id", "window_start", "window_end", *aliases]
    assert clickstream.AGG_SELECT in render_sql(options(agg_dir="file:///a"))


def test_job_submit_passes_max_parallelism_and_group_and_refuses_a_bad_max_parallelism(
        capsys: pytest.CaptureFixture[str]) -> None:
    from flinkscale.cli import main

    assert main(["job", "submit", "clickstream-sql", "--print-sql", "--max-parallelism", "3", "--group", "g1"]) == 0
    script = capsys.readouterr().out
    assert "'pipeline.max-parallelism' = '3'" in script and "'properties.group.id' = 'g1'" in script
    assert main(["job", "submit", "keyed-java", "--max-parallelism", "0", "--events-dir", "file:///o"]) == 2
    assert "--max-parallelism" in capsys.readouterr().err
