"""Clicks per user in tumbling event-time windows, plain or salted: the skew remedy on a real cluster.

Run by Flink as ``flink run -py salted_counts.py -- --bootstrap B --topic T --out file:///... --salts N``.

    Kafka source (JSON clicks) -> parse (user, event id)
      --salts 0:  key by user ---------------------------------> window count per user -> file sink
      --salts N:  key by "<salt>|<user>" -> window count per (user, salt) -> key by user -> window sum -> file sink

The salt is ``crc32(event id) % N`` (``flinkscale.pipelines.salting.salt_for``, inlined below because this
file runs on the cluster's Python and imports nothing from flinkscale): deterministic, so a record replayed
after a failure lands in the same partial. Phase 2 receives one partial per (user, salt, window), so only
phase 1 carries the per-record work, spread over the subtasks even for a Zipf-hot user. The result is
exactly the unsalted one (a sum of counts), which the integration test checks against the generator's
manifest.

``--cost-us`` burns CPU per record in the keyed counting step (the per-record work of a real aggregation),
so that the keyed vertex's busy time, which skew analysis compares across subtasks, is measurable.
Every operator has a ``uid``; max parallelism is 120 (divisible by 1..6, 8, 10, 12, ...); Python runs in
thread mode. Output lines: ``user,window_start_ms,count``; exactly-once through checkpoints (files appear
when the checkpoint that commits them completes; stop with drain to flush the last windows).
"""

from __future__ import annotations

import argparse
import json
import time
import zlib
from typing import Any

from pyflink.common import Duration, Encoder, Types, WatermarkStrategy
from pyflink.common.serialization import SimpleStringSchema
from pyflink.common.time import Time
from pyflink.common.watermark_strategy import TimestampAssigner
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.datastream.connectors.file_system import FileSink, OutputFileConfig, RollingPolicy
from pyflink.datastream.connectors.kafka import KafkaOffsetsInitializer, KafkaSource
from pyflink.datastream.functions import AggregateFunction, ProcessWindowFunction
from pyflink.datastream.window import TumblingEventTimeWindows

SALT_SEPARATOR = "|"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="clicks per user per window, optionally salted")
    parser.add_argument("--name", default="salted-counts")
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", default="clicks")
    parser.add_argument("--group", default="flinkscale-salted-counts")
    parser.add_argument("--out", required=True, help="file:// URL of the exactly-once result directory")
    parser.add_argument("--salts", type=int, default=0, help="salts per key (0 = unsalted, one keyed window)")
    parser.add_argument("--window-seconds", type=int, default=10)
    parser.add_argument("--cost-us", type=float, default=0.0, help="CPU microseconds per record in the keyed count")
    parser.add_argument("--max-parallelism", type=int, default=120)
    parser.add_argument("--checkpoint-interval-ms", type=int, default=2000)
    parser.add_argument("--jars", default="", help="';'-separated file:// URLs of the Kafka connector jars")
    parser.add_argument("--vertex-parallelism", default="",
                        help="per-vertex parallelism, 'vertexId:p,...' (pipeline.jobvertex-parallelism-overrides)")
    return parser.parse_args(argv)


class EventTime(TimestampAssigner):  # type: ignore[misc]
    def extract_timestamp(self, value: Any, record_timestamp: int) -> int:
        return int(value[2])


def parse(line: str) -> tuple[str, int, int]:
    event = json.loads(line)
    return event["user_id"], int(event["event_id"]), int(event["event_time"])


class CountWithCost(AggregateFunction):  # type: ignore[misc]
    """Counts records (phase 1 or unsalted), burning ``cost_us`` per record as real per-record work would."""

    def __init__(self, cost_us: float) -> None:
        self.cost_ns = int(cost_us * 1000)

    def create_accumulator(self) -> int:
        return 0

    def add(self, value: Any, accumulator: int) -> int:
        deadline = time.perf_counter_ns() + self.cost_ns
        while time.perf_counter_ns() < deadline:
            pass
        return accumulator + 1

    def get_result(self, accumulator: int) -> int:
        return accumulator

    def merge(self, a: int, b: int) -> int:
        return a + b


class SumPartials(AggregateFunction):  # type: ignore[misc]
    """Phase 2: the sum of the partial counts of one user's salts."""

    def create_accumulator(self) -> int:
        return 0

    def add(self, value: Any, accumulator: int) -> int:
        return accumulator + int(value[1])

    def get_result(self, accumulator: int) -> int:
        return accumulator

    def merge(self, a: int, b: int) -> int:
        return a + b


class EmitWithWindow(ProcessWindowFunction):  # type: ignore[misc]
    """(key, count) with the window start; phase 1 strips the salt so phase 2 can key by user."""

    def __init__(self, strip_salt: bool) -> None:
        self.strip_salt = strip_salt

    def process(self, key: str, context: Any, elements: Any) -> Any:
        user = key.split(SALT_SEPARATOR, 1)[1] if self.strip_salt else key
        for count in elements:
            yield user, int(count), int(context.window().start)


def build(env: StreamExecutionEnvironment, args: argparse.Namespace) -> None:
    source = (KafkaSource.builder().set_bootstrap_servers(args.bootstrap).set_topics(args.topic)
              .set_group_id(args.group).set_starting_offsets(KafkaOffsetsInitializer.earliest())
              .set_value_only_deserializer(SimpleStringSchema()).build())
    # No idleness timeout: reading a backlog, a backpressured reader would be declared idle, the watermark
    # would pass its records and the windows would drop them as late (seen: counts halved). Stop with drain
    # to flush the last windows instead.
    watermarks = (WatermarkStrategy.for_bounded_out_of_orderness(Duration.of_seconds(2))
                  .with_timestamp_assigner(EventTime()))
    lines = env.from_source(source, WatermarkStrategy.no_watermarks(), "clicks").uid("clicks-source")
    events = (lines.map(parse, output_type=Types.TUPLE([Types.STRING(), Types.LONG(), Types.LONG()]))
              .uid("parse").name("parse")
              .assign_timestamps_and_watermarks(watermarks).uid("event-time").name("event time"))
    window = TumblingEventTimeWindows.of(Time.seconds(args.window_seconds))
    counted = Types.TUPLE([Types.STRING(), Types.LONG(), Types.LONG()])
    if args.salts <= 0:
        per_user = (events.key_by(lambda e: e[0], key_type=Types.STRING()).window(window)
                    .aggregate(CountWithCost(args.cost_us), EmitWithWindow(False), accumulator_type=Types.LONG(),
                               output_type=counted)
                    .uid("count-per-user").name("count per user"))
    else:
        salts = args.salts

        def salted(event: tuple[str, int, int]) -> str:
            return f"{zlib.crc32(str(event[1]).encode()) % salts}{SALT_SEPARATOR}{event[0]}"

        partials = (events.key_by(salted, key_type=Types.STRING()).window(window)
                    .aggregate(CountWithCost(args.cost_us), EmitWithWindow(True), accumulator_type=Types.LONG(),
                               output_type=counted)
                    .uid("count-per-user-salt").name("phase 1: count per (user, salt)"))
        # Phase 1 results carry their window's max timestamp, so phase 2 puts them in the same window.
        per_user = (partials.key_by(lambda p: p[0], key_type=Types.STRING()).window(window)
                    .aggregate(SumPartials(), EmitWithWindow(False), accumulator_type=Types.LONG(),
                               output_type=counted)
                    .uid("merge-per-user").name("phase 2: merge per user"))
    sink = (FileSink.for_row_format(args.out, Encoder.simple_string_encoder())
            .with_output_file_config(OutputFileConfig.builder().with_part_prefix("counts").build())
            .with_rolling_policy(RollingPolicy.on_checkpoint_rolling_policy()).build())
    (per_user.map(lambda r: f"{r[0]},{r[2]},{r[1]}", output_type=Types.STRING()).uid("format").name("format")
     .sink_to(sink).uid("counts-sink").name("counts sink"))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    env = StreamExecutionEnvironment.get_execution_environment()
    env.set_max_parallelism(args.max_parallelism)
    env.enable_checkpointing(args.checkpoint_interval_ms)
    config = env.get_config()
    config.set_auto_watermark_interval(200)
    from pyflink.common import Configuration

    settings = Configuration()
    settings.set_string("python.execution-mode", "thread")
    settings.set_string("pipeline.name", args.name)
    if args.jars:
        settings.set_string("pipeline.jars", args.jars)
    if args.vertex_parallelism:
        # Set in the job's own configuration: a `flink run -D` dynamic property does not reach a Python job.
        settings.set_string("pipeline.jobvertex-parallelism-overrides", args.vertex_parallelism)
    env.configure(settings)
    build(env, args)
    env.execute_async(args.name)


if __name__ == "__main__":
    main()
