"""Turn a metric's DuckDB SQL into Spark SQL with SQLGlot, keeping the window bound, not pasted.

``$start`` / ``$end`` become Spark named parameters wrapped in a cast,
``CAST(:start AS TIMESTAMP_NTZ)``, and the engine binds them with
``spark.sql(query, args={"start": "2026-06-01 00:00:00", ...})``. TIMESTAMP_NTZ is
Spark's type for DuckDB's ``TIMESTAMP`` (a wall-clock time without a zone, which is what
the toolkit's windows are), so the comparison means the same on both engines whatever the
Python process's or the cluster's local time zone; binding the value as a string keeps it
independent of how a Python ``datetime`` would be converted.

Everything SQLGlot cannot express in Spark SQL is an error naming the metric, the file
line and the construct (``unsupported_level=ErrorLevel.RAISE``), so ``monitor check``
finds it before a scheduled run does. SQLGlot is imported lazily: it is part of the
``spark`` extra, not of the default install.
"""
from __future__ import annotations

import datetime as dt

from monitor.catalog import Metric
from monitor.errors import ConfigError, MetricRunError, first_line

WINDOW_PARAMS = ("start", "end")
SPARK_TIMESTAMP = "TIMESTAMP_NTZ"
DUCKDB_ONLY_JOINS = {
    "ASOF": "join on the key and keep the latest earlier row with a window function (row_number)",
    "POSITIONAL": "join on an explicit row key",
}
INSTALL_HINT = "install the spark extra: pip install 'monitor[spark]' (or: pip install 'sqlglot>=25')"


class TranspileError(MetricRunError):
    """The metric's SQL cannot be turned into Spark SQL; the message names metric, line and construct."""


def bind_window(start: dt.datetime, end: dt.datetime) -> dict[str, str]:
    """The named parameters for :func:`to_spark_sql`'s output: ISO text cast to TIMESTAMP_NTZ in the query."""
    return {"start": _timestamp_text(start), "end": _timestamp_text(end)}


def to_spark_sql(metric: Metric, *, pretty: bool = True) -> str:
    """The metric's query in Spark SQL with ``:start``/``:end`` parameters; raise TranspileError if it can't be."""
    return translate(metric, pretty=pretty)[0]


def translate(metric: Metric, *, pretty: bool = True) -> tuple[str, frozenset[str]]:
    """(Spark SQL, names of the unqualified tables it reads) for the metric; TranspileError if it can't be."""
    sqlglot, exp, errors = _sqlglot()

    def fail(construct: str, line: int | None = None) -> TranspileError:
        where = f"{metric.path}:{metric.sql_line + (line or 1) - 1}"
        return TranspileError(
            f"{metric.name} ({where}): cannot run on Spark: {construct}", evidence=metric.sql
        )

    try:
        statements = [s for s in sqlglot.parse(metric.sql, read="duckdb",
                                               error_level=errors.ErrorLevel.RAISE) if s is not None]
    except errors.ParseError as exc:
        first = (exc.errors or [{}])[0]
        description = first.get("description") or first_line(exc)
        raise fail(f"SQLGlot cannot parse the DuckDB SQL ({description})", first.get("line")) from exc
    except errors.SqlglotError as exc:  # tokenizer errors
        raise fail(f"SQLGlot cannot parse the DuckDB SQL ({first_line(exc)})") from exc
    if len(statements) != 1:
        raise fail(f"the file holds {len(statements)} statements; a metric is exactly one query")
    tree = statements[0]
    if not isinstance(tree, getattr(exp, "Query", None) or (exp.Select, exp.Union)):
        raise fail(f"{tree.key.upper()} statement; a metric is one SELECT query")
    columns_node = getattr(exp, "Columns", None)  # not in every SQLGlot version
    for node in tree.find_all(*(t for t in (exp.Join, columns_node) if t is not None)):
        method = str(node.args.get("method") or "").upper() if isinstance(node, exp.Join) else ""
        if method in DUCKDB_ONLY_JOINS:
            raise fail(f"{method} JOIN is DuckDB-only and Spark SQL has no equivalent; "
                       f"{DUCKDB_ONLY_JOINS[method]}", _line_in(metric.sql, method, case=False))
        if columns_node is not None and isinstance(node, columns_node):
            raise fail("COLUMNS(...) is DuckDB-only; list the columns", _line_in(metric.sql, "columns(", case=False))

    for node in list(tree.find_all(exp.Placeholder, exp.Parameter)):
        name = node.name if isinstance(node, exp.Placeholder) else node.this.name if node.this else ""
        if isinstance(node, exp.Placeholder) and name in WINDOW_PARAMS:
            node.replace(exp.cast(exp.Placeholder(this=name), SPARK_TIMESTAMP))
            continue
        shown = node.sql(dialect="duckdb")
        raise fail(f"parameter {shown} is not bound; only $start and $end are",
                   _line_of(node) or _line_in(metric.sql, shown))

    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    tables = frozenset(t.name for t in tree.find_all(exp.Table)
                       if t.name and not t.args.get("db") and t.name not in ctes)
    try:
        return tree.sql(dialect="spark", pretty=pretty, unsupported_level=errors.ErrorLevel.RAISE), tables
    except errors.UnsupportedError as exc:
        constructs = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise fail(f"SQLGlot cannot express it in Spark SQL: {constructs}") from exc
    except errors.SqlglotError as exc:
        raise fail(f"SQLGlot failed to generate Spark SQL: {first_line(exc)}") from exc


def _sqlglot():
    try:
        import sqlglot
        from sqlglot import errors, exp
    except ImportError as exc:
        raise ConfigError(f"The Spark engine needs SQLGlot to translate metric SQL; {INSTALL_HINT}.") from exc
    return sqlglot, exp, errors


def _timestamp_text(value: dt.datetime) -> str:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    if not isinstance(value, dt.datetime):  # a date
        value = dt.datetime.combine(value, dt.time())
    return value.isoformat(sep=" ", timespec="microseconds")


def _line_of(node) -> int | None:
    meta = getattr(node, "meta", None) or {}
    line = meta.get("line")
    return int(line) if line else None


def _line_in(sql: str, text: str, *, case: bool = True) -> int | None:
    at = sql.find(text) if case else sql.lower().find(text.lower())
    return sql.count("\n", 0, at) + 1 if at >= 0 else None
