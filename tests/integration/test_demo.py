"""`flinkscale demo --quick` end to end, installed from a wheel into a fresh virtualenv and run from outside the
repository: the story runs, a scale-up is applied, the spike beyond the slot ceiling is shed and shedding stops
after it, nothing stays.

Installing from a wheel is what proves the demo does not read the repository (its workload is package data).
The fresh virtualenv gets the project's dependencies through a ``.pth`` line naming the test interpreter's
site-packages (no second 800 MB install of apache-flink), and flinkscale itself only from the wheel.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.test_runtime import _processes_naming

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def _run(argv: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def _venv_with_wheel(tmp_path: Path) -> Path:
    """A fresh virtualenv with flinkscale installed from a wheel built from this checkout."""
    wheels, venv = tmp_path / "wheels", tmp_path / "venv"
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(REPO)],
                 tmp_path)
    assert built.returncode == 0, built.stderr[-2000:]
    assert _run([sys.executable, "-m", "venv", str(venv)], tmp_path).returncode == 0
    site_packages = next((venv / "lib").glob("python3.*/site-packages"))
    (site_packages / "_flinkscale_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    installed = _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "--quiet",
                      str(next(wheels.glob("flinkscale-*.whl")))], tmp_path)
    assert installed.returncode == 0, installed.stderr[-2000:]
    return venv


def test_quick_demo_from_an_installed_wheel_applies_a_scale_up_and_writes_the_report(tmp_path: Path) -> None:
    venv = _venv_with_wheel(tmp_path)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    where = _run([str(venv / "bin" / "python"), "-c", "import flinkscale; print(flinkscale.__file__)"], outside)
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr  # the wheel, not this checkout
    state, output = tmp_path / "state", tmp_path / "out"
    done = _run([str(venv / "bin" / "flinkscale"), "demo", "--quick", "--no-dashboard", "--state-dir", str(state),
                 "--output", str(output), "--format", "json"], outside, timeout=1200)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    summary = json.loads((output / "demo.json").read_text())
    decisions = [json.loads(line) for line in (output / "run" / "decisions.jsonl").read_text().splitlines()]
    applied_up = [d for d in decisions if d["applied"] and any(
        v["new_parallelism"] > v["current_parallelism"] for v in d["decision"]["vertices"])]
    assert applied_up, "no applied scale-up decision"
    assert summary["applied_scale_ups"] >= 1
    # Scaling first, shedding for what scaling cannot reach: nothing is shed before the job holds both slots,
    # the spike beyond them is shed, and shedding has stopped once the rate is back down.
    shed = [d for d in decisions if d["decision"]["shed_fraction"] > 0]
    assert shed, "the spike beyond the slot ceiling was not shed"
    assert all(d["timestamp"] > applied_up[0]["timestamp"] for d in shed)
    assert decisions[-1]["decision"]["shed_fraction"] == 0.0
    assert summary["max_shed_fraction"] == max(d["decision"]["shed_fraction"] for d in shed)
    report = (output / "report.html").read_text()
    assert "Every decision, with its reason" in report
    assert "1 -&gt; 2" in report  # the applied scale-up, with its reason, in the decision table
    assert (output / "plan" / "config.yaml").exists() and (output / "profile.html").exists()
    assert _processes_naming(state) == []
