"""The histograms a distribution metric is judged on: the total and every value of every
dimension, per time bucket and per bin, as one dense (series x buckets x bins) array.

One GROUPING SETS query sums the stored counts; the long result is scattered into the
array by integer codes (no Python work per slice). Two-dimension slices are not built:
a histogram per pair multiplies the work by the number of bins, and attribution names
the pair inside a moved one-dimension slice.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from monitor.buckets import order_key
from monitor.catalog import Metric
from monitor.detect.slices import SliceSeries
from monitor.store import leaves_table


def build_histograms(con, metric: Metric, *, start: dt.datetime, end: dt.datetime, step: dt.timedelta
                     ) -> tuple[pd.DatetimeIndex, list[SliceSeries], np.ndarray, list[str]]:
    """(axis, series, counts, bin labels): series[i].volume is the events per bucket,
    series[i].values the mean bin value (for display), counts[i] the histogram per bucket."""
    from monitor.buckets import bucket_values

    table, bucket = leaves_table(metric.name), metric.bucket
    first, last = con.execute(f'SELECT min(ts), max(ts) FROM "{table}" WHERE ts >= ? AND ts < ?',
                              [start, end]).fetchone()
    if first is None:
        return pd.DatetimeIndex([]), [], np.zeros((0, 0, 0)), []
    axis = pd.date_range(first, last, freq=pd.Timedelta(step))
    step_us = int(step / dt.timedelta(microseconds=1))
    dims = list(metric.dimensions) if metric.detect.max_slice_depth >= 1 else []
    quoted = [f'"{d}"' for d in dims]
    sets = ["(__t, __bin)"] + [f"(__t, __bin, {q})" for q in quoted]
    gid = f"GROUPING({', '.join(quoted)})" if dims else "0"
    frame = con.execute(
        f'WITH w AS (SELECT *, ((epoch_us(ts) - epoch_us(?::TIMESTAMP)) // {step_us})::INTEGER AS __t,'
        f' "{bucket}" AS __bin FROM "{table}" WHERE ts >= ? AND ts < ?'
        f' AND (epoch_us(ts) - epoch_us(?::TIMESTAMP)) % {step_us} = 0)'
        f' SELECT {gid} AS __gid, {", ".join(quoted + [""])} __t, __bin, sum("count") AS __n FROM w'
        f' GROUP BY GROUPING SETS ({", ".join(sets)})', [first, start, end, first]).df()
    labels = sorted(frame["__bin"].astype(str).unique().tolist(), key=order_key)
    # series: the total first, then each dimension's values in order
    frame["__dim"] = ""
    frame["__val"] = ""
    for d in dims:
        has = frame[d].notna()
        frame.loc[has, "__dim"] = d
        frame.loc[has, "__val"] = frame.loc[has, d].astype(str)
    frame["__rank"] = frame["__dim"].map({"": -1, **{d: i for i, d in enumerate(dims)}})
    keys = frame[["__rank", "__dim", "__val"]].drop_duplicates().sort_values(["__rank", "__val"]).reset_index(drop=True)
    keys["__sid"] = np.arange(len(keys))
    frame = frame.merge(keys, on=["__rank", "__dim", "__val"])
    bin_index = {b: i for i, b in enumerate(labels)}
    counts = np.zeros((len(keys), len(axis), len(labels)))
    np.add.at(counts, (frame["__sid"].to_numpy(), frame["__t"].to_numpy().astype(int),
                       frame["__bin"].astype(str).map(bin_index).to_numpy()), frame["__n"].to_numpy(float))
    values = bucket_values(labels)
    volume = counts.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (counts * values).sum(axis=2) / volume
    series = [SliceSeries({d: v} if d else {}, mean[i], volume[i])
              for i, (d, v) in enumerate(zip(keys["__dim"].tolist(), keys["__val"].tolist()))]
    return axis, series, counts, labels

