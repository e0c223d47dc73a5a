"""Slice series whose per-bucket rows stay on Spark until something reads them.

In warehouse mode the slices' long rows (position, bucket, numerator, denominator) are kept as
one checkpointed Spark DataFrame, a ``SliceTable``. The driver's list of series holds, for most
slices (a dimension of 200,000 sellers), a ``RemoteSlice``: its segment and its position in that
table, no arrays. The judging on the executors (``monitor.warehouse.judge``) caches the rows of
the series it found an incident in, as those are read again (second pass, stored bands); the
traffic-mix test reads a dimension a chunk at a time through ``RemoteSlice.rows`` (``LazyRows``).
Anything else that reads ``values`` / ``volume`` still gets them, one Spark query per series.
"""
from __future__ import annotations

import numpy as np

from monitor.slices import slice_label


class SliceTable:
    """The long rows of every judged series, keyed by the series' position in the list."""

    def __init__(self, frame, n_buckets: int, *, ratio: bool):
        self.frame = frame  # pos long, __bucket int, __num double, __den double
        self.n = n_buckets
        self.ratio = ratio  # else numerator and denominator are one column (a sum metric)

    def dense(self, positions) -> tuple[np.ndarray, np.ndarray]:
        """(values, volume) of the series at `positions` (sorted or not), rows in that order."""
        from pyspark.sql import functions as F

        positions = np.asarray(positions, dtype=np.int64)
        values = np.zeros((len(positions), self.n))
        volume = np.zeros((len(positions), self.n)) if self.ratio else values
        if not len(positions):
            return values, volume
        lo, hi = int(positions.min()), int(positions.max())
        query = self.frame.where(F.col("pos").between(lo, hi))
        if hi - lo + 1 > 2 * len(positions):  # scattered: name them (a few series)
            query = query.where(F.col("pos").isin([int(p) for p in positions]))
        rows = query.toPandas()
        row_of = np.full(hi - lo + 1, -1, np.int64)
        row_of[positions - lo] = np.arange(len(positions))
        which = row_of[rows["pos"].to_numpy(np.int64) - lo]
        keep = which >= 0
        bucket = rows["__bucket"].to_numpy(np.int64)[keep]
        values[which[keep], bucket] = rows["__num"].to_numpy(float)[keep]
        if self.ratio:
            volume[which[keep], bucket] = rows["__den"].to_numpy(float)[keep]
        return values, volume


class RemoteSlice:
    """A slice series (as ``monitor.detect.slices.SliceSeries``) whose rows are on Spark."""

    __slots__ = ("segment", "table", "pos", "screened", "_values", "_volume")

    def __init__(self, segment: dict[str, str], table: SliceTable, pos: int):
        self.segment = segment
        self.table = table
        self.pos = pos
        self.screened = False  # screened pairs are few: they come to the driver whole
        self._values = self._volume = None

    @property
    def label(self) -> str:
        return slice_label(self.segment)

    @property
    def held(self) -> bool:
        return self._values is not None

    def hold(self, values: np.ndarray, volume: np.ndarray) -> None:
        """Keep the rows on the driver (a series with an incident: read again)."""
        self._values, self._volume = values, volume

    @property
    def values(self) -> np.ndarray:
        return self._values if self._values is not None else self.table.dense([self.pos])[0][0]

    @property
    def volume(self) -> np.ndarray:
        return self._volume if self._volume is not None else self.table.dense([self.pos])[1][0]

    @staticmethod
    def rows(parts: list) -> tuple["LazyRows", "LazyRows"]:
        """(values rows, volume rows) of `parts` as sequences ``mix_series`` slices a chunk at a
        time; each chunk is one Spark query, shared by its two sequences."""
        reader = _ChunkReader(parts)
        return LazyRows(reader, 0), LazyRows(reader, 1)


class _ChunkReader:
    def __init__(self, parts: list):
        self.parts = parts
        self.last: tuple[tuple[int, int], tuple[np.ndarray, np.ndarray]] | None = None

    def chunk(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        if self.last is not None and self.last[0] == (lo, hi):
            return self.last[1]
        parts = self.parts[lo:hi]
        remote = [i for i, s in enumerate(parts) if isinstance(s, RemoteSlice) and not s.held]
        fetched = parts[remote[0]].table.dense([parts[i].pos for i in remote]) if remote else None
        n = fetched[0].shape[1] if fetched is not None else len(parts[0].values) if parts else 0
        values, volume = np.zeros((len(parts), n)), np.zeros((len(parts), n))
        if fetched is not None:
            values[remote], volume[remote] = fetched
        for i, s in enumerate(parts):
            if not (isinstance(s, RemoteSlice) and not s.held):
                values[i], volume[i] = s.values, s.volume
        self.last = ((lo, hi), (values, volume))
        return values, volume


class LazyRows:
    """A sequence of per-series rows, read from Spark a slice of series at a time."""

    def __init__(self, reader: _ChunkReader, which: int):
        self.reader, self.which = reader, which

    def __len__(self) -> int:
        return len(self.reader.parts)

    def __getitem__(self, index):
        if isinstance(index, slice):
            lo, hi, step = index.indices(len(self))
            if step != 1:
                raise IndexError("LazyRows takes contiguous slices only")
            return self.reader.chunk(lo, hi)[self.which]
        index = range(len(self))[index]
        return self.reader.chunk(index, index + 1)[self.which][0]
