"""Files in and out for every command: read once with limits, decode, parse; check output paths before work.

The parsing itself is the pure boundary in ``flinkscale.core.inputs``; this module adds the file system:
a missing file, a directory, an unreadable or oversized file, or an output path that is a file, lies below a
file or cannot be written, each becomes one ``InputError`` line naming the file (or the flag), exit code 2,
before any long-running work starts.
"""

from __future__ import annotations

import errno
import os
import select
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

from flinkscale.core.errors import InputError
from flinkscale.core.inputs import MAX_INPUT_BYTES, decode_text, load_json, load_yaml, one_line

#: How long a read from a named pipe waits for its next bytes before giving up.
PIPE_WAIT_SECONDS = 5.0

__all__ = ["check_output_dir", "check_output_file", "open_output", "read_json", "read_text", "read_yaml",
           "write_text"]


def _reason(exc: OSError) -> str:
    return one_line(exc.strerror or exc.__class__.__name__, 80).lower()


def read_bytes(path: Path, what: str = "file") -> bytes:
    """The bytes of ``path``; a missing, unreadable, special or oversized file is one ``InputError``."""
    name = str(path)
    if "\x00" in name:
        raise InputError(f"not a valid {what} path (contains a NUL byte)", field=name.replace("\x00", "\\0"))
    try:
        if path.is_dir():
            raise InputError(f"is a directory, not a {what}", field=name)
        if path.is_fifo():
            data = _read_pipe(path)
        else:
            with path.open("rb") as handle:
                data = handle.read(MAX_INPUT_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read the {what}: {_reason(exc)}", field=name) from None
    if len(data) > MAX_INPUT_BYTES:
        raise InputError(f"the {what} is larger than {MAX_INPUT_BYTES // 2**20} MiB", field=name)
    return data


def _read_pipe(path: Path) -> bytes:
    """A named pipe's bytes (``<(...)`` process substitution is one), without waiting for ever: opened without
    blocking (a pipe with no writer then reads as empty), and read until it closes, within
    ``PIPE_WAIT_SECONDS`` in all."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    deadline = time.monotonic() + PIPE_WAIT_SECONDS
    try:
        chunks: list[bytes] = []
        size = 0
        while size <= MAX_INPUT_BYTES:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise InputError(f"the pipe did not close within {PIPE_WAIT_SECONDS:g}s of opening it",
                                 field=str(path))
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                continue
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_text(path: Path, what: str = "file") -> str:
    """UTF-8 text of ``path`` (see ``read_bytes`` and ``flinkscale.core.inputs.decode_text``)."""
    return decode_text(read_bytes(path, what), str(path))


def read_yaml(path: Path, what: str = "file") -> Any:
    return load_yaml(read_text(path, what), str(path))


def read_json(path: Path, what: str = "file") -> Any:
    return load_json(read_text(path, what), str(path))


def _nearest_existing(path: Path) -> Path:
    current = path.absolute()
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def _make_dirs(path: Path) -> None:
    """``path.mkdir(parents=True, exist_ok=True)`` without recursion: pathlib creates the missing parents by
    recursing once per level, and a path a thousand directories deep ended in RecursionError."""
    missing = []
    current = path
    while not current.is_dir() and current != current.parent:
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        directory.mkdir(exist_ok=True)


def check_output_dir(path: Path, flag: str) -> None:
    """``path`` is a writable directory (created if missing, as the command would anyway); else one
    ``InputError`` naming ``flag`` and the path. Writability is probed with a real temporary file, because
    permission bits do not tell the whole story (root, read-only mounts, /proc)."""
    if "\x00" in str(path):
        raise InputError("not a valid path (contains a NUL byte)", field=flag)
    try:
        if path.exists() and not path.is_dir():
            raise InputError(f"{path} is a file, not a directory", field=flag)
        existing = _nearest_existing(path)
        if not existing.is_dir():
            raise InputError(f"{path} lies below {existing}, which is a file", field=flag)
        _make_dirs(path)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:  # also a path longer than the system allows, found by its first stat
        raise InputError(f"cannot write to {_shown_path(path)}: {_reason(exc)}", field=flag) from None


def check_output_file(path: Path, flag: str) -> None:
    """``path`` can be written as a file: not a directory, not below a file, in a writable directory."""
    if "\x00" in str(path):
        raise InputError("not a valid path (contains a NUL byte)", field=flag)
    try:
        if path.is_dir():
            raise InputError(f"{path} is a directory, not a file", field=flag)
        check_output_dir(path.parent, flag)
        if path.exists() and not os.access(path, os.W_OK):
            raise InputError(f"cannot write {path} (permission denied)", field=flag)
    except OSError as exc:
        raise InputError(f"cannot write {_shown_path(path)}: {_reason(exc)}", field=flag) from None


def _shown_path(path: Path) -> str:
    """The path for a message: a very long one by its two ends."""
    text = str(path)
    return text if len(text) <= 200 else f"{text[:100]}...{text[-60:]}"


def open_output(path: Path, flag: str) -> TextIO:
    """``path`` opened to write text (parent directories created); a failure is one line naming ``flag``.

    A named pipe (``>(...)`` is one) must have a reader when it is opened: it is opened without blocking, which
    fails at once when nothing reads it (ENXIO) instead of waiting for ever, and then written as usual. It is
    not probed earlier: opening and closing it would end a reader that is there with an early end of file."""
    try:
        if path.is_fifo():
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            os.set_blocking(fd, True)
            return os.fdopen(fd, "w", encoding="utf-8")
        _make_dirs(path.parent)
        return path.open("w", encoding="utf-8")
    except OSError as exc:
        reason = "nothing reads that named pipe" if exc.errno == errno.ENXIO else _reason(exc)
        raise InputError(f"cannot write {path}: {reason}", field=flag) from None


def write_text(path: Path, text: str, flag: str) -> None:
    """Write ``text`` to ``path`` (parent directories created); a failure is one line naming ``flag``."""
    check_output_file(path, flag)
    handle = open_output(path, flag)
    try:
        with handle:
            handle.write(text)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {_reason(exc)}", field=flag) from None


def parse_set_options(pairs: list[str]) -> dict[str, str]:
    """Repeated ``--set key=value`` as a dict (a later key wins); one ``InputError`` naming --set otherwise."""
    settings: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"expected key=value, got {pair[:80]!r}", field="--set")
        if any(c in pair for c in "\r\n\0"):  # a value goes into a config file line by line: no injected line
            raise InputError(f"holds a line break: {pair[:80]!r}", field="--set")
        settings[key.strip()] = value.strip()
    return settings


def parse_number_or_percentage(text: str, flag: str) -> float:
    """'2%' -> 0.02, '0.02' -> 0.02, '95%' -> 0.95 (no range: the caller checks its own); InputError names ``flag``."""
    raw = text.strip()
    try:
        return float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
    except ValueError:
        raise InputError(f"not a number or percentage: {text!r}", field=flag) from None


def check_port(port: int, flag: str, *, allow_zero: bool = True) -> int:
    """A TCP port number (0 = any free port when ``allow_zero``); else one ``InputError`` naming ``flag``."""
    low = 0 if allow_zero else 1
    if not low <= port <= 65535:
        hint = " (0 picks a free one)" if allow_zero else ""
        raise InputError(f"must be a port number from {low} to 65535{hint}, got {port}", field=flag)
    return port


def check_number(value: float, flag: str, *, above: float | None = None, minimum: float | None = None,
                 maximum: float | None = None) -> float:
    """A finite number within bounds (a float flag may be nan or inf from the command line)."""
    import math

    if not math.isfinite(value):
        raise InputError(f"must be a finite number, got {value}", field=flag)
    if above is not None and not value > above:
        raise InputError(f"must be > {above:g}, got {value:g}", field=flag)
    if minimum is not None and not value >= minimum:
        raise InputError(f"must be >= {minimum:g}, got {value:g}", field=flag)
    if maximum is not None and not value <= maximum:
        raise InputError(f"must be <= {maximum:g}, got {value:g}", field=flag)
    return value


def check_choice(value: str, choices: tuple[str, ...], flag: str) -> str:
    """``value`` if it is one of ``choices``, else an ``InputError`` naming ``flag``: "expected table or json"."""
    if value not in choices:
        listed = choices[0] if len(choices) == 1 else f"{', '.join(choices[:-1])} or {choices[-1]}"
        raise InputError(f"expected {listed}, got {value!r}", field=flag)
    return value
