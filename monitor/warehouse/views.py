"""The warehouse's leaves as DuckDB views, so the dashboard and the report read them without Spark.

In warehouse mode the store file has no ``leaves__<metric>`` tables. On each read connection
of a ``WarehouseStore`` a TEMP view of that name is made over ``read_parquet`` of the day
folders the metric's manifest names (``live_folders``, the manifest's one reader): a folder of a
write still running, or of one killed, is named by no manifest and so is never read. The
views have the leaf table's columns and types (ts TIMESTAMP, dimensions VARCHAR, measures
DOUBLE), so every query written for the DuckDB store runs on them unchanged.

A prefix DuckDB cannot list (an object-store URL, a mount that is not there) gets no views:
the surfaces then show what they show today without leaves.
"""
from __future__ import annotations

from pathlib import Path

import duckdb

from monitor.store import leaves_table
from monitor.warehouse.leaves import MANIFEST, live_folders


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def attach_leaf_views(con: duckdb.DuckDBPyConnection, prefix: Path | str) -> list[str]:
    """Make a TEMP view ``leaves__<metric>`` for every metric under `prefix` with stored days;
    returns the metrics given one. A metric whose files DuckDB cannot read is skipped."""
    prefix = Path(prefix)
    try:
        folders = sorted(p for p in prefix.iterdir() if (p / MANIFEST).is_file())
    except OSError:
        return []
    attached = []
    for folder in folders:
        columns, days = live_folders(folder)
        if not columns or not days:
            continue
        files = ", ".join(_literal(str(day / "*.parquet")) for day in days)
        ts, *rest = columns
        # the day folders are read as plain files: the partition column `day` is not a leaf column
        select = ", ".join([f"CAST({_quote(ts)} AS TIMESTAMP) AS {_quote(ts)}",
                            *(f"{_quote(c)}" for c in rest)])
        try:
            con.execute(f"CREATE OR REPLACE TEMP VIEW {_quote(leaves_table(folder.name))} AS "
                        f"SELECT {select} FROM read_parquet([{files}], hive_partitioning = false)")
        except duckdb.Error:
            continue  # unreadable (a folder removed under us, a remote path): no history, as before
        attached.append(folder.name)
    return attached
