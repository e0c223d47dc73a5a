"""The scratch file of staged expectations (monitor.store.staging): what DuckDB reads from it
is every put row, less the rows of slices a later put replaced, and the file goes on exit."""
from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from monitor.store.staging import COLUMNS, Staging


def chunk(labels: list[str], days: int, value: float) -> pa.Table:
    """One band row per label and day, every value `value` (so a replaced row is told apart)."""
    n = len(labels) * days
    ts = np.tile(np.arange(days).astype("datetime64[D]").astype("datetime64[us]"), len(labels))
    cols = {"slice": pa.DictionaryArray.from_arrays(pa.array(np.repeat(np.arange(len(labels), dtype=np.int32), days)),
                                                    pa.array(labels)),
            "ts": pa.array(ts)}
    cols.update({c: pa.array(np.full(n, value)) for c in COLUMNS[2:-1]})
    cols["anomalous"] = pa.array(np.zeros(n, bool))
    return pa.table(cols)


def rows(staging: Staging) -> list[tuple]:
    con = duckdb.connect()
    source = staging.source(con)
    return sorted(con.execute(f"SELECT slice, ts, expected FROM {source}").fetchall()) if source else []


def test_staged_rows_are_every_row_less_those_a_later_put_replaced(tmp_path):
    with Staging(tmp_path / "store.duckdb") as staging:
        staging.put(chunk(["", "a", "b"], 5, 1.0))
        staging.put(chunk(["c", "d"], 5, 2.0))
        staging.put(chunk(["a", "d"], 5, 3.0), replacing=["a", "d"])  # the second pass
        staging.put(None, replacing=["b"])  # re-judged, no band any more
        got = rows(staging)
        path = staging.path
        assert path.exists()
    assert not path.exists()
    day = [dt.datetime(1970, 1, 1) + dt.timedelta(days=i) for i in range(5)]
    want = sorted([("", t, 1.0) for t in day] + [("c", t, 2.0) for t in day]
                  + [("a", t, 3.0) for t in day] + [("d", t, 3.0) for t in day])
    assert got == want


def test_nothing_staged_reads_none(tmp_path):
    with Staging(tmp_path / "store.duckdb") as staging:
        staging.put(None)
        assert staging.source(duckdb.connect()) is None


def test_the_file_goes_even_when_closing_the_writer_fails(tmp_path):
    class Failing:
        def close(self):
            raise OSError("No space left on device")

    staging = Staging(tmp_path / "store.duckdb")
    staging.put(chunk(["a"], 3, 1.0))
    staging._writer.close()  # the real writer, closed; then one whose close fails, as on a full disk
    staging._writer = Failing()
    with pytest.raises(OSError):  # not swallowed
        staging.remove()
    assert not staging.path.exists()
