"""A Spark source's rows for the warehouse, checked on Spark: they never pass through the driver.

With ``[source] engine = "spark"`` and ``[store] leaves = "spark"`` in one Spark application,
the metric's query result is a DataFrame the warehouse writes as it is. The checks and the
normalisation of ``monitor.engine.duckdb_engine.check_result`` (which works on an Arrow table in
the driver) are made here by one Spark aggregate over the materialised result, with the same
messages: ts set, inside the window and on the grain; measures set and finite; a ratio's parts
not negative (and the numerator within the denominator when bounded); dimensions as stored
('(null)' for NULL, a real '(null)' text escaped). A mean's or distribution's own row rules
(``monitor.engine.kinds``) are judged by the executors on Arrow batches with ``kind_problem`` itself.
"""
from __future__ import annotations

from monitor.catalog import Metric
from monitor.engine.duckdb_engine import NULL_LABEL, bad_rows, row_problem, schema_problems
from monitor.engine.kinds import kind_problem
from monitor.engine.transpile import bind_window
from monitor.engine.windows import Window
from monitor.errors import MetricRunError
from monitor.warehouse.checkpoint import local_checkpoint


def same_application(a, b) -> bool:
    """Whether two sessions share one Spark application (so a DataFrame of one can be written
    by the other)."""
    if a is b:
        return True
    try:
        return a.sparkContext is b.sparkContext
    except Exception:  # noqa: BLE001 - Spark Connect sessions have no SparkContext
        return False


def checked_frame(engine, metric: Metric, window: Window):
    """The metric's leaf rows for the window as a checkpointed Spark DataFrame (ts,
    dimensions as strings, measures as doubles); MetricRunError as check_result raises it."""
    from pyspark.sql import functions as F

    from monitor.engine.spark_engine import _to_arrow

    query, tables = engine._translated(metric)
    spark = engine.session()
    engine.register_tables(sorted(tables))
    try:
        raw = spark.sql(query, args=bind_window(window.start, window.end))
        problems = schema_problems(metric, _to_arrow(raw.limit(0)).schema)  # planned, nothing scanned
    except Exception as exc:  # noqa: BLE001 - the engine's own message for a failing query
        raise MetricRunError(f"{metric.name} failed on Spark for {window}: {exc} ({metric.path}:{metric.sql_line})",
                             evidence=query) from exc
    if problems:
        raise bad_rows(metric, window, problems[0].split(": ", 1)[1])
    escaped = r"\\$1"  # a Java replacement: a backslash, then the match
    frame = raw.select(
        F.col("ts").cast("timestamp_ntz").alias("ts"),
        *(F.coalesce(F.regexp_replace(F.col(d).cast("string"), r"^(\\*\(null\))$", escaped), F.lit(NULL_LABEL))
          .alias(d) for d in metric.keys),
        *(F.col(m).cast("double").alias(m) for m in metric.measures))
    try:
        frame = local_checkpoint(frame)  # the query runs once: checked and written from here
    except Exception as exc:  # noqa: BLE001
        raise MetricRunError(f"{metric.name} failed on Spark for {window}: {exc} ({metric.path}:{metric.sql_line})",
                             evidence=query) from exc
    ts, grain = F.col("ts"), metric.grain
    checks = [F.count(F.when(ts.isNull(), 1)).alias("null_ts"), F.min(ts).alias("lo"), F.max(ts).alias("hi"),
              F.count(F.when(F.date_trunc(grain, ts).cast("timestamp_ntz") != ts, 1)).alias("off_grain")]
    for m in metric.measures:
        col = F.col(m)
        checks += [F.count(F.when(col.isNull(), 1)).alias(f"null_{m}"),
                   F.count(F.when(F.isnan(col) | (F.abs(col) == float("inf")), 1)).alias(f"bad_{m}"),
                   F.count(F.when(col < 0, 1)).alias(f"neg_{m}")]
    if metric.kind == "ratio" and metric.bounded:
        checks.append(F.count(F.when(F.col("numerator") > F.col("denominator"), 1)).alias("over"))
    problem = row_problem(metric, window, frame.agg(*checks).collect()[0].asDict())
    if problem is None and metric.kind in ("mean", "distribution") and _kind_broken(frame, metric):
        # worded over the whole window, as check_result words it (its counts are of every row):
        # only a window that breaks a rule comes to the driver
        whole = _to_arrow(frame)
        problem = kind_problem(metric, dict(zip(whole.column_names, whole.columns)))
    if problem:
        raise bad_rows(metric, window, problem)
    return frame


def _kind_broken(frame, metric: Metric) -> bool:
    """Whether some rows break the kind's own rules (``monitor.engine.kinds.kind_problem``, run
    by the executors on each Arrow batch)."""
    def flags(batches):
        import pyarrow as pa

        for batch in batches:
            table = pa.Table.from_batches([batch])
            broken = batch.num_rows > 0 and kind_problem(metric, dict(zip(table.column_names, table.columns))) is not None
            yield pa.RecordBatch.from_pydict({"broken": [broken]})

    return bool(frame.mapInArrow(flags, "broken boolean").where("broken").limit(1).count())
