"""Turning clickstream options into a ``flink run -py`` submission of the reference pipeline."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from flinkscale.flink.cluster import LocalCluster
from flinkscale.flink.home import flink_python_jar
from flinkscale.flink.submit import Submission, submit_python_job
from flinkscale.kafka.connector import kafka_connector_jars

CLICKSTREAM_SCRIPT = Path(__file__).with_name("clickstream.py")


@dataclass(frozen=True)
class ClickstreamOptions:
    bootstrap: str
    topic: str = "clicks"
    group: str = "flinkscale-clickstream"
    name: str = "clickstream"
    events_dir: str = ""
    agg_dir: str = ""
    agg_topic: str = ""
    cost_us: float = 50.0
    window_seconds: int = 10
    max_parallelism: int = 120
    state_ttl: str = "1 h"
    checkpoint_interval: str = "5 s"
    shed_keep: float = 1.0
    kafka_jars: str | None = None

    def argv(self, jars: list[Path]) -> list[str]:
        args = ["--name", self.name, "--bootstrap", self.bootstrap, "--topic", self.topic, "--group", self.group,
                "--cost-us", str(self.cost_us), "--window-seconds", str(self.window_seconds),
                "--max-parallelism", str(self.max_parallelism), "--state-ttl", self.state_ttl,
                "--checkpoint-interval", self.checkpoint_interval, "--shed-keep", str(self.shed_keep),
                "--jars", ";".join(f"file://{j}" for j in jars)]
        for flag, value in (("--events-dir", self.events_dir), ("--agg-dir", self.agg_dir),
                            ("--agg-topic", self.agg_topic)):
            if value:
                args += [flag, value]
        return args


def submit_clickstream(cluster: LocalCluster, options: ClickstreamOptions, *, parallelism: int = 1,
                       savepoint: str | None = None, rest_url: str | None = None,
                       vertex_parallelism: Mapping[str, int] | None = None) -> Submission:
    # The embedded cluster loads flink-python from its own lib/ (see LocalCluster._link_lib); a cluster that
    # does not gets it through pipeline.jars, which replaces the jar `flink run -py` would add by itself.
    jars = kafka_connector_jars(cluster.state_dir, options.kafka_jars)
    if not (cluster.lib_dir / flink_python_jar().name).exists():
        jars.append(flink_python_jar())
    argv = options.argv(jars)
    if vertex_parallelism:
        argv += ["--vertex-parallelism", ",".join(f"{vid}:{p}" for vid, p in sorted(vertex_parallelism.items()))]
    return submit_python_job(cluster, CLICKSTREAM_SCRIPT, argv, parallelism=parallelism, savepoint=savepoint,
                             rest_url=rest_url, vertex_parallelism=vertex_parallelism)
