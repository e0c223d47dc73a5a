"""A scratch file next to the store where detection stages expectations chunk by chunk.

Detection judges 200,000 series a chunk at a time; keeping every band in Python until
the end cost gigabytes. Each chunk's band is appended here instead, as Arrow record
batches (an IPC stream: the bytes as they are in memory, no table and no compression of
its own), and `_write`'s one store transaction streams them in (``reader``): the rows are
inserted into a DuckDB table once, in the store. The store is never open for writing
while series are judged (readers keep their turn), and a crash before that transaction
leaves the previous results as they were. The file is removed on exit, and one a killed
process left behind is only a stray file, never read again (each run has its own name).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa

COLUMNS = ("slice", "ts", "observed", "volume", "expected", "lower", "upper", "score", "anomalous")


class Staging:
    """Expectation rows staged outside the store: ``put`` a chunk, then ``reader`` once closed."""

    def __init__(self, store_path: Path | str):
        folder = Path(store_path).resolve().parent
        folder.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{Path(store_path).name}.staging-", suffix=".arrows", dir=folder)
        os.close(handle)
        self.path = Path(name)
        self._sink: pa.NativeFile | None = None
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None
        self._schema: pa.Schema | None = None
        self._puts = 0
        self._replaced: dict[str, int] = {}  # slice -> the put whose rows supersede its earlier ones
        self.rows = 0

    def put(self, table: pa.Table | None, *, replacing: list[str] | None = None) -> None:
        """Append a chunk's rows; ``replacing``: slices whose earlier rows this chunk supersedes
        (detection's second pass re-judges a few series)."""
        self._puts += 1
        for label in replacing or ():
            self._replaced[label] = self._puts
        if table is None or not table.num_rows:
            return
        table = table.select(list(COLUMNS))
        if self._writer is None:
            self._schema = table.schema
            self._sink = pa.OSFile(str(self.path), "wb")
            self._writer = pa.ipc.new_stream(self._sink, self._schema)
        # the put's number travels with each batch, so `reader` can drop superseded rows
        for batch in table.to_batches():
            self._writer.write_batch(batch, custom_metadata={"put": str(self._puts)})
        self.rows += table.num_rows

    def close(self) -> None:
        """Done appending."""
        if self._writer is not None:
            self._writer.close()
            self._sink.close()
            self._writer = self._sink = None

    def reader(self) -> pa.RecordBatchReader | None:
        """The staged rows, a batch at a time from the file (never whole in memory), less
        the rows a later put superseded; None when nothing was staged."""
        self.close()
        if self._schema is None:
            return None
        schema, replaced = self._schema, self._replaced

        def batches():
            with pa.OSFile(str(self.path), "rb") as source:
                for batch, meta in pa.ipc.open_stream(source).iter_batches_with_custom_metadata():
                    put = int(meta[b"put"]) if meta is not None and b"put" in meta else 0
                    gone = [label for label, by in replaced.items() if by > put]
                    if gone:
                        batch = batch.filter(pa.array(~_among(batch.column(0), gone)))
                    if batch.num_rows:
                        yield batch
        return pa.RecordBatchReader.from_batches(schema, batches())

    def remove(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            finally:
                self._sink.close()
                self._writer = self._sink = None
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> "Staging":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _among(labels: pa.Array, gone: list[str]) -> np.ndarray:
    """Per row: is its slice one of `gone`? (The slice column is dictionary-encoded: the
    chunk's few labels are looked up, not every row's string.)"""
    if pa.types.is_dictionary(labels.type):
        hit = np.isin(np.asarray(labels.dictionary.to_pylist(), dtype=object), gone)
        return hit[labels.indices.to_numpy(zero_copy_only=False)] if len(hit) else np.zeros(len(labels), bool)
    return np.isin(np.asarray(labels.to_pylist(), dtype=object), gone)
