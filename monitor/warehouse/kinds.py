"""A mean's or distribution's series from the warehouse's leaves, aggregated on Spark.

``monitor.detect.run_kinds`` judges them with the kind's own test, exactly as with the DuckDB
store; only the dense series come to the driver (the kind's test reads them whole: the total
and the one-dimension slices, and a mean's pairs above the floor), never the leaves.

- mean: ``run_kinds.mean_series`` with ``build_slices_spark`` as its slice builder (sums and
  counts, then sums of squares over the same slices), the rows of every series then read in
  one Spark query per pass;
- distribution: ``build_histograms`` itself, its DuckDB SQL translated by SQLGlot and run by
  Spark (``SparkLeafQueries``): the per-bucket, per-bin sums of each series come back.
"""
from __future__ import annotations

import datetime as dt

from monitor.catalog import Metric
from monitor.detect.slices import SliceSeries
from monitor.warehouse.leaves import LeafWarehouse


def kind_series_spark(warehouse: LeafWarehouse, metric: Metric, *, start: dt.datetime, end: dt.datetime,
                      step: dt.timedelta, memory_limit: int):
    """(axis, series, extra, bin labels) as ``run_kinds.kind_detections`` builds them: extra is a
    mean's sums of squares per series, or a distribution's (series x buckets x bins) counts."""
    if metric.kind == "mean":
        from monitor.detect.run_kinds import mean_series
        from monitor.warehouse.slices import build_slices_spark

        def build(columns=None):
            axis, series = build_slices_spark(warehouse, metric, start=start, end=end, step=step,
                                              budget_bytes=int(memory_limit) // 2, columns=columns)
            return axis, held(series)

        axis, series, extra = mean_series(build)
        return axis, series, extra, None
    from monitor.detect.distribution_slices import build_histograms
    from monitor.warehouse.queries import SparkLeafQueries

    queries = SparkLeafQueries(warehouse, metric, start=start, end=end)
    return build_histograms(queries, metric, start=start, end=end, step=step)


def held(series: list) -> list[SliceSeries]:
    """Every series with its arrays on the driver (``RemoteSlice`` rows read in one query)."""
    from monitor.warehouse.remote import RemoteSlice

    if not series:
        return []
    values, volume = (rows[0:len(series)] for rows in RemoteSlice.rows(series))
    return [SliceSeries(s.segment, values[i], volume[i], bool(s.screened)) for i, s in enumerate(series)]
