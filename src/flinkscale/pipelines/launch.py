"""Turning options into submissions of the reference pipelines: PyFlink (``flink run -py``), SQL (Table API), Java."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from flinkscale.core.manifest import format_overrides
from flinkscale.flink.cluster import LocalCluster
from flinkscale.flink.home import flink_python_jar
from flinkscale.flink.submit import Submission, submit_jar_job, submit_python_job, submit_sql_script
from flinkscale.kafka.connector import kafka_connector_jars
from flinkscale.pipelines.clickstream_sql import ClickstreamSettings, SqlClickstreamOptions, render_sql
from flinkscale.pipelines.jars import KEYED_CLICKS_JOB, jobs_jar, shedding_jar

CLICKSTREAM_SCRIPT = Path(__file__).with_name("clickstream.py")


@dataclass(frozen=True)
class ClickstreamOptions(ClickstreamSettings):
    """The PyFlink pipeline ``pipelines/clickstream.py``."""

    cost_us: float = 50.0

    def argv(self, jars: list[Path]) -> list[str]:
        args = ["--name", self.name, "--bootstrap", self.bootstrap, "--topic", self.topic, "--group", self.group,
                "--cost-us", str(self.cost_us), "--window-seconds", str(self.window_seconds),
                "--max-parallelism", str(self.max_parallelism), "--state-ttl", self.state_ttl,
                "--checkpoint-interval", self.checkpoint_interval, "--shed-keep", str(self.shed_keep),
                "--agg-phase-strategy", self.agg_phase_strategy,
                "--jars", ";".join(f"file://{j}" for j in jars)]
        for flag, value in (("--events-dir", self.events_dir), ("--agg-dir", self.agg_dir),
                            ("--agg-topic", self.agg_topic), ("--shed-control-topic", self.shed_control_topic)):
            if value:
                args += [flag, value]
        if self.shed_mode != "random":
            args += ["--shed-mode", self.shed_mode]
        if self.shed_confidence != 0.95:
            args += ["--shed-confidence", str(self.shed_confidence)]
        if self.source_idle_timeout != "0 s":
            args += ["--source-idle-timeout", self.source_idle_timeout]
        return args


def submit_clickstream(cluster: LocalCluster, options: ClickstreamOptions, *, parallelism: int = 1,
                       savepoint: str | None = None, rest_url: str | None = None,
                       vertex_parallelism: Mapping[str, int] | None = None) -> Submission:
    argv = _python_job_argv(cluster, options.argv, options.kafka_jars, vertex_parallelism)
    return submit_python_job(cluster, CLICKSTREAM_SCRIPT, argv, parallelism=parallelism, savepoint=savepoint,
                             rest_url=rest_url, vertex_parallelism=vertex_parallelism)


def _python_job_argv(cluster: LocalCluster, argv: Callable[[list[Path]], list[str]], kafka_jars: str | None,
                     vertex_parallelism: Mapping[str, int] | None) -> list[str]:
    """A PyFlink pipeline's arguments: its jars (Kafka connector, flink-python when the cluster lacks it) and
    per-vertex parallelism."""
    # The embedded cluster loads flink-python from its own lib/ (see LocalCluster._link_lib); a cluster that
    # does not gets it through pipeline.jars, which replaces the jar `flink run -py` would add by itself.
    jars = kafka_connector_jars(cluster.state_dir, kafka_jars)
    if not (cluster.lib_dir / flink_python_jar().name).exists():
        jars.append(flink_python_jar())
    args = argv(jars)
    if vertex_parallelism:
        args += ["--vertex-parallelism", format_overrides(vertex_parallelism)]
    return args


SALTED_COUNTS_SCRIPT = Path(__file__).with_name("salted_counts.py")


@dataclass(frozen=True)
class _KeyedClicksOptions:
    """What the two keyed reference jobs (salted counts in PyFlink, keyed clicks in Java) both take, under the
    same flags: the clicks topic and consumer group, the ``file://`` output, a cost per record, max parallelism.
    Each job names its own default group and job name."""

    bootstrap: str
    topic: str
    out: str
    group: str
    name: str
    cost_us: float = 0.0
    max_parallelism: int = 120
    kafka_jars: str | None = None

    def _shared_argv(self) -> list[str]:
        return ["--bootstrap", self.bootstrap, "--topic", self.topic, "--out", self.out, "--group", self.group,
                "--name", self.name, "--cost-us", str(self.cost_us), "--max-parallelism", str(self.max_parallelism)]


@dataclass(frozen=True)
class SaltedCountsOptions(_KeyedClicksOptions):
    """Options of ``pipelines/salted_counts.py``: clicks per user per window, plain (salts=0) or salted."""

    group: str = "flinkscale-salted-counts"
    name: str = "salted-counts"
    salts: int = 0
    window_seconds: int = 10

    def argv(self, jars: list[Path]) -> list[str]:
        return [*self._shared_argv(), "--salts", str(self.salts), "--window-seconds", str(self.window_seconds),
                "--jars", ";".join(f"file://{j}" for j in jars)]


def submit_salted_counts(cluster: LocalCluster, options: SaltedCountsOptions, *, parallelism: int = 1,
                         rest_url: str | None = None,
                         vertex_parallelism: Mapping[str, int] | None = None) -> Submission:
    argv = _python_job_argv(cluster, options.argv, options.kafka_jars, vertex_parallelism)
    return submit_python_job(cluster, SALTED_COUNTS_SCRIPT, argv, parallelism=parallelism,
                             rest_url=rest_url, vertex_parallelism=vertex_parallelism)


def write_sql_script(directory: Path, name: str, text: str) -> Path:
    """Write a rendered script where the submitted job can be traced back to it (one file per content)."""
    import hashlib

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:12]}.sql"
    path.write_text(text)
    return path


def submit_clickstream_sql(cluster: LocalCluster, options: SqlClickstreamOptions, *, parallelism: int = 1,
                           savepoint: str | None = None, rest_url: str | None = None,
                           vertex_parallelism: Mapping[str, int] | None = None) -> Submission:
    """Render the reference SQL pipeline and submit it through the Table API (no Python at run time)."""
    jars = kafka_connector_jars(cluster.state_dir, options.kafka_jars)
    if options.shedding:
        jars.append(shedding_jar())
    script = write_sql_script(cluster.state_dir / "sql", options.name, render_sql(options))
    return submit_sql_script(cluster, script, jars, parallelism=parallelism, savepoint=savepoint, rest_url=rest_url,
                             vertex_parallelism=vertex_parallelism)


# What the Java job's per-event cost is: spin, CPU; sleep, waiting (a remote lookup), busy time that takes no CPU
# from other tasks.
CostKind = Literal["spin", "sleep"]
COST_KINDS: tuple[CostKind, ...] = get_args(CostKind)


@dataclass(frozen=True)
class KeyedClicksJavaOptions(_KeyedClicksOptions):
    """Arguments of the Java DataStream job ``dev.flinkscale.jobs.KeyedClicksJob`` (java/jobs)."""

    group: str = "flinkscale-keyed-java"
    name: str = "keyed-clicks-java"
    cost_kind: CostKind = "spin"
    checkpoint_interval_ms: int = 5000
    shed_control_topic: str = ""
    shed_keep: float = 1.0

    def argv(self) -> list[str]:
        args = [*self._shared_argv(), "--cost-kind", self.cost_kind,
                "--checkpoint-interval-ms", str(self.checkpoint_interval_ms), "--shed-keep", str(self.shed_keep)]
        if self.shed_control_topic:
            args += ["--shed-control-topic", self.shed_control_topic]
        return args


def submit_keyed_clicks_java(cluster: LocalCluster, options: KeyedClicksJavaOptions, *, parallelism: int = 1,
                             savepoint: str | None = None, rest_url: str | None = None) -> Submission:
    jars = kafka_connector_jars(cluster.state_dir, options.kafka_jars)
    return submit_jar_job(cluster, jobs_jar(), KEYED_CLICKS_JOB, options.argv(), classpath=jars,
                          parallelism=parallelism, savepoint=savepoint, rest_url=rest_url)
