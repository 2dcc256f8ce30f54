"""The flag values several commands share: ``--set key=value`` and numbers or percentages (--keep, fractions).

Each command keeps its own range and message; the parsing is one place (``cli._inputs``). A bad value is one
line naming the flag and exit code 2, before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from flinkscale.cli import main
from flinkscale.cli._common import parse_fraction
from flinkscale.cli._inputs import parse_number_or_percentage, parse_set_options
from flinkscale.cli.shed import parse_keep
from flinkscale.core.errors import InputError


def test_set_options_strip_and_a_later_key_wins() -> None:
    assert parse_set_options([" a = 1 ", "b=x=y", "a=2", "c="]) == {"a": "2", "b": "x=y", "c": ""}


@pytest.mark.parametrize("pair", ["no-equals-sign", "=1", "  =1", ""])
def test_a_set_option_without_a_key_names_set(pair: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_set_options(["ok=1", pair])
    assert caught.value.field == "--set" and repr(pair) in str(caught.value)


@pytest.mark.parametrize(("text", "value"), [("0.5", 0.5), (" 50% ", 0.5), ("2%", 0.02), ("1", 1.0), ("150%", 1.5)])
def test_numbers_and_percentages(text: str, value: float) -> None:
    assert parse_number_or_percentage(text, "--x") == pytest.approx(value)


@pytest.mark.parametrize("text", ["", "%", "abc", "5 %%", "0.5x"])
def test_neither_a_number_nor_a_percentage_names_the_flag(text: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_number_or_percentage(text, "--x")
    assert caught.value.field == "--x" and "not a number or percentage" in str(caught.value)


@pytest.mark.parametrize(("text", "keep"), [("1", 1.0), ("100%", 1.0), ("0.25", 0.25)])
def test_keep_takes_one_but_a_fraction_does_not(text: str, keep: float) -> None:
    assert parse_keep(text) == pytest.approx(keep)
    if keep == 1.0:
        with pytest.raises(InputError, match="between 0 and 1"):
            parse_fraction(text, "--confidence")
    else:
        assert parse_fraction(text, "--confidence") == pytest.approx(keep)


@pytest.mark.parametrize("text", ["0", "0%", "-0.1", "1.01", "nan", "inf"])
def test_keep_out_of_range_says_its_range(text: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_keep(text)
    assert caught.value.field == "--keep" and "(0, 1]" in str(caught.value)


@pytest.mark.parametrize(("args", "flag"), [
    (["shed", "set", "--topic", "c", "--keep", "lots", "--bootstrap", "127.0.0.1:9"], "--keep"),
    (["cluster", "up", "--set", "no-equals-sign"], "--set"),
])
def test_a_bad_value_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str],
                                            flag: str) -> None:
    code = main([*args, "--state-dir", str(tmp_path / "state")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and flag in err
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize(("argv", "named"), [
    (["plan", "spec.yaml", "--emit", "out\0dir"], "--emit"),
    (["plan", "spec.yaml", "--emit=out\0dir"], "--emit"),
    (["plan", "spe\0c.yaml"], "spe\\0c.yaml"),
])
def test_a_nul_byte_anywhere_is_one_line_naming_its_option_whatever_typer_does_with_it(
        argv: list[str], named: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Typer 0.28 hands such a path to os.stat (a ValueError); a process never gets one, an in-process call can.
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"flinkscale: error: {named}: contains a NUL byte, which no file name, URL or value may hold " \
                  "(see --help)\n"
