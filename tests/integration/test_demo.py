"""`flinkscale demo --quick` end to end on a fresh state dir: the story runs, a scale-up is applied, the spike beyond
the slot ceiling is shed and shedding stops after it, nothing stays."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flinkscale.cli import main
from tests.integration.test_runtime import _processes_naming

pytestmark = pytest.mark.integration


def test_quick_demo_applies_a_scale_up_and_writes_the_report(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    state, output = tmp_path / "state", tmp_path / "out"
    code = main(["demo", "--quick", "--no-dashboard", "--state-dir", str(state), "--output", str(output),
                 "--format", "json"])
    printed = capsys.readouterr().out
    assert code == 0, printed[-2000:]
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
