"""Output directories are created however deep they go: pathlib creates missing parents by recursing once per
level, and ``plan --emit`` into a path 1,500 directories deep ended in RecursionError ("internal error")."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from flinkscale.cli import _inputs
from flinkscale.core.errors import InputError

ROOT = Path(__file__).resolve().parents[3]


def _remove_tree(top: Path) -> None:
    """``shutil.rmtree`` without recursion (it recurses per level too, and so would pytest's own clean-up of
    old temporary directories: the trees these tests make are removed here, level by level)."""
    found, pending = [], [top]
    while pending:
        directory = pending.pop()
        found.append(directory)
        for entry in os.scandir(directory):
            if entry.is_dir(follow_symlinks=False):
                pending.append(Path(entry.path))
            else:
                os.unlink(entry.path)
    for directory in reversed(found):
        os.rmdir(directory)


@pytest.fixture()
def tmp_path(tmp_path: Path) -> Iterator[Path]:
    """The built-in ``tmp_path``, its deep trees removed without recursion after the test."""
    yield tmp_path
    for child in tmp_path.iterdir():
        _remove_tree(child)


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
