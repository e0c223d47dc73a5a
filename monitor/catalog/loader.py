"""Load ``metrics/*.sql`` into frozen :class:`Metric` objects.

Every problem in every file is collected, each with file, line and what to do,
so one ``monitor check`` shows them all; the valid metrics are still returned
so that one broken file does not stop the others from running.
"""
from __future__ import annotations

import dataclasses
import difflib
import re
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from monitor.catalog.metric import (
    DEFAULT_BUCKET, DEFAULT_UNITS, DIRECTIONS, GRAINS, KINDS, MEASURES, SEASONALITIES, SENSITIVITIES, SEVERITIES, UNITS,
    DetectSettings, Metric,
)
from monitor.registry import DETECTORS

NAME_RE = re.compile(r"^[a-z0-9_]+$")
IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HEADER_OPEN = re.compile(r"\A(\s*)/\*\s*---[ \t]*\n")
HEADER_CLOSE = re.compile(r"^[ \t]*---\s*\*/", re.M)
RESERVED_COLUMNS = {"ts", *(m for parts in MEASURES.values() for m in parts)}


@dataclass(frozen=True)
class HeaderKey:
    """One header key, declared once: validation, defaults and docs come from here."""

    name: str
    required: bool
    help: str


HEADER_KEYS = {k.name: k for k in [
    HeaderKey("name", True, "unique metric name, [a-z0-9_]+"),
    HeaderKey("kind", True, "ratio (sum(numerator)/sum(denominator)), sum (sum(value)), mean (sum(value_sum)/"
              "sum(value_count), with value_sq_sum for its noise) or distribution (sum(count) per bucket column)"),
    HeaderKey("grain", True, "bucket size: hour or day"),
    HeaderKey("dimensions", True, "list of columns the query groups by (slices)"),
    HeaderKey("schedule", True, "5-field cron expression, e.g. \"0 6 * * *\""),
    HeaderKey("title", False, "human title for alerts, dashboard and reports"),
    HeaderKey("description", False, "what the metric means"),
    HeaderKey("owner", False, "who is paged (person or rotation)"),
    HeaderKey("team", False, "team label used for routing and filters"),
    HeaderKey("runbook", False, "URL of the runbook linked from alerts"),
    HeaderKey("severity", False, "low, medium (default), high or critical"),
    HeaderKey("labels", False, "extra alert labels, a map of strings"),
    HeaderKey("timezone", False, "IANA timezone the schedule is read in (default UTC); buckets are UTC"),
    HeaderKey("lookback", False, "buckets recomputed on every run to pick up late data (default 0)"),
    HeaderKey("unit", False, "percent (default for ratio), count (default for sum, mean, distribution) or currency"),
    HeaderKey("bucket", False, f"distribution only: the query's bucket column (default {DEFAULT_BUCKET}), "
              "e.g. floor(score * 20) / 20 AS bucket"),
    HeaderKey("bounded", False, "true: check numerator <= denominator on every row"),
    HeaderKey("detect", False, "detection settings (min_volume: per-bucket floor for the total; slice_min_volume: for slices): " + ", ".join(
        ["direction", "min_volume", "sensitivity", "seasonality", "slice_min_volume",
         "max_slice_depth", "accept_after", "enabled", "follows", "detector"])),
]}
DETECT_KEYS = set(DetectSettings.__dataclass_fields__)


@dataclass(frozen=True)
class Problem:
    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass(frozen=True)
class Catalog:
    metrics: dict[str, Metric]
    problems: tuple[Problem, ...]
    files: tuple[Path, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def select(self, names: list[str] | tuple[str, ...] | None) -> list[Metric]:
        """The metrics named (all when none are), in name order; unknown names raise."""
        from monitor.errors import MonitorError

        if not names:
            return [self.metrics[n] for n in sorted(self.metrics)]
        missing = [n for n in names if n not in self.metrics]
        if missing:
            known = ", ".join(sorted(self.metrics)) or "none"
            raise MonitorError(f"Unknown or invalid metric(s) {', '.join(missing)}; valid metrics: {known}.")
        return [self.metrics[n] for n in names]


def load_catalog(folder: Path | str) -> Catalog:
    folder = Path(folder)
    if not folder.is_dir():
        return Catalog({}, (Problem(folder, 0, "metrics folder does not exist; create it or fix [project] metrics in monitor.toml"),), ())
    files = tuple(sorted(folder.glob("*.sql")))
    problems: list[Problem] = []
    metrics: dict[str, Metric] = {}
    for path in files:
        metric, file_problems = load_metric_file(path)
        problems.extend(file_problems)
        if metric is None:
            continue
        if metric.name in metrics:
            first = metrics[metric.name].path
            problems.append(Problem(path, _key_line(path, "name"),
                                    f"duplicate metric name {metric.name!r}, already defined in {first}; rename one of them"))
            continue
        metrics[metric.name] = metric
    problems += _check_follows(metrics)
    return Catalog(metrics, tuple(problems), files)


def _check_follows(metrics: dict[str, Metric]) -> list[Problem]:
    """``detect.follows`` names other metrics of the catalog, without cycles (a metric is
    detected after the ones it follows), on a metric whose events can be counted. A name that
    breaks a rule is reported and dropped: the metric still runs, without it."""
    problems = []
    drop: dict[str, set[str]] = {}

    def bad(metric: Metric, name: str, message: str) -> None:
        problems.append(Problem(metric.path, _detect_key_line(metric.path, "follows"), f"detect.follows: {message}"))
        drop.setdefault(metric.name, set()).add(name)

    for metric in metrics.values():
        for name in metric.detect.follows:
            if name == metric.name:
                bad(metric, name, f"{name!r} is this metric itself")
            elif name not in metrics:
                bad(metric, name, f"unknown metric {name!r}{_suggest(name, metrics)}; "
                                  f"valid metrics: {', '.join(sorted(metrics))}")
            elif metric.kind in ("mean", "distribution"):
                bad(metric, name, f"a {metric.kind} metric cannot follow another yet: the segment test counts events "
                                  "of a ratio or a count")
            elif metric.kind == "sum" and metric.unit != "count":
                bad(metric, name, f"needs a ratio metric or a count (unit: count), not a sum of {metric.unit}: "
                                  "the segment test counts events")
    for cycle in _follow_cycles(metrics):
        first = metrics[cycle[0]]
        problems.append(Problem(first.path, _detect_key_line(first.path, "follows"),
                                f"detect.follows makes a cycle ({' -> '.join(cycle + [cycle[0]])}); "
                                "a metric can only follow metrics detected before it"))
        for a, b in zip(cycle, cycle[1:] + cycle[:1]):
            drop.setdefault(a, set()).add(b)
    for name, names in drop.items():
        metric = metrics[name]
        kept = tuple(n for n in metric.detect.follows if n not in names)
        metrics[name] = dataclasses.replace(metric, detect=dataclasses.replace(metric.detect, follows=kept))
    return problems


def _detect_key_line(path: Path, key: str) -> int:
    """Line of ``detect.<key>`` in the file's header (block or flow style), else 1."""
    try:
        text = path.read_text()
        opened = HEADER_OPEN.match(text)
        closed = HEADER_CLOSE.search(text, opened.end()) if opened else None
        if not closed:
            return 1
        first = text.count("\n", 0, opened.end()) + 1
        node = yaml.compose(text[opened.end():closed.start()], Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return 1
    for k, v in getattr(node, "value", []):
        if getattr(k, "value", None) == "detect" and isinstance(v, yaml.MappingNode):
            for dk, _ in v.value:
                if getattr(dk, "value", None) == key:
                    return first + dk.start_mark.line
    return 1


def _follow_cycles(metrics: dict[str, Metric]) -> list[list[str]]:
    cycles, state = [], {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for nxt in metrics[name].detect.follows:
            if nxt not in metrics or nxt == name:
                continue
            if state.get(nxt) == "open":
                cycles.append(path[path.index(nxt):] if nxt in path else [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[name] = "done"

    for name in sorted(metrics):
        if name not in state:
            visit(name, [name])
    return cycles


def load_metric_file(path: Path) -> tuple[Metric | None, list[Problem]]:
    """Parse one file; returns (metric or None, problems)."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(path, 0, f"cannot read file ({exc})")]
    return parse_metric(text, path)


@dataclass(frozen=True)
class Header:
    """A definition file split into its YAML header and its SQL, with the line of every key.

    Shared by every kind of definition file (metrics, events) so that all of them read
    the header the same way and report problems at the same ``file:line``.
    """

    data: dict
    lines: dict[str, int]  # top-level key -> line in the file
    nested_lines: dict[str, dict[str, int]]  # mapping key -> {sub key -> line}
    first_line: int  # line of the first header key
    text: str  # the raw YAML
    sql: str  # everything after the header
    sql_line: int  # line where the query starts

    def line_of(self, key: str) -> int:
        return self.lines.get(key, self.first_line)


def read_header(text: str, path: Path, *, what: str = "name, kind, grain, dimensions, schedule"
                ) -> tuple[Header | None, list[Problem]]:
    """Split ``/* --- yaml --- */ sql``; on failure, the problems (file:line) and None."""
    problems: list[Problem] = []

    def problem(line: int, message: str) -> None:
        problems.append(Problem(path, line, message))

    opened = HEADER_OPEN.match(text)
    if not opened:
        problem(1, "missing YAML header: start the file with '/* ---', the YAML keys, then '--- */'")
        return None, problems
    header_start = opened.end()
    header_first_line = text.count("\n", 0, header_start) + 1
    closed = HEADER_CLOSE.search(text, header_start)
    if not closed:
        problem(header_first_line - 1, "header is never closed: end it with a line '--- */'")
        return None, problems
    header = text[header_start:closed.start()]
    sql = text[closed.end():]
    body_start = closed.end() + (len(sql) - len(sql.lstrip()))
    sql_line = text.count("\n", 0, body_start) + 1

    try:
        node = yaml.compose(header, Loader=yaml.SafeLoader)
        data = yaml.safe_load(header)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = header_first_line + (mark.line if mark else 0)
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        problem(line, f"invalid YAML in header: {reason}; check indentation and quoting (cron strings need quotes)")
        return None, problems
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        problem(header_first_line, f"header must be a YAML mapping of keys such as {what}")
        return None, problems

    lines = {k.value: header_first_line + k.start_mark.line for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
    nested = {k.value: {dk.value: header_first_line + dk.start_mark.line for dk, _ in v.value}
              for k, v in node.value if isinstance(k, yaml.ScalarNode) and isinstance(v, yaml.MappingNode)}
    return Header(data, lines, nested, header_first_line, header, sql, sql_line), []


def parse_metric(text: str, path: Path) -> tuple[Metric | None, list[Problem]]:
    parsed, problems = read_header(text, path)
    if parsed is None:
        return None, problems

    def problem(line: int, message: str) -> None:
        problems.append(Problem(path, line, message))

    data, lines, header_first_line = parsed.data, parsed.lines, parsed.first_line
    header, sql, sql_line = parsed.text, parsed.sql, parsed.sql_line
    detect_lines: dict[str, int] = parsed.nested_lines.get("detect", {})

    def line_of(key: str) -> int:
        return lines.get(key, header_first_line)

    for key in data:
        if key not in HEADER_KEYS:
            problem(line_of(str(key)), f"unknown key {key!r}{_suggest(str(key), HEADER_KEYS)}; valid keys: {', '.join(HEADER_KEYS)}")
    for key in (k for k, spec in HEADER_KEYS.items() if spec.required):
        if key not in data:
            problem(header_first_line, f"missing required key {key!r} ({HEADER_KEYS[key].help})")

    def check(key: str, ok: Callable[[Any], bool], message: str) -> None:
        if key in data and not ok(data[key]):
            problem(line_of(key), f"{key}: {message}, got {data[key]!r}")

    check("name", lambda v: isinstance(v, str) and bool(NAME_RE.match(v)),
          "must be lowercase letters, digits and underscores")
    check("kind", lambda v: v in KINDS, f"must be one of {', '.join(KINDS)}")
    check("grain", lambda v: v in GRAINS, f"must be one of {', '.join(GRAINS)}")
    check("dimensions", _valid_dimensions, "must be a list of distinct column names (not ts or a measure such as "
                                           "numerator/denominator/value/value_sum/count)")
    check("schedule", _valid_cron, "must be a valid 5-field cron expression such as \"0 6 * * *\"")
    for key in ("title", "description", "owner", "team", "runbook"):
        check(key, lambda v: isinstance(v, str), "must be a string")
    check("severity", lambda v: v in SEVERITIES, f"must be one of {', '.join(SEVERITIES)}")
    check("labels", lambda v: isinstance(v, dict) and all(isinstance(a, str) and isinstance(b, (str, int, float)) for a, b in v.items()),
          "must be a map of string labels")
    check("timezone", _valid_timezone, "must be an IANA timezone such as Europe/Berlin")
    check("lookback", lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 1000,
          "must be a whole number of buckets between 0 and 1000")
    check("unit", lambda v: v in UNITS, f"must be one of {', '.join(UNITS)}")
    check("bounded", lambda v: isinstance(v, bool), "must be true or false")
    check("bucket", lambda v: isinstance(v, str) and bool(IDENT_RE.match(v)) and v not in RESERVED_COLUMNS,
          "must be a column name (not ts or a measure)")
    if "bucket" in data and data.get("kind") in KINDS and data.get("kind") != "distribution":
        problem(line_of("bucket"), f"bucket: only a distribution metric has a bucket column, this one is kind "
                                   f"{data['kind']}; drop the key (and the column) or use kind: distribution")
    bucket = data.get("bucket", DEFAULT_BUCKET) if data.get("kind") == "distribution" else ""
    if bucket and isinstance(data.get("dimensions"), list) and bucket in data["dimensions"]:
        problem(line_of("dimensions"), f"dimensions: {bucket!r} is the bucket column of this distribution; "
                                       "a bucket is not a slice, drop it from dimensions")
    detect = data.get("detect", {})
    if "detect" in data:
        if not isinstance(detect, dict):
            problem(line_of("detect"), "detect: must be a mapping, e.g. {direction: up}")
            detect = {}
        else:
            _check_detect(detect, detect_lines, line_of("detect"), problem)

    sql_body = _strip_comments(sql)
    if not sql_body.strip():
        problem(sql_line, "no SQL query after the header")
    else:
        for param in ("start", "end"):
            if not re.search(rf"\${param}\b", sql_body):
                problem(sql_line, f"query never uses ${param}: filter the event time with "
                                  f"`>= $start AND < $end` so each run reads only its window")
        others = sorted(set(re.findall(r"\$([A-Za-z_]\w*)", sql_body)) - {"start", "end"})
        if others:
            problem(sql_line, f"unknown parameter(s) {', '.join('$' + o for o in others)}; only $start and $end are bound")

    if problems:
        return None, problems
    kind = data["kind"]
    settings = DetectSettings(**detect) if detect else DetectSettings()
    metric = Metric(
        name=data["name"], kind=kind, grain=data["grain"], dimensions=tuple(data["dimensions"]),
        schedule=data["schedule"], sql=sql.strip().rstrip(";").strip(), path=path, sql_line=sql_line,
        title=data.get("title", ""), description=data.get("description", ""),
        owner=data.get("owner", ""), team=data.get("team", ""), runbook=data.get("runbook", ""),
        severity=data.get("severity", "medium"),
        labels=tuple(sorted((str(a), str(b)) for a, b in (data.get("labels") or {}).items())),
        timezone=data.get("timezone", "UTC"), lookback=data.get("lookback", 0),
        unit=data.get("unit", DEFAULT_UNITS[kind]),
        bounded=data.get("bounded", False), detect=settings, header=header, bucket=bucket,
    )
    return metric, []


def _check_detect(detect: dict, lines: dict[str, int], default_line: int, problem) -> None:
    def check(key: str, ok: Callable[[Any], bool], message: str) -> None:
        if key in detect and not ok(detect[key]):
            problem(lines.get(key, default_line), f"detect.{key}: {message}, got {detect[key]!r}")

    for key in detect:
        if key not in DETECT_KEYS:
            problem(lines.get(str(key), default_line),
                    f"unknown key detect.{key}{_suggest(str(key), DETECT_KEYS)}; valid keys: {', '.join(sorted(DETECT_KEYS))}")
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0  # noqa: E731
    check("direction", lambda v: v in DIRECTIONS, f"must be one of {', '.join(DIRECTIONS)}")
    check("min_volume", number, "must be a number >= 0")
    check("sensitivity", lambda v: v in SENSITIVITIES or (number(v) and v > 0),
          f"must be one of {', '.join(SENSITIVITIES)} or a positive number")
    check("seasonality", lambda v: v in SEASONALITIES, f"must be one of {', '.join(SEASONALITIES)}")
    check("slice_min_volume", number, "must be a number >= 0")
    check("max_slice_depth", lambda v: v in (0, 1, 2), "must be 0, 1 or 2")
    check("accept_after", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1,
          "must be a whole number of buckets >= 1")
    check("enabled", lambda v: isinstance(v, bool), "must be true or false")
    check("follows", lambda v: isinstance(v, list) and all(isinstance(n, str) and NAME_RE.match(n) for n in v),
          "must be a list of metric names, e.g. [fraud_rate]")
    detector = detect.get("detector")
    if "detector" in detect and (not isinstance(detector, str) or detector not in DETECTORS):  # loaded only when named
        problem(lines.get("detector", default_line),
                f"detect.detector: unknown detector {detector!r}; valid detectors: {', '.join(sorted(DETECTORS))}")
        detect.pop("detector")
    if isinstance(detect.get("follows"), list):
        detect["follows"] = tuple(detect["follows"])
    for key in [k for k in detect if k not in DETECT_KEYS]:
        detect.pop(key)


def _valid_dimensions(value: Any) -> bool:
    return (isinstance(value, list) and all(isinstance(d, str) and IDENT_RE.match(d) for d in value)
            and len(set(value)) == len(value) and not (set(value) & RESERVED_COLUMNS))


def _valid_cron(value: Any) -> bool:
    if not isinstance(value, str) or len(value.split()) != 5:
        return False
    from monitor.catalog.cron import cron_trigger

    try:
        cron_trigger(value, "UTC")  # the scheduler's own reading of cron (Sunday = 0 or 7)
    except ValueError:
        return False
    return True


def _valid_timezone(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _suggest(word: str, options) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _strip_comments(sql: str) -> str:
    sql = re.sub(r"/\*.*?\*/", " ", sql, flags=re.S)
    sql = re.sub(r"--[^\n]*", " ", sql)
    return re.sub(r"'(?:[^']|'')*'", "''", sql)  # $words inside string literals are not parameters


def _key_line(path: Path, key: str) -> int:
    try:
        for i, line in enumerate(path.read_text().splitlines(), start=1):
            if re.match(rf"^\s*{key}\s*:", line):
                return i
    except OSError:
        pass
    return 1


__all__ = ["Catalog", "Header", "Problem", "HEADER_KEYS", "read_header", "load_catalog", "load_metric_file", "parse_metric", "MEASURES"]
