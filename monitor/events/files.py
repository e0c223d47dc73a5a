"""Event files: ``events/*.sql``, a YAML header (read by the catalog's own header reader) and a
query returning one row per event.

```sql
/* ---
name: risk_rules                  # unique, [a-z0-9_]+
title: Risk-rule changes from the rule engine's audit log
kind: rule                        # default kind when the query has no kind column
scope: [payment_method, country]  # query columns that narrow an event (NULL = not narrowed)
metrics: [payment_decline_rate]   # optional: only incidents of these metrics are linked
--- */
SELECT changed_at AS ts, rule_id || ' ' || description AS title, url, payment_method, country
FROM rule_changes
```

Columns: ``ts`` (required), ``title`` (required), optional ``end_ts``, ``kind``, ``url``,
``metrics`` (a list or comma-separated names) and the ``scope`` columns. ``$start``/``$end`` may be
used to bound the query; they are bound to the range the cycle looks at.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa

from monitor.catalog.loader import IDENT_RE, NAME_RE, Problem, _key_line, _strip_comments, _suggest, read_header
from monitor.clock import utc_naive
from monitor.errors import MonitorError
from monitor.events.model import Event, stable_event_id

HEADER_KEYS = {
    "name": (True, "unique event source name, [a-z0-9_]+"),
    "title": (False, "what these events are, for people"),
    "description": (False, "longer description"),
    "owner": (False, "who maintains the source"),
    "kind": (False, "default kind of the rows (rule, model, promotion, holiday, deploy, ...)"),
    "scope": (False, "list of query columns that narrow an event to a segment"),
    "metrics": (False, "list of metric names the events are about (default: any metric)"),
    "expected": (False, "true/false: override whether these events are expected changes (default: by kind)"),
}
BASE_COLUMNS = ("ts", "end_ts", "kind", "title", "url", "metrics")
KIND_RE = re.compile(r"^[a-z][a-z0-9_-]*$")


@dataclass(frozen=True)
class EventSource:
    name: str
    sql: str
    path: Path
    sql_line: int
    title: str = ""
    kind: str = ""
    scope: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    expected: bool | None = None

    @property
    def source(self) -> str:
        return f"file:{self.name}"


def load_event_sources(folder: Path) -> tuple[list[EventSource], list[Problem]]:
    """Every ``*.sql`` under ``folder`` (none if it does not exist); problems with file:line."""
    if not folder.is_dir():
        return [], []
    sources, problems, seen = [], [], {}
    for path in sorted(folder.glob("*.sql")):
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(path, 0, f"cannot read file ({exc})"))
            continue
        source, found = parse_event_file(text, path)
        problems += found
        if source is None:
            continue
        if source.name in seen:
            problems.append(Problem(path, 1, f"duplicate event source name {source.name!r}, already defined in "
                                             f"{seen[source.name]}; rename one of them"))
            continue
        seen[source.name] = path
        sources.append(source)
    return sources, problems


def parse_event_file(text: str, path: Path) -> tuple[EventSource | None, list[Problem]]:
    header, problems = read_header(text, path, what="name, kind, scope")
    if header is None:
        return None, problems
    data = header.data

    def problem(key: str | None, message: str) -> None:
        line = header.line_of(key) if key else header.sql_line
        problems.append(Problem(path, line, message))

    for key in data:
        if key not in HEADER_KEYS:
            problem(str(key), f"unknown key {key!r}{_suggest(str(key), HEADER_KEYS)}; valid keys: {', '.join(HEADER_KEYS)}")
    for key, (required, help_) in HEADER_KEYS.items():
        if required and key not in data:
            problems.append(Problem(path, header.first_line, f"missing required key {key!r} ({help_})"))

    def check(key: str, ok: Callable[[Any], bool], message: str) -> None:
        if key in data and not ok(data[key]):
            problem(key, f"{key}: {message}, got {data[key]!r}")

    check("name", lambda v: isinstance(v, str) and bool(NAME_RE.match(v)), "must be lowercase letters, digits and underscores")
    for key in ("title", "description", "owner"):
        check(key, lambda v: isinstance(v, str), "must be a string")
    check("kind", lambda v: isinstance(v, str) and bool(KIND_RE.match(v)), "must be a lowercase word such as rule or promotion")
    check("scope", lambda v: isinstance(v, list) and len(set(map(str, v))) == len(v) and all(
        isinstance(c, str) and IDENT_RE.match(c) and c not in BASE_COLUMNS for c in v),
        f"must be a list of distinct column names (not {', '.join(BASE_COLUMNS)})")
    check("metrics", lambda v: isinstance(v, list) and all(isinstance(n, str) and NAME_RE.match(n) for n in v),
          "must be a list of metric names, e.g. [orders]")
    check("expected", lambda v: isinstance(v, bool), "must be true or false")

    body = _strip_comments(header.sql)
    if not body.strip():
        problem(None, "no SQL query after the header")
    others = sorted(set(re.findall(r"\$([A-Za-z_]\w*)", body)) - {"start", "end"})
    if others:
        problem(None, f"unknown parameter(s) {', '.join('$' + o for o in others)}; only $start and $end are bound")
    if problems:
        return None, problems
    return EventSource(name=data["name"], sql=header.sql.strip().rstrip(";").strip(), path=path,
                       sql_line=header.sql_line, title=data.get("title", ""), kind=data.get("kind", ""),
                       scope=tuple(data.get("scope") or ()), metrics=tuple(data.get("metrics") or ()),
                       expected=data.get("expected")), []


def check_metric_names(sources: list[EventSource], metrics: set[str]) -> list[Problem]:
    """``metrics:`` must name metrics of the catalog (a typo would silently link nothing)."""
    problems = []
    for source in sources:
        for name in source.metrics:
            if name not in metrics:
                problems.append(Problem(source.path, _key_line(source.path, "metrics"),
                                        f"metrics: unknown metric {name!r}{_suggest(name, metrics)}; "
                                        f"valid metrics: {', '.join(sorted(metrics)) or 'none'}"))
    return problems


def run_source(con, source: EventSource, *, start: dt.datetime, end: dt.datetime) -> pa.Table:
    """The raw rows of the source's query on a DuckDB connection (the project's source)."""
    import duckdb

    params = {k: v for k, v in (("start", start), ("end", end)) if re.search(rf"\${k}\b", _strip_comments(source.sql))}
    try:
        return con.execute(source.sql, params).to_arrow_table()
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0]
        raise MonitorError(f"event source {source.name} failed: {first} ({source.path}:{source.sql_line})",
                           evidence=source.sql) from exc


def column_problems(source: EventSource, schema: pa.Schema) -> list[str]:
    """What the dry run finds wrong with the columns, as 'file:line: message' lines."""
    names, problems = schema.names, []
    missing = [c for c in ("ts", "title", *source.scope) if c not in names]
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}; the query must return ts, title and the scope columns")
    if not source.kind and "kind" not in names:
        problems.append("no kind: return a kind column or set `kind:` in the header")
    extra = [c for c in names if c not in (*BASE_COLUMNS, *source.scope)]
    if extra:
        problems.append(f"unexpected column(s) {', '.join(extra)}; list scope columns under `scope:` or drop them")
    for col in ("ts", "end_ts"):
        if col in names:
            t = schema.field(col).type
            if not (pa.types.is_timestamp(t) or pa.types.is_date(t)):
                problems.append(f"column {col} is {t}, expected a timestamp")
    return [f"{source.path}:{source.sql_line}: {p}" for p in problems]


def to_events(source: EventSource, table: pa.Table, expected_kinds: tuple[str, ...]) -> list[Event]:
    """Rows -> events; a row without ts or title is a broken row and raises naming the file."""
    problems = column_problems(source, table.schema)
    if problems:
        raise MonitorError(problems[0])
    events = []
    for row in table.to_pylist():
        ts, title = row.get("ts"), row.get("title")
        if ts is None or not title:
            raise MonitorError(f"{source.path}:{source.sql_line}: a row has no ts or no title ({row})")
        ts, end = _as_datetime(ts), _as_datetime(row.get("end_ts"))
        if end is not None and end <= ts:
            raise MonitorError(f"{source.path}:{source.sql_line}: event {title!r} ends ({end}) before it starts ({ts})")
        kind = str(row.get("kind") or source.kind)
        scope = {c: str(row[c]) for c in source.scope if row.get(c) is not None}
        metrics = _metric_list(row.get("metrics")) or source.metrics
        expected = source.expected if source.expected is not None else kind in expected_kinds
        events.append(Event(event_id=stable_event_id(source.source, kind, str(title), ts, scope), source=source.source,
                            kind=kind, title=str(title), ts=ts, end_ts=end, url=row.get("url") or None, scope=scope,
                            metrics=tuple(metrics), expected=bool(expected), author=source.name))
    return events


def _metric_list(value) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else str(value).split(",")
    return tuple(str(v).strip() for v in items if str(v).strip())


def _as_datetime(value) -> dt.datetime | None:
    """A date or datetime from an event query as the store's naive UTC datetime (None stays None)."""
    if value is None:
        return None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return dt.datetime.combine(value, dt.time())
    return utc_naive(value)

