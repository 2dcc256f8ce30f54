"""Static checks (Python ``ast``) for PyFlink jobs: the things that quietly defeat horizontal scaling.

``lint_source(text, filename)`` parses the text it is handed (it never reads files) and returns findings,
each with the file and line, a rule id, why it breaks scaling and the fix. The rules:

=======  ==============================  ==========================================================
FSL001   non-keyed-state                 instance attributes or globals written inside a map /
                                         process / UDF function: neither checkpointed nor sharded
FSL002   state-without-ttl               a keyed state descriptor without ``enable_time_to_live``
FSL003   missing-uid                     an operator without ``.uid(...)``
FSL004   no-max-parallelism              neither ``set_max_parallelism`` nor ``pipeline.max-parallelism``
FSL005   process-execution-mode          ``python.execution-mode`` is ``process`` (or unset: the default)
FSL006   source-above-partitions         source parallelism above the topic's partition count
=======  ==============================  ==========================================================

The checks lean towards silence: a pattern is reported only when the code shows it (a container
attribute that is mutated, a descriptor never given TTL, a constant parallelism above the partitions),
because a linter that cries wolf on clean jobs gets switched off. A line ending in
``# flinkscale: ignore`` or ``# flinkscale: ignore[FSL001,FSL003]`` silences findings on that line.
"""

from __future__ import annotations

import ast
import gc
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flinkscale.core.errors import InputError


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    why: str
    fix: str


RULES: dict[str, Rule] = {rule.id: rule for rule in (
    Rule("FSL001", "non-keyed-state",
         "a value kept in an instance attribute or a global lives in one Python worker only: it is not in "
         "checkpoints (lost on failure), not split by key group on rescale (each new subtask starts empty or "
         "with a different subset), so results change when the job scales",
         "keep it in keyed state (ValueState/MapState via runtime_context.get_state in open()), or in "
         "operator/broadcast state; a pure cache that can be rebuilt may be silenced with "
         "'# flinkscale: ignore[FSL001]'"),
    Rule("FSL002", "state-without-ttl",
         "keyed state without TTL grows with every key ever seen: checkpoints, restore and rescale times grow "
         "without bound, and the state backend eventually runs out of memory or disk",
         "descriptor.enable_time_to_live(StateTtlConfig.new_builder(Time.days(1)).cleanup_in_rocksdb_compact_filter"
         "(1000).build()) with a TTL the results can tolerate"),
    Rule("FSL003", "missing-uid",
         "without a uid Flink derives the operator id from the graph shape; any change to the job (or to "
         "chaining) gives new ids and the savepoint state of this operator can no longer be restored, so "
         "a rescale or upgrade through a savepoint loses it",
         "chain .uid(\"stable-name\") (and .name(...)) onto every operator"),
    Rule("FSL004", "no-max-parallelism",
         "max parallelism fixes the number of key groups forever: it cannot change for a job restored from a "
         "savepoint, and the default (128 for p <= 85) caps how far the job can ever scale out",
         "env.set_max_parallelism(N) with N >= the largest parallelism you will need and many divisors "
         "(120, 180, 240, 360, 720), or pipeline.max-parallelism in the configuration"),
    Rule("FSL005", "process-execution-mode",
         "in process mode (the default) every Python operator exchanges records with a separate Python worker "
         "process over gRPC: serialisation and process overhead per slot, which limits throughput per core "
         "and makes each added subtask cost more",
         "set python.execution-mode to thread (config.set_string(\"python.execution-mode\", \"thread\")), "
         "unless a dependency needs process mode"),
    Rule("FSL006", "source-above-partitions",
         "a Kafka source reads whole partitions: subtasks beyond the partition count get none, sit idle, and "
         "without source idleness configured they hold back watermarks for the whole job",
         "set the source parallelism to at most the partition count, ideally a divisor of it, or add "
         "partitions"),
)}

STATE_DESCRIPTORS = frozenset({"ValueStateDescriptor", "ListStateDescriptor", "MapStateDescriptor",
                               "ReducingStateDescriptor", "AggregatingStateDescriptor"})
FUNCTION_BASES = frozenset({
    "MapFunction", "FlatMapFunction", "FilterFunction", "ProcessFunction", "KeyedProcessFunction",
    "CoProcessFunction", "KeyedCoProcessFunction", "BroadcastProcessFunction", "KeyedBroadcastProcessFunction",
    "CoMapFunction", "CoFlatMapFunction", "ReduceFunction", "AggregateFunction", "ProcessWindowFunction",
    "ProcessAllWindowFunction", "WindowFunction", "AllWindowFunction", "KeySelector", "SinkFunction",
    "JoinFunction", "CoGroupFunction", "FlatJoinFunction", "RichFunction", "Function", "ScalarFunction",
    "TableFunction", "TableAggregateFunction", "UserDefinedFunction", "PartitionProcessFunction",
})
WINDOW_SCOPED_BASES = frozenset({"Trigger", "Evictor", "ProcessWindowFunction", "ProcessAllWindowFunction",
                                 "WindowFunction", "AllWindowFunction"})
UDF_DECORATORS = frozenset({"udf", "udtf", "udaf", "udtaf"})
# Methods that run before or after records flow: writing attributes there is setup, not state.
LIFECYCLE_METHODS = frozenset({"__init__", "open", "close", "__getstate__", "__setstate__", "setup"})
# Operators whose id matters for savepoint state.
OPERATOR_METHODS = frozenset({"map", "flat_map", "filter", "process", "reduce", "aggregate", "apply",
                              "sink_to", "add_sink", "from_source", "add_source"})
KEYED_ONLY_OPERATORS = frozenset({"sum", "min", "max", "min_by", "max_by"})
KEYED_CONTEXT = frozenset({"key_by", "window", "count_window", "window_all", "count_window_all"})
SOURCE_METHODS = frozenset({"from_source", "add_source"})
# Table API calls: a chain through these is a Table, whose operators have no uid().
TABLE_METHODS = frozenset({"from_path", "sql_query", "select", "where", "group_by", "add_columns",
                           "drop_columns", "rename_columns", "over_window", "join", "left_outer_join",
                           "from_data_stream", "execute_sql"})
# Functions handed to these receive records.
FUNCTION_TAKING_METHODS = OPERATOR_METHODS | frozenset({"key_by", "flat_map", "co_map", "partition_custom"})
MUTATING_METHODS = frozenset({"append", "extend", "insert", "pop", "popitem", "remove", "clear", "add",
                              "discard", "update", "setdefault", "appendleft", "extendleft", "sort", "reverse",
                              "__setitem__", "__delitem__"})
CONTAINER_FACTORIES = frozenset({"list", "dict", "set", "deque", "defaultdict", "Counter", "OrderedDict",
                                 "bytearray"})
_IGNORE = re.compile(r"#\s*flinkscale:\s*ignore(?:\[([A-Z0-9_,\s]+)\])?")


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    column: int
    rule_id: str
    rule_name: str
    message: str
    why: str
    fix: str

    def to_dict(self) -> dict[str, object]:
        # What dataclasses.asdict gives (every field is a str or an int), without its deep copy per field.
        return {"path": self.path, "line": self.line, "column": self.column, "rule_id": self.rule_id,
                "rule_name": self.rule_name, "message": self.message, "why": self.why, "fix": self.fix}

    def format_text(self) -> str:
        return (f"{self.path}:{self.line}:{self.column + 1}: {self.rule_id} {self.rule_name}: {self.message}\n"
                f"    why: {self.why}\n    fix: {self.fix}")


def lint_source(source: str, filename: str, *, partitions: int | None = None) -> tuple[Finding, ...]:
    """Findings for one PyFlink job given as text, sorted by line; InputError on a syntax error."""
    if partitions is not None and partitions < 1:
        raise InputError(f"must be >= 1, got {partitions}", field="partitions")
    with _cyclic_gc_paused():  # the syntax tree lives only inside _check, so it is gone before the collector is back
        findings = _check(source, filename, partitions)
    suppressed = _suppressions(source)
    kept = [f for f in findings if not _is_suppressed(f, suppressed)]
    unique = {(f.line, f.column, f.rule_id, f.message): f for f in kept}
    return tuple(sorted(unique.values(), key=lambda f: (f.line, f.column, f.rule_id)))


def _check(source: str, filename: str, partitions: int | None) -> list[Finding]:
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as exc:
        raise InputError(f"syntax error: {exc.msg}", field=f"{filename}:{exc.lineno or 0}") from None
    except ValueError as exc:  # null bytes
        raise InputError(f"cannot parse: {exc}", field=filename) from None
    except (RecursionError, MemoryError):  # CPython's parser gives up on very deep nesting
        raise InputError("cannot parse: an expression is nested too deeply", field=filename) from None
    try:
        return _Checker(tree, filename, partitions).run()
    except RecursionError:  # parts of the checker recurse (ast.unparse); a pathologically deep tree is no job
        raise InputError("an expression is nested too deeply to analyse (over ~900 levels)", field=filename) from None


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector while a module's syntax tree is built and checked.

    A 200k-line file is over a million tree nodes, all allocated at once and all alive until the checks end;
    each time the allocation count crosses a threshold the collector traverses the survivors again (on such a
    file that was over half of ``ast.parse``'s time, and it grew faster than the file). The tree holds no
    reference cycles (children do not point back at parents), so reference counting frees it all the same;
    the collector is switched back on (if it was on) when the block ends, however it ends.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _suppressions(source: str) -> dict[int, frozenset[str] | None]:
    result: dict[int, frozenset[str] | None] = {}
    if "flinkscale" not in source:  # no line can match _IGNORE: skip the per-line search
        return result
    for number, text in enumerate(source.splitlines(), start=1):
        match = _IGNORE.search(text)
        if match:
            ids = match.group(1)
            result[number] = None if ids is None else frozenset(i.strip() for i in ids.split(",") if i.strip())
    return result


def _is_suppressed(finding: Finding, suppressed: dict[int, frozenset[str] | None]) -> bool:
    if finding.line not in suppressed:
        return False
    ids = suppressed[finding.line]
    return ids is None or finding.rule_id in ids


def _tail_name(node: ast.expr) -> str | None:
    """``Foo`` for ``Foo`` and ``a.b.Foo``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _call_name(node: ast.AST) -> str | None:
    return _tail_name(node.func) if isinstance(node, ast.Call) else None


def _self_attribute(node: ast.expr) -> str | None:
    """``x`` for ``self.x``, ``self.x[k]``, ``self.x.y``: the instance attribute a write lands in."""
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            return node.attr
        node = node.value
    return None


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _is_container_value(node: ast.expr | None) -> bool:
    if isinstance(node, (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)):
        return True
    return isinstance(node, ast.Call) and _call_name(node) in CONTAINER_FACTORIES


def _is_state_handle(node: ast.expr | None) -> bool:
    """``ctx.get_state(...)``, ``get_map_state``, ``get_broadcast_state``...: a Flink state handle."""
    name = _call_name(node) if node is not None else None
    return name is not None and name.startswith("get_") and name.endswith("_state")


def _assigned_targets(statement: ast.stmt) -> list[ast.expr]:
    if isinstance(statement, ast.Assign):
        return list(statement.targets)
    if isinstance(statement, (ast.AugAssign, ast.AnnAssign)):
        return [statement.target]
    if isinstance(statement, ast.Delete):
        return list(statement.targets)
    return []


def _flatten_targets(targets: Iterable[ast.expr]) -> Iterator[ast.expr]:
    for target in targets:
        if isinstance(target, (ast.Tuple, ast.List)):
            yield from _flatten_targets(target.elts)
        elif isinstance(target, ast.Starred):
            yield target.value
        else:
            yield target


# Fields the walks skip: the shared operator and context markers (ast.Add(), ast.Load(), ...; no rule looks at
# them, and leaving them out makes a third fewer nodes), and the names, strings and numbers that never hold a
# node (so that a Name or a Constant, the commonest nodes, costs no field look-ups at all).
_SKIPPED_FIELDS = frozenset({"ctx", "op", "ops", "id", "attr", "name", "asname", "arg", "module", "level", "kind",
                             "simple", "is_async", "conversion", "type_comment", "rest", "kwd_attrs", "tag",
                             "lineno"})
_SKIPPED_FIELDS_OF: dict[type[ast.AST], frozenset[str]] = {
    ast.Constant: frozenset({"value"}), ast.MatchSingleton: frozenset({"value"}),
    ast.Global: frozenset({"names"}), ast.Nonlocal: frozenset({"names"}),
}
_CHILD_FIELDS: dict[type[ast.AST], tuple[str, ...]] = {}
# The nodes whose parent a rule asks for (method chains, assignments of calls, config keys): only these are
# recorded in the parent map, which keeps it a fraction of the tree's size.
_PARENT_TRACKED: tuple[type[ast.AST], ...] = (ast.Call, ast.Attribute, ast.Constant)


def _walk(root: ast.AST, parents: dict[ast.AST, ast.AST] | None = None) -> list[ast.AST]:
    """The nodes of ``ast.walk(root)`` in its (breadth-first) order, without the operator and context markers
    (see ``_SKIPPED_FIELDS``); with ``parents``, the parent of each call, attribute and constant is recorded
    there as well (``_PARENT_TRACKED``).

    Iterative (no recursion limit) and over twice as fast as ``ast.walk`` on a large module: it looks up each
    node type's child fields once instead of going through ``ast.iter_child_nodes`` and ``ast.iter_fields``
    for every node, and visits a third fewer nodes.
    """
    nodes: list[ast.AST] = [root]
    append = nodes.append
    node_type = ast.AST
    index = 0
    while index < len(nodes):  # the list is the queue: appended at the end, read from the front
        node = nodes[index]
        index += 1
        fields = _CHILD_FIELDS.get(type(node))
        if fields is None:
            skipped = _SKIPPED_FIELDS | _SKIPPED_FIELDS_OF.get(type(node), frozenset())
            fields = _CHILD_FIELDS[type(node)] = tuple(f for f in type(node)._fields if f not in skipped)
        for name in fields:
            value = getattr(node, name, None)
            if type(value) is list:  # the parser's sequences are plain lists
                for item in value:
                    if isinstance(item, node_type):
                        append(item)
                        if parents is not None and type(item) in _PARENT_TRACKED:
                            parents[item] = node
            elif isinstance(value, node_type):
                append(value)
                if parents is not None and type(value) in _PARENT_TRACKED:
                    parents[value] = node
    return nodes


class _Checker:
    def __init__(self, tree: ast.Module, path: str, partitions: int | None) -> None:
        self.tree = tree
        self.path = path
        self.partitions = partitions
        self.findings: list[Finding] = []
        # Every rule scans the module for a few node types: walk it once and sort its nodes by type (each list
        # in walk order), so that a rule reads only the nodes it can use.
        self.parents: dict[ast.AST, ast.AST] = {}  # of calls, attributes and constants only (see _walk)
        by_type: dict[type[ast.AST], list[ast.AST]] = {}
        for node in _walk(tree, self.parents):
            kind = type(node)
            bucket = by_type.get(kind)
            if bucket is None:
                by_type[kind] = [node]
            else:
                bucket.append(node)
        self.calls: list[ast.Call] = [n for n in by_type.get(ast.Call, ()) if isinstance(n, ast.Call)]
        self.classes: list[ast.ClassDef] = [n for n in by_type.get(ast.ClassDef, ()) if isinstance(n, ast.ClassDef)]
        self.functions: list[ast.FunctionDef | ast.AsyncFunctionDef] = [
            n for kind in (ast.FunctionDef, ast.AsyncFunctionDef) for n in by_type.get(kind, ())
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        self.string_constants: list[ast.Constant] = [n for n in by_type.get(ast.Constant, ())
                                                     if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        self.imports_pyflink = any(
            isinstance(n, ast.ImportFrom) and (n.module or "").startswith("pyflink")
            for n in by_type.get(ast.ImportFrom, ())) or any(
            isinstance(n, ast.Import) and any(a.name.startswith("pyflink") for a in n.names)
            for n in by_type.get(ast.Import, ()))
        self.env_calls = [n for n in self.calls if _call_name(n) in ("get_execution_environment", "create")
                          and self._is_env_call(n)]
        self._subtrees: dict[ast.AST, list[ast.AST]] = {}
        self._function_classes_found: list[ast.ClassDef] | None = None
        self._user_functions_found: list[ast.AST] | None = None

    def subtree(self, node: ast.AST) -> list[ast.AST]:
        """``node`` and every node below it (see ``_walk``), walked once per node however often asked for."""
        nodes = self._subtrees.get(node)
        if nodes is None:
            nodes = self._subtrees[node] = _walk(node)
        return nodes

    def _is_env_call(self, call: ast.Call) -> bool:
        name = _call_name(call)
        if name == "get_execution_environment":
            return True
        # TableEnvironment.create(...) / StreamTableEnvironment.create(...)
        return isinstance(call.func, ast.Attribute) and _tail_name(call.func.value) in (
            "TableEnvironment", "StreamTableEnvironment")

    def add(self, node: ast.AST, rule_id: str, message: str) -> None:
        rule = RULES[rule_id]
        line, column = getattr(node, "lineno", 1), getattr(node, "col_offset", 0)
        if isinstance(node, ast.Attribute) and node.end_lineno is not None and node.end_col_offset is not None:
            # Point at the method name, not at the start of the chain it ends.
            line, column = node.end_lineno, node.end_col_offset - len(node.attr)
        self.findings.append(Finding(self.path, line, column, rule.id, rule.name, message, rule.why, rule.fix))

    def run(self) -> list[Finding]:
        self.check_non_keyed_state()
        self.check_state_ttl()
        if self.imports_pyflink:
            self.check_uids()
        self.check_max_parallelism()
        self.check_execution_mode()
        if self.partitions is not None:
            self.check_source_parallelism(self.partitions)
        return self.findings

    # --- FSL001 --------------------------------------------------------------------------------
    def _function_classes(self) -> list[ast.ClassDef]:
        """Classes deriving from a Flink function base, directly or through the job's own classes (in walk order)."""
        if self._function_classes_found is not None:
            return self._function_classes_found
        by_base: dict[str, list[ast.ClassDef]] = {}
        for cls in self.classes:
            for base in cls.bases:
                name = _tail_name(base)
                if name is not None:
                    by_base.setdefault(name, []).append(cls)
        # Subclasses of the job's own function classes count too: follow class names from the Flink bases down.
        pending = list(FUNCTION_BASES)
        known = set(pending)
        found: set[ast.ClassDef] = set()
        while pending:
            for cls in by_base.get(pending.pop(), ()):
                if cls not in found:
                    found.add(cls)
                    if cls.name not in known:
                        known.add(cls.name)
                        pending.append(cls.name)
        self._function_classes_found = [cls for cls in self.classes if cls in found]
        return self._function_classes_found

    def _module_containers(self) -> set[str]:
        names: set[str] = set()
        for statement in self.tree.body:
            value = getattr(statement, "value", None)
            if isinstance(statement, (ast.Assign, ast.AnnAssign)) and _is_container_value(value):
                for target in _flatten_targets(_assigned_targets(statement)):
                    if isinstance(target, ast.Name):
                        names.add(target.id)
        return names

    def _user_functions(self) -> list[ast.AST]:
        """Module-level or nested functions and lambdas that process records (not methods), each once."""
        if self._user_functions_found is not None:
            return self._user_functions_found
        by_name: dict[str, list[ast.AST]] = {}
        functions: dict[ast.AST, None] = {}  # insertion-ordered set: a function handed to two operators is one
        for function in self.functions:
            by_name.setdefault(function.name, []).append(function)
            if any(_tail_name(d.func if isinstance(d, ast.Call) else d) in UDF_DECORATORS
                   for d in function.decorator_list):
                functions[function] = None
        for node in self.calls:
            name = _call_name(node)
            if not (name in FUNCTION_TAKING_METHODS and isinstance(node.func, ast.Attribute)) \
                    and name not in UDF_DECORATORS:
                continue
            for argument in [*node.args, *(k.value for k in node.keywords)]:
                if isinstance(argument, ast.Lambda):
                    functions[argument] = None
                elif isinstance(argument, ast.Name):
                    functions.update(dict.fromkeys(by_name.get(argument.id, ())))
        self._user_functions_found = list(functions)
        return self._user_functions_found

    def check_non_keyed_state(self) -> None:
        module_containers = self._module_containers()
        for cls in self._function_classes():
            methods = [m for m in cls.body if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))]
            state_handles: set[str] = set()
            containers: set[str] = set()
            for statement in cls.body:  # class-level containers are shared by every instance
                if isinstance(statement, (ast.Assign, ast.AnnAssign)) and _is_container_value(statement.value):
                    containers.update(t.id for t in _flatten_targets(_assigned_targets(statement))
                                      if isinstance(t, ast.Name))
            for method in methods:
                for node in self.subtree(method):
                    if isinstance(node, (ast.Assign, ast.AnnAssign)):
                        for target in _flatten_targets(_assigned_targets(node)):
                            attribute = _self_attribute(target)
                            if attribute is None or not isinstance(target, ast.Attribute):
                                continue
                            if _is_state_handle(node.value):
                                state_handles.add(attribute)
                            elif _is_container_value(node.value):
                                containers.add(attribute)
            for method in methods:
                if method.name in LIFECYCLE_METHODS:
                    continue
                self._check_writes(method, f"{cls.name}.{method.name}", state_handles, containers,
                                   module_containers)
        for function in self._user_functions():
            label = getattr(function, "name", "lambda")
            self._check_writes(function, label, set(), set(), module_containers)

    def _check_writes(self, function: ast.AST, label: str, state_handles: set[str], containers: set[str],
                      module_containers: set[str]) -> None:
        nodes = self.subtree(function)
        declared: set[str] = set()
        for node in nodes:
            if isinstance(node, (ast.Global, ast.Nonlocal)):
                declared.update(node.names)
        mutable_names = module_containers | declared
        for node in nodes:
            if isinstance(node, ast.stmt):
                for target in _flatten_targets(_assigned_targets(node)):
                    attribute = _self_attribute(target)
                    if attribute is not None:
                        value = getattr(node, "value", None)
                        if attribute in state_handles or _is_state_handle(value):
                            continue
                        self.add(node, "FSL001", f"{label} writes instance attribute self.{attribute} while "
                                                 "processing records")
                        continue
                    root = _root_name(target)
                    if root is None:
                        continue
                    if isinstance(target, ast.Name) and root in declared:
                        self.add(node, "FSL001", f"{label} writes global/nonlocal {root!r} while processing records")
                    elif not isinstance(target, ast.Name) and root in mutable_names:
                        self.add(node, "FSL001", f"{label} mutates module-level {root!r} while processing records")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in MUTATING_METHODS:
                receiver = node.func.value
                attribute = _self_attribute(receiver) if isinstance(receiver, (ast.Attribute, ast.Subscript)) else None
                if attribute is not None and attribute in containers and attribute not in state_handles:
                    self.add(node, "FSL001", f"{label} mutates instance attribute self.{attribute} "
                                             f"(.{node.func.attr}) while processing records")
                elif attribute is None:
                    root = _root_name(receiver)
                    if root is not None and root in module_containers:
                        self.add(node, "FSL001", f"{label} mutates module-level {root!r} (.{node.func.attr}) while "
                                                 "processing records")

    # --- FSL002 --------------------------------------------------------------------------------
    def check_state_ttl(self) -> None:
        ttl_receivers: set[str] = set()
        broadcast_names: set[str] = set()
        broadcast_nodes: set[ast.AST] = set()
        for node in self.calls:
            if not isinstance(node.func, ast.Attribute):
                continue
            if node.func.attr == "enable_time_to_live":
                ttl_receivers.add(ast.unparse(node.func.value))
            if node.func.attr in ("broadcast", "get_broadcast_state"):
                for argument in node.args:
                    broadcast_nodes.add(argument)
                    broadcast_names.add(ast.unparse(argument))
        # State declared in triggers and window functions is scoped to a window and purged with it.
        window_scoped: set[ast.AST] = set()
        for cls in self.classes:
            if any(_tail_name(b) in WINDOW_SCOPED_BASES for b in cls.bases):
                window_scoped.update(self.subtree(cls))
        for node in self.calls:
            if _call_name(node) not in STATE_DESCRIPTORS:
                continue
            if node in broadcast_nodes or node in window_scoped:
                continue
            parent = self.parents.get(node)
            bound = None
            if isinstance(parent, (ast.Assign, ast.AnnAssign)) and parent.value is node:
                targets = list(_flatten_targets(_assigned_targets(parent)))
                if len(targets) == 1:
                    bound = ast.unparse(targets[0])
            if bound is not None and (bound in ttl_receivers or bound in broadcast_names):
                continue
            kind = _call_name(node)
            where = f" {bound}" if bound else ""
            self.add(node, "FSL002", f"{kind}{where} is created without enable_time_to_live(...)")

    # --- FSL003 --------------------------------------------------------------------------------
    def _chain_after(self, call: ast.Call) -> tuple[list[str], ast.AST]:
        """Method names called on the result of ``call`` (in order) and the outermost chain expression."""
        names: list[str] = []
        node: ast.AST = call
        while True:
            parent = self.parents.get(node)
            grandparent = self.parents.get(parent) if parent is not None else None
            if isinstance(parent, ast.Attribute) and isinstance(grandparent, ast.Call) and grandparent.func is parent:
                names.append(parent.attr)
                node = grandparent
                continue
            return names, node

    def _chain_before(self, call: ast.Call) -> list[str]:
        names: list[str] = []
        node: ast.expr = call.func.value if isinstance(call.func, ast.Attribute) else call
        while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            names.append(node.func.attr)
            node = node.func.value
        return names

    def check_uids(self) -> None:
        # Per receiver expression (as written), the last line with a `.uid(...)` call on it.
        last_uid_line: dict[str, int] = {}
        for n in self.calls:
            if isinstance(n.func, ast.Attribute) and n.func.attr == "uid":
                receiver = ast.unparse(n.func.value)
                last_uid_line[receiver] = max(n.lineno, last_uid_line.get(receiver, n.lineno))
        # Record-processing code (function classes, UDFs) never builds operators: a `.map`/`.apply` in there
        # is pandas or a helper's method, not a DataStream operator.
        inside_functions: set[ast.AST] = set()
        for cls in self._function_classes():
            inside_functions.update(self.subtree(cls))
        for function in self._user_functions():
            inside_functions.update(self.subtree(function))
        for node in self.calls:
            if not isinstance(node.func, ast.Attribute) or node in inside_functions:
                continue
            if isinstance(node.func.value, ast.Name) and node.func.value.id in ("self", "cls"):
                continue  # the object's own method, not a stream's
            method = node.func.attr
            if method in KEYED_ONLY_OPERATORS:
                if not set(self._chain_before(node)) & KEYED_CONTEXT:
                    continue
            elif method not in OPERATOR_METHODS:
                continue
            if set(self._chain_before(node)) & TABLE_METHODS:
                continue
            following, outermost = self._chain_after(node)
            has_uid = False
            for name in following:
                if name == "uid":
                    has_uid = True
                    break
                if name in OPERATOR_METHODS or name in KEYED_ONLY_OPERATORS:
                    break
            if not has_uid and all(n not in OPERATOR_METHODS for n in following):
                # `stream = ds.map(f)` then `stream.uid("x")` on a later line.
                parent = self.parents.get(outermost)
                if isinstance(parent, ast.Assign) and len(parent.targets) == 1:
                    target = ast.unparse(parent.targets[0])
                    has_uid = last_uid_line.get(target, -1) >= parent.lineno
            if not has_uid:
                self.add(node.func, "FSL003", f"operator .{method}(...) has no .uid(...)")

    # --- FSL004 / FSL005 ------------------------------------------------------------------------
    def check_max_parallelism(self) -> None:
        if not self.env_calls:
            return
        calls = any(_call_name(n) == "set_max_parallelism" for n in self.calls)
        configured = any(c.value == "pipeline.max-parallelism" for c in self.string_constants)
        if not calls and not configured:
            self.add(self.env_calls[0], "FSL004", "the job never sets max parallelism")

    def _config_value(self, key_node: ast.Constant) -> ast.expr | None:
        """The value paired with a config key: the next call argument, or the dict value."""
        parent = self.parents.get(key_node)
        if isinstance(parent, ast.Call):
            arguments = parent.args
            for index, argument in enumerate(arguments):
                if argument is key_node and index + 1 < len(arguments):
                    return arguments[index + 1]
        if isinstance(parent, ast.Dict):
            for key, value in zip(parent.keys, parent.values, strict=True):
                if key is key_node:
                    return value
        return None

    def check_execution_mode(self) -> None:
        mentions = [c for c in self.string_constants if c.value == "python.execution-mode"]
        for mention in mentions:
            value = self._config_value(mention)
            if isinstance(value, ast.Constant) and isinstance(value.value, str) \
                    and value.value.strip().lower() == "process":
                self.add(mention, "FSL005", "python.execution-mode is set to process")
        if not mentions and self.env_calls and self.imports_pyflink:
            self.add(self.env_calls[0], "FSL005", "python.execution-mode is not set, so it defaults to process")

    # --- FSL006 --------------------------------------------------------------------------------
    def check_source_parallelism(self, partitions: int) -> None:
        default = self._default_parallelism()
        for node in self.calls:
            if not (isinstance(node.func, ast.Attribute) and node.func.attr in SOURCE_METHODS):
                continue
            parallelism = self._chained_parallelism(node)
            origin = "set_parallelism on the source"
            if parallelism is None:
                parallelism, origin = default, "the job's default parallelism"
            if parallelism is not None and parallelism > partitions:
                self.add(node.func, "FSL006", f"source parallelism {parallelism} ({origin}) is above the topic's "
                                              f"{partitions} partitions: {parallelism - partitions} subtasks idle")

    def _chained_parallelism(self, call: ast.Call) -> int | None:
        node: ast.AST = call
        while True:
            parent = self.parents.get(node)
            grandparent = self.parents.get(parent) if parent is not None else None
            if not (isinstance(parent, ast.Attribute) and isinstance(grandparent, ast.Call)
                    and grandparent.func is parent):
                return None
            if parent.attr == "set_parallelism":
                return _int_constant(grandparent.args[0]) if grandparent.args else None
            if parent.attr in OPERATOR_METHODS:
                return None
            node = grandparent

    def _default_parallelism(self) -> int | None:
        env_names: set[str] = set()
        for call in self.env_calls:
            parent = self.parents.get(call)
            if isinstance(parent, ast.Assign):
                env_names.update(ast.unparse(t) for t in parent.targets)
        for node in self.calls:
            if isinstance(node.func, ast.Attribute) and node.func.attr == "set_parallelism" \
                    and ast.unparse(node.func.value) in env_names and node.args:
                return _int_constant(node.args[0])
        for constant in self.string_constants:
            if constant.value == "parallelism.default":
                value = self._config_value(constant)
                if isinstance(value, ast.Constant):
                    return _int_constant(value)
        return None


def _int_constant(node: ast.expr) -> int | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, str)) and not isinstance(node.value, bool):
        try:
            return int(node.value)
        except ValueError:
            return None
    return None
