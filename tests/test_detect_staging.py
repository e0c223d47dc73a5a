"""Detection stages each chunk's expectations in a scratch file and swaps them in within one
store transaction: a tiny budget stores the same rows, a re-judged series' rows replace its
first-pass ones, and a crash inside the write leaves the previous results and no scratch file."""
from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pytest

from monitor.catalog import parse_metric
from monitor.detect.run_detection import detect_metric
from monitor.engine import Window
from monitor.store import Store
from monitor.store.staging import Staging

from decline_world import METHODS, METRIC, START, countries, decline_leaves

DAYS = 84
COUNTRIES = countries(12)


def leaves(seed: int, attack: tuple[int, int] | None) -> pa.Table:
    """12 countries x 3 methods; C03 & card's rate x4 over the days of `attack` (then recovered)."""
    return decline_leaves(days=DAYS, n_countries=len(COUNTRIES), seed=seed, attack=attack)


def filled(path: Path, table: pa.Table):
    metric, problems = parse_metric(METRIC, path / "decline_rate.sql")
    assert not problems
    store = Store(path / "store.duckdb")
    store.write_window(metric, Window(START, START + dt.timedelta(days=DAYS)), table, trigger="backfill",
                       started_at=START)
    return store, metric


def stored(store: Store) -> tuple[list, list, list]:
    with store.connect(read_only=True) as con:
        return tuple(con.execute(sql).fetchall() for sql in (
            "SELECT * FROM expectations ORDER BY slice, ts",
            "SELECT incident_id, slice, start_ts, end_ts, status, parent_id FROM incidents ORDER BY incident_id",
            "SELECT * FROM change_points ORDER BY slice, ts"))


def scratch_files(store: Store) -> list[Path]:
    return sorted(store.path.parent.glob(f".{store.path.name}.staging-*"))


def test_tiny_budget_stores_the_same_rows_and_second_pass_rows_replace_the_first(tmp_path, monkeypatch):
    store, metric = filled(tmp_path, leaves(5, attack=(50, 55)))
    now = START + dt.timedelta(days=DAYS)
    replaced = []
    real_put = Staging.put

    def put(self, table, *, replacing=None):
        replaced.extend(replacing or [])
        return real_put(self, table, replacing=replacing)

    monkeypatch.setattr(Staging, "put", put)
    detect_metric(store, metric, now=now, memory_limit=10**9)
    large = stored(store)
    assert replaced, "no series was judged a second time: the replacing path is not exercised"
    assert any(r[1] and r[3] is not None for r in large[1]), "the attack raised no closed slice incident"
    expectations = large[0]
    # total + 12 countries + 3 methods, one row per day each: the re-judged rows replaced, not added
    assert len(expectations) == (1 + len(COUNTRIES) + len(METHODS)) * DAYS
    assert len({(r[1], r[2]) for r in expectations}) == len(expectations)

    replaced.clear()
    detect_metric(store, metric, now=now, memory_limit=10**5)  # one series per chunk
    assert stored(store) == large
    assert not scratch_files(store)


def test_a_crash_inside_the_write_leaves_the_previous_results(tmp_path):
    store, metric = filled(tmp_path, leaves(5, attack=(50, 55)))
    now = START + dt.timedelta(days=DAYS)
    detect_metric(store, metric, now=now)
    before = stored(store)
    assert before[0] and before[1]

    # the world changes (no attack) and the write dies after the new expectations went in
    store.write_window(metric, Window(START, START + dt.timedelta(days=DAYS)), leaves(6, attack=None),
                       trigger="backfill", started_at=START)
    real_connect = store.connect

    class Dying:
        def __init__(self, con):
            self.con = con

        def execute(self, sql, *args):
            if sql.startswith("DELETE FROM change_points"):
                raise RuntimeError("killed mid-write")
            return self.con.execute(sql, *args)

        def __getattr__(self, name):
            return getattr(self.con, name)

    @contextmanager
    def dying(*, read_only=False):
        with real_connect(read_only=read_only) as con:
            yield con if read_only else Dying(con)

    store.connect = dying
    with pytest.raises(RuntimeError, match="killed mid-write"):
        detect_metric(store, metric, now=now)
    store.connect = real_connect
    assert stored(store) == before
    assert not scratch_files(store)

    detect_metric(store, metric, now=now)  # the next run writes the new world's results
    after = stored(store)
    assert after[0] != before[0] and len(after[0]) == len(before[0])
