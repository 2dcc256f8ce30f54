"""Output directories are created however deep they go: pathlib creates missing parents by recursing once per
level, and ``plan --emit`` into a path 1,500 directories deep ended in RecursionError ("internal error")."""

from __future__ import annotations

from pathlib import Path

import pytest

from flinkscale.cli import _inputs
from flinkscale.core.errors import InputError

ROOT = Path(__file__).resolve().parents[3]


def test_a_directory_deeper_than_the_recursion_limit_is_created(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*["d"] * 1500)
    _inputs.check_output_dir(deep, "--emit")
    assert deep.is_dir()
    _inputs.write_text(deep / "more" / "x.txt", "x", "--emit")
    assert (deep / "more" / "x.txt").read_text() == "x"


def test_plan_emits_into_a_deep_new_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from flinkscale.cli import main

    deep = tmp_path.joinpath(*["d"] * 1200)
    code = main(["plan", str(ROOT / "examples" / "workloads" / "local-demo.yaml"), "--emit", str(deep),
                 "--format", "json"])
    assert code == 0, capsys.readouterr().err
    assert {p.name for p in deep.iterdir()} >= {"config.yaml", "plan.md", "plan.json"}


def test_a_path_longer_than_the_system_allows_is_one_error_naming_the_flag(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        _inputs.check_output_dir(tmp_path.joinpath(*["d"] * 3000), "--emit")
    assert caught.value.field == "--emit" and "cannot write" in str(caught.value)
