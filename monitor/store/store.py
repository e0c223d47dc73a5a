"""The store: a DuckDB file with leaf rows per metric, the run log and incidents.

Connections are short-lived (one per operation) because DuckDB lets only one
process hold a database file open for writing: holding it briefly and retrying
on a lock conflict lets the scheduler, a manual backfill and the dashboard take
turns instead of failing.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import time
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Iterator

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from monitor.catalog import Metric
from monitor.engine.windows import Window
from monitor.clock import utc_naive
from monitor.errors import EmptyResultError, StoreError
from monitor.store.lock import describe_holder, lock_path, read_holder
from monitor.slices import slice_label  # noqa: F401  (re-exported: the label's one home is monitor.slices)

# Shipped inside the package (a wheel has no checkout around it), read through importlib.resources.
SQL_DIR = resources.files("monitor.sql")
# schema.sql first, then each later step's own DDL file (alerts.sql, ...), all idempotent.
SCHEMA_FILES = ("schema.sql",)
LOCK_WAIT_SECONDS = 30.0
# A writer hands the file back at least this often, so readers in other processes get a turn.
MAX_HOLD_SECONDS = 2.0
WRITER_THREADS = 1
# Readers kept out by a writer say so by touching "<store>.waiting"; a writer that sees a
# touch this recent hands the file over after its current window (held at least MIN_HOLD,
# so it still makes progress) and waits up to YIELD_SECONDS for the readers to get in.
# Without it a writer of many small windows reopens the file within microseconds of
# closing it and readers, polling, almost never find it free (waits of 15-30 s measured).
READER_FRESH_SECONDS = 0.15
READER_POLL_SECONDS = 0.02
MIN_HOLD_SECONDS = 0.2
YIELD_SECONDS = 1.0


def leaves_table(metric_name: str) -> str:
    return f"leaves__{metric_name}"


def schema_sql() -> list[str]:
    """The DDL files in the order they are applied: schema.sql, then each later step's own."""
    extra = sorted(p.name for p in SQL_DIR.iterdir() if p.name.endswith(".sql") and p.name not in SCHEMA_FILES)
    return [(SQL_DIR / name).read_text(encoding="utf-8") for name in (*SCHEMA_FILES, *extra)]


def schema_tables() -> set[str]:
    """The tables the DDL files create (every store has them all once it is opened)."""
    return {m.lower() for text in schema_sql()
            for m in re.findall(r"CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+(\w+)", text, flags=re.IGNORECASE)}


class Store:
    # None: the leaves are in this file and every step queries them with DuckDB. In warehouse
    # mode, the engine that holds them (monitor.warehouse.leaf_engine): compute, detection,
    # attribution and the stale check hand it their heavy steps.
    leaf_engine = None

    def __init__(self, path: Path | str, *, lock_wait: float = LOCK_WAIT_SECONDS, max_hold: float = MAX_HOLD_SECONDS):
        self.path = Path(path)
        self.lock_wait = lock_wait
        self.max_hold = max_hold
        self._schema_ready = False

    # -- connections -------------------------------------------------------------------------
    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection held only for the block; waits for another process's lock."""
        if read_only and not self.path.exists():
            raise StoreError(f"Store {self.path} does not exist yet; run `monitor backfill` or `monitor demo` first.")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        con = self._open(read_only)
        try:
            if not self._schema_ready:
                con = self._ready(con, read_only)
            if read_only:
                self.prepare_reader(con)
            yield con
        finally:
            con.close()

    def prepare_reader(self, con: duckdb.DuckDBPyConnection) -> None:
        """Called on every read connection; warehouse mode adds its leaves as views here."""

    def _ready(self, con: duckdb.DuckDBPyConnection, read_only: bool) -> duckdb.DuckDBPyConnection:
        """The connection, once the file has every table of the schema (checked once per Store).

        A write connection applies the (idempotent) DDL. A read connection only looks: a file
        written by an older version, or made by hand, lacks tables; then the schema is applied
        through one short write connection (waiting its turn like any writer) and the read
        connection reopened. So no caller has to ask whether a table exists.
        """
        if not read_only:
            self._apply_schema(con)
            return con
        present = {r[0].lower() for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}
        missing = schema_tables() - present
        if not missing:
            self._schema_ready = True
            return con
        con.close()
        try:
            writer = self._open(read_only=False)
        except StoreError as exc:
            raise StoreError(f"{exc} The store lacks the table(s) {', '.join(sorted(missing))} and they could "
                             f"not be created.") from exc
        try:
            self._apply_schema(writer)
        finally:
            writer.close()
        return self._open(read_only=True)

    def _open(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.lock_wait
        delay = 0.02
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise StoreError(f"Cannot open store {self.path}: {str(exc).splitlines()[0]}") from exc
                if time.monotonic() > deadline:
                    raise StoreError(self._busy_message()) from exc
                if read_only:
                    self._signal_reader_waiting()
                    time.sleep(READER_POLL_SECONDS)  # poll fast: the writer's hand-over is brief
                else:
                    time.sleep(delay)
                    delay = min(delay * 2, 0.5)

    def _busy_message(self) -> str:
        holder = read_holder(self.path)
        if holder is not None:
            return (f"The store {self.path} is busy: its writer lock {lock_path(self.path)} is held by "
                    f"{describe_holder(holder)}; gave up after waiting {self.lock_wait:g} s (try again when it is done).")
        return (f"The store {self.path} is held by another process (not through monitor's writer lock); "
                f"gave up after waiting {self.lock_wait:g} s.")

    def _waiting_path(self) -> Path:
        return self.path.with_name(self.path.name + ".waiting")

    def _signal_reader_waiting(self) -> None:
        try:
            self._waiting_path().touch()
        except OSError:
            pass  # a read-only folder: the writer still hands over every max_hold seconds

    def reader_waiting(self) -> bool:
        """True while a reader in another process is being kept out (touched very recently)."""
        try:
            return time.time() - self._waiting_path().stat().st_mtime < READER_FRESH_SECONDS
        except OSError:
            return False

    def yield_to_readers(self) -> None:
        """Before a writer reopens the file: let waiting readers in first (bounded)."""
        deadline = time.monotonic() + YIELD_SECONDS
        while self.reader_waiting() and time.monotonic() < deadline:
            time.sleep(READER_POLL_SECONDS)

    def _apply_schema(self, con: duckdb.DuckDBPyConnection) -> None:
        for text in schema_sql():
            con.execute(text)
        self._schema_ready = True

    def init(self) -> None:
        with self.connect():
            pass

    @contextmanager
    def writer(self, *, max_hold: float | None = None) -> Iterator["WriterSession"]:
        """A write connection reused across many small writes (a backfill's windows).

        Opening and closing the file costs more than writing a window, so it is kept
        open, but handed back every `max_hold` seconds so that readers in other
        processes (the dashboard) are never blocked for long.
        """
        session = WriterSession(self, self.max_hold if max_hold is None else max_hold)
        try:
            yield session
        finally:
            session.release()

    # -- metric definitions ------------------------------------------------------------------
    def stored_definitions(self) -> dict[str, dict]:
        if not self.path.exists():
            return {}
        with self.connect(read_only=True) as con:
            rows = con.execute("SELECT metric, definition_hash, updated_at, header_json FROM metric_definitions").fetchall()
        return {m: {"hash": h, "updated_at": u, "header": json.loads(j)} for m, h, u, j in rows}

    def stale_metrics(self, metrics: list[Metric]) -> list[tuple[Metric, dict]]:
        """Metrics whose stored history was computed with another definition."""
        stored = self.stored_definitions()
        return [(m, stored[m.name]) for m in metrics if m.name in stored and stored[m.name]["hash"] != m.definition_hash]

    # -- leaf rows ---------------------------------------------------------------------------
    def write_window(self, metric: Metric, window: Window, rows: pa.Table, *, trigger: str,
                     started_at: dt.datetime, now: dt.datetime | None = None,
                     session: "WriterSession | None" = None, allow_empty: bool = False) -> int:
        """Replace the window's rows and log the run, in one transaction.

        Either the new rows and the 'ok' run are both there, or neither: a crash
        or error mid-way leaves the previous state of the window. Duplicate leaves
        (a GROUP BY slip) are summed: measures are additive.

        An empty result over a window that holds rows is refused unless `allow_empty`:
        an emptied or truncated source table must not silently wipe history.
        """
        if session is None:
            with self.writer() as own:
                return self.write_window(metric, window, rows, trigger=trigger, started_at=started_at,
                                         now=now, session=own, allow_empty=allow_empty)
        table = leaves_table(metric.name)
        finished = now or utc_naive()
        con = session.connection()
        con.execute("BEGIN TRANSACTION")
        try:
            session.ensure_leaves_table(metric)
            if not rows.num_rows and not allow_empty:
                held = con.execute(f'SELECT count(*) FROM "{table}" WHERE ts >= ? AND ts < ?',
                                   [window.start, window.end]).fetchone()[0]
                if held:
                    raise EmptyResultError(
                        f"{metric.name} returned no rows for {window}, which holds {held:,} stored leaf rows; "
                        f"kept them (is the source empty?). Pass --allow-empty to store the empty result.")
            con.execute(f'DELETE FROM "{table}" WHERE ts >= ? AND ts < ?', [window.start, window.end])
            stored = 0
            if rows.num_rows:
                con.register("incoming_rows", rows)
                cols = ", ".join(f'"{c}"' for c in ["ts", *metric.keys, *metric.measures])
                if keys_are_unique(rows, ["ts", *metric.keys]):
                    # The usual case (the query ends in GROUP BY): copy the rows as they are.
                    # Re-grouping would cost more than the check and scatter the rows, which
                    # also makes the commit's compression slower.
                    stored = rows.num_rows
                    con.execute(f'INSERT INTO "{table}" ({cols}) SELECT {cols} FROM incoming_rows')
                else:
                    # Keys cast to the stored types first, so values that become equal are summed too.
                    keys = ", ".join(['ts::TIMESTAMP', *(f'"{d}"::VARCHAR' for d in metric.keys)])
                    sums = ", ".join(f'sum("{m}")' for m in metric.measures)
                    stored = con.execute(f'INSERT INTO "{table}" ({cols}) SELECT {keys}, {sums} FROM incoming_rows'
                                         ' GROUP BY ALL').fetchone()[0]  # DuckDB answers an INSERT with its row count
                con.unregister("incoming_rows")
            con.execute(
                "INSERT INTO runs (metric, window_start, window_end, started_at, finished_at, rows, status,"
                " definition_hash, trigger) VALUES (?, ?, ?, ?, ?, ?, 'ok', ?, ?)",
                [metric.name, window.start, window.end, started_at, finished, stored,
                 metric.definition_hash, trigger],
            )
            session.upsert_definition(metric, finished)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        session.maybe_release()
        return stored

    def record_failure(self, metric: Metric, window: Window, error: str, *, trigger: str,
                       started_at: dt.datetime, now: dt.datetime | None = None,
                       session: "WriterSession | None" = None) -> None:
        if session is None:
            with self.writer() as own:
                return self.record_failure(metric, window, error, trigger=trigger, started_at=started_at,
                                           now=now, session=own)
        session.connection().execute(
            "INSERT INTO runs (metric, window_start, window_end, started_at, finished_at, rows, status, error,"
            " definition_hash, trigger) VALUES (?, ?, ?, ?, ?, 0, 'failed', ?, ?, ?)",
            [metric.name, window.start, window.end, started_at, now or utc_naive(), error,
             metric.definition_hash, trigger],
        )
        session.maybe_release()

    @staticmethod
    def _ensure_leaves_table(con: duckdb.DuckDBPyConnection, metric: Metric) -> None:
        table = leaves_table(metric.name)
        wanted = ["ts", *metric.keys, *metric.measures]
        if _has_table(con, table):
            have = [r[0] for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
                [table]).fetchall()]
            if have == wanted:
                return
            # The dimensions or kind changed: old rows cannot be re-sliced, so the history restarts.
            con.execute(f'DROP TABLE "{table}"')
        dims = "".join(f', "{d}" VARCHAR NOT NULL' for d in metric.keys)
        measures = "".join(f', "{m}" DOUBLE NOT NULL' for m in metric.measures)
        con.execute(f'CREATE TABLE "{table}" (ts TIMESTAMP NOT NULL{dims}{measures})')

    @staticmethod
    def _upsert_definition(con: duckdb.DuckDBPyConnection, metric: Metric, now: dt.datetime) -> None:
        con.execute(
            "INSERT OR REPLACE INTO metric_definitions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [metric.name, metric.definition_hash, metric.kind, metric.grain, list(metric.dimensions),
             json.dumps(metric.header_dict(), default=str), str(metric.path), now],
        )

    def latest_bucket(self, metric: Metric) -> dt.datetime | None:
        """The newest stored bucket of the metric (None without rows)."""
        if not self.has_leaves(metric.name):
            return None
        with self.connect(read_only=True) as con:
            return con.execute(f'SELECT max(ts) FROM "{leaves_table(metric.name)}"').fetchone()[0]

    def has_leaves(self, metric_name: str) -> bool:
        if not self.path.exists():
            return False
        with self.connect(read_only=True) as con:
            return _has_table(con, leaves_table(metric_name))

    def read_leaves(self, metric: Metric, *, start: dt.datetime | None = None,
                    end: dt.datetime | None = None, con: duckdb.DuckDBPyConnection | None = None) -> pd.DataFrame:
        where, params = time_filter(start, end)
        sql = f'SELECT * FROM "{leaves_table(metric.name)}"{where} ORDER BY ts'
        return self._query_df(sql, params, con)

    def series(self, metric: Metric, *, by: tuple[str, ...] = (), start: dt.datetime | None = None,
               end: dt.datetime | None = None, con: duckdb.DuckDBPyConnection | None = None) -> pd.DataFrame:
        """Measures summed per ts (and per `by` dimensions): totals and slices are sums of leaves."""
        where, params = time_filter(start, end)
        keys = ", ".join(["ts", *(f'"{d}"' for d in by)])
        sums = ", ".join(f'sum("{m}") AS "{m}"' for m in metric.measures)
        sql = f'SELECT {keys}, {sums} FROM "{leaves_table(metric.name)}"{where} GROUP BY ALL ORDER BY ALL'
        return self._query_df(sql, params, con)

    def _query_df(self, sql: str, params: list, con: duckdb.DuckDBPyConnection | None) -> pd.DataFrame:
        if con is not None:
            return con.execute(sql, params).df()
        with self.connect(read_only=True) as own:
            return own.execute(sql, params).df()

    # -- run log -----------------------------------------------------------------------------
    def computed_until(self, metric: Metric) -> dt.datetime | None:
        """End of the latest window computed successfully with the current definition.

        Windows computed by an earlier definition do not count: after a change of
        dimensions their rows are gone, and `run` must compute history again.
        """
        if not self.path.exists():
            return None
        with self.connect(read_only=True) as con:
            row = con.execute("SELECT max(window_end) FROM runs WHERE metric = ? AND status = 'ok'"
                              " AND definition_hash = ?", [metric.name, metric.definition_hash]).fetchone()
        return row[0] if row else None

    def runs(self, metric: str | None = None, limit: int = 100) -> pd.DataFrame:
        sql = "SELECT * FROM runs" + (" WHERE metric = ?" if metric else "") + " ORDER BY run_id DESC LIMIT ?"
        with self.connect(read_only=True) as con:
            return con.execute(sql, ([metric] if metric else []) + [limit]).df()


class WriterSession:
    """One write connection for a run of writes, handed back every `max_hold` seconds.

    Also remembers which leaf tables and definitions it has already checked, so a
    backfill of many windows does not repeat the same catalog lookups per window.
    """

    def __init__(self, store: Store, max_hold: float):
        self.store = store
        self.max_hold = max_hold
        self._con: duckdb.DuckDBPyConnection | None = None
        self._opened_at = 0.0
        self._released = False  # closed at least once: readers may be waiting for their turn
        self._tables_ok: set[str] = set()
        self._definitions: dict[str, str] = {}  # metric -> hash written in this connection

    def connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            if self._released:
                self.store.yield_to_readers()
            self._con = self.store._open(read_only=False)
            # Appending one window's Arrow rows and committing them runs on one thread anyway;
            # more threads would only compete with the source query running meanwhile (compute).
            self._con.execute(f"SET threads = {WRITER_THREADS}")
            if not self.store._schema_ready:
                self.store._apply_schema(self._con)
            self._opened_at = time.monotonic()
        return self._con

    def ensure_leaves_table(self, metric: Metric) -> None:
        if metric.name not in self._tables_ok:
            Store._ensure_leaves_table(self.connection(), metric)
            self._tables_ok.add(metric.name)

    def upsert_definition(self, metric: Metric, now: dt.datetime) -> None:
        if self._definitions.get(metric.name) != metric.definition_hash:
            Store._upsert_definition(self.connection(), metric, now)
            self._definitions[metric.name] = metric.definition_hash

    def maybe_release(self) -> None:
        """Between writes: hand the file back after max_hold, or sooner when a reader waits."""
        if self._con is None:
            return
        held = time.monotonic() - self._opened_at
        if held > self.max_hold or (held > MIN_HOLD_SECONDS and self.store.reader_waiting()):
            self.release()

    def release(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
            self._released = True
            # Another process may change the file while it is closed: check again next time.
            self._tables_ok.clear()
            self._definitions.clear()


def keys_are_unique(rows: pa.Table, keys: list[str]) -> bool:
    """True only if no two rows share the same key columns (as they will be stored).

    Each key column is dictionary-encoded and the codes are packed into one integer
    per row; sorting those finds duplicates at a fraction of the cost of a GROUP BY.
    Answers False (so the caller sums duplicates) whenever it cannot be sure: key
    columns not already in their stored type (a cast could merge values) or too many
    distinct combinations to pack into 63 bits.
    """
    if rows.num_rows < 2:
        return True
    packed = np.zeros(rows.num_rows, dtype=np.int64)
    radix = 1
    for name in keys:
        column = rows.column(name)
        if name == "ts":
            stored_as = pa.types.is_timestamp(column.type) and column.type.unit == "us" and column.type.tz is None
        else:
            stored_as = pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
        if not stored_as:
            return False
        encoded = pc.dictionary_encode(column.combine_chunks(), null_encoding="encode")
        size = len(encoded.dictionary)
        radix *= size  # Python int: checked before the int64 arithmetic could overflow
        if radix >= 2 ** 63:
            return False
        packed = packed * size + encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    packed.sort()
    return not bool((packed[1:] == packed[:-1]).any())


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]).fetchone()[0])


def time_filter(start, end, *, start_col: str = "ts") -> tuple[str, list]:
    """A WHERE clause (and its parameters) for rows of [start, end): ``start_col >= start``
    and ``ts < end``; either bound may be None. Events pass ``coalesce(end_ts, ts)`` so that
    one that began before ``start`` but lasted into it is kept."""
    clauses, params = [], []
    if start is not None:
        clauses.append(f"{start_col} >= ?")
        params.append(start)
    if end is not None:
        clauses.append("ts < ?")
        params.append(end)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params
