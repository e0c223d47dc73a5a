"""Series judged on the Spark executors by the one vectorised detector, ``detect_batch``.

In warehouse mode the slices' per-bucket sums stay on Spark (``monitor.warehouse.remote``):
``ExecutorBatch.judge_series`` cuts the series into chunks of positions, and each
``applyInPandas`` task builds its chunk's dense rows from those sums and judges them with
``detect_batch`` itself, with the options detection gives. What comes back per series is its
segments, change points and parameters (most series share one parameter dict on the driver);
the per-bucket rows and band only for the series with an incident, which are shown and read
again. The others' bands stay on the executors, so neither the driver nor the store ever holds
10^6 sellers' series or expectations. A group held whole on the driver (the total, the second
pass's few series) is judged there, by the same ``detect_batch``.
"""
from __future__ import annotations

import pickle
from dataclasses import replace

import numpy as np
import pandas as pd

# Series x buckets cells judged per executor task (about 40 MB of float arrays with temporaries).
CELLS_PER_TASK = 500_000


def executor_batch(spark, *, cells_per_task: int = CELLS_PER_TASK) -> "ExecutorBatch":
    """What detection's ``_judge`` calls in warehouse mode (``judge_series``)."""
    return ExecutorBatch(spark, cells_per_task)


class ExecutorBatch:
    def __init__(self, spark, cells_per_task: int = CELLS_PER_TASK):
        self.spark = spark
        self.cells_per_task = cells_per_task

    def judge_series(self, metric, series: list, group: list[int], exclusions: dict, options) -> dict[int, object]:
        """Detections of ``series[i]`` for i in `group`, all judged with `options` (as
        ``monitor.detect.run_detection._judge`` judges one group). Series whose rows are on
        Spark (``RemoteSlice``) are judged there, a chunk of positions per task, from the
        slices' long rows: only detections come back, with the rows and band of the series
        that have an incident (kept on their RemoteSlice, as the driver reads them again).
        A group held whole on the driver (the total, the second pass's few) is judged here."""
        from monitor.detect.series import detect_batch
        from monitor.warehouse.remote import RemoteSlice

        group = sorted(group)
        remote = [i for i in group if isinstance(series[i], RemoteSlice) and not series[i].held]
        if not remote:
            out = {}
            n = len(series[group[0]].values) if group else 0
            per_chunk = max(1, self.cells_per_task // max(n, 1))
            for first in range(0, len(group), per_chunk):
                part = group[first:first + per_chunk]
                out.update(zip(part, detect_batch(
                    np.vstack([series[i].values for i in part]),
                    denominators_2d=np.vstack([series[i].volume for i in part]) if metric.kind == "ratio" else None,
                    exclude=np.vstack([exclusions.get(series[i].label, np.zeros(n, bool)) for i in part]),
                    options=options)))
            return out
        return self._judge_remote(series, group, series[remote[0]].table, exclusions, options)

    def _judge_remote(self, series: list, group: list[int], table, exclusions: dict, options) -> dict[int, object]:
        from pyspark.sql import functions as F

        from monitor.warehouse.remote import RemoteSlice

        n, ratio = table.n, table.ratio
        lo, hi = group[0], group[-1]
        wanted = np.zeros(hi - lo + 1, bool)
        wanted[np.asarray(group) - lo] = True
        # exclusion masks: only the series that have one (closed incidents, a few)
        masks = {i: np.packbits(exclusions[series[i].label]).tobytes() for i in group
                 if series[i].label in exclusions} if exclusions else {}
        per_task = max(1, self.cells_per_task // max(n, 1))

        def judge(frame: pd.DataFrame) -> pd.DataFrame:
            from monitor.detect.series import detect_batch as on_executor

            pos = frame["pos"].to_numpy(np.int64)
            keep = wanted[pos - lo]
            ids, row = np.unique(pos[keep], return_inverse=True)
            bucket = frame["__bucket"].to_numpy(np.int64)[keep]
            v = np.zeros((len(ids), n))
            v[row, bucket] = frame["__num"].to_numpy(float)[keep]
            d = None
            if ratio:
                d = np.zeros((len(ids), n))
                d[row, bucket] = frame["__den"].to_numpy(float)[keep]
            m = np.zeros((len(ids), n), bool)
            for k, i in enumerate(ids.tolist()):
                if i in masks:
                    m[k] = np.unpackbits(np.frombuffer(masks[i], dtype=np.uint8))[:n].astype(bool)
            found = on_executor(v, denominators_2d=d, exclude=m, options=options) if len(ids) else []
            shown = [bool(det.segments) for det in found]
            return pd.DataFrame({
                "pos": ids,
                "detection": [pickle.dumps(replace(_shown_only(det), params={})) for det in found],
                "params": [pickle.dumps(det.params) for det in found],
                "values": [v[k].tobytes() if s else None for k, s in enumerate(shown)],
                "volume": [(d if ratio else v)[k].tobytes() if s else None for k, s in enumerate(shown)],
            }, columns=["pos", "detection", "params", "values", "volume"])

        frame = table.frame.where(F.col("pos").between(lo, hi))
        judged = frame.groupBy((F.col("pos") / F.lit(per_task)).cast("long").alias("__chunk")).applyInPandas(
            judge, schema="pos long, detection binary, params binary, values binary, volume binary")
        out: dict[int, object] = {}
        params: dict[bytes, dict] = {}  # most series share their parameters: one dict each
        for r in judged.toLocalIterator():  # a partition at a time: never all blobs at once
            det = pickle.loads(r["detection"])
            blob = bytes(r["params"])
            shared = params.get(blob)
            if shared is None:
                shared = params[blob] = pickle.loads(blob)
            pos = int(r["pos"])
            out[pos] = replace(det, params=shared)
            if r["values"] is not None and isinstance(series[pos], RemoteSlice):
                values = np.frombuffer(r["values"], dtype=float).copy()
                series[pos].hold(values, np.frombuffer(r["volume"], dtype=float).copy() if ratio else values)
        missing = set(group) - set(out)
        if missing:
            raise RuntimeError(f"{len(missing)} series were not judged on the executors (e.g. position {min(missing)})")
        return out


def _shown_only(det):
    """The detection without its per-bucket arrays unless it has an incident to show."""
    if det.segments:
        return det
    return replace(det, expected=None, lower=None, upper=None, observed=None, score=None, anomalous=None)
