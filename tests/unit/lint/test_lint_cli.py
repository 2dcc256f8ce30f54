"""`flinkscale lint`: exit codes, text and JSON output, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flinkscale.cli import main
from flinkscale.core.inputs import MAX_INPUT_BYTES

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "lint"


def test_findings_exit_1_with_file_line_rule_why_and_fix(capsys: pytest.CaptureFixture[str]) -> None:
    path = FIXTURES / "bad_state_ttl.py"
    assert main(["lint", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:11:" in out and "FSL002 state-without-ttl" in out
    assert "why:" in out and "fix:" in out
    assert out.strip().endswith("3 findings in 1 file")


def test_clean_files_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(p) for p in sorted(FIXTURES.glob("clean_*.py"))]
    assert main(["lint", *files, "--partitions", "4"]) == 0
    assert capsys.readouterr().out.strip() == f"0 findings in {len(files)} files"


def test_json_format_lists_findings(capsys: pytest.CaptureFixture[str]) -> None:
    path = FIXTURES / "bad_source_partitions.py"
    assert main(["lint", str(path), "--partitions", "4", "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["count"] == 2 and {f["rule_id"] for f in data["findings"]} == {"FSL006"}
    assert all({"path", "line", "column", "why", "fix", "message"} <= set(f) for f in data["findings"])


@pytest.mark.parametrize(("content", "args", "expected"), [
    ("def broken(:\n", [], "syntax error"),
    (None, [], "cannot read"),
    ("x = 1\n", ["--format", "yaml"], "--format: expected text or json"),
    ("x = 1\n", ["--partitions", "0"], "--partitions: must be >= 1"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None,
                                          args: list[str], expected: str) -> None:
    path = tmp_path / "job.py"
    if content is not None:
        path.write_text(content)
    assert main(["lint", str(path), *args]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and expected in err and "Traceback" not in err


def test_the_size_limit_takes_a_file_of_exactly_the_limit_and_refuses_one_byte_more(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 64 MiB: ten times a 200k-line job file (about 6 MB), which must be linted, not refused.
    line = "#" + " " * 126 + "\n"
    text = line * (MAX_INPUT_BYTES // len(line))
    text += " " * (MAX_INPUT_BYTES - len(text))
    path = tmp_path / "at_limit.py"
    path.write_text(text)
    assert path.stat().st_size == MAX_INPUT_BYTES
    assert main(["lint", str(path)]) == 0
    assert capsys.readouterr().out.strip() == "0 findings in 1 file"
    with path.open("a") as handle:
        handle.write("\n")
    assert main(["lint", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and str(path) in err and "larger than 64 MiB" in err
