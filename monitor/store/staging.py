"""A scratch DuckDB file next to the store where detection stages expectations chunk by chunk.

Detection judges 200,000 series a chunk at a time; keeping every band in Python until
the end cost gigabytes. Each chunk's band goes here instead, and `Store`'s one write
transaction copies it in (``swap_in``): the store is never open for writing while series
are judged (readers keep their turn), and a crash before that transaction leaves the
previous results as they were. The file is removed on exit, and one a killed process
left behind is only a stray file, never read again (each run has its own name).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa

COLUMNS = ("slice", "ts", "observed", "volume", "expected", "lower", "upper", "score", "anomalous")
DDL = ("CREATE TABLE expectations (slice VARCHAR, ts TIMESTAMP, observed DOUBLE, volume DOUBLE, expected DOUBLE,"
       " lower DOUBLE, upper DOUBLE, score DOUBLE, anomalous BOOLEAN)")


class Staging:
    """Expectation rows staged outside the store: ``put`` a chunk, ``path`` once closed."""

    def __init__(self, store_path: Path | str, *, memory_limit: int):
        folder = Path(store_path).resolve().parent
        folder.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{Path(store_path).name}.staging-", suffix=".duckdb", dir=folder)
        os.close(handle)
        os.unlink(name)  # DuckDB makes the file itself (an empty file is not a database)
        self.path = Path(name)
        self._con = duckdb.connect(str(self.path))
        # what DuckDB keeps while appending; the rows themselves go to disk
        self._con.execute(f"SET memory_limit = '{max(memory_limit, 64 * 2**20) // 2**20}MiB'")
        self._con.execute("SET threads = 1")
        self._con.execute(DDL)
        self.rows = 0

    def put(self, table: pa.Table | None, *, replacing: list[str] | None = None) -> None:
        """Append a chunk's rows; ``replacing``: slices whose earlier rows this chunk supersedes
        (detection's second pass re-judges a few series)."""
        if replacing:
            self._con.execute("DELETE FROM expectations WHERE slice IN (SELECT unnest(?))", [list(replacing)])
        if table is None or not table.num_rows:
            return
        self._con.register("chunk", table)
        self._con.execute(f"INSERT INTO expectations SELECT {', '.join(COLUMNS)} FROM chunk")
        self._con.unregister("chunk")
        self.rows += table.num_rows

    def close(self) -> None:
        """Done appending: checkpointed and closed, so a store connection may ATTACH it."""
        if self._con is not None:
            self._con.execute("CHECKPOINT")
            self._con.close()
            self._con = None

    def remove(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
        for path in (self.path, Path(f"{self.path}.wal")):
            path.unlink(missing_ok=True)

    def __enter__(self) -> "Staging":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()
