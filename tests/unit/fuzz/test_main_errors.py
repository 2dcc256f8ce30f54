"""``flinkscale.cli.main`` is the last line of defence: whatever escapes a command becomes one line and an exit code.

A ``FlinkscaleError`` keeps its code; a usage error is exit 2; an ``OSError`` or an input too deep or too large
is a failure (exit 1); anything else is a bug and says so (exit 1), never a traceback; FLINKSCALE_DEBUG=1 re-raises.
"""

from __future__ import annotations

import pytest

from flinkscale.cli import decide as decide_module
from flinkscale.cli import main
from flinkscale.core.errors import InputError


def _raise(exc: BaseException) -> object:
    def fail(*_args: object, **_kwargs: object) -> object:
        raise exc
    return fail


@pytest.mark.parametrize(("exc", "code", "words"), [
    (InputError("must be > 0", field="--x"), 2, "--x: must be > 0"),
    (RuntimeError("boom\nsecond line"), 1, "internal error: RuntimeError: boom second line; this is a bug"),
    (KeyError("vertex"), 1, "internal error: KeyError"),
    (RecursionError(), 1, "nested too deeply"),
    (MemoryError(), 1, "too large"),
    (OSError(28, "No space left on device", "/tmp/out.json"), 1, "/tmp/out.json: No space left on device"),
])
def test_any_exception_is_one_line_with_an_exit_code(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str], exc: BaseException,
                                                     code: int, words: str) -> None:
    monkeypatch.delenv("FLINKSCALE_DEBUG", raising=False)
    monkeypatch.setattr(decide_module, "parse_set_options", _raise(exc))
    assert main(["decide", "--snapshot", "x.json"]) == code
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert words in err
    assert "Traceback" not in err


def test_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLINKSCALE_DEBUG", "1")
    monkeypatch.setattr(decide_module, "parse_set_options", _raise(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        main(["decide", "--snapshot", "x.json"])


@pytest.mark.parametrize("off", ["0", "false", "no", "off", ""])
def test_debug_set_to_off_is_off(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                 off: str) -> None:
    monkeypatch.setenv("FLINKSCALE_DEBUG", off)  # "0" once turned it on: any non-empty value did
    monkeypatch.setattr(decide_module, "parse_set_options", _raise(RuntimeError("boom")))
    assert main(["decide", "--snapshot", "x.json"]) == 1
    assert "Traceback" not in capsys.readouterr().err


def test_a_usage_error_is_one_line_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kafka", "up", "--port", "seventy"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "Invalid value for '--port'" in err


def test_no_arguments_still_prints_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    main(["decide"])
    captured = capsys.readouterr()
    assert "Usage" in captured.out + captured.err
    assert "--snapshot" in captured.out + captured.err
