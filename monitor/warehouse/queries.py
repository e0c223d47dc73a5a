"""DuckDB queries of a metric's leaf table, answered by Spark in warehouse mode.

Attribution (``monitor.attribute.incident_attribution.incident_leaves``) and the stale-feed
check ask their questions in DuckDB SQL against the leaf table. In warehouse mode they ask them
through ``SparkLeafQueries``: for attribution the leaf table
is the warehouse's leaves of the incident window and its baseline weeks (only those day folders
are read), SQLGlot translates each query to Spark SQL, and Spark filters and sums the leaves;
only the aggregated segment table (one row per combination of the remaining dimensions) comes
back, on which ``localize`` runs on the driver. The same queries, not a second version of them.
"""
from __future__ import annotations

import datetime as dt
import uuid

import pandas as pd

from monitor.catalog import Metric
from monitor.store import leaves_table
from monitor.warehouse.leaves import LeafWarehouse


class _Result:
    def __init__(self, frame):
        self._frame = frame

    def df(self) -> pd.DataFrame:
        return self._frame.toPandas()

    def fetchone(self):
        rows = self._frame.limit(1).collect()
        return tuple(rows[0]) if rows else None


class SparkLeafQueries:
    """A stand-in for the DuckDB connection of ``incident_leaves``: execute(sql, params)."""

    def __init__(self, warehouse: LeafWarehouse, metric: Metric, *, start: dt.datetime | None = None,
                 end: dt.datetime | None = None):
        self.spark = warehouse.spark
        self.table = leaves_table(metric.name)
        self.view = f"{self.table}_{uuid.uuid4().hex[:8]}"
        frame = warehouse.frame(metric, start=start, end=end)
        if frame is None:
            frame = self.spark.createDataFrame([], warehouse._schema(metric))
        frame.createOrReplaceTempView(self.view)

    def execute(self, sql: str, params: list = ()) -> _Result:
        return _Result(self.spark.sql(to_spark(sql.replace(f'"{self.table}"', self.view), params)))


def to_spark(sql: str, params: list) -> str:
    """DuckDB SQL with ``?`` parameters as Spark SQL with the values as typed literals (a naive
    datetime as TIMESTAMP_NTZ, the stored type of ts)."""
    import sqlglot
    from sqlglot import exp

    # numbered first, so each value lands on its own `?` whatever order the tree is walked in
    # (these queries hold no `?` inside a string)
    parts = sql.split("?")
    numbered = "".join(f"{text}:p{i}" for i, text in enumerate(parts[:-1])) + parts[-1]
    tree = sqlglot.parse_one(numbered, read="duckdb")
    for node in list(tree.find_all(exp.Placeholder)):
        node.replace(_literal(params[int(node.name[1:])]))
    for node in list(tree.find_all(exp.Anonymous)):
        if node.name.lower() == "epoch_us":  # DuckDB's micros since 1970 of a naive ts; the session is UTC
            node.replace(exp.func("unix_micros", exp.cast(node.expressions[0], exp.DataType.build("TIMESTAMP"))))
    for node in list(tree.find_all(exp.Grouping)):
        if len(node.expressions) > 1:
            node.replace(_grouping_bits(node.expressions))
    return tree.sql(dialect="spark")


def _grouping_bits(columns: list):
    """DuckDB's GROUPING(a, b, c) (one bit per column, the first highest) in Spark SQL, whose
    grouping() takes one column and whose grouping_id() must name every grouping column."""
    from sqlglot import exp

    terms = [exp.Mul(this=exp.Grouping(expressions=[c.copy()]), expression=exp.Literal.number(1 << (len(columns) - 1 - i)))
             for i, c in enumerate(columns)]
    out = terms[0]
    for term in terms[1:]:
        out = exp.Add(this=out, expression=term)
    return exp.Paren(this=out)


def _literal(value):
    from sqlglot import exp

    if isinstance(value, dt.datetime):
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), exp.DataType.build("TIMESTAMP_NTZ", dialect="spark"))
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float)):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))
