"""scripts/readme_tables.py: the marker replacement that keeps README.md's simulator tables generated.

The simulation itself is not run here (a fake stands in for ``flinkscale simulate``); what is checked is that
only the text between the markers changes, that it changes to the command's output, and that broken markers are
refused rather than silently dropping or duplicating README text.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "readme_tables.py"


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("readme_tables", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("inside", ["", "\n", "\nold table\n| a | b |\n", "stale text on the marker line"])
def test_only_the_text_between_the_markers_changes(script: ModuleType, inside: str) -> None:
    head = "# Title\n\nSome text.\n\n## Simulate\n\n"
    tail = "\n\n## Next section\n\nmore text\n"
    text = f"{head}{script.BEGIN}{inside}{script.END}{tail}"
    updated = script.replace_between_markers(text, "| new | table |\n")
    assert updated == f"{head}{script.BEGIN}\n| new | table |\n{script.END}{tail}"


def test_replacing_twice_is_the_same_as_once(script: ModuleType) -> None:
    text = f"a\n{script.BEGIN}\nx\n{script.END}\nb\n"
    once = script.replace_between_markers(text, "block")
    assert script.replace_between_markers(once, "block") == once


@pytest.mark.parametrize("layout", ["{end}\n{begin}", "{begin}\n{begin}\n{end}", "{begin}\nonly the start",
                                    "no markers at all", "{begin}\n{end}\n{end}"])
def test_broken_markers_are_refused(script: ModuleType, layout: str) -> None:
    text = "head\n" + layout.format(begin=script.BEGIN, end=script.END) + "\ntail\n"
    with pytest.raises(script.MarkerError):
        script.replace_between_markers(text, "block")


def test_the_block_holds_each_scenarios_output_under_its_name(script: ModuleType, tmp_path: Path) -> None:
    scenarios = [tmp_path / "a-first.yaml", tmp_path / "b-second.yaml"]
    block = script.tables(scenarios, run=lambda path: f"| output of {path.stem} |\n")
    first, second = block.index("a-first.yaml"), block.index("b-second.yaml")
    assert first < block.index("| output of a-first |") < second < block.index("| output of b-second |")


def test_main_writes_the_readme_and_check_reports_staleness(script: ModuleType, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "one.yaml").write_text("{}\n")
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{script.BEGIN}\n{script.END}\noutro\n")
    monkeypatch.setattr(script, "simulate_markdown", lambda path: "| policy | core-hours |\n")
    argv = ["--readme", str(readme), "--scenarios", str(scenarios)]

    assert script.main([*argv, "--check"]) == 1          # empty tables: out of date
    assert script.main(argv) == 0
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n")
    assert "| policy | core-hours |" in text and "one.yaml" in text
    assert script.main([*argv, "--check"]) == 0          # now up to date
