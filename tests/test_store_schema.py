"""Opening a store gives every table of the schema, also to a reader, so no caller asks
whether a table exists. Real DuckDB files; a second process holds the writer side."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import duckdb
import pytest

from monitor.errors import StoreError
from monitor.store import Store
from monitor.store.store import schema_tables


def _tables(path) -> set[str]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def test_the_schema_names_the_tables_every_step_reads():
    assert {"runs", "incidents", "expectations", "change_points", "metric_definitions", "meta_alerts",
            "alert_outbox", "alert_silences"} <= schema_tables()


def test_a_reader_of_a_file_without_tables_gets_the_schema(tmp_path):
    path = tmp_path / "store.duckdb"
    duckdb.connect(str(path)).close()  # a DuckDB file, but no monitor tables (made by hand)
    assert not _tables(path) & schema_tables()
    store = Store(path)
    with store.connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM incidents").fetchone()[0] == 0
    assert schema_tables() <= _tables(path)
    assert store.runs().empty and store.stored_definitions() == {}


def test_a_reader_of_an_older_store_gets_the_missing_tables_and_keeps_the_data(tmp_path):
    path = tmp_path / "store.duckdb"
    with duckdb.connect(str(path)) as con:  # what a version before alerts.sql left behind
        con.execute("CREATE TABLE runs (run_id BIGINT, metric VARCHAR)")
        con.execute("INSERT INTO runs VALUES (1, 'fraud_rate')")
    with Store(path).connect(read_only=True) as con:
        assert con.execute("SELECT metric FROM runs").fetchall() == [("fraud_rate",)]
        assert con.execute("SELECT count(*) FROM alert_outbox").fetchone()[0] == 0


def test_a_reader_of_a_complete_store_does_not_write(tmp_path):
    path = tmp_path / "store.duckdb"
    Store(path).init()
    before = (path.stat().st_mtime_ns, path.stat().st_size)
    time.sleep(0.01)
    for _ in range(3):  # new Store objects, as every command makes its own
        with Store(path).connect(read_only=True) as con:
            con.execute("SELECT count(*) FROM runs").fetchone()
    assert (path.stat().st_mtime_ns, path.stat().st_size) == before


def test_a_reader_of_a_missing_store_is_told_to_create_it(tmp_path):
    with pytest.raises(StoreError, match="does not exist yet"):
        with Store(tmp_path / "nothing.duckdb").connect(read_only=True):
            pass
    assert not (tmp_path / "nothing.duckdb").exists()


def test_a_reader_needing_the_schema_waits_for_another_writer(tmp_path):
    """DuckDB admits one writing process: the reader's schema step waits for it, then reads."""
    path = tmp_path / "store.duckdb"
    duckdb.connect(str(path)).close()
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time, duckdb
        con = duckdb.connect({str(path)!r})
        print("held", flush=True)
        time.sleep(1.0)
        con.close()
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with Store(path, lock_wait=20).connect(read_only=True) as con:
            assert con.execute("SELECT count(*) FROM change_points").fetchone()[0] == 0
        assert time.monotonic() - started > 0.3  # it did wait for the holder
    finally:
        holder.wait(timeout=30)
