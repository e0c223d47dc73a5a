"""Leaf rows of a metric kept as Parquet on Spark, one folder per day, replaced per window atomically.

Layout under the prefix, per metric::

    <prefix>/<metric>/data/<write id>/day=2026-06-01/part-*.parquet   written by Spark
    <prefix>/<metric>/_manifest.json                                  which folder holds each day

A window's write reads the days it touches (rows of those days outside the window are kept),
writes the new days to a fresh ``data/<write id>`` folder, and only then replaces the manifest
with ``os.replace`` (atomic on POSIX). Readers see only the folders the manifest names, so a job
killed mid-window leaves the previous leaves of that window as they were: the orphaned folder
is removed by the next write. Writing the same window again gives the same rows (idempotent).
The manifest is written by the driver, so the prefix must be a file system the driver mounts
(a local disk, NFS, a FUSE-mounted bucket); executors write the Parquet files into it.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa

from monitor.catalog import Metric
from monitor.engine.windows import Window
from monitor.warehouse.staging import StagedWindow, remove_stale
from monitor.warehouse.checkpoint import local_checkpoint

MANIFEST = "_manifest.json"
DATA = "data"
# Files per day: a day of leaves is small next to a Parquet file's ideal size.
FILES_PER_DAY = 1


def ntz(value: dt.datetime):
    """A naive datetime as a Spark TIMESTAMP_NTZ literal. Through text: pyspark would read a naive
    datetime in the Python process's local time zone."""
    from pyspark.sql import functions as F

    return F.lit(value.isoformat(sep=" ")).cast("timestamp_ntz")


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of one metric's folder; empty without leaves. Readers outside Spark (the
    DuckDB views of monitor.warehouse.views) read it here too, so all see the same live days."""
    path = Path(folder) / MANIFEST
    if not path.exists():
        return {"columns": [], "days": {}}
    return json.loads(path.read_text())


def live_folders(folder: Path) -> tuple[list[str], list[Path]]:
    """The stored columns and the day folders the manifest names, oldest day first: all a
    reader may read (a killed write's folder is named by no manifest)."""
    manifest = read_manifest(folder)
    return manifest["columns"], [Path(folder) / manifest["days"][d] for d in sorted(manifest["days"])]


class LeafWarehouse:
    """The leaves of every metric under one path prefix, read and written through a SparkSession."""

    def __init__(self, prefix: Path | str, spark_session):
        self.prefix = Path(prefix)
        self._session = spark_session  # a SparkSession, or a callable that opens one on first use
        self._spark = None

    @property
    def spark(self):
        if self._spark is None:
            self._spark = self._session() if callable(self._session) else self._session
            # bucket arithmetic casts ts to Spark's zoned TIMESTAMP: UTC, the toolkit's time base
            self._spark.conf.set("spark.sql.session.timeZone", "UTC")
        return self._spark

    # -- layout -------------------------------------------------------------------------------
    def folder(self, metric_name: str) -> Path:
        return self.prefix / metric_name

    def manifest(self, metric_name: str) -> dict[str, Any]:
        """{"columns": [...], "days": {"YYYY-MM-DD": "data/<id>/day=YYYY-MM-DD"}}; empty without leaves."""
        return read_manifest(self.folder(metric_name))

    def has_leaves(self, metric_name: str) -> bool:
        return bool(self.manifest(metric_name)["days"])

    def latest_day(self, metric_name: str) -> dt.date | None:
        days = self.manifest(metric_name)["days"]
        return dt.date.fromisoformat(max(days)) if days else None

    # -- reading ------------------------------------------------------------------------------
    def frame(self, metric: Metric, *, start: dt.datetime | None = None, end: dt.datetime | None = None):
        """The stored leaves with start <= ts < end as a Spark DataFrame (ts, keys, measures; the keys
        are the dimensions and a distribution's bucket); only the day folders that can hold such
        rows are read. None without any."""
        manifest = self.manifest(metric.name)
        columns = ["ts", *metric.keys, *metric.measures]
        if manifest["columns"] != columns:
            return None  # the dimensions or kind changed: the old rows cannot be re-sliced
        days = [d for d in sorted(manifest["days"])
                if (start is None or dt.date.fromisoformat(d) >= start.date())
                and (end is None or dt.date.fromisoformat(d) <= end.date())]
        if not days:
            return None
        folder = self.folder(metric.name)
        frame = (self.spark.read.schema(self._schema(metric))
                 .parquet(*[str(folder / manifest["days"][d]) for d in days]))
        from pyspark.sql import functions as F

        if start is not None:
            frame = frame.where(F.col("ts") >= ntz(start))
        if end is not None:
            frame = frame.where(F.col("ts") < ntz(end))
        return frame

    @staticmethod
    def _schema(metric: Metric):
        from pyspark.sql import types as T

        return T.StructType([T.StructField("ts", T.TimestampNTZType(), False),
                             *(T.StructField(d, T.StringType(), False) for d in metric.keys),
                             *(T.StructField(m, T.DoubleType(), False) for m in metric.measures)])

    # -- writing ------------------------------------------------------------------------------
    def write_window(self, metric: Metric, window: Window, rows) -> int:
        """Replace the leaves of [window.start, window.end) by `rows` (an Arrow table or a Spark
        DataFrame with ts, keys, measures); duplicate leaves are summed. Returns rows stored."""
        from pyspark.sql import functions as F

        spark = self.spark
        folder = self.folder(metric.name)
        folder.mkdir(parents=True, exist_ok=True)
        self._remove_orphans(metric.name)
        manifest = self.manifest(metric.name)
        columns = ["ts", *metric.keys, *metric.measures]
        if manifest["columns"] != columns:
            manifest = {"columns": columns, "days": {}}  # a changed definition restarts the history
        incoming = self._incoming(metric, rows)
        keys = [F.col("ts"), *(F.col(d) for d in metric.keys)]
        incoming = incoming.groupBy(*keys).agg(*(F.sum(m).alias(m) for m in metric.measures))
        first_day, last_day = window.start.date(), (window.end - dt.timedelta(microseconds=1)).date()
        touched = [d for d in manifest["days"] if first_day.isoformat() <= d <= last_day.isoformat()]
        kept = self.frame(metric, start=dt.datetime.combine(first_day, dt.time()),
                          end=dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time())) if touched else None
        if kept is not None:  # rows of the touched days that lie outside the window stay
            outside = (F.col("ts") < ntz(window.start)) | (
                F.col("ts") >= ntz(window.end))
            incoming = incoming.unionByName(kept.where(outside))
        write_id = uuid.uuid4().hex
        target = folder / DATA / write_id
        staged = incoming.withColumn("day", F.date_format("ts", "yyyy-MM-dd"))
        # materialised once: the rows are counted and written from the same computation
        staged = local_checkpoint(staged)
        stored = staged.where((F.col("ts") >= ntz(window.start))
                              & (F.col("ts") < ntz(window.end))).count()
        written = [r[0] for r in staged.select("day").distinct().collect()]
        staged.repartition(FILES_PER_DAY * max(len(written), 1), "day").write.partitionBy("day").parquet(str(target))
        days = {d: p for d, p in manifest["days"].items() if d not in touched}
        days.update({d: f"{DATA}/{write_id}/day={d}" for d in written})
        self._commit(metric.name, {"columns": columns, "days": days})
        staged.unpersist()
        if isinstance(rows, StagedWindow):
            rows.remove()  # read into the checkpoint: no longer needed
        self._remove_orphans(metric.name)
        return int(stored)

    def _incoming(self, metric: Metric, rows):
        """`rows` as a Spark DataFrame in the stored types."""
        from pyspark.sql import functions as F

        if isinstance(rows, StagedWindow):  # read by the executors from the staged Parquet
            frame = rows.frame(self.spark, self._schema(metric))
        elif isinstance(rows, pa.Table):
            # straight from Arrow (no pandas copy with a Python string per dimension value)
            frame = self.spark.createDataFrame(rows, schema=self._schema(metric)) if rows.num_rows else \
                self.spark.createDataFrame([], self._schema(metric))
        else:
            frame = rows
        return frame.select(F.col("ts").cast("timestamp_ntz").alias("ts"),
                            *(F.col(d).cast("string").alias(d) for d in metric.keys),
                            *(F.col(m).cast("double").alias(m) for m in metric.measures))

    def _commit(self, metric_name: str, manifest: dict) -> None:
        """The one atomic step of a write: the new manifest replaces the old in one rename."""
        path = self.folder(metric_name) / MANIFEST
        staging = path.with_name(f".{MANIFEST}.{uuid.uuid4().hex}")
        staging.write_text(json.dumps(manifest, sort_keys=True))
        with open(staging, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(staging, path)

    def _remove_orphans(self, metric_name: str) -> None:
        """Write folders no day of the manifest points to: replaced days, or a killed write's;
        staged source rows a killed backfill left (monitor.warehouse.staging)."""
        remove_stale(self.folder(metric_name))
        data = self.folder(metric_name) / DATA
        if not data.exists():
            return
        live = {p.split("/")[1] for p in self.manifest(metric_name)["days"].values()}
        for child in data.iterdir():
            if child.name not in live:
                shutil.rmtree(child, ignore_errors=True)
        for stale in self.folder(metric_name).glob(f".{MANIFEST}.*"):
            stale.unlink(missing_ok=True)
