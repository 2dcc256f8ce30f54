"""Splitting a Flink SQL script into statements, with where each starts (line and column, 1-based).

A script is what the SQL client runs: statements ended by ``;``, ``--`` line comments and ``/* */`` block
comments, single-quoted strings (``''`` escapes a quote), backquoted identifiers, and one compound form,
``EXECUTE STATEMENT SET BEGIN ...; ...; END;``, whose inner semicolons do not end it. Pure text processing:
the runner (``pipelines/sql_runner.py``), lint and ``plan --sql`` all split the same way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_BEGIN = re.compile(r"\bBEGIN\s*$", re.IGNORECASE)
_END = re.compile(r"(^|\s)END\s*$", re.IGNORECASE)
_SET_BEGIN = re.compile(r"^\s*(EXECUTE\s+)?STATEMENT\s+SET\s+BEGIN\b", re.IGNORECASE)


@dataclass(frozen=True)
class Statement:
    text: str  # without the final ';', comments kept inside
    offset: int  # character offset of the first non-blank, non-comment character
    line: int
    column: int

    @property
    def keyword(self) -> str:
        """The first word, upper-case (SET, CREATE, INSERT, EXECUTE, SELECT, ...)."""
        match = re.match(r"\s*(\w+)", strip_comments(self.text))
        return match.group(1).upper() if match else ""


def position(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of a character offset."""
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def strip_comments(text: str) -> str:
    """The text with comments replaced by spaces of the same length (offsets stay valid)."""
    out = list(text)
    for start, end in _scan(text)[0]:
        for i in range(start, end):
            if out[i] != "\n":
                out[i] = " "
    return "".join(out)


def _scan(text: str) -> tuple[list[tuple[int, int]], tuple[int, str] | None]:
    """The comment spans, and where the text opens a quote or a ``/*`` it never closes (and which), if it does:
    one pass for ``strip_comments`` and ``unclosed``."""
    spans: list[tuple[int, int]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "'`\"":
            end = _skip_quoted(text, i)
            if text[end - 1] != ch or end == i + 1:
                return spans, (i, f"a {ch} that is never closed")
            i = end
        elif text.startswith("--", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            spans.append((i, end))
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                spans.append((i, n))
                return spans, (i, "a /* comment that is never closed (*/)")
            spans.append((i, end + 2))
            i = end + 2
        else:
            i += 1
    return spans, None


def unclosed(text: str, statements: Sequence[Statement] | None = None) -> tuple[int, str] | None:
    """Where the script opens what it never closes, and what (a ``/*`` comment, a quote, a statement set), or
    None. The SQL client refuses such a script; split as it is, the rest of the file would vanish into it.
    ``statements``: ``split_statements(text)`` when the caller has it already."""
    opened = _scan(text)[1]
    if opened is not None:
        return opened
    if statements is None:
        statements = split_statements(text)
    last = statements[-1] if statements else None
    if last is not None and _SET_BEGIN.match(strip_comments(last.text)) and not _END.search(
            strip_comments(last.text).rstrip().rstrip(";")):
        return last.offset, "a statement set (EXECUTE STATEMENT SET BEGIN) without END"
    return None


def _skip_quoted(text: str, start: int) -> int:
    quote = text[start]
    i = start + 1
    while i < len(text):
        if text[i] == quote:
            if i + 1 < len(text) and text[i + 1] == quote:  # doubled quote escapes itself
                i += 2
                continue
            return i + 1
        i += 1
    return len(text)


def split_statements(text: str) -> list[Statement]:
    """The script's statements in order; an unterminated last statement counts too."""
    clean = strip_comments(text)
    statements: list[Statement] = []
    start = 0
    depth = 0  # inside EXECUTE STATEMENT SET BEGIN ... END
    i, n = 0, len(clean)
    while i < n:
        ch = clean[i]
        if ch in "'`\"":
            i = _skip_quoted(clean, i)
            continue
        if ch == ";":
            piece = clean[start:i]
            if depth == 0:
                if _BEGIN.search(piece.rstrip()) is None:
                    _add(statements, text, clean, start, i)
                    start = i + 1
            elif _END.search(clean[_last_semicolon(clean, start, i):i].strip()):
                depth = 0
                _add(statements, text, clean, start, i)
                start = i + 1
            i += 1
            continue
        if depth == 0 and (ch in "Bb") and clean[i:i + 5].upper() == "BEGIN" and _word_at(clean, i, 5):
            head = clean[start:i].split()
            if [w.upper() for w in head[-3:]] == ["EXECUTE", "STATEMENT", "SET"] or \
                    [w.upper() for w in head[-2:]] == ["STATEMENT", "SET"]:
                depth = 1
        i += 1
    _add(statements, text, clean, start, n)
    return statements


def _last_semicolon(clean: str, start: int, end: int) -> int:
    index = clean.rfind(";", start, end)
    return start if index < 0 else index + 1


def _word_at(text: str, i: int, length: int) -> bool:
    before = text[i - 1] if i > 0 else " "
    after = text[i + length] if i + length < len(text) else " "
    return not (before.isalnum() or before == "_") and not (after.isalnum() or after == "_")


def _add(statements: list[Statement], text: str, clean: str, start: int, end: int) -> None:
    piece = clean[start:end]
    stripped = piece.lstrip()
    if not stripped.strip():
        return
    offset = start + (len(piece) - len(stripped))
    line, column = position(text, offset)
    statements.append(Statement(text[offset:end].rstrip(), offset, line, column))
