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
- The window aggregate runs in ONE_PHASE by default, so every event crosses the keyed edge and a hot user loads
  its key group as it would in a plain keyed job: skew shows where users expect it. TWO_PHASE (a local
  pre-aggregate chained to the source) is the remedy `flinkscale skew` recommends for SQL jobs.
- Load shedding (issue 7) is a Python UDF placed right after the source, before the costly enrichment (shedding
  after it would save nothing): ``shed_weight(event_id, user_id)`` returns the record's Horvitz-Thompson weight,
  0 for a dropped record (filtered out) else 10000 / round(p x 10000), the exact inclusion probability of the
  hash test ``crc32(id) % 10000 < round(p x 10000)`` (int() would truncate and bias every estimate up). The
  keep decision hashes the event id (``--shed-mode random``) or the user id (``key_hash``: whole users kept,
  so each kept user's counts are exact); a hash, not a random draw, so a record replayed after a failure gets
  the same decision and the exactly-once sinks stay consistent. p starts at ``--shed-keep`` and then follows
  the Kafka control topic ``--shed-control-topic`` (JSON ``{"keep_probability": p, "seq": n}``, the newest
  seq wins): each UDF instance assigns itself to partition 0 from the last message (``assign``, not
  ``subscribe``: no consumer group, which the embedded broker does not support, and none is needed because
  every subtask must read every message) and polls it about once a second. The topic outlives the job, so a
  rescaled or restarted job reads the value in force when it opens. The windows then emit, per user, the
  estimates ``SUM(w)`` and ``SUM(size_bytes x w)``, their Poisson-sampling variance estimates
  ``SUM(w(w-1))`` and ``SUM(w(w-1) size^2)`` (per-window totals add the per-user variances) and the
  relative errors ``z sqrt(var) / estimate`` at ``--shed-confidence``; in key_hash mode the variance is
  that of a whole user, ``SUM(w) (SUM(w) - COUNT(*))`` = w(w-1)n^2. Flink metrics are not available from a
  SQL Python UDF in thread mode (its metric group is the Beam-harness one, which only process mode reports),
  so the shed fraction and the errors are in the output rows (``sampled``, ``keep_probability``, ``*_error``).
  Without shedding the UDF is not in the job at all, so its graph and cost are unchanged.

This file must not import flinkscale at module level beyond the standard library and pyflink: Flink ships it to
the cluster and runs it with the cluster's Python (the same virtualenv here, but not necessarily elsewhere).
"""

from __future__ import annotations

import argparse
import json
import time
import zlib
from statistics import NormalDist
from typing import Any

from pyflink.table import DataTypes, EnvironmentSettings, TableEnvironment
from pyflink.table.udf import ScalarFunction, udf


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
    parser.add_argument("--shed-keep", type=float, default=1.0,
                        help="initial keep probability for load shedding (1 = keep all)")
    parser.add_argument("--shed-control-topic", default="",
                        help="Kafka topic whose latest JSON {keep_probability, seq} sets p while running")
    parser.add_argument("--shed-mode", default="random", choices=["random", "key_hash"],
                        help="random: keep events by a hash of their id; key_hash: keep whole users")
    parser.add_argument("--shed-confidence", type=float, default=0.95,
                        help="confidence of the relative errors in the window rows")
    parser.add_argument("--agg-phase-strategy", default="ONE_PHASE", choices=["ONE_PHASE", "TWO_PHASE", "AUTO"],
                        help="table.optimizer.agg-phase-strategy for the window aggregate")
    parser.add_argument("--vertex-parallelism", default="",
                        help="per-vertex parallelism, 'vertexId:p,...' (pipeline.jobvertex-parallelism-overrides)")
    parser.add_argument("--source-idle-timeout", default="0 s",
                        help="table.exec.source.idle-timeout; '0 s' (default) = off, so a partition that falls behind "
                             "is never declared idle and its records are never dropped as late. Set it only for "
                             "topics with partitions that receive no data at all (they would stall the windows)")
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
        # Under a backlog a split can get no records for longer than this (one reader, several partitions,
        # backpressure): it is declared idle, the watermark passes its records and the windows drop them as
        # late (measured: 25-75% of some windows lost at 2x overload). "0 s" disables it (then every partition
        # must carry data for windows to close; a drain at the end flushes them).
        "table.exec.source.idle-timeout": args.source_idle_timeout,
        "table.optimizer.agg-phase-strategy": args.agg_phase_strategy,
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


HASH_BUCKETS = 10_000
# The window rows' columns, named (not SELECT *): a sink's schema must not follow upstream changes silently.
AGG_SELECT = ("SELECT user_id, window_start, window_end, clicks, total_bytes, sampled, keep_probability, "
              "clicks_estimate, total_bytes_estimate, clicks_variance, total_bytes_variance, clicks_relative_error, "
              "total_bytes_relative_error FROM per_user")
CONTROL_POLL_SECONDS = 1.0


def keep_threshold(keep_probability: float) -> int:
    """Buckets kept out of 10000: round(p x 10000), at least 1 (no p drops everything)."""
    return max(1, min(HASH_BUCKETS, round(keep_probability * HASH_BUCKETS)))


class ShedWeight(ScalarFunction):  # type: ignore[misc]
    """``shed_weight(event_id, user_id)`` -> 0.0 (dropped) or the weight 10000 / threshold."""

    def __init__(self, keep_probability: float, mode: str, bootstrap: str, control_topic: str) -> None:
        self.initial_keep_probability = keep_probability
        self.mode = mode
        self.bootstrap = bootstrap
        self.control_topic = control_topic

    def open(self, function_context: Any) -> None:
        # Per-instance state: p is owned by the control topic, not by Flink state, so nothing is lost on a
        # rescale (every new instance reads the topic's last message here).
        self.threshold = keep_threshold(self.initial_keep_probability)  # flinkscale: ignore[FSL001]
        self.seq = -1  # flinkscale: ignore[FSL001]
        self.next_poll = 0.0  # flinkscale: ignore[FSL001]
        self.consumer: Any = None  # flinkscale: ignore[FSL001]
        if self.control_topic:
            self.consumer = self._assign_last()  # flinkscale: ignore[FSL001]
            self._poll(wait_seconds=3.0)

    def _assign_last(self) -> Any:
        from confluent_kafka import Consumer, TopicPartition

        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "flinkscale-shed-control",
                             "enable.auto.commit": False, "log.connection.close": False})
        low, high = consumer.get_watermark_offsets(TopicPartition(self.control_topic, 0), timeout=10)
        consumer.assign([TopicPartition(self.control_topic, 0, max(low, high - 1))])
        self.pending_initial = high > low  # flinkscale: ignore[FSL001]
        return consumer

    def _poll(self, wait_seconds: float = 0.0) -> None:
        deadline = time.monotonic() + wait_seconds
        while True:
            for message in self.consumer.consume(num_messages=100, timeout=0 if not wait_seconds else 0.2):
                if message.error() is None:
                    self._apply(message.value())
            # At open, wait (briefly) for the message in force, so the first records use the right p.
            if not (self.pending_initial and self.seq < 0 and time.monotonic() < deadline):
                break
        self.next_poll = time.monotonic() + CONTROL_POLL_SECONDS  # flinkscale: ignore[FSL001]

    def _apply(self, raw: bytes | None) -> None:
        try:
            data = json.loads(raw or b"")
            p, seq = float(data["keep_probability"]), int(data["seq"])
        except (ValueError, KeyError, TypeError):
            return  # a bad control message must never fail the job; the last good p stays
        if seq > self.seq and 0.0 < p <= 1.0:
            self.seq = seq  # flinkscale: ignore[FSL001]
            self.threshold = keep_threshold(p)  # flinkscale: ignore[FSL001]

    def is_deterministic(self) -> bool:
        # The answer follows p: the planner must neither duplicate nor constant-fold the call.
        return False

    def eval(self, event_id: int, user_id: str) -> float:
        if self.consumer is not None and time.monotonic() >= self.next_poll:
            self._poll()
        threshold = self.threshold
        if threshold >= HASH_BUCKETS:
            return 1.0
        # A stable hash (not Python's salted hash()) so every subtask and every replay agrees.
        key = str(user_id) if self.mode == "key_hash" else str(event_id)
        if zlib.crc32(key.encode()) % HASH_BUCKETS >= threshold:
            return 0.0
        return HASH_BUCKETS / threshold

    def close(self) -> None:
        if self.consumer is not None:
            self.consumer.close()


def make_shed_weight(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    return udf(ShedWeight(args.shed_keep, args.shed_mode, args.bootstrap, args.shed_control_topic),
               result_type=DataTypes.DOUBLE())


def shedding_enabled(args: argparse.Namespace) -> bool:
    return args.shed_keep < 1.0 or bool(args.shed_control_topic)


def window_columns(args: argparse.Namespace) -> str:
    """The per-user window aggregates: HT estimates, variance estimates and relative errors at the confidence."""
    if not shedding_enabled(args):
        # Exact: weight 1 everywhere, zero variance; same columns so readers need no second schema.
        return """COUNT(*) AS clicks, CAST(SUM(size_bytes) AS BIGINT) AS total_bytes, COUNT(*) AS sampled,
               CAST(1.0 AS DOUBLE) AS keep_probability,
               CAST(COUNT(*) AS DOUBLE) AS clicks_estimate, CAST(SUM(size_bytes) AS DOUBLE) AS total_bytes_estimate,
               CAST(0.0 AS DOUBLE) AS clicks_variance, CAST(0.0 AS DOUBLE) AS total_bytes_variance,
               CAST(0.0 AS DOUBLE) AS clicks_relative_error, CAST(0.0 AS DOUBLE) AS total_bytes_relative_error"""
    z = NormalDist().inv_cdf((1.0 + args.shed_confidence) / 2.0)
    size = "CAST(size_bytes AS DOUBLE)"
    if args.shed_mode == "key_hash":
        # Whole users are the sampling units: Var = w(w-1) T^2 with T the user's true total. With n kept
        # records and w = SUM(w)/n: counts give SUM(w) (SUM(w) - n), byte sums SUM(w y)^2 (SUM(w) - n) / SUM(w).
        count_var = "SUM(weight) * (SUM(weight) - COUNT(*))"
        bytes_var = (f"SUM({size} * weight) * SUM({size} * weight) * (SUM(weight) - COUNT(*)) "
                     f"/ SUM(weight)")
    else:
        count_var = "SUM(weight * (weight - 1))"
        bytes_var = f"SUM(weight * (weight - 1) * {size} * {size})"
    return f"""CAST(ROUND(SUM(weight)) AS BIGINT) AS clicks, CAST(ROUND(SUM({size} * weight)) AS BIGINT) AS total_bytes,
               COUNT(*) AS sampled, CAST(COUNT(*) AS DOUBLE) / SUM(weight) AS keep_probability,
               SUM(weight) AS clicks_estimate, SUM({size} * weight) AS total_bytes_estimate,
               {count_var} AS clicks_variance, {bytes_var} AS total_bytes_variance,
               {z!r} * SQRT({count_var}) / SUM(weight) AS clicks_relative_error,
               {z!r} * SQRT({bytes_var}) / SUM({size} * weight) AS total_bytes_relative_error"""


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
    source = "clicks"
    if shedding_enabled(args):
        # Shed before the enrichment: dropped events must not pay its cost.
        t_env.create_temporary_function("shed_weight", make_shed_weight(args))
        t_env.execute_sql("""
            CREATE TEMPORARY VIEW kept_clicks AS
            SELECT * FROM (SELECT *, shed_weight(event_id, user_id) AS weight FROM clicks) WHERE weight > 0""")
        source = "kept_clicks"
    weight = ", weight" if shedding_enabled(args) else ""
    t_env.execute_sql(f"""
        CREATE TEMPORARY VIEW enriched AS
        SELECT event_id, user_id, url, size_bytes, event_time, ts, enrich(url) AS category{weight}
        FROM {source}""")
    t_env.execute_sql(f"""
        CREATE TEMPORARY VIEW per_user AS
        SELECT user_id, window_start, window_end, {window_columns(args)}
        FROM TABLE(TUMBLE(TABLE enriched, DESCRIPTOR(ts), INTERVAL '{args.window_seconds}' SECOND))
        GROUP BY user_id, window_start, window_end""")
    statements = t_env.create_statement_set()
    agg_columns = """user_id STRING, window_start TIMESTAMP(3), window_end TIMESTAMP(3), clicks BIGINT,
                     total_bytes BIGINT, sampled BIGINT, keep_probability DOUBLE, clicks_estimate DOUBLE,
                     total_bytes_estimate DOUBLE, clicks_variance DOUBLE, total_bytes_variance DOUBLE,
                     clicks_relative_error DOUBLE, total_bytes_relative_error DOUBLE"""
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
        statements.add_insert_sql(f"INSERT INTO agg_out {AGG_SELECT}")
    if args.agg_topic:
        t_env.execute_sql(f"""CREATE TABLE agg_kafka ({agg_columns}) WITH (
            'connector' = 'kafka', 'topic' = '{args.agg_topic}', 'properties.bootstrap.servers' = '{args.bootstrap}',
            'format' = 'json', 'sink.delivery-guarantee' = 'at-least-once')""")
        statements.add_insert_sql(f"INSERT INTO agg_kafka {AGG_SELECT}")
    if not (args.events_dir or args.agg_dir or args.agg_topic):
        t_env.execute_sql(f"CREATE TABLE agg_null ({agg_columns}) WITH ('connector' = 'blackhole')")
        statements.add_insert_sql(f"INSERT INTO agg_null {AGG_SELECT}")
    statements.execute()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    configure(t_env, args)
    build(t_env, args)


if __name__ == "__main__":
    main()
