"""A DuckDB source's window staged as Parquet for Spark, one Arrow batch at a time.

The driver never holds a whole window: the source query is read as record batches of
BATCH_ROWS rows, each normalised and counted as ``check_result`` does and appended to one
Parquet file under ``<prefix>/<metric>/incoming/<id>/``, which Spark's executors then read (the
prefix is a file system both reach). The window is judged on the summed counts by the same
``row_problem`` (and a mean's or distribution's by ``kind_problem``), so a bad window fails with
check_result's message and stages nothing. The staged
file is only input: the window is replaced by ``LeafWarehouse.write_window``'s manifest commit as
before, so a job killed while staging or writing leaves the old leaves of the window.
"""
from __future__ import annotations

import shutil
import time
import uuid
import weakref
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from monitor.catalog import Metric
from monitor.engine.duckdb_engine import bad_rows, normalised, query_failed, row_counts, row_problem, \
    schema_problems
from monitor.engine.windows import Window

INCOMING = "incoming"
# Rows the driver holds at once (~10 MB of Arrow for a metric with three dimensions).
BATCH_ROWS = 1 << 17
# A staging folder this old belongs to no live write (a window is staged and written within
# minutes); the next write of the metric removes it.
STALE_SECONDS = 24 * 3600


class StagedWindow:
    """One window's checked rows in a Parquet folder; the folder goes when this object does."""

    def __init__(self, path: Path, num_rows: int):
        self.path, self.num_rows = path, num_rows
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(path), True)

    def frame(self, spark, schema):
        return spark.read.schema(schema).parquet(str(self.path))

    def remove(self) -> None:
        self._finalizer()


def stage_window(engine, metric: Metric, window: Window, folder: Path, *,
                 batch_rows: int = BATCH_ROWS) -> StagedWindow | pa.Table:
    """The window's rows from a DuckDB engine, checked, in a Parquet file under
    `folder`/incoming; an empty Arrow table when there are none. MetricRunError as
    ``engine.run`` raises it."""
    reader = engine.batches(metric, window, batch_rows)
    problems = schema_problems(metric, reader.schema)
    if problems:
        raise bad_rows(metric, window, problems[0].split(": ", 1)[1])
    target = Path(folder) / INCOMING / uuid.uuid4().hex
    staged = StagedWindow(target, 0)  # from here on the folder is removed on any failure
    target.mkdir(parents=True)
    found: dict | None = None
    kind_broken = False  # a mean's or distribution's own row rules (monitor.engine.kinds)
    writer = None
    try:
        try:
            for batch in reader:
                columns = normalised(metric, batch)
                found = merged(found, row_counts(metric, columns))
                kind_broken = kind_broken or _kind_problem(metric, columns) is not None
                rows = pa.table(columns)
                if writer is None:
                    writer = pq.ParquetWriter(str(target / "part-0.parquet"), rows.schema)
                writer.write_table(rows)
                staged.num_rows += rows.num_rows
        finally:
            if writer is not None:
                writer.close()
    except (duckdb.Error, pa.ArrowException) as exc:  # the query failing while it streams
        staged.remove()
        raise query_failed(metric, window, exc) from exc
    problem = row_problem(metric, window, found) if found else None
    if problem is None and kind_broken:
        # worded over the whole window, as check_result words it (its counts are of every row);
        # only a window that breaks a rule is read back whole
        whole = pq.read_table(str(target))
        problem = _kind_problem(metric, dict(zip(whole.column_names, whole.columns)))
    if problem:
        staged.remove()
        raise bad_rows(metric, window, problem)
    if not staged.num_rows:
        staged.remove()
        return pa.table({"ts": pa.array([], pa.timestamp("us")), **{d: pa.array([], pa.string()) for d in metric.keys},
                         **{m: pa.array([], pa.float64()) for m in metric.measures}})
    return staged


def _kind_problem(metric: Metric, columns: dict) -> str | None:
    if metric.kind not in ("mean", "distribution"):
        return None
    from monitor.engine.kinds import kind_problem

    return kind_problem(metric, columns)


def merged(total: dict | None, part: dict) -> dict:
    """Two batches' counts as one: counts add, the first and last ts widen."""
    if total is None:
        return dict(part)
    out = {k: total[k] + v for k, v in part.items() if k not in ("lo", "hi")}
    lows = [v for v in (total["lo"], part["lo"]) if v is not None]
    highs = [v for v in (total["hi"], part["hi"]) if v is not None]
    return out | {"lo": min(lows) if lows else None, "hi": max(highs) if highs else None}


def remove_stale(folder: Path, *, now: float | None = None) -> None:
    """Staging folders of writes killed before they cleaned up (older than STALE_SECONDS)."""
    incoming = Path(folder) / INCOMING
    if not incoming.exists():
        return
    cutoff = (time.time() if now is None else now) - STALE_SECONDS
    for child in incoming.iterdir():
        try:
            if child.stat().st_mtime < cutoff:
                shutil.rmtree(child, ignore_errors=True)
        except OSError:
            pass  # removed meanwhile by its own write

