"""`flinkscale decide`: decisions for recorded snapshots; every bad input is one line and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flinkscale.cli import main

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "snapshots"
OVERLOADED = str(EXAMPLES / "clickstream-p1-overloaded.json")
HISTORY = str(EXAMPLES / "clickstream-p1-overload-history.jsonl")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["decide", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_decisions_for_the_overloaded_example(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--snapshot", OVERLOADED, "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["policy"] == "flinkscale" and data["rescale"] is True
    by_name = {v["vertex_name"]: v for v in data["vertices"]}
    window = by_name["TumblingEventTimeWindows(60000) -> page views per minute"]
    assert (window["current_parallelism"], window["new_parallelism"]) == (1, 2)
    assert window["numbers"]["target_rate"] == pytest.approx(6000.0)
    assert window["reason"]


def test_operator_offline_rescales_but_its_15_minute_window_dilutes_the_step(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--snapshot", OVERLOADED, "--policy", "flink-operator", "--format", "json")
    assert code == 0 and json.loads(out)["rescale"] is True
    # with 20 min of 2000/s history before the 3 min at 6000/s, the 15 min mean hides the step
    code, out, _ = run(capsys, "--snapshot", OVERLOADED, "--history", HISTORY, "--policy", "flink-operator",
                       "--format", "json")
    assert code == 0 and json.loads(out)["rescale"] is False
    code, out, _ = run(capsys, "--snapshot", OVERLOADED, "--history", HISTORY, "--policy", "flink-operator",
                       "--set", "job.autoscaler.metrics.window=2m", "--format", "json")
    assert code == 0 and json.loads(out)["rescale"] is True


def test_table_output_names_vertices(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--snapshot", OVERLOADED, "--policy", "static")
    assert code == 0
    assert "Source: clickstream" in out and "no rescale" in out


def test_settings_help_lists_keys_with_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--policy", "flink-operator", "--settings-help")
    assert code == 0
    assert "job.autoscaler.utilization.target (default 0.7)" in out


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(("args", "names"), [
    (["--snapshot", "/nonexistent/snap.json"], "/nonexistent/snap.json"),
    (["--snapshot", OVERLOADED, "--policy", "nope"], "policy"),
    (["--snapshot", OVERLOADED, "--set", "utilization.target=2"], "utilization.target"),
    (["--snapshot", OVERLOADED, "--set", "no-equals-sign"], "--set"),
    (["--snapshot", OVERLOADED, "--policy", "flink-operator", "--set", "job.autoscaler.nope=1"],
     "job.autoscaler.nope"),
    (["--snapshot", OVERLOADED, "--format", "xml"], "--format"),
    (["--format", "json"], "--snapshot"),
])
def test_bad_input_is_one_line_exit_2(capsys: pytest.CaptureFixture[str], args: list[str], names: str) -> None:
    code, out, err = run(capsys, *args)
    assert code == 2
    assert err.count("\n") == 1 and names in err and "Traceback" not in err
    assert out == ""


def test_bad_snapshot_files_are_named(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    broken = _write(tmp_path, "broken.json", "{not json")
    code, _, err = run(capsys, "--snapshot", broken)
    assert code == 2 and "broken.json" in err and "not valid JSON" in err
    snapshot = json.loads(Path(OVERLOADED).read_text())
    snapshot["vertices"][1]["parallelism"] = 0
    bad_field = _write(tmp_path, "bad.json", json.dumps(snapshot))
    code, _, err = run(capsys, "--snapshot", bad_field)
    assert code == 2 and "vertices[1].parallelism" in err


def test_bad_history_line_is_named_with_its_number(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    lines = Path(HISTORY).read_text().splitlines()
    history = _write(tmp_path, "history.jsonl", "\n".join([lines[0], lines[1], "{oops"]) + "\n")
    code, _, err = run(capsys, "--snapshot", OVERLOADED, "--history", history)
    assert code == 2 and "history.jsonl:3" in err


def test_history_may_carry_rescale_records(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    lines = Path(HISTORY).read_text().splitlines()
    record = json.dumps({"requested_at": 1.0, "completed_at": 41.0, "old_parallelism": {}, "new_parallelism": {}})
    history = _write(tmp_path, "history.jsonl", "\n".join([*lines, record]) + "\n")
    code, out, _ = run(capsys, "--snapshot", OVERLOADED, "--history", history, "--format", "json")
    assert code == 0
    window = json.loads(out)["vertices"][1]
    assert window["numbers"]["restart_seconds"] == pytest.approx(40.0)
