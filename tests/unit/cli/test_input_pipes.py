"""Named pipes as inputs and outputs: ``<(...)`` and ``>(...)`` work, a pipe nobody writes to or reads from is
one error line within ``PIPE_WAIT_SECONDS`` (it used to wait for ever)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flinkscale.cli import _inputs
from flinkscale.core.errors import InputError


@pytest.fixture()
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


@pytest.fixture()
def short_wait(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(_inputs, "PIPE_WAIT_SECONDS", 0.5)
    yield


def _in_thread(work: object) -> threading.Thread:
    thread = threading.Thread(target=work, daemon=True)  # type: ignore[arg-type]
    thread.start()
    return thread


def test_a_pipe_with_a_writer_is_read_whole(fifo: Path) -> None:
    def write() -> None:
        with fifo.open("w") as handle:
            handle.write("name: a\n")
            handle.flush()
            time.sleep(0.2)  # the reader waits for the rest, not only for the first bytes
            handle.write("volume: 3\n")

    writer = _in_thread(write)
    assert _inputs.read_yaml(fifo) == {"name": "a", "volume": 3}
    writer.join(5)


def test_a_pipe_nobody_writes_to_is_one_input_error(fifo: Path, short_wait: None) -> None:
    started = time.monotonic()
    with pytest.raises(InputError) as refused:
        _inputs.read_bytes(fifo)
    assert refused.value.field == str(fifo)
    assert time.monotonic() - started < 5


def test_a_pipe_nobody_reads_is_one_input_error_at_once(fifo: Path) -> None:
    started = time.monotonic()
    with pytest.raises(InputError, match="nothing reads that named pipe") as refused:
        _inputs.write_text(fifo, "report", "--html")
    assert refused.value.field == "--html"
    assert time.monotonic() - started < 5


def test_a_pipe_with_a_reader_is_written_once_whole(fifo: Path) -> None:
    """The reader (``cat fifo``, say) must see the whole text: no probe before it that would end its read."""
    received: list[str] = []
    reader = _in_thread(lambda: received.append(fifo.read_text()))
    deadline = time.monotonic() + 5
    while True:  # the reader opens the pipe when its thread runs; until then, nothing reads it
        try:
            _inputs.check_output_file(fifo, "--html")
            _inputs.write_text(fifo, "report", "--html")
            break
        except InputError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    reader.join(5)
    assert received == ["report"]
