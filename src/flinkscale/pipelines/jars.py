"""The jars flinkscale builds from its Java sources (``make java``) and ships as package data.

``flinkscale-shedding.jar``: the shedding library for SQL and Java jobs (``flinkscale_keep``, ``flinkscale_weight``,
``ShedFilter``); ``flinkscale-jobs.jar``: the Java DataStream reference job, with the library inside. Both are
compiled by the JDK's ``javac`` against the jars of the installed apache-flink wheel; a missing jar is an
installation step not done, and the error says which command does it.
"""

from __future__ import annotations

from pathlib import Path

from flinkscale.core.errors import RuntimeFailure

JAR_DIR = Path(__file__).resolve().parent.parent / "data" / "jars"
SHEDDING_JAR = "flinkscale-shedding.jar"
JOBS_JAR = "flinkscale-jobs.jar"
KEYED_CLICKS_JOB = "dev.flinkscale.jobs.KeyedClicksJob"


def built_jar(name: str, jar_dir: Path = JAR_DIR) -> Path:
    path = jar_dir / name
    if not path.is_file():
        raise RuntimeFailure(f"{name} is missing from {jar_dir}: build it with `make java` (javac against the jars "
                             "of the installed apache-flink wheel; see docs/sql-and-java.md)")
    return path


def shedding_jar(jar_dir: Path = JAR_DIR) -> Path:
    return built_jar(SHEDDING_JAR, jar_dir)


def jobs_jar(jar_dir: Path = JAR_DIR) -> Path:
    return built_jar(JOBS_JAR, jar_dir)
