"""The boundary for every input that comes from outside: bytes -> text -> YAML/JSON -> typed, validated values.

One mechanism for files and CLI values alike, so every bad input ends the same way: an ``InputError`` whose
message is ONE line naming the file, field path or flag (``vertices[0].parallelism: ...``), never a traceback.

- ``decode_text``: UTF-8 only (a BOM is dropped); anything else names the file and the byte offset.
- ``load_yaml``: a safe loader that also refuses alias bombs (a 450-byte file that expands to millions of
  values), nesting deeper than ``MAX_DEPTH`` and multi-document streams; errors are folded to one line with
  ``line:column``.
- ``load_json``: refuses ``NaN``/``Infinity`` and numbers that overflow a float (``1e400``), and deep nesting.
- ``validate``: a pydantic v2 model (strict types, finite numbers, ranges) checked against loaded data; the
  first error becomes ``FIELD.PATH: what is wrong (got VALUE)``. Models live next to the type they build
  (``flinkscale.core.snapshot`` for snapshots, ``flinkscale.core.policy`` rescale records).
- ``one_line``: any message folded to one bounded line (used for messages that quote user text).

Pure: no file is opened here; the CLI reads bytes (``flinkscale.cli._inputs``) and hands them in.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from typing import TYPE_CHECKING, Any, TypeVar

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from flinkscale.core.errors import InputError

if TYPE_CHECKING:  # pydantic is imported where a model is validated: `import flinkscale` stays light
    from pydantic import BaseModel, ValidationError

__all__ = [
    "MAX_DEPTH",
    "MAX_INPUT_BYTES",
    "MAX_YAML_VALUES",
    "decode_text",
    "load_json",
    "load_yaml",
    "one_line",
    "validate",
    "validation_message",
]

# Files larger than this are refused before they are read (the largest real input, a lint target or a
# replay CSV, is far smaller).
MAX_INPUT_BYTES = 64 * 2**20
# Nesting deeper than this is refused (specs and snapshots nest five levels; Python's parsers recurse).
MAX_DEPTH = 64
# Values a YAML document may expand to through aliases (a spec has hundreds; a bomb has millions).
MAX_YAML_VALUES = 200_000
MAX_MESSAGE_CHARS = 300

_M = TypeVar("_M", bound="BaseModel")


def one_line(text: object, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` with every run of whitespace (newlines included) folded to one space, cut at ``limit``."""
    folded = re.sub(r"\s+", " ", str(text)).strip()
    return folded if len(folded) <= limit else folded[: limit - 3] + "..."


def decode_text(data: bytes, source: str) -> str:
    """UTF-8 text of a file's bytes; a leading BOM is dropped; NUL bytes are refused."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x})", field=source) from None
    if "\x00" in text:
        raise InputError(f"contains a NUL byte (at character {text.index(chr(0))}): not a text file", field=source)
    return text.removeprefix("\ufeff")


# --- YAML ------------------------------------------------------------------------------------------

class _BoundedLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A safe loader (libyaml's C one when present: 20x faster) that checks the composed node graph before
    building Python values from it."""

    def get_single_node(self) -> Node | None:
        node: Node | None = super().get_single_node()
        if node is not None:
            _check_node_graph(node)
        return node

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        """PyYAML's constructors raise plain Python errors for some scalars (``2024-13-45`` as a date,
        ``!!int abc``, an integer of more than 4,300 digits): each becomes a refusal that names the node."""
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            shown = one_line(node.value, 40) if isinstance(node, ScalarNode) else "this value"
            kind = str(node.tag).rsplit(":", 1)[-1]
            why = f" ({one_line(exc, 80)})" if isinstance(exc, ValueError | OverflowError) else ""
            raise _Refused(f"{shown!r} is not a valid {kind}{why}", node) from None


def _check_node_graph(root: Node) -> None:
    """Refuse graphs that expand to more than MAX_YAML_VALUES values, nest deeper than MAX_DEPTH or refer to
    themselves. Sizes are memoised per node, so a bomb is measured without being expanded."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Node, depth: int) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if depth > MAX_DEPTH:
            raise _Refused(f"nested more than {MAX_DEPTH} levels deep", node)
        if key in active:
            raise _Refused("an alias refers to a value that contains it", node)
        active.add(key)
        total = 1
        if isinstance(node, SequenceNode):
            for item in node.value:
                total += size(item, depth + 1)
        elif isinstance(node, MappingNode):
            for k, v in node.value:
                total += size(k, depth + 1) + size(v, depth + 1)
        active.discard(key)
        if total > MAX_YAML_VALUES:
            raise _Refused(f"expands to more than {MAX_YAML_VALUES:,} values through aliases (an alias bomb?)", node)
        sizes[key] = total
        return total

    size(root, 0)


class _Refused(Exception):
    def __init__(self, message: str, node: Node) -> None:
        super().__init__(message)
        self.node = node


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""


def _flow_depth(text: str) -> int:
    """The deepest nesting of ``[`` and ``{`` in ``text`` (quotes ignored: an over-estimate at worst).

    PyYAML's scanner is quadratic in the depth of flow collections (a file of 20,000 ``[`` takes minutes), so
    the depth is measured first, in C speed: everything but brackets is dropped, the rest summed."""
    brackets = re.sub(r"[^\[\]{}]+", "", text)
    if not brackets:
        return 0
    if len(brackets) < 100_000:  # the usual case: no need to pay numpy's import (the CLI starts faster)
        return max(itertools.accumulate(1 if c in "[{" else -1 for c in brackets))
    import numpy as np

    steps = np.frombuffer(brackets.encode("ascii"), dtype=np.uint8)
    depth = np.cumsum(np.where((steps == ord("[")) | (steps == ord("{")), 1, -1))
    return int(depth.max())


def load_yaml(text: str, source: str) -> Any:
    """One YAML document from ``text``; every problem is an ``InputError`` naming ``source`` on one line."""
    if _flow_depth(text) > MAX_DEPTH:
        raise InputError(f"refused: [ and {{ nest more than {MAX_DEPTH} levels deep", field=source)
    try:
        return yaml.load(text, Loader=_BoundedLoader)
    except _Refused as exc:
        raise InputError(f"refused at {_where(exc.node.start_mark)}{exc}", field=source) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        parts = [p for p in (exc.context, exc.problem) if p]
        raise InputError(one_line(f"not valid YAML at {_where(mark)}{'; '.join(parts) or exc}"),
                         field=source) from None
    except yaml.YAMLError as exc:
        raise InputError(one_line(f"not valid YAML: {exc}"), field=source) from None
    except (ValueError, TypeError, AttributeError, OverflowError) as exc:  # a constructor's, outside a node
        raise InputError(one_line(f"not valid YAML: {exc}", 160), field=source) from None
    except RecursionError:
        raise InputError(f"not valid YAML: nested too deeply (more than {MAX_DEPTH} levels)", field=source) from None


# --- JSON ------------------------------------------------------------------------------------------

def _no_constant(name: str) -> Any:
    raise _JsonRefused(f"{name} is not a number JSON allows (use null for a missing value)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _JsonRefused(f"the number {one_line(text, 40)} does not fit a float")
    return value


class _JsonRefused(ValueError):
    pass


def load_json(text: str, source: str) -> Any:
    """A JSON value from ``text``: finite numbers only, bounded nesting; errors name ``source`` on one line."""
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", field=source) from None
    except _JsonRefused as exc:
        raise InputError(f"not valid JSON: {exc}", field=source) from None
    except ValueError as exc:  # e.g. an integer with more than 4300 digits
        raise InputError(one_line(f"not valid JSON: {exc}"), field=source) from None
    except RecursionError:
        raise InputError("not valid JSON: nested too deeply", field=source) from None
    _check_json_depth(value, source)
    return value


def _check_json_depth(value: Any, source: str) -> None:
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InputError(f"nested more than {MAX_DEPTH} levels deep", field=source)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


# --- typed models ----------------------------------------------------------------------------------

def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not text:
            text = str(part)
        else:
            text += f".{part}"
    return text


def validation_message(error: ValidationError, prefix: str = "") -> tuple[str, str]:
    """(field path, one-line message) of the first error of a pydantic ``ValidationError``."""
    first = error.errors(include_url=False)[0]
    # Unions report one branch per location element; drop the branch names pydantic adds (int, float, ...).
    loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and p in _TYPE_BRANCHES))
    path = _path(loc)
    if prefix:
        path = f"{prefix}: {path}" if path else prefix
    message = str(first["msg"])
    message = message[0].lower() + message[1:] if message else "is not valid"
    if first["type"] not in ("missing", "extra_forbidden") and "input" in first:
        message += f" (got {one_line(repr(first['input']), 60)})"
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    return path, one_line(message)


_TYPE_BRANCHES = frozenset({"int", "float", "str", "bool", "none", "list[...]", "dict[...]", "function-after[...]",
                            "constrained-float", "constrained-int"})


def validate(model: type[_M], data: Any, prefix: str = "") -> _M:
    """``data`` checked against ``model``; the first problem is an ``InputError`` with its field path."""
    from pydantic import ValidationError

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        path, message = validation_message(exc, prefix)
        raise InputError(message, field=path or prefix or None) from None
