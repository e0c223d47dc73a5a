"""Run a metric's SQL for one window on a DuckDB source and check what comes back."""
from __future__ import annotations

import datetime as dt
import glob
import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from monitor.catalog import Metric
from monitor.config import VIEW_FORMATS, SourceConfig
from monitor.engine.windows import Window
from monitor.errors import ConfigError, MetricRunError, first_line
from monitor.registry import ENGINES

NUMERIC = (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal)


@ENGINES.register("duckdb")
class DuckDBEngine:
    """The embedded default engine: the source is a DuckDB file plus optional file views.

    The source is opened read-only, so computing metrics never changes it and
    several processes can read it at once.
    """

    name = "duckdb"

    def __init__(self, source: SourceConfig):
        self.source = source
        self._con: duckdb.DuckDBPyConnection | None = None
        self._views: set[str] = set()  # views created on the open connection

    def connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self._con = self._open()
        return self._con

    def _open(self) -> duckdb.DuckDBPyConnection:
        db = self.source.database
        if db is not None and not Path(db).exists():
            raise ConfigError(f"Source database {db} does not exist; fix [source] database in monitor.toml.")
        con = duckdb.connect(str(db), read_only=True) if db else duckdb.connect()
        # Buckets and windows are naive UTC everywhere; without this, TIMESTAMPTZ sources
        # would be truncated in the host's zone (as the Spark engine's session is pinned too).
        con.execute("SET TimeZone = 'UTC'")
        return con

    def views_for(self, metric: Metric) -> None:
        """Create the file views this metric's SQL names, once per connection.

        Per metric rather than all at open: a view whose file is missing or broken
        then fails only the metrics that read it, with an error naming the view.
        A view named but not read (say, a column of the same name) costs one
        CREATE VIEW; its file problem would then wrongly fail this metric, which
        a word match cannot rule out but which needs a column named like a view.
        """
        con = self.connection()
        for name, path in self.source.views.items():
            if name in self._views or not re.search(rf"\b{re.escape(name)}\b", metric.sql, re.IGNORECASE):
                continue
            reader = next((fn for ext, fn in VIEW_FORMATS.items() if str(path).endswith(ext)), None)
            if reader is None:
                raise ConfigError(f"View {name}: {path} is not a .parquet or .csv file ([source.views] in monitor.toml).")
            if not (glob.has_magic(str(path)) or Path(path).exists()):
                raise ConfigError(f"View {name} reads {path}, which does not exist ([source.views] in monitor.toml).")
            literal = str(path).replace("'", "''")
            try:
                con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM {reader}('{literal}')")
            except duckdb.Error as exc:
                raise ConfigError(f"View {name} cannot read {path}: {first_line(exc)}") from exc
            self._views.add(name)

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
            self._views.clear()

    def __enter__(self) -> "DuckDBEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def execute(self, metric: Metric, window: Window) -> pa.Table:
        """The raw result of the metric's SQL for the window, unchecked."""
        return self._fetch(metric, window, lambda result: result.to_arrow_table())

    def batches(self, metric: Metric, window: Window, rows: int) -> pa.RecordBatchReader:
        """The raw result as a stream of record batches of at most `rows` rows, unchecked: DuckDB
        makes the next batch when it is read, so the caller never holds the whole window. A
        failure while reading is wrapped by the caller with ``query_failed``."""
        return self._fetch(metric, window, lambda result: result.to_arrow_reader(rows))

    def _fetch(self, metric: Metric, window: Window, fetch):
        """`fetch` of the metric's SQL run for the window, its errors as MetricRunError."""
        try:
            self.views_for(metric)
        except ConfigError as exc:
            raise MetricRunError(f"{metric.name} failed for {window}: {exc}", evidence=metric.sql) from exc
        try:
            return fetch(self.connection().execute(metric.sql, {"start": window.start, "end": window.end}))
        except duckdb.Error as exc:
            raise query_failed(metric, window, exc) from exc

    def run(self, metric: Metric, window: Window) -> pa.Table:
        """Leaf rows for the window: ts, dimensions as strings, measures as doubles, checked."""
        return check_result(metric, window, self.execute(metric, window))

    def dry_run(self, metric: Metric) -> list[str]:
        """Problems found by running the query on an empty window (names, types)."""
        probe = dt.datetime(2000, 1, 1)
        try:
            table = self.execute(metric, Window(probe, probe))
        except MetricRunError as exc:
            return [str(exc)]
        problems = schema_problems(metric, table.schema)
        if not problems and metric.kind in ("mean", "distribution"):
            problems = self._probe_rows(metric)
        return problems

    def _probe_rows(self, metric: Metric) -> list[str]:
        """Run a mean or distribution query on the last days of data, so `monitor check`
        also reports rows that break the kind's rules (a negative count), at file:line."""
        from monitor.clock import utc_naive
        from monitor.engine.kinds import probe_window

        try:
            self.run(metric, Window(*probe_window(utc_naive())))
        except MetricRunError as exc:
            return [str(exc)]
        return []


def schema_problems(metric: Metric, schema: pa.Schema) -> list[str]:
    expected = ["ts", *metric.keys, *metric.measures]
    names = schema.names
    problems = []
    missing = [c for c in expected if c not in names]
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}; the query must return {', '.join(expected)}")
    extra = [c for c in names if c not in expected]
    if extra:
        problems.append(f"unexpected column(s) {', '.join(extra)}; declare them as dimensions or drop them")
    if "ts" in names:
        t = schema.field("ts").type
        if not (pa.types.is_timestamp(t) or pa.types.is_date(t)):
            problems.append(f"column ts is {t}, expected a timestamp or date (use date_trunc('{metric.grain}', ...))")
    for m in metric.measures:
        if m in names and not any(check(schema.field(m).type) for check in NUMERIC):
            problems.append(f"measure {m} is {schema.field(m).type}, expected a number")
    return [f"{metric.name} ({metric.path}:{metric.sql_line}): {p}" for p in problems]


def check_result(metric: Metric, window: Window, table: pa.Table) -> pa.Table:
    """Normalise and validate one window's rows; raise MetricRunError naming metric, window and SQL."""
    problems = schema_problems(metric, table.schema)
    if problems:
        raise bad_rows(metric, window, problems[0].split(": ", 1)[1])
    columns = normalised(metric, table)
    problem = row_problem(metric, window, row_counts(metric, columns))
    if problem is None and table.num_rows and metric.kind in ("mean", "distribution"):
        from monitor.engine.kinds import kind_problem

        problem = kind_problem(metric, columns)
    if problem:
        raise bad_rows(metric, window, problem)
    return pa.table(columns)


def normalised(metric: Metric, table) -> dict[str, pa.ChunkedArray]:
    """The columns as stored: ts in microseconds, dimensions as labels, measures as doubles
    (`table`: an Arrow table or record batch with the right columns)."""
    columns = {"ts": table.column("ts").cast(pa.timestamp("us"))}
    for d in metric.keys:
        columns[d] = dimension_labels(table.column(d).cast(pa.string()))
    for m in metric.measures:
        columns[m] = table.column(m).cast(pa.float64())
    return columns


def row_counts(metric: Metric, columns: dict) -> dict:
    """The counts ``row_problem`` judges, over normalised columns."""
    ts = columns["ts"]

    def count(mask) -> int:
        return pc.sum(mask).as_py() or 0  # nulls in the mask are skipped; 0 rows sum to null

    found = {"null_ts": count(pc.is_null(ts)), "lo": pc.min(ts).as_py(), "hi": pc.max(ts).as_py(),
             "off_grain": count(pc.not_equal(pc.floor_temporal(ts, unit=metric.grain), ts))}
    for m in metric.measures:
        col = columns[m]
        found |= {f"null_{m}": count(pc.is_null(col)), f"bad_{m}": count(pc.invert(pc.is_finite(col))),
                  f"neg_{m}": count(pc.less(col, 0))}
    if metric.kind == "ratio" and metric.bounded:
        found["over"] = count(pc.greater(columns["numerator"], columns["denominator"]))
    return found


def query_failed(metric: Metric, window: Window, exc: BaseException) -> MetricRunError:
    return MetricRunError(f"{metric.name} failed for {window}: {first_line(exc)} ({metric.path}:{metric.sql_line})",
                          evidence=metric.sql)


def row_problem(metric: Metric, window: Window, found: dict) -> str | None:
    """The first problem of one window's rows, from counts any engine computes where the rows
    are (``check_result`` on Arrow, ``warehouse.incoming`` in one Spark aggregate): null_ts,
    lo / hi (the first and last ts, None without rows), off_grain, per measure null_<m>,
    bad_<m> (NaN or infinite), neg_<m>, and for a bounded ratio over (numerator > denominator)."""
    if found["null_ts"]:
        return "ts is NULL in some rows"
    lo, hi = found["lo"], found["hi"]
    if lo is not None and (lo < window.start or hi >= window.end):
        return f"ts {lo if lo < window.start else hi} lies outside the window; filter with $start/$end"
    if found["off_grain"]:
        return f"ts is not aligned to the {metric.grain} grain; use date_trunc('{metric.grain}', ...)"
    for m in metric.measures:
        if found[f"null_{m}"]:
            return f"measure {m} is NULL in some rows; use coalesce(..., 0)"
        # NaN/Inf would poison every sum over the slice, so detection would go blind without a word.
        if found[f"bad_{m}"]:
            return f"measure {m} is NaN or infinite in {found[f'bad_{m}']:,} row(s) (a division by zero?); nothing stored"
    if metric.kind == "ratio":
        if found["neg_denominator"]:
            return "negative denominator"
        if found["neg_numerator"]:
            return "negative numerator"
        if metric.bounded and found["over"]:
            return "numerator > denominator although the header says bounded: true"
    return None


def bad_rows(metric: Metric, window: Window, message: str) -> MetricRunError:
    return MetricRunError(f"{metric.name} returned bad rows for {window}: {message} "
                          f"({metric.path}:{metric.sql_line})", evidence=metric.sql)


NULL_LABEL = "(null)"


def dimension_labels(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Dimension values as stored: NULL becomes '(null)', and a real '(null)' text gains a backslash.

    Stored dimensions are NOT NULL strings (every slice has a printable label), so NULL
    needs a label no real value maps to: texts of the form '(null)', '\\(null)', ...
    get one more leading backslash, which keeps every value distinct (issue 19).
    """
    escaped = pc.replace_substring_regex(column, pattern=r"^(\\*\(null\))$", replacement=r"\\\1")
    return pc.fill_null(escaped, NULL_LABEL)
