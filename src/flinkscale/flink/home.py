"""Where Flink and Java live: FLINK_HOME is the installed ``pyflink`` package, Java is 11, 17 or 21.

The ``apache-flink`` wheel ships a complete Flink distribution inside the ``pyflink`` package (bin/, conf/,
lib/, opt/, plugins/), so no separate download is needed. Several JDKs may be installed; Flink 2.3 runs on
Java 11, 17 and 21, so a valid ``JAVA_HOME`` wins, then a Java 17 under /usr/lib/jvm, then ``java`` on PATH.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from flinkscale.core.errors import RuntimeFailure

SUPPORTED_JAVA = ("17", "21", "11")
JVM_ROOT = Path("/usr/lib/jvm")


def flink_home() -> Path:
    try:
        import pyflink
    except ImportError:
        raise RuntimeFailure("the apache-flink package is not installed (pip install apache-flink==2.3.0)") from None
    home = Path(pyflink.__file__).parent
    if not (home / "bin" / "jobmanager.sh").exists() or not list((home / "lib").glob("flink-dist*.jar")):
        raise RuntimeFailure(f"{home} holds no Flink distribution (bin/jobmanager.sh, lib/flink-dist*.jar)")
    return home


def _is_java_home(path: Path) -> bool:
    return (path / "bin" / "java").is_file() and os.access(path / "bin" / "java", os.X_OK)


def java_home() -> Path:
    """A Java home Flink 2.3 can run on; a clear error when there is none."""
    env = os.environ.get("JAVA_HOME")
    if env and _is_java_home(Path(env)):
        return Path(env)
    jvm = JVM_ROOT
    if jvm.is_dir():
        for version in SUPPORTED_JAVA:
            for candidate in sorted(jvm.glob(f"*{version}*")):
                if _is_java_home(candidate):
                    return candidate
    java = shutil.which("java")
    if java:
        return Path(java).resolve().parent.parent
    raise RuntimeFailure("no Java found: install a JDK 11, 17 or 21 (e.g. apt-get install openjdk-17-jdk-headless) "
                         "or set JAVA_HOME")


def flink_python_jar() -> Path:
    """``opt/flink-python-*.jar``: the Python operators, needed on ``pipeline.jars`` by jobs with Python UDFs."""
    jars = sorted((flink_home() / "opt").glob("flink-python*.jar"))
    if not jars:
        raise RuntimeFailure(f"no opt/flink-python*.jar in {flink_home()}")
    return jars[-1]
