"""The store in warehouse mode: leaf rows on Spark, everything small in the DuckDB file.

``WarehouseStore`` is a ``Store`` whose leaf methods go to the ``LeafWarehouse``; the run log,
metric definitions, incidents, explanations, expectations, change points and alerts stay in
the DuckDB file as in the default mode. Its ``leaf_engine`` (``SparkLeafEngine``) runs the
heavy steps of compute, detection, attribution and the stale check on Spark.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from monitor.catalog import Metric
from monitor.clock import utc_naive
from monitor.engine.windows import Window
from monitor.errors import EmptyResultError
from monitor.store import Store
from monitor.warehouse.leaf_engine import SparkLeafEngine
from monitor.warehouse.leaves import LeafWarehouse


class WarehouseStore(Store):
    def __init__(self, path: Path | str, warehouse: LeafWarehouse, **kwargs):
        super().__init__(path, **kwargs)
        self.warehouse = warehouse
        self.leaf_engine = SparkLeafEngine(warehouse)

    def prepare_reader(self, con) -> None:
        """Read connections see the leaves as DuckDB views (no Spark): the dashboard and the
        report query ``leaves__<metric>`` as with the DuckDB store."""
        from monitor.warehouse.views import attach_leaf_views
        attach_leaf_views(con, self.warehouse.prefix)

    # -- leaf rows ---------------------------------------------------------------------------
    def write_window(self, metric: Metric, window: Window, rows, *, trigger: str, started_at: dt.datetime,
                     now: dt.datetime | None = None, session=None, allow_empty: bool = False) -> int:
        """Replace the window's leaves in the warehouse, then log the run in the DuckDB file.

        The leaves are replaced atomically (see LeafWarehouse); a failure before the run is
        logged leaves the window not 'ok', so the next run computes it again (idempotent)."""
        empty = rows.num_rows == 0 if hasattr(rows, "num_rows") else rows.isEmpty()  # Arrow, staged, Spark
        if empty and not allow_empty:
            held = self.warehouse.frame(metric, start=window.start, end=window.end)
            held = 0 if held is None else held.count()
            if held:
                raise EmptyResultError(
                    f"{metric.name} returned no rows for {window}, which holds {held:,} stored leaf rows; "
                    f"kept them (is the source empty?). Pass --allow-empty to store the empty result.")
        stored = self.warehouse.write_window(metric, window, rows)
        finished = now or utc_naive()
        if session is None:
            with self.writer() as own:
                self._log(own, metric, window, started_at, finished, stored, trigger)
        else:
            self._log(session, metric, window, started_at, finished, stored, trigger)
            session.maybe_release()
        return stored

    @staticmethod
    def _log(session, metric: Metric, window: Window, started_at, finished, stored: int, trigger: str) -> None:
        con = session.connection()
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(
                "INSERT INTO runs (metric, window_start, window_end, started_at, finished_at, rows, status,"
                " definition_hash, trigger) VALUES (?, ?, ?, ?, ?, ?, 'ok', ?, ?)",
                [metric.name, window.start, window.end, started_at, finished, stored, metric.definition_hash, trigger])
            session.upsert_definition(metric, finished)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def has_leaves(self, metric_name: str) -> bool:
        return self.warehouse.has_leaves(metric_name)

    def latest_bucket(self, metric: Metric) -> dt.datetime | None:
        frame = self.warehouse.frame(metric)
        return None if frame is None else frame.agg({"ts": "max"}).collect()[0][0]

    def read_leaves(self, metric: Metric, *, start=None, end=None, con=None) -> pd.DataFrame:
        frame = self.warehouse.frame(metric, start=start, end=end)
        if frame is None:
            return pd.DataFrame(columns=["ts", *metric.keys, *metric.measures])
        return frame.orderBy("ts").toPandas()

    def series(self, metric: Metric, *, by: tuple[str, ...] = (), start=None, end=None, con=None) -> pd.DataFrame:
        """Measures summed per ts (and `by`), aggregated on Spark."""
        from pyspark.sql import functions as F

        keys = ["ts", *by]
        frame = self.warehouse.frame(metric, start=start, end=end)
        if frame is None:
            return pd.DataFrame(columns=[*keys, *metric.measures])
        return (frame.groupBy(*keys).agg(*(F.sum(m).alias(m) for m in metric.measures))
                .orderBy(*keys).toPandas())
