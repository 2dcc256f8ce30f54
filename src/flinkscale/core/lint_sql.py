"""Static checks of Flink SQL scripts (and SQL strings in PyFlink files) for what defeats scaling or grows state.

``lint_sql(text, filename)`` returns ``core.lint.Finding`` values (file, line, column, rule, why, fix); a script
that does not parse raises ``InputError`` with the parser's message at its line and column. Rules:

=======  =========================  ==================================================================
FSQL001  unbounded-state            a regular join, GROUP BY or DISTINCT outside a window, with neither
                                    ``table.exec.state.ttl`` set nor a ``STATE_TTL`` hint
FSQL002  window-without-watermark   an event-time window TVF over a table without a WATERMARK on its
                                    time column (windows would never fire)
FSQL003  nondeterministic-key       RAND(), UUID(), NOW(), CURRENT_TIMESTAMP ... in a grouping, join or
                                    partitioning key (a replay or a retraction lands elsewhere)
FSQL004  select-star-into-sink      ``INSERT INTO sink SELECT *``: the sink's schema silently follows
                                    every upstream change
FSQL005  low-cardinality-key        grouping only by a low-cardinality value (a BOOLEAN/TINYINT column,
                                    a CASE or literal, a column named like status/country/type): few keys,
                                    so a few subtasks do all the work whatever the parallelism
FSQL006  source-below-parallelism   a Kafka source with fewer partitions than the planned parallelism
=======  =========================  ==================================================================

Parser: sqlglot (its Spark dialect is closest: backquoted identifiers, ``/*+ hints */``, computed columns).
Flink's own planner would be exact, but it needs a JVM (15 s to 90 s here), a catalog with every table's
connector jars, and it stops at the first error; lint must be instant and run where no Flink is. sqlglot does
not know three Flink forms, handled here with offsets kept (replaced by spaces of the same length): the window
TVFs ``TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), ...))`` (read as table ``t``; the window is recorded), the
``WATERMARK FOR`` clause and the ``CREATE TABLE ... WITH (...)`` options (DDL is read by a small parser here),
and the statement forms ``SET``, ``EXECUTE STATEMENT SET``, ``CREATE FUNCTION``. Lint leans towards silence: a
table or view it cannot resolve (defined in a catalog) is assumed fine. sqlglot parses by recursion: a statement
nested deeper than Python's stack allows (about 40 levels of parentheses) is refused as bad input, naming the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from flinkscale.core.errors import InputError
from flinkscale.core.lint import Finding, Rule
from flinkscale.core.sql_script import Statement, position, split_statements, strip_comments, unclosed

SQL_RULES: dict[str, Rule] = {rule.id: rule for rule in (
    Rule("FSQL001", "unbounded-state",
         "a regular join, GROUP BY or DISTINCT keeps state for every key (join side, group) forever: state, "
         "checkpoints and rescale times grow without bound until the job fails",
         "SET 'table.exec.state.ttl' = '1 d' (or a /*+ STATE_TTL(...) */ hint), or use a window / interval / "
         "temporal join or a window aggregation whose state is freed when the window fires"),
    Rule("FSQL002", "window-without-watermark",
         "an event-time window fires only when the watermark passes its end; the table has no WATERMARK on "
         "this column, so the windows never fire (or the planner rejects the time attribute)",
         "declare WATERMARK FOR <column> AS <column> - INTERVAL '5' SECOND in the source table, or window on "
         "a PROCTIME() column"),
    Rule("FSQL003", "nondeterministic-key",
         "a key computed by a non-deterministic function differs between a record and its replay or "
         "retraction: state is split across keys at random and results are wrong after a failure or rescale",
         "key by a column of the record (or a deterministic function of it)"),
    Rule("FSQL004", "select-star-into-sink",
         "SELECT * into a sink couples the sink's schema to every upstream change: an added column fails the "
         "job or shifts values into the wrong sink columns on the next deployment, often a restart from a "
         "savepoint",
         "list the columns the sink expects"),
    Rule("FSQL005", "low-cardinality-key",
         "grouping only by a value with few distinct values gives few keys: the keyed operator cannot use more "
         "subtasks than keys and one hot value loads one subtask (skew); adding parallelism does not help",
         "group by a higher-cardinality key (plus the low one), pre-aggregate (table.optimizer.agg-phase-strategy "
         "TWO_PHASE) or salt the key"),
    Rule("FSQL006", "source-below-parallelism",
         "a Kafka source reads whole partitions: with fewer partitions than subtasks, the extra subtasks read "
         "nothing and, without idleness configured, hold back the watermark of the whole job",
         "give the topic at least as many partitions as the planned parallelism (ideally a multiple), or set "
         "'scan.parallelism' on the table to the partition count"),
)}

DIALECT = "spark"
NONDETERMINISTIC = frozenset({"RAND", "RAND_INTEGER", "RANDOM", "UUID", "NOW", "CURRENT_TIMESTAMP", "CURRENT_TIME",
                              "CURRENT_DATE", "LOCALTIME", "LOCALTIMESTAMP", "CURRENT_ROW_TIMESTAMP",
                              "UNIX_TIMESTAMP"})
LOW_CARDINALITY_TYPES = ("BOOLEAN", "TINYINT")
LOW_CARDINALITY_NAMES = re.compile(r"^(is_\w+|has_\w+|status|state|type|kind|gender|country|country_code|region|"
                                   r"continent|currency|level|severity|priority|category|device_type|os|platform|"
                                   r"browser|channel|env|environment|bucket|flag|enabled|active)$", re.IGNORECASE)
WINDOW_COLUMNS = frozenset({"window_start", "window_end", "window_time"})
KAFKA_CONNECTORS = frozenset({"kafka", "upsert-kafka"})

_SET = re.compile(r"^\s*SET\s+'([^']+)'\s*=\s*'((?:[^']|'')*)'\s*$", re.IGNORECASE | re.DOTALL)
_SKIP = re.compile(r"^\s*(RESET|USE|ADD\s+JAR|REMOVE\s+JAR|LOAD\s+MODULE|UNLOAD\s+MODULE|SHOW|DESCRIBE|DESC|"
                   r"EXPLAIN|DROP|ALTER|BEGIN\s+STATEMENT\s+SET|END\b|CREATE\s+(TEMPORARY\s+)?(SYSTEM\s+)?FUNCTION|"
                   r"CREATE\s+CATALOG|CREATE\s+DATABASE|ANALYZE|COMPILE\s+PLAN|EXECUTE\s+PLAN)", re.IGNORECASE)
_CREATE_TABLE = re.compile(r"^\s*CREATE\s+(?:TEMPORARY\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([\w.`]+)\s*\(",
                           re.IGNORECASE)
_CREATE_VIEW = re.compile(r"^\s*CREATE\s+(?:TEMPORARY\s+)?VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?([\w.`]+)"
                          r"(?:\s*\([^)]*\))?\s+AS\s+", re.IGNORECASE)
_STATEMENT_SET = re.compile(r"^\s*EXECUTE\s+STATEMENT\s+SET\s+BEGIN\b", re.IGNORECASE)
_WINDOW_TVF = re.compile(r"TABLE\s*\(\s*(TUMBLE|HOP|CUMULATE|SESSION)\s*\(\s*(?:DATA\s*=>\s*)?TABLE\s+([\w.`]+)",
                         re.IGNORECASE)
_DESCRIPTOR = re.compile(r"DESCRIPTOR\s*\(\s*`?(\w+)`?\s*\)", re.IGNORECASE)
_STATE_TTL_HINT = re.compile(r"/\*\+[^*]*\bSTATE_TTL\s*\(", re.IGNORECASE)
_OPTION = re.compile(r"'((?:[^']|'')*)'\s*=\s*'((?:[^']|'')*)'")


@dataclass
class TableInfo:
    name: str
    columns: dict[str, str] = field(default_factory=dict)  # lower name -> type text (upper)
    watermarked: set[str] = field(default_factory=set)
    proctime: set[str] = field(default_factory=set)
    options: dict[str, str] = field(default_factory=dict)
    line: int = 1
    column: int = 1


@dataclass(frozen=True)
class WindowUse:
    kind: str
    source: str
    time_column: str
    offset: int  # in the file


@dataclass
class _Script:
    filename: str
    text: str
    partitions: Mapping[str, int] | int | None
    parallelism: int | None
    tables: dict[str, TableInfo] = field(default_factory=dict)
    views: dict[str, list[str]] = field(default_factory=dict)  # view -> tables it reads
    config: dict[str, str] = field(default_factory=dict)
    read_tables: set[str] = field(default_factory=set)
    findings: list[Finding] = field(default_factory=list)
    keyed_views: set[str] = field(default_factory=set)
    # (sink table, tables and views read, whether the INSERT's own query has a keyed stage)
    inserts: list[tuple[str, list[str], bool]] = field(default_factory=list)

    def add(self, rule_id: str, offset: int, message: str) -> None:
        rule = SQL_RULES[rule_id]
        line, column = position(self.text, offset)
        # Finding.column is 0-based (format_text prints column + 1), like the Python lint.
        self.findings.append(Finding(self.filename, line, column - 1, rule.id, rule.name, message, rule.why,
                                     rule.fix))

    @property
    def state_ttl(self) -> bool:
        ttl = self.config.get("table.exec.state.ttl", "").strip().lower()
        return bool(ttl) and ttl not in ("0", "0 ms", "0ms", "0 s", "0s")


def _key(name: str) -> str:
    return name.replace("`", "").split(".")[-1].lower()


@dataclass(frozen=True)
class ScriptModel:
    """What a script declares and runs: tables, views (keyed or not) and INSERTs; for ``plan --sql``."""

    tables: Mapping[str, TableInfo]
    views: Mapping[str, list[str]]
    keyed_views: frozenset[str]
    inserts: tuple[tuple[str, list[str], bool], ...]
    findings: tuple[Finding, ...]


def read_script(text: str, filename: str) -> ScriptModel:
    """Parse a SQL script into its model (InputError when it does not parse)."""
    script = _Script(filename, text, None, None)
    _read_statements(script)
    return ScriptModel(dict(script.tables), dict(script.views), frozenset(script.keyed_views),
                       tuple(script.inserts), tuple(script.findings))


def lint_sql(text: str, filename: str, *, partitions: Mapping[str, int] | int | None = None,
             parallelism: int | None = None) -> tuple[Finding, ...]:
    """Findings for one SQL script, sorted by position. ``partitions``: one count for every topic or a
    topic -> count map; ``parallelism``: the planned parallelism (default: ``SET 'parallelism.default'``)."""
    if isinstance(partitions, int) and partitions < 1:
        raise InputError(f"must be >= 1, got {partitions}", field="partitions")
    if parallelism is not None and parallelism < 1:
        raise InputError(f"must be >= 1, got {parallelism}", field="parallelism")
    script = _Script(filename, text, partitions, parallelism)
    _read_statements(script)
    _check_sources(script)
    unique = {(f.line, f.column, f.rule_id, f.message): f for f in script.findings}
    return tuple(sorted(unique.values(), key=lambda f: (f.line, f.column, f.rule_id)))


def _read_statements(script: _Script) -> None:
    """Read and check every statement of the script (for ``lint`` and ``plan --sql`` alike).

    sqlglot parses (and its generator prints) an expression by recursion, about twenty frames per level of
    parentheses or nested calls, so about 40 levels exhaust Python's stack (subqueries go deeper). No real job
    nests so deep: such a statement is bad input, named by its file, line and column, not a failure of
    flinkscale. One place for both commands, and for the checks that walk the tree after the parse."""
    statements = split_statements(script.text)
    opened = unclosed(script.text, statements)
    if opened is not None:
        line, column = position(script.text, opened[0])
        raise InputError(f"{opened[1]} (the SQL client refuses such a script)",
                         field=f"{script.filename}:{line}:{column}")
    for statement in statements:
        try:
            _lint_statement(script, statement)
        except RecursionError:
            where = f"{script.filename}:{statement.line}:{statement.column}"
            raise InputError("SQL nests too deeply to parse (the parser's limit is about 40 levels of parentheses "
                             "or nested calls)", field=where) from None


def _lint_statement(script: _Script, statement: Statement) -> None:
    raw = statement.text
    clean = strip_comments(raw)
    found = _SET.match(clean)
    if found:
        script.config[found.group(1).strip()] = found.group(2).replace("''", "'")
        return
    if _SKIP.match(clean):
        return
    if _STATEMENT_SET.match(clean):
        inner_start = _STATEMENT_SET.match(clean).end()  # type: ignore[union-attr]
        end = re.search(r"\bEND\s*$", clean, re.IGNORECASE)
        inner = raw[inner_start:end.start() if end else len(raw)]
        for sub in split_statements(inner):
            offset = statement.offset + inner_start + sub.offset
            _lint_statement(script, Statement(sub.text, offset, *position(script.text, offset)))
        return
    table = _CREATE_TABLE.match(clean)
    if table:
        _read_table(script, statement, clean, table)
        return
    view = _CREATE_VIEW.match(clean)
    if view:
        start = view.end()
        select = _parse_query(script, statement, raw[start:], clean[start:], start)
        if select is not None:
            name = _key(view.group(1))
            script.views[name] = sorted(_tables_read(select))
            if _keyed(select):
                script.keyed_views.add(name)
        return
    tree = _parse_query(script, statement, raw, clean, 0)
    if isinstance(tree, exp.Insert) and tree.this is not None and tree.expression is not None:
        target = tree.this.find(exp.Table)
        if target is not None:
            script.inserts.append((_key(target.name), sorted(_tables_read(tree.expression)), _keyed(tree.expression)))


def _read_table(script: _Script, statement: Statement, clean: str, match: re.Match[str]) -> None:
    name = _key(match.group(1))
    info = TableInfo(name, line=statement.line, column=statement.column)
    body_start = match.end()
    body_end = _closing_paren(clean, body_start - 1)
    for part in _split_top_level(clean[body_start:body_end]):
        words = part.split()
        if not words:
            continue
        head = words[0].upper()
        if head == "WATERMARK" and len(words) >= 3:
            info.watermarked.add(_key(words[2]))
        elif head in ("PRIMARY", "CONSTRAINT", "UNIQUE"):
            continue
        elif len(words) >= 2 and words[1].upper() == "AS":
            column = _key(words[0])
            computed = " ".join(words[2:]).upper()
            info.columns[column] = "COMPUTED"
            if computed.startswith("PROCTIME()"):
                info.proctime.add(column)
        elif len(words) >= 2:
            info.columns[_key(words[0])] = " ".join(words[1:]).upper()
    rest = clean[body_end + 1:]
    with_match = re.match(r"\s*WITH\s*\(", rest, re.IGNORECASE)
    if with_match:
        options_end = _closing_paren(rest, with_match.end() - 1)
        info.options = {k.replace("''", "'"): v.replace("''", "'")
                        for k, v in _OPTION.findall(rest[with_match.end():options_end])}
    script.tables[name] = info


def _closing_paren(text: str, open_index: int) -> int:
    depth = 0
    i = open_index
    while i < len(text):
        ch = text[i]
        if ch == "'":
            i = text.find("'", i + 1)
            if i < 0:
                return len(text)
            if i + 1 < len(text) and text[i + 1] == "'":
                i += 2
                continue
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return len(text)


def _split_top_level(text: str) -> Iterator[str]:
    depth, start, quoted = 0, 0, False
    for i, ch in enumerate(text):
        if ch == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif ch in "(<":
            depth += 1
        elif ch in ")>":
            depth -= 1
        elif ch == "," and depth == 0:
            yield text[start:i]
            start = i + 1
    yield text[start:]


def _rewrite_windows(clean: str) -> tuple[str, dict[str, tuple[str, str, str, int]]]:
    """Replace window TVFs by a placeholder table name (same length); placeholder -> (kind, table, col, offset)."""
    windows: dict[str, tuple[str, str, str, int]] = {}
    out = clean
    for number, match in enumerate(reversed(list(_WINDOW_TVF.finditer(clean)))):
        end = _closing_paren(clean, clean.index("(", match.start()))
        span = clean[match.start():end + 1]
        descriptor = _DESCRIPTOR.search(span)
        placeholder = f"__w{number}"
        if len(placeholder) > len(span):
            continue
        windows[placeholder] = (match.group(1).upper(), _key(match.group(2)),
                                _key(descriptor.group(1)) if descriptor else "", match.start())
        replacement = placeholder + "".join("\n" if c == "\n" else " " for c in span[len(placeholder):])
        out = out[:match.start()] + replacement + out[end + 1:]
    return out, windows


def _parse_query(script: _Script, statement: Statement, raw: str, clean: str, start: int) -> exp.Expr | None:
    rewritten, windows = _rewrite_windows(clean)
    # FOR SYSTEM_TIME AS OF (temporal and lookup joins) reads as a versioned table in the Spark dialect.
    rewritten = re.sub(r"FOR\s+SYSTEM_TIME\s+AS\s+OF", lambda m: "TIMESTAMP AS OF".ljust(len(m.group(0))),
                       rewritten, flags=re.IGNORECASE)
    base = statement.offset + start
    try:
        tree = sqlglot.parse_one(rewritten, read=DIALECT)
    except ParseError as exc:
        error = exc.errors[0] if exc.errors else {}
        line_in, col_in = int(error.get("line") or 1), int(error.get("col") or 1)
        line, column = _shift(script.text, base, rewritten, line_in, col_in)
        raise InputError(f"SQL does not parse: {error.get('description', str(exc))} near "
                         f"{str(error.get('highlight') or '')!r}", field=f"{script.filename}:{line}:{column}") from None
    except TokenError as exc:
        line, column = position(script.text, base)
        raise InputError(f"SQL does not parse: {exc}", field=f"{script.filename}:{line}:{column}") from None
    if tree is None:
        return None
    hinted = bool(_STATE_TTL_HINT.search(raw))
    for kind, table, time_column, offset in windows.values():
        script.read_tables.add(table)
        _check_window(script, WindowUse(kind, table, time_column, base + offset))
    if isinstance(tree, exp.Insert):
        _check_insert(script, tree, base)
    for select in tree.find_all(exp.Select):
        _check_select(script, select, base, windows, hinted)
    for table_node in tree.find_all(exp.Table):
        if table_node.name and not table_node.name.startswith("__w"):
            script.read_tables.add(_key(table_node.name))
    for placeholder_table in tree.find_all(exp.Table):
        if placeholder_table.name in windows:
            placeholder_table.set("this", exp.to_identifier(windows[placeholder_table.name][1]))
    return tree


def _shift(text: str, base: int, piece: str, line_in: int, col_in: int) -> tuple[int, int]:
    lines = piece.split("\n")
    offset_in = sum(len(s) + 1 for s in lines[:line_in - 1]) + max(col_in - 1, 0)
    return position(text, base + offset_in)


def _node_offset(node: exp.Expr) -> int | None:
    starts = [n.meta["start"] for n in node.walk() if isinstance(n, exp.Expr) and "start" in n.meta]
    return min(starts) if starts else None


def _check_insert(script: _Script, insert: exp.Insert, base: int) -> None:
    query = insert.expression
    selects = [query] if isinstance(query, exp.Select) else list(query.find_all(exp.Select)) if query else []
    if selects and any(isinstance(e, exp.Star) for e in selects[0].expressions):
        target = insert.this.find(exp.Table) if insert.this is not None else None
        name = target.name if target is not None else "the sink"
        offset = _node_offset(selects[0]) or _node_offset(insert) or 0
        script.add("FSQL004", base + offset, f"INSERT INTO {name} SELECT *")


def _tables_read(tree: exp.Expr) -> set[str]:
    return {_key(t.name) for t in tree.find_all(exp.Table) if t.name}


def _keyed(tree: exp.Expr) -> bool:
    """Whether the query shuffles by key: GROUP BY, DISTINCT or a (non-temporal) join."""
    for select in tree.find_all(exp.Select):
        if select.args.get("group") is not None or select.args.get("distinct") is not None:
            return True
        for join in select.args.get("joins") or []:
            if not (isinstance(join.this, exp.Table) and join.this.args.get("version") is not None):
                return True
    return False


def _check_select(script: _Script, select: exp.Select, base: int,
                  windows: Mapping[str, tuple[str, str, str, int]], hinted: bool) -> None:
    from_tables = [t for t in _direct_tables(select)]
    windowed = any(t.name in windows for t in from_tables)
    bounded = script.state_ttl or hinted
    group = select.args.get("group")
    if group is not None:
        keys = list(group.expressions)
        legacy_window = any(isinstance(k, exp.Anonymous) and k.name.upper() in ("TUMBLE", "HOP", "SESSION")
                            for k in keys)
        offset = base + (_node_offset(group) or _node_offset(select) or 0)
        if not windowed and not legacy_window and not bounded:
            script.add("FSQL001", offset, "GROUP BY outside a window keeps a state entry per group forever")
        _check_keys(script, keys, base, "GROUP BY")
        plain = [k for k in keys if not (isinstance(k, exp.Column) and k.name.lower() in WINDOW_COLUMNS)
                 and not (isinstance(k, exp.Anonymous) and k.name.upper() in ("TUMBLE", "HOP", "SESSION"))]
        if plain and all(_low_cardinality(script, k, from_tables) for k in plain):
            names = ", ".join(k.sql(dialect=DIALECT) for k in plain)
            script.add("FSQL005", base + (_node_offset(plain[0]) or 0),
                       f"grouping only by low-cardinality {names}")
    distinct = select.args.get("distinct") is not None or any(
        isinstance(a, exp.Count) and isinstance(a.this, exp.Distinct) for a in select.find_all(exp.Count))
    if distinct and group is None and not windowed and not bounded:
        script.add("FSQL001", base + (_node_offset(select) or 0),
                   "DISTINCT outside a window keeps every distinct value forever")
    for join in select.args.get("joins") or []:
        _check_join(script, join, base, windows, bounded)
    for window in select.find_all(exp.Window):
        _check_keys(script, list(window.args.get("partition_by") or []), base, "PARTITION BY")


def _direct_tables(select: exp.Select) -> list[exp.Table]:
    tables: list[exp.Table] = []
    source = select.args.get("from_") or select.args.get("from")
    if source is not None and isinstance(source.this, exp.Table):
        tables.append(source.this)
    for join in select.args.get("joins") or []:
        if isinstance(join.this, exp.Table):
            tables.append(join.this)
    return tables


def _check_join(script: _Script, join: exp.Join, base: int, windows: Mapping[str, tuple[str, str, str, int]],
                bounded: bool) -> None:
    right = join.this
    condition = join.args.get("on")
    temporal = isinstance(right, exp.Table) and right.args.get("version") is not None
    window_join = isinstance(right, exp.Table) and right.name in windows
    interval = condition is not None and (condition.find(exp.Between) is not None
                                          or condition.find(exp.Interval) is not None)
    if condition is not None:
        keys = [side for eq in condition.find_all(exp.EQ) for side in (eq.left, eq.right)]
        _check_keys(script, keys, base, "join key")
    if not (temporal or window_join or interval or bounded):
        name = right.name if isinstance(right, exp.Table) else "a subquery"
        script.add("FSQL001", base + (_node_offset(join) or 0),
                   f"regular join with {name} keeps both inputs in state forever")


def _check_keys(script: _Script, keys: Iterable[exp.Expr], base: int, what: str) -> None:
    for key in keys:
        for node in key.walk():
            if not isinstance(node, exp.Func):
                continue
            name = node.name.upper() if isinstance(node, exp.Anonymous) else node.sql_name().upper()
            if name in NONDETERMINISTIC or isinstance(node, (exp.Rand, exp.CurrentTimestamp, exp.CurrentDate,
                                                             exp.CurrentTime)):
                script.add("FSQL003", base + (_node_offset(node) or _node_offset(key) or 0),
                           f"{what} uses the non-deterministic {name}()")
                break


def _low_cardinality(script: _Script, key: exp.Expr, tables: list[exp.Table]) -> bool:
    if isinstance(key, (exp.Case, exp.Literal, exp.Boolean)):
        return True
    if not isinstance(key, exp.Column):
        return False
    column = key.name.lower()
    for table in tables:
        for base_table in _resolve(script, _key(table.name)):
            column_type = base_table.columns.get(column, "")
            if column_type.startswith(LOW_CARDINALITY_TYPES):
                return True
    return bool(LOW_CARDINALITY_NAMES.match(column))


def _resolve(script: _Script, name: str) -> list[TableInfo]:
    """The declared tables behind table or view ``name``, each once. Every view is followed once, however many
    paths lead to it (views reading views in a diamond cost one visit each, not one per path) and a cycle ends;
    a name neither declared nor a view (a catalog table) adds nothing."""
    found: dict[str, TableInfo] = {}
    seen: set[str] = set()
    pending = [name]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        if current in script.tables:
            found[current] = script.tables[current]
        else:
            pending.extend(script.views.get(current, ()))
    return list(found.values())


def _check_window(script: _Script, window: WindowUse) -> None:
    bases = _resolve(script, window.source)
    if not bases or not window.time_column:
        return  # a catalog table or a view we cannot follow: say nothing
    if any(window.time_column in t.watermarked or window.time_column in t.proctime for t in bases):
        return
    if not any(window.time_column in t.columns for t in bases):
        return  # the column is computed in a view: cannot tell
    script.add("FSQL002", window.offset,
               f"{window.kind} window on {window.source}.{window.time_column}, which has no WATERMARK")


def _check_sources(script: _Script) -> None:
    planned = script.parallelism
    if planned is None:
        default = script.config.get("parallelism.default", "").strip()
        planned = int(default) if default.isdigit() else None
    if planned is None or script.partitions is None:
        return
    for name in sorted(script.read_tables):
        table = script.tables.get(name)
        if table is None or table.options.get("connector") not in KAFKA_CONNECTORS:
            continue
        topic = table.options.get("topic", "")
        partitions = script.partitions if isinstance(script.partitions, int) else script.partitions.get(topic)
        if partitions is None:
            continue
        scan = table.options.get("scan.parallelism", "").strip()
        parallelism = int(scan) if scan.isdigit() else planned
        if partitions < parallelism:
            line_offset = _line_offset(script.text, table.line, table.column)
            script.add("FSQL006", line_offset,
                       f"source {name} reads topic {topic!r} with {partitions} partition(s) at parallelism "
                       f"{parallelism}")


def _line_offset(text: str, line: int, column: int) -> int:
    lines = text.split("\n")
    return sum(len(s) + 1 for s in lines[:line - 1]) + column - 1


# --- SQL inside PyFlink files -------------------------------------------------------------------------------

_SQL_CALLS = ("execute_sql", "sql_query", "add_insert_sql", "explain_sql")


def sql_strings_in_python(source: str) -> list[tuple[str, int]]:
    """(SQL text, offset in the file) of every constant string passed to a Table API SQL method."""
    import ast

    if not any(name in source for name in _SQL_CALLS):  # most files: no second parse of a large module
        return []
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    lines = source.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _SQL_CALLS
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            arg = node.args[0]
            value = str(arg.value)
            literal_start = starts[arg.lineno - 1] + len(lines[arg.lineno - 1]
                                                          .encode()[:arg.col_offset].decode(errors="ignore"))
            quote = re.match(r"[rRbBuU]*('''|\"\"\"|'|\")", source[literal_start:])
            offset = literal_start + (quote.end() if quote else 0)
            found.append((value, offset))
    return found


def lint_python_sql(source: str, filename: str, *, partitions: Mapping[str, int] | int | None = None,
                    parallelism: int | None = None) -> tuple[Finding, ...]:
    """Lint the SQL strings of a PyFlink file as one script (tables declared in one call, used in another)."""
    pieces = sql_strings_in_python(source)
    if not pieces:
        return ()
    # One script with each string at its own offset in the file, everything else blanked, so positions are
    # the file's own; ';' between pieces ends each statement.
    chars = ["\n" if c == "\n" else " " for c in source]
    for text, offset in pieces:
        for i, ch in enumerate(text):
            if offset + i < len(chars) and chars[offset + i] != "\n":
                chars[offset + i] = " " if ch == "\n" else ch
        end = offset + len(text)
        if end < len(chars) and chars[end] != "\n":
            chars[end] = ";"
    script = "".join(chars)
    return lint_sql(script, filename, partitions=partitions, parallelism=parallelism)
