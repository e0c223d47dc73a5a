"""Series judged on the Spark executors by the one vectorised detector, ``detect_batch``.

``executor_batch(spark)`` returns a drop-in for ``monitor.detect.series.detect_batch``: the rows
are cut into chunks, each chunk goes to an executor inside ``applyInPandas`` and is judged there
by ``detect_batch`` itself, with the same options. What comes back per series is its segments,
change points and parameters; the per-bucket band (expected, lower, upper, score) only for the
series that are shown: a batch of one (the total) and every series with an incident. The others'
bands stay on the executors, so the driver and the store never hold 10^6 sellers' expectations.
"""
from __future__ import annotations

import math
import pickle
from dataclasses import replace

import numpy as np
import pandas as pd

# Series x buckets cells judged per executor task (about 40 MB of float arrays with temporaries).
CELLS_PER_TASK = 500_000


def executor_batch(spark, *, cells_per_task: int = CELLS_PER_TASK):
    """A function with detect_batch's signature that runs detect_batch on the executors."""

    def batch(values_2d, *, denominators_2d=None, exclude=None, options=None, **settings):
        from monitor.detect.series import detect_batch

        values = np.asarray(values_2d, dtype=float)
        n_series, n = values.shape if values.ndim == 2 else (1, values.size)
        if n_series <= 1:  # the total: nothing to spread, and its band is always shown
            return detect_batch(values_2d, denominators_2d=denominators_2d, exclude=exclude,
                                options=options, **settings)
        den = None if denominators_2d is None else np.asarray(denominators_2d, dtype=float)
        mask = None if exclude is None else np.broadcast_to(np.asarray(exclude, dtype=bool), (n_series, n))
        per_task = max(1, cells_per_task // max(n, 1))
        chunks = math.ceil(n_series / per_task)
        rows = pd.DataFrame({
            "chunk": np.arange(n_series, dtype=np.int64) // per_task,
            "row": np.arange(n_series, dtype=np.int64),
            "values": [r.tobytes() for r in values],
            "den": [None] * n_series if den is None else [r.tobytes() for r in den],
            "mask": [None] * n_series if mask is None else [np.packbits(r).tobytes() for r in mask],
        })

        def judge(frame: pd.DataFrame) -> pd.DataFrame:
            from monitor.detect.series import detect_batch as on_executor

            v = np.vstack([np.frombuffer(b, dtype=float) for b in frame["values"]])
            d = None if frame["den"].iloc[0] is None else np.vstack([np.frombuffer(b, dtype=float)
                                                                    for b in frame["den"]])
            m = None if frame["mask"].iloc[0] is None else np.vstack(
                [np.unpackbits(np.frombuffer(b, dtype=np.uint8))[:n].astype(bool) for b in frame["mask"]])
            found = on_executor(v, denominators_2d=d, exclude=m, options=options, **settings)
            return pd.DataFrame({"row": frame["row"].to_numpy(),
                                 "detection": [pickle.dumps(_shown_only(det)) for det in found]})

        frame = spark.createDataFrame(rows, schema="chunk long, row long, values binary, den binary, mask binary")
        out = (frame.repartition(min(chunks, max(1, _parallelism(spark))), "chunk").groupBy("chunk")
               .applyInPandas(judge, schema="row long, detection binary").toPandas())
        detections = [None] * n_series
        for row, blob in zip(out["row"].tolist(), out["detection"].tolist()):
            detections[row] = pickle.loads(blob)
        return detections

    return batch


def _shown_only(det):
    """The detection without its per-bucket arrays unless it has an incident to show."""
    if det.segments:
        return det
    return replace(det, expected=None, lower=None, upper=None, observed=None, score=None, anomalous=None)


def _parallelism(spark) -> int:
    try:
        return int(spark.sparkContext.defaultParallelism)
    except Exception:  # noqa: BLE001 - Spark Connect has no SparkContext
        return int(spark.conf.get("spark.sql.shuffle.partitions", "4"))
