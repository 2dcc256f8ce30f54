"""``flinkscale simulate`` end to end on a short scenario, and the report renderers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flinkscale.cli import main
from flinkscale.core.sim.compare import compare
from flinkscale.core.sim.scenario import parse_scenario
from flinkscale.report.sim import render_html, render_markdown

STEP = Path(__file__).resolve().parents[3] / "examples" / "scenarios" / "step-small.yaml"
SHORT = ["--set", "scenario.duration=20m", "--set", "scenario.trace.at=5m", "--no-progress"]


def test_json_has_one_entry_per_policy(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(STEP), "--policies", "static,flinkscale", "--format", "json", *SHORT]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [p["policy"] for p in data["policies"]] == ["static", "flinkscale"]
    assert data["duration_seconds"] == 1200
    static = data["policies"][0]
    assert static["rescales"] == 0
    assert static["start_parallelism"] == static["final_parallelism"]


def test_markdown_and_html(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "report.html"
    assert main(["simulate", str(STEP), "-p", "static,cpu-threshold", "--format", "markdown", "--html", str(report),
                 *SHORT]) == 0
    out = capsys.readouterr().out
    assert "| static |" in out and "| cpu-threshold |" in out
    page = report.read_text()
    assert page.count("plotly.js v") == 1   # embedded once, so the file works offline and stays one copy
    assert "policy: static" in page and "policy: cpu-threshold" in page


@pytest.mark.parametrize(("args", "field"), [
    (["--set", "scenario.trace.before=-3"], "trace.before"),
    (["--set", "flinkscale.no-such-key=1", "-p", "flinkscale"], "no-such-key"),
    (["--set", "nobody.key=1"], "--set"),
    (["--set", "justtext"], "--set"),
    (["--format", "xml"], "--format"),
    (["-p", "astrology"], "policy"),
])
def test_bad_input_is_one_line_and_exit_code_2(args: list[str], field: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(STEP), *SHORT, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("flinkscale: error:") and "\n" not in err
    assert field in err


def test_a_missing_scenario_file_is_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml" in capsys.readouterr().err


def test_static_starts_at_peak_provisioning_and_never_lags() -> None:
    from flinkscale.core.policy.registry import make_policy

    scenario = parse_scenario(STEP.read_text())
    comparison = compare(scenario, {"static": make_policy("static", {})})
    (run,) = comparison.runs
    assert run.outcome.peak_lag_seconds < scenario.config.latency_target_seconds
    assert "| static |" in render_markdown(comparison)
    assert render_html(comparison).count("<table>") == 1


def test_a_replay_trace_reads_its_csv_next_to_the_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "rates.csv").write_text("seconds,rate\n0,100\n300,400\n")
    scenario = tmp_path / "replay.yaml"
    scenario.write_text(
        "duration: 10m\n"
        "trace: {type: replay, csv: rates.csv}\n"
        "pipeline:\n"
        "  vertices: [{id: a, source: true, capacity: 1000/s}]\n"
        "policies: [static]\n")
    assert main(["simulate", str(scenario), "--format", "json", "--no-progress"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["offered_rate"]["mean"] == pytest.approx(250.0)
    assert data["offered_rate"]["peak"] == pytest.approx(400.0)
    (tmp_path / "rates.csv").unlink()
    assert main(["simulate", str(scenario), "--no-progress"]) == 2
    assert "trace.csv" in capsys.readouterr().err


WORKLOAD = Path(__file__).resolve().parents[3] / "examples" / "workloads" / "clickstream-1tb.yaml"
HOUR = ["--set", "scenario.duration=1h", "--no-progress"]
PLANNED = {"clicks": 2, "sessionize": 3, "page_counts": 1, "counts_sink": 1}  # `flinkscale plan` of the 1 TB example


def test_a_workload_spec_simulates_its_planned_deployment(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--workload", str(WORKLOAD), "-p", "static,flinkscale", "--format", "json",
                 *HOUR]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["scenario"] == "clickstream-1tb" and data["duration_seconds"] == 3600
    assert data["latency_target_seconds"] == 0.5
    assert [p["policy"] for p in data["policies"]] == ["static", "flinkscale"]
    assert all(p["start_parallelism"] == PLANNED for p in data["policies"])
    assert data["policies"][0]["final_parallelism"] == PLANNED


def test_a_workload_day_prints_the_usual_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--workload", str(WORKLOAD), "-p", "static", *HOUR]) == 0
    out = capsys.readouterr().out
    assert "clickstream-1tb: diurnal: average 11,574/s, peak 40,509/s (x3.5)" in out
    assert "static" in out and "core-hours" in out


def test_a_plan_emitted_by_flinkscale_plan_is_the_deployment_simulated(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", str(WORKLOAD), "--emit", str(tmp_path)]) == 0
    plan = json.loads((tmp_path / "plan.json").read_text())
    plan["vertices"][1]["parallelism"] = 6  # reviewed and edited: sessionize (and its chained sink) at 6
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    capsys.readouterr()
    assert main(["simulate", "--workload", str(WORKLOAD), "--plan", str(tmp_path / "plan.json"), "-p", "static",
                 "--format", "json", *HOUR]) == 0
    (static,) = json.loads(capsys.readouterr().out)["policies"]
    assert static["start_parallelism"] == {**PLANNED, "sessionize": 6}


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(("args", "expected"), [
    (lambda t: ["--workload", str(t / "missing.yaml")], "missing.yaml: cannot read the spec"),
    (lambda t: ["--workload", str(WORKLOAD), "--plan", str(t / "none.json")], "none.json: cannot read the plan"),
    (lambda t: ["--workload", str(WORKLOAD), "--plan", str(_write(t / "bad.json", "{not json"))],
     "bad.json: not valid JSON"),
    (lambda t: ["--workload", str(WORKLOAD), "--plan", str(_write(t / "list.json", "[1, 2]"))],
     "list.json: a plan must be the JSON object"),
    (lambda t: ["--workload", str(WORKLOAD), "--plan", str(_write(t / "part.json", '{"name": "clickstream-1tb"}'))],
     "part.json: vertices"),
    (lambda t: ["--workload", str(_write(t / "spec.yaml", "name: x\nvolume: 3\n"))], "pipeline: is required"),
    (lambda t: ["--plan", str(t / "plan.json"), str(STEP)], "--plan: --plan needs --workload"),
    (lambda t: ["--workload", str(WORKLOAD), str(STEP)], "give a scenario file or --workload"),
])
def test_bad_workload_input_is_one_line_and_exit_code_2(tmp_path: Path, args: object, expected: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert callable(args)
    assert main(["simulate", *args(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("flinkscale: error:") and "\n" not in err
    assert expected in err


def test_a_plan_for_another_workload_is_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = WORKLOAD.parent / "clickstream-10tb.yaml"
    assert main(["plan", str(other), "--format", "json"]) == 0
    (tmp_path / "plan.json").write_text(capsys.readouterr().out)
    assert main(["simulate", "--workload", str(WORKLOAD), "--plan", str(tmp_path / "plan.json"), *HOUR]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.endswith("plan.json: the plan is for workload 'clickstream-10tb', the spec is 'clickstream-1tb'")
