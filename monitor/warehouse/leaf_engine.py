"""The heavy steps over the leaves when they are on Spark: ``store.leaf_engine`` in warehouse mode.

``Store.leaf_engine`` is None when the leaves are in the store file (every step queries them with
DuckDB there). In warehouse mode it is a ``SparkLeafEngine``, and the four places that would
otherwise read the leaves in-process ask it instead:

- compute (``monitor.pipeline``): ``source_rows``, a window's rows on their way to the warehouse;
- detection (``monitor.detect.run_detection``): ``build_slices`` and ``batch_detector``; for a
  mean or distribution metric (``monitor.detect.run_kinds``) ``kind_series``;
- attribution and the stale check: ``leaf_queries``, their SQL run on Spark.

One object, named on the base store, instead of each step probing the store for methods.
"""
from __future__ import annotations

import datetime as dt

from monitor.catalog import Metric
from monitor.engine.windows import Window
from monitor.warehouse.leaves import LeafWarehouse


class SparkLeafEngine:
    def __init__(self, warehouse: LeafWarehouse):
        self.warehouse = warehouse

    def source_rows(self, engine, metric: Metric, window: Window):
        """The window's rows from the source `engine`: a Spark DataFrame checked on Spark when
        the source runs in the warehouse's Spark application (never collected on the driver);
        from a DuckDB source, the rows staged as Parquet a batch at a time (the driver never
        holds the window); else the engine's Arrow table (one window at a time)."""
        if hasattr(engine, "spark_sql"):
            from monitor.warehouse.incoming import checked_frame, same_application

            if same_application(engine.session(), self.warehouse.spark):
                return checked_frame(engine, metric, window)
        if hasattr(engine, "batches"):
            from monitor.warehouse.staging import stage_window

            return stage_window(engine, metric, window, self.warehouse.folder(metric.name))
        return engine.run(metric, window)

    def build_slices(self, metric: Metric, **window):
        from monitor.warehouse.slices import build_slices_spark
        return build_slices_spark(self.warehouse, metric, **window)

    def kind_series(self, metric: Metric, **window):
        """A mean's or distribution's series, aggregated on Spark (``monitor.detect.run_kinds``)."""
        from monitor.warehouse.kinds import kind_series_spark
        return kind_series_spark(self.warehouse, metric, **window)

    def batch_detector(self):
        from monitor.warehouse.judge import executor_batch
        return executor_batch(self.warehouse.spark)

    def leaf_queries(self, metric: Metric, *, start: dt.datetime | None = None, end: dt.datetime | None = None):
        from monitor.warehouse.queries import SparkLeafQueries
        return SparkLeafQueries(self.warehouse, metric, start=start, end=end)
