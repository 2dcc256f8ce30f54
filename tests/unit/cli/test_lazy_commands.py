"""The root command group imports a command's module only when that command is used."""

from __future__ import annotations

import subprocess
import sys

import pytest

from flinkscale.cli import main
from flinkscale.cli._app import COMMANDS, _module_commands


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_summary_is_the_start_of_the_commands_own_help(name: str) -> None:
    command = _module_commands(COMMANDS[name].module)[name]
    help_text = " ".join((command.help or "").split())
    assert help_text.startswith(COMMANDS[name].summary), (name, help_text[:120])


def test_every_registered_command_is_listed() -> None:
    registered = {name for entry in COMMANDS.values() for name in _module_commands(entry.module)}
    assert registered == set(COMMANDS)


def test_root_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert f"  {name} " in out


def _modules_after(argv: list[str]) -> set[str]:
    code = (
        "import sys\nfrom flinkscale.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "print('\\n'.join(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_root_help_imports_no_command_module() -> None:
    loaded = _modules_after(["--help"])
    assert not {m for m in loaded if m.startswith("flinkscale.cli.") and m != "flinkscale.cli._app"}
    assert not {"httpx", "confluent_kafka", "plotly", "numpy"} & loaded


def test_decide_imports_no_io_or_plotting_library() -> None:
    loaded = _modules_after(["decide", "--help"])
    assert "flinkscale.cli.decide" in loaded  # (numpy is fine here: the flinkscale policy's forecast uses it)
    assert not {"httpx", "confluent_kafka", "plotly", "flinkscale.flink.cluster", "flinkscale.app.demo"} & loaded


def test_a_typo_suggests_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulte"]) == 2
    assert "simulate" in capsys.readouterr().err
