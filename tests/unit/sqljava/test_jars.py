"""A missing jar is one line that says how to build it; `flinkscale job submit` turns it into exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from flinkscale.core.errors import RuntimeFailure
from flinkscale.pipelines.jars import JOBS_JAR, SHEDDING_JAR, jobs_jar, shedding_jar


@pytest.mark.parametrize(("find", "name"), [(shedding_jar, SHEDDING_JAR), (jobs_jar, JOBS_JAR)])
def test_a_missing_jar_says_how_to_build_it(tmp_path: Path, find: object, name: str) -> None:
    with pytest.raises(RuntimeFailure) as caught:
        find(tmp_path)  # type: ignore[operator]
    message = str(caught.value)
    assert name in message and "make java" in message and "\n" not in message


def test_the_built_jars_hold_the_library_and_the_job() -> None:
    import zipfile

    with zipfile.ZipFile(shedding_jar()) as jar:
        names = set(jar.namelist())
    assert {"dev/flinkscale/shedding/KeepFunction.class", "dev/flinkscale/shedding/ShedFilter.class"} <= names
    with zipfile.ZipFile(jobs_jar()) as jar:
        names = set(jar.namelist())
    assert {"dev/flinkscale/jobs/KeyedClicksJob.class", "dev/flinkscale/shedding/ShedFilter.class"} <= names
