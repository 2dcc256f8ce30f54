"""The reference SQL pipeline, ``clickstream-sql``: the clickstream job in Flink SQL alone, no Python at run time.

    Kafka source (JSON clicks, event-time watermark)
      -> filter and projection: validity checks plus a CPU cost made of Flink built-ins (SHA-256 over the URL
         repeated ``cost_rounds`` times), a category column
      -> [optional load shedding: WHERE flinkscale_keep(event_id), weight flinkscale_weight() (the Java library)]
      -> filesystem sink of every event                       (exactly-once through checkpoints)
      -> keyed per-user tumbling window on RocksDB (table.exec.state.ttl set)
           -> Kafka sink of per-user counts                   (at-least-once on the embedded broker)
           -> filesystem sink of the same counts              (exactly-once)

``render_sql`` writes the job as one SQL script (``SET`` statements, DDL, views and one ``EXECUTE STATEMENT SET``)
that a user can read, lint (``flinkscale lint``), plan from (``flinkscale plan --sql``) and run in any SQL client;
``pipelines/sql_runner.py`` submits it through the Table API. The script is plain text built here without pyflink.

Why these choices:
- The cost is real work by built-in functions, so the job stays all-JVM (the PyFlink pipeline's Python UDF caps
  a subtask at a fraction of this): ``SHA256(REPEAT(url, n))`` in the WHERE clause, which the planner can
  neither fold nor prune (it depends on every row's URL), tunable with ``cost_rounds`` (0 = no cost).
- With both the events sink and the window, the planner evaluates the ``enriched`` view once per branch (two
  Calcs chained in the source vertex, measured in the plan: ``Calc[2] -> events sink, Calc[4] -> window``), so
  the cost is paid twice per event; the keep decision is a hash of the event id, so both branches agree.
- The output rows have the PyFlink pipeline's schema (``clicks``, ``*_estimate``, ``*_variance``,
  ``*_relative_error``), with the same Horvitz-Thompson formulas (``shedding.sql_weighted_window_columns``), so
  every reader, test and check works on either pipeline.
- Shedding keeps by a hash of the event id (``random``) or of the user (``key_hash``, whole users), as the PyFlink
  path does, through the Java functions reading the same control topic; it sits right after the source, before
  the cost, so shed records do not pay it.
"""

from __future__ import annotations

from dataclasses import dataclass

from flinkscale.core.errors import InputError, require_at_least
from flinkscale.core.shedding import z_for_confidence
from flinkscale.pipelines.shedding import SAMPLING_MODES, sql_weighted_window_columns

SHEDDING_FUNCTIONS = {
    "flinkscale_keep": "dev.flinkscale.shedding.KeepFunction",
    "flinkscale_weight": "dev.flinkscale.shedding.WeightFunction",
    "flinkscale_shed_weight": "dev.flinkscale.shedding.ShedWeightFunction",
}
AGG_COLUMNS = """user_id STRING, window_start TIMESTAMP(3), window_end TIMESTAMP(3), clicks BIGINT,
  total_bytes BIGINT, sampled BIGINT, keep_probability DOUBLE, clicks_estimate DOUBLE, total_bytes_estimate DOUBLE,
  clicks_variance DOUBLE, total_bytes_variance DOUBLE, clicks_relative_error DOUBLE,
  total_bytes_relative_error DOUBLE"""


@dataclass(frozen=True)
class ClickstreamSettings:
    """What both clickstream pipelines (PyFlink: ``pipelines/launch.ClickstreamOptions``; SQL: below) take:
    where the clicks come from and go, the window, state and checkpoint settings, and load shedding."""

    bootstrap: str
    topic: str = "clicks"
    group: str = "flinkscale-clickstream"
    name: str = "clickstream"
    events_dir: str = ""
    agg_dir: str = ""
    agg_topic: str = ""
    window_seconds: int = 10
    max_parallelism: int = 120
    state_ttl: str = "1 h"
    checkpoint_interval: str = "5 s"
    agg_phase_strategy: str = "ONE_PHASE"
    source_idle_timeout: str = "0 s"
    # Dynamic load shedding: the control topic whose latest {"keep_probability", "seq"} sets p (see
    # flinkscale.kafka.control), "random" (by event id) or "key_hash" (whole users), and the errors' confidence.
    shed_control_topic: str = ""
    shed_keep: float = 1.0
    shed_mode: str = "random"
    shed_confidence: float = 0.95
    kafka_jars: str | None = None


@dataclass(frozen=True)
class SqlClickstreamOptions(ClickstreamSettings):
    """The SQL pipeline; its load shedding runs through the Java library (flinkscale-shedding.jar), on when a
    control topic is named or shed_keep < 1, with the same control topic protocol as the PyFlink pipeline."""

    group: str = "flinkscale-clickstream-sql"
    name: str = "clickstream-sql"
    cost_rounds: int = 100
    startup: str = "earliest-offset"

    def __post_init__(self) -> None:
        require_at_least(self.cost_rounds, 0, "--cost-rounds")
        require_at_least(self.window_seconds, 1, "--window-seconds")
        if not 0.0 < self.shed_keep <= 1.0:
            raise InputError(f"must be in (0, 1], got {self.shed_keep}", field="--shed-keep")
        if self.shed_mode not in SAMPLING_MODES:
            raise InputError(f"must be one of {', '.join(SAMPLING_MODES)}", field="--shed-mode")
        for name in ("topic", "bootstrap", "agg_topic", "shed_control_topic", "events_dir", "agg_dir", "group"):
            if "'" in getattr(self, name):
                raise InputError("must not contain a quote (')", field=f"--{name.replace('_', '-')}")

    @property
    def shedding(self) -> bool:
        return self.shed_keep < 1.0 or bool(self.shed_control_topic)


def _set(key: str, value: str) -> str:
    return f"SET '{key}' = '{value}';"


def _job_parameters(options: SqlClickstreamOptions) -> str:
    # A Flink map option: key:value pairs, values with ':' double-quoted (the bootstrap has a port).
    return ",".join([f'flinkscale.shed.bootstrap:"{options.bootstrap}"',
                     f"flinkscale.shed.control-topic:{options.shed_control_topic}",
                     f"flinkscale.shed.keep:{options.shed_keep!r}"])


def render_sql(options: SqlClickstreamOptions) -> str:
    """The whole job as a SQL script."""
    o = options
    rolling = ("'sink.rolling-policy.rollover-interval' = '2 s', 'sink.rolling-policy.check-interval' = '1 s',\n"
               "  'sink.rolling-policy.inactivity-interval' = '2 s'")
    lines = [
        f"-- flinkscale reference SQL pipeline '{o.name}' (rendered by flinkscale.pipelines.clickstream_sql)",
        _set("pipeline.name", o.name),
        _set("pipeline.max-parallelism", str(o.max_parallelism)),
        _set("execution.checkpointing.interval", o.checkpoint_interval),
        _set("execution.checkpointing.mode", "EXACTLY_ONCE"),
        _set("state.backend.type", "rocksdb"),
        _set("execution.checkpointing.incremental", "true"),
        _set("table.exec.state.ttl", o.state_ttl),
        # '0 s': a partition behind under backlog is never declared idle and its records dropped as late.
        _set("table.exec.source.idle-timeout", o.source_idle_timeout),
        _set("table.optimizer.agg-phase-strategy", o.agg_phase_strategy),
    ]
    if o.shedding:
        lines.append(_set("pipeline.global-job-parameters", _job_parameters(o)))
    lines += ["", f"""CREATE TABLE clicks (
  event_id BIGINT,
  user_id STRING,
  url STRING,
  size_bytes INT,
  event_time BIGINT,
  ts AS TO_TIMESTAMP_LTZ(event_time, 3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH (
  'connector' = 'kafka', 'topic' = '{o.topic}', 'properties.bootstrap.servers' = '{o.bootstrap}',
  'properties.group.id' = '{o.group}', 'scan.startup.mode' = '{o.startup}', 'format' = 'json',
  'json.ignore-parse-errors' = 'true'
);""", ""]
    if o.shedding:
        lines += [f"CREATE TEMPORARY FUNCTION {name} AS '{cls}' LANGUAGE JAVA;"
                  for name, cls in SHEDDING_FUNCTIONS.items() if name != "flinkscale_shed_weight"]
        lines.append("")
    shed_key = "user_id" if o.shed_mode == "key_hash" else "event_id"
    weight = "flinkscale_weight() AS weight" if o.shedding else "CAST(1.0 AS DOUBLE) AS weight"
    conditions = ["event_id IS NOT NULL", "user_id IS NOT NULL"]
    if o.shedding:
        # First: a shed record pays nothing after it (the planner keeps the order of a non-deterministic call).
        conditions.insert(0, f"flinkscale_keep({shed_key})")
    if o.cost_rounds:
        conditions.append(f"CHAR_LENGTH(SHA256(REPEAT(COALESCE(url, ''), {o.cost_rounds}))) = 64")
    where = "\n  AND ".join(conditions)
    lines += [f"""CREATE TEMPORARY VIEW enriched AS
SELECT
  event_id, user_id, url, size_bytes, event_time, ts,
  COALESCE(NULLIF(SPLIT_INDEX(SPLIT_INDEX(COALESCE(url, '/'), '?', 0), '/', 1), ''), 'home') AS category,
  {weight}
FROM clicks
WHERE {where};""", "", f"""CREATE TEMPORARY VIEW per_user AS
SELECT
  user_id, window_start, window_end,
  {sql_weighted_window_columns(z_for_confidence(o.shed_confidence), o.shed_mode, shedding=o.shedding)}
FROM TABLE(TUMBLE(TABLE enriched, DESCRIPTOR(ts), INTERVAL '{o.window_seconds}' SECOND))
GROUP BY user_id, window_start, window_end;""", ""]
    inserts = []
    if o.events_dir:
        lines += [f"""CREATE TABLE events_out (
  event_id BIGINT, user_id STRING, category STRING, size_bytes INT, event_time BIGINT
) WITH ('connector' = 'filesystem', 'path' = '{o.events_dir}', 'format' = 'json',
  {rolling});""", ""]
        inserts.append("INSERT INTO events_out SELECT event_id, user_id, category, size_bytes, event_time "
                       "FROM enriched;")
    agg_select = ("SELECT user_id, window_start, window_end, clicks, total_bytes, sampled, keep_probability, "
                  "clicks_estimate, total_bytes_estimate, clicks_variance, total_bytes_variance, "
                  "clicks_relative_error, total_bytes_relative_error FROM per_user")
    if o.agg_dir:
        lines += [f"""CREATE TABLE agg_out ({AGG_COLUMNS}
) WITH ('connector' = 'filesystem', 'path' = '{o.agg_dir}', 'format' = 'json',
  {rolling});""", ""]
        inserts.append(f"INSERT INTO agg_out {agg_select};")
    if o.agg_topic:
        lines += [f"""CREATE TABLE agg_kafka ({AGG_COLUMNS}
) WITH ('connector' = 'kafka', 'topic' = '{o.agg_topic}', 'properties.bootstrap.servers' = '{o.bootstrap}',
  'format' = 'json', 'sink.delivery-guarantee' = 'at-least-once');""", ""]
        inserts.append(f"INSERT INTO agg_kafka {agg_select};")
    if not inserts:
        lines += [f"CREATE TABLE agg_null ({AGG_COLUMNS}\n) WITH ('connector' = 'blackhole');", ""]
        inserts.append(f"INSERT INTO agg_null {agg_select};")
    body = "\n".join(f"  {insert}" for insert in inserts)
    lines += [f"EXECUTE STATEMENT SET BEGIN\n{body}\nEND;", ""]
    return "\n".join(lines)
