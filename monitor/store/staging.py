"""A scratch file next to the store where detection stages expectations chunk by chunk.

Detection judges 200,000 series a chunk at a time; keeping every band in Python until
the end cost gigabytes. Each chunk's band is appended here instead, as a row group of a
Parquet file written by Arrow (a DuckDB table of its own cost 3 times as much CPU to fill,
its string and float columns compressed twice), and `_write`'s one store transaction reads
it with DuckDB's Parquet reader, within DuckDB's memory limit (an Arrow stream handed to
DuckDB held twice the memory at the insert). The store is never open for writing while
series are judged (readers keep their turn), and a crash before that transaction leaves
the previous results as they were. The file is removed on exit, and one a killed process
left behind is only a stray file, never read again (each run has its own name).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

COLUMNS = ("slice", "ts", "observed", "volume", "expected", "lower", "upper", "score", "anomalous")


class Staging:
    """Expectation rows staged outside the store: ``put`` a chunk, then ``source`` once closed."""

    def __init__(self, store_path: Path | str):
        folder = Path(store_path).resolve().parent
        folder.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{Path(store_path).name}.staging-", suffix=".parquet", dir=folder)
        os.close(handle)
        self.path = Path(name)
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        self._superseded: dict[str, int] = {}  # slice -> its rows before this row number are superseded
        self.rows = 0

    def put(self, table: pa.Table | None, *, replacing: list[str] | None = None) -> None:
        """Append a chunk's rows; ``replacing``: slices whose earlier rows this chunk supersedes
        (detection's second pass re-judges a few series)."""
        for label in replacing or ():
            self._superseded[label] = self.rows
        if table is None or not table.num_rows:
            return
        table = table.select(list(COLUMNS))
        if self._writer is None:
            self._schema = table.schema
            # a dictionary for the slice label only: trying one on the float columns doubled the
            # write's CPU for nothing; snappy costs about nothing and halves the file
            self._writer = pq.ParquetWriter(str(self.path), self._schema, compression="snappy",
                                            use_dictionary=["slice"])
        self._writer.write_table(table.cast(self._schema))
        self.rows += table.num_rows

    def close(self) -> None:
        """Done appending."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def source(self, con) -> str | None:
        """A relation (SQL text) of the staged rows for `con`, less the rows a later put
        superseded (read by DuckDB from the file, nothing in Python); None when nothing was
        staged. It registers the table `staged_superseded` on `con`."""
        self.close()
        if self._schema is None:
            return None
        con.register("staged_superseded", pa.table({"slice": pa.array(list(self._superseded), pa.string()),
                                                    "before_row": pa.array(list(self._superseded.values()), pa.int64())}))
        path = str(self.path).replace("'", "''")
        return (f"(SELECT p.* EXCLUDE (file_row_number) FROM read_parquet('{path}', file_row_number = true) p"
                f" ANTI JOIN staged_superseded s ON p.slice = s.slice AND p.file_row_number < s.before_row)")

    def remove(self) -> None:
        # the file goes even when closing the writer fails (a full disk): it is never read again
        try:
            if self._writer is not None:
                self._writer.close()
        finally:
            self._writer = None
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> "Staging":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()
