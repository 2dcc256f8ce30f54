"""The reference pipeline: a clickstream job, run by Flink as ``flink run -py clickstream.py -- ARGS``.

    Kafka source (JSON clicks) -> enrich (Python UDF, thread mode, a configurable CPU cost per event)
        -> filesystem sink of every enriched event            (exactly-once through checkpoints)
        -> keyed per-user tumbling window (RocksDB state, TTL)
            -> Kafka sink of per-user counts                  (at-least-once on the embedded broker)
            -> filesystem sink of the same counts             (exactly-once; what tests compare against)

Design choices, and why:
- SQL/Table API for source, windows and sinks keeps the per-record work in the JVM; only the enrichment is
  Python, as a scalar UDF in ``thread`` execution mode (pemja): about 3x faster than process mode and free of
  the process-mode TaskManager crash on teardown (flink-runtime.md, gotcha 1). In thread mode every Python
  subtask of one TaskManager shares that TaskManager's interpreter and GIL, so scaling the enrichment needs
  one slot per TaskManager (measured: two subtasks in one TaskManager ran at 0.55x of one).
- The CPU cost per event (``--cost-us``, a busy loop) makes scaling matter at modest rates on small machines.
- Event ids flow to the filesystem sink unchanged, which is what lets a test prove that every produced event
  arrived exactly once across rescales and savepoint restarts.
- ``pipeline.max-parallelism`` is 120 by default (many divisors: 1..6, 8, 10, 12, 15, 20, 24, 30, 40, 60), so
  key groups spread evenly at most parallelisms. Operator ids of SQL jobs are generated from the plan and stay
  stable when only parallelism changes, which is what savepoint restarts need.
- The embedded broker does not isolate transactions, so the Kafka sink is at-least-once; exactly-once is proven
  on the filesystem sinks (two-phase commit on checkpoint).
- Load shedding (issue 7) plugs in as a filter before the window: ``--shed-keep`` keeps each event with that
  probability by a stable hash of its id and the window emits Horvitz-Thompson estimates (count / p).

This file must not import flinkscale at module level beyond the standard library and pyflink: Flink ships it to
the cluster and runs it with the cluster's Python (the same virtualenv here, but not necessarily elsewhere).
"""

from __future__ import annotations

import argparse
import time
import zlib

from pyflink.table import DataTypes, EnvironmentSettings, TableEnvironment
from pyflink.table.udf import udf


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="flinkscale reference clickstream pipeline")
    parser.add_argument("--name", default="clickstream")
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    parser.add_argument("--topic", default="clicks")
    parser.add_argument("--group", default="flinkscale-clickstream")
    parser.add_argument("--events-dir", default="", help="filesystem sink for enriched events (file:// URL)")
    parser.add_argument("--agg-dir", default="", help="filesystem sink for per-user window counts (file:// URL)")
    parser.add_argument("--agg-topic", default="", help="Kafka topic for per-user window counts")
    parser.add_argument("--cost-us", type=float, default=50.0, help="CPU microseconds burnt per event in enrich")
    parser.add_argument("--window-seconds", type=int, default=10)
    parser.add_argument("--max-parallelism", type=int, default=120)
    parser.add_argument("--state-ttl", default="1 h")
    parser.add_argument("--checkpoint-interval", default="5 s")
    parser.add_argument("--jars", default="", help="';'-separated file:// URLs of the Kafka connector jars")
    parser.add_argument("--shed-keep", type=float, default=1.0, help="keep probability for load shedding (1 = off)")
    parser.add_argument("--vertex-parallelism", default="",
                        help="per-vertex parallelism, 'vertexId:p,...' (pipeline.jobvertex-parallelism-overrides)")
    parser.add_argument("--startup", default="earliest-offset", choices=["earliest-offset", "group-offsets"])
    return parser.parse_args(argv)


def configure(t_env: TableEnvironment, args: argparse.Namespace) -> None:
    config = t_env.get_config()
    for key, value in {
        "pipeline.name": args.name,
        "pipeline.max-parallelism": str(args.max_parallelism),
        "python.execution-mode": "thread",
        "execution.checkpointing.interval": args.checkpoint_interval,
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "state.backend.type": "rocksdb",
        "execution.checkpointing.incremental": "true",
        "table.exec.state.ttl": args.state_ttl,
        "table.exec.source.idle-timeout": "5 s",
    }.items():
        config.set(key, value)
    if args.jars:
        config.set("pipeline.jars", args.jars)
    if args.vertex_parallelism:
        # Set in the job's own configuration: a `flink run -D` dynamic property does not reach a Python job.
        config.set("pipeline.jobvertex-parallelism-overrides", args.vertex_parallelism)


def make_enrich(cost_us: float):  # type: ignore[no-untyped-def]
    cost_ns = int(cost_us * 1000)

    @udf(result_type=DataTypes.STRING())  # type: ignore[untyped-decorator]
    def enrich(url: str) -> str:
        # A busy loop stands in for real per-event work (parsing, lookups, scoring).
        deadline = time.perf_counter_ns() + cost_ns
        while time.perf_counter_ns() < deadline:
            pass
        path = (url or "/").split("?", 1)[0]
        return path.strip("/").split("/", 1)[0] or "home"

    return enrich


def make_keep(keep_probability: float):  # type: ignore[no-untyped-def]
    threshold = int(keep_probability * 10_000)

    @udf(result_type=DataTypes.BOOLEAN())  # type: ignore[untyped-decorator]
    def keep(event_id: int) -> bool:
        # A stable hash (not Python's salted hash()) so every subtask and every restart agrees.
        return zlib.crc32(str(event_id).encode()) % 10_000 < threshold

    return keep


def build(t_env: TableEnvironment, args: argparse.Namespace) -> None:
    t_env.create_temporary_function("enrich", make_enrich(args.cost_us))
    t_env.execute_sql(f"""
        CREATE TABLE clicks (
            event_id BIGINT, user_id STRING, url STRING, size_bytes INT, event_time BIGINT,
            ts AS TO_TIMESTAMP_LTZ(event_time, 3),
            WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
        ) WITH (
            'connector' = 'kafka', 'topic' = '{args.topic}',
            'properties.bootstrap.servers' = '{args.bootstrap}', 'properties.group.id' = '{args.group}',
            'scan.startup.mode' = '{args.startup}', 'format' = 'json', 'json.ignore-parse-errors' = 'true'
        )""")
    t_env.execute_sql("""
        CREATE TEMPORARY VIEW enriched AS
        SELECT event_id, user_id, url, size_bytes, event_time, ts, enrich(url) AS category FROM clicks""")
    shed = args.shed_keep < 1.0
    if shed:
        t_env.create_temporary_function("keep_event", make_keep(args.shed_keep))
    window_input = "(SELECT * FROM enriched WHERE keep_event(event_id))" if shed else "enriched"
    weight = 1.0 / args.shed_keep
    t_env.execute_sql(f"""
        CREATE TEMPORARY VIEW per_user AS
        SELECT user_id, window_start, window_end,
               CAST(ROUND(COUNT(*) * {weight}) AS BIGINT) AS clicks,
               CAST(ROUND(SUM(size_bytes) * {weight}) AS BIGINT) AS total_bytes,
               COUNT(*) AS sampled, CAST({args.shed_keep} AS DOUBLE) AS keep_probability
        FROM TABLE(TUMBLE(TABLE {window_input}, DESCRIPTOR(ts), INTERVAL '{args.window_seconds}' SECOND))
        GROUP BY user_id, window_start, window_end""")
    statements = t_env.create_statement_set()
    agg_columns = """user_id STRING, window_start TIMESTAMP(3), window_end TIMESTAMP(3), clicks BIGINT,
                     total_bytes BIGINT, sampled BIGINT, keep_probability DOUBLE"""
    rolling = """'sink.rolling-policy.rollover-interval' = '2 s', 'sink.rolling-policy.check-interval' = '1 s',
                 'sink.rolling-policy.inactivity-interval' = '2 s'"""
    if args.events_dir:
        t_env.execute_sql(f"""
            CREATE TABLE events_out (
                event_id BIGINT, user_id STRING, category STRING, size_bytes INT, event_time BIGINT)
            WITH ('connector' = 'filesystem', 'path' = '{args.events_dir}', 'format' = 'json', {rolling})""")
        statements.add_insert_sql(
            "INSERT INTO events_out SELECT event_id, user_id, category, size_bytes, event_time FROM enriched")
    if args.agg_dir:
        t_env.execute_sql(f"""CREATE TABLE agg_out ({agg_columns})
            WITH ('connector' = 'filesystem', 'path' = '{args.agg_dir}', 'format' = 'json', {rolling})""")
        statements.add_insert_sql("INSERT INTO agg_out SELECT * FROM per_user")
    if args.agg_topic:
        t_env.execute_sql(f"""CREATE TABLE agg_kafka ({agg_columns}) WITH (
            'connector' = 'kafka', 'topic' = '{args.agg_topic}', 'properties.bootstrap.servers' = '{args.bootstrap}',
            'format' = 'json', 'sink.delivery-guarantee' = 'at-least-once')""")
        statements.add_insert_sql("INSERT INTO agg_kafka SELECT * FROM per_user")
    if not (args.events_dir or args.agg_dir or args.agg_topic):
        t_env.execute_sql(f"CREATE TABLE agg_null ({agg_columns}) WITH ('connector' = 'blackhole')")
        statements.add_insert_sql("INSERT INTO agg_null SELECT * FROM per_user")
    statements.execute()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    configure(t_env, args)
    build(t_env, args)


if __name__ == "__main__":
    main()
