"""The slices built by the database equal the ones the pandas implementation built
(kept here only as the reference): same series, same order, same values."""
from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from monitor.catalog import load_catalog, parse_metric
from monitor.detect import slices
from monitor.detect.run_detection import HISTORY, MAX_PAIR_SLICES, PAIR_MIN_SHARE, SliceSeries, load_slices
from monitor.engine import GRAIN_STEP
from monitor.engine.windows import Window
from monitor.pipeline import backfill_plan, compute
from monitor.store import Store


def reference_slices(store: Store, metric, *, end: dt.datetime) -> tuple[pd.DatetimeIndex, list[SliceSeries]]:
    """The pandas group-by + per-slice reindex that `load_slices` replaced, verbatim."""
    step = GRAIN_STEP[metric.grain]
    start = end - HISTORY[metric.grain]
    value_col = "numerator" if metric.kind == "ratio" else "value"
    volume_col = "denominator" if metric.kind == "ratio" else "value"
    with store.connect(read_only=True) as con:
        leaves = store.read_leaves(metric, start=start, end=end, con=con)
    if leaves.empty:
        return pd.DatetimeIndex([]), []
    axis = pd.date_range(leaves["ts"].min(), leaves["ts"].max(), freq=pd.Timedelta(step))

    def dense(frame: pd.DataFrame, keys: list[str]) -> list[SliceSeries]:
        grouped = frame.groupby([*keys, "ts"], sort=True)[[value_col, volume_col] if value_col != volume_col else [value_col]].sum()
        out = []
        if not keys:
            g = grouped.reindex(axis, fill_value=0.0)
            return [SliceSeries({}, g[value_col].to_numpy(float), g[volume_col].to_numpy(float))]
        for key, part in grouped.groupby(level=list(range(len(keys))) if len(keys) > 1 else 0, sort=True):
            key = key if isinstance(key, tuple) else (key,)
            part = part.droplevel(list(range(len(keys)))).reindex(axis, fill_value=0.0)
            out.append(SliceSeries(dict(zip(keys, map(str, key))), part[value_col].to_numpy(float),
                                   part[volume_col].to_numpy(float)))
        return out

    series = dense(leaves, [])
    for dim in metric.dimensions:
        series += dense(leaves, [dim])
    if metric.detect.max_slice_depth >= 2 and len(metric.dimensions) >= 2:
        total_volume = float(series[0].volume.sum())
        floor = metric.detect.slice_min_volume
        pairs: list[SliceSeries] = []
        singles = {(d, s.segment[d]): s for s in series[1:] for d in s.segment}
        for a, b in itertools.combinations(metric.dimensions, 2):
            for s in dense(leaves, [a, b]):
                if any(np.array_equal(singles[(d, v)].volume, s.volume) and np.array_equal(singles[(d, v)].values, s.values)
                       for d, v in s.segment.items()):
                    continue
                mean_volume = s.volume.sum() / max(len(axis), 1)
                if (floor is not None and mean_volume >= floor) or (floor is None and s.volume.sum() >= PAIR_MIN_SHARE * total_volume):
                    pairs.append(s)
        pairs.sort(key=lambda s: -s.volume.sum())
        series += pairs[:MAX_PAIR_SLICES]
    if metric.detect.max_slice_depth == 0:
        series = series[:1]
    return axis, series


def assert_same(got, want) -> None:
    (axis, series), (ref_axis, ref_series) = got, want
    assert list(axis) == list(ref_axis)
    assert [s.segment for s in series] == [s.segment for s in ref_series]
    for s, r in zip(series, ref_series):
        np.testing.assert_array_equal(s.values, r.values, err_msg=s.label)
        np.testing.assert_array_equal(s.volume, r.volume, err_msg=s.label)


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    from monitor.demo.project import build_demo_project

    project = build_demo_project(tmp_path_factory.mktemp("slices") / "demo", days=90)
    catalog = load_catalog(project.config.metrics_dir)
    metrics = catalog.select(None)
    result = compute(project.config, backfill_plan(metrics, project.start, project.end, None), trigger="backfill")
    assert not result.failures
    return Store(project.config.store_path), metrics, project


def test_database_slices_equal_the_pandas_ones_on_the_demo_world(demo_store):
    store, metrics, project = demo_store
    checked = 0
    # the pandas reference knows ratio and sum leaves; the mean and distribution kinds are
    # checked against the raw rows in tests/test_kinds_detect.py
    for metric in (m for m in metrics if m.kind in ("ratio", "sum")):
        for end in (project.end, project.start + dt.timedelta(days=40)):
            got = load_slices(store, metric, end=end)
            want = reference_slices(store, metric, end=end)
            assert_same(got, want)
            checked += len(want[1])
    assert checked > 500  # the demo world has hundreds of slices: the comparison is not vacuous


@pytest.mark.parametrize("direct", [slices.PAIR_DIRECT, 0])
@pytest.mark.parametrize("header", ["", "  slice_min_volume: 5\n", "  max_slice_depth: 1\n", "  max_slice_depth: 0\n"])
def test_database_slices_follow_the_floor_depth_and_cap_rules(tmp_path, monkeypatch, header, direct):
    """Many pairs (more than the cap at a low floor), pairs that are their parent under a
    longer name, empty buckets, and a leaf off the daily grid (left out by both); pairs
    summed per bucket at once, or first narrowed by their volume (direct=0)."""
    monkeypatch.setattr(slices, "PAIR_DIRECT", direct)
    text = ("/* ---\nname: decline_rate\nkind: ratio\ngrain: day\ndimensions: [seller, method, country]\n"
            f"schedule: \"0 6 * * *\"\ndetect:\n  direction: up\n{header}--- */\n"
            "SELECT * FROM t WHERE ts >= $start AND ts < $end")
    metric, problems = parse_metric(text, tmp_path / "decline_rate.sql")
    assert not problems
    rng = np.random.default_rng(3)
    start = dt.datetime(2026, 3, 1)
    rows = []
    for day in range(40):
        for seller in range(300):
            country = f"c{seller % 7}"  # a seller's country is fixed: seller x country = seller
            for method in ("card", "paypal", "bank"):
                if rng.random() < 0.2:
                    continue  # empty buckets
                den = float(rng.integers(1, 2000 // (1 + seller)) + 1)
                rows.append((start + dt.timedelta(days=day), f"s{seller:03d}", method, country,
                             float(rng.binomial(int(den), 0.02)), den))
    rows.append((start + dt.timedelta(days=3, hours=5), "s001", "card", "c1", 1.0, 9.0))
    table = pa.Table.from_pandas(pd.DataFrame(rows, columns=["ts", "seller", "method", "country", "numerator",
                                                             "denominator"]), preserve_index=False)
    store = Store(tmp_path / "store.duckdb")
    store.write_window(metric, Window(start, start + dt.timedelta(days=40)), table, trigger="backfill", started_at=start)
    for end in (start + dt.timedelta(days=40), start + dt.timedelta(days=25)):
        got = load_slices(store, metric, end=end)
        assert_same(got, reference_slices(store, metric, end=end))
    pairs = [s for s in got[1] if len(s.segment) == 2]
    if "slice_min_volume" in header:
        assert len(pairs) == MAX_PAIR_SLICES  # the cap is reached
    if "max_slice_depth: 0" in header:
        assert len(got[1]) == 1
    assert not any(set(s.segment) == {"seller", "country"} for s in pairs)


def test_no_leaves_in_the_window_gives_no_series(tmp_path):
    metric, problems = parse_metric("/* ---\nname: s\nkind: sum\ngrain: hour\ndimensions: [a]\nschedule: \"0 * * * *\"\n"
                                    "--- */\nSELECT * FROM t WHERE ts >= $start AND ts < $end", tmp_path / "s.sql")
    assert not problems
    start = dt.datetime(2026, 3, 1)
    table = pa.table({"ts": pa.array([start], pa.timestamp("us")), "a": ["x"], "value": [1.0]})
    store = Store(tmp_path / "store.duckdb")
    store.write_window(metric, Window(start, start + dt.timedelta(hours=1)), table, trigger="backfill", started_at=start)
    axis, series = load_slices(store, metric, end=start)
    assert len(axis) == 0 and series == []
    axis, series = load_slices(store, metric, end=start + dt.timedelta(hours=1))
    assert [s.label for s in series] == ["", "a=x"] and series[1].values.tolist() == [1.0]


def test_bulk_expectations_insert_stores_what_the_per_slice_frames_stored(demo_store):
    """The Arrow table `_write` inserts holds the same rows as the per-slice pandas frames
    it replaced, NULL where the band is NaN (not judged, below the volume floor)."""
    import duckdb

    from monitor.detect.run_detection import _expectation_rows
    from monitor.detect.series import detect_batch
    from monitor.store import SQL_DIR

    store, metrics, project = demo_store
    metric = next(m for m in metrics if m.name == "fraud_rate")
    axis, series = load_slices(store, metric, end=project.end)
    detections = detect_batch(np.vstack([s.values for s in series]), denominators_2d=np.vstack([s.volume for s in series]),
                              period=7, min_volume=50.0)
    frames = [pd.DataFrame({
        "metric": metric.name, "slice": s.label, "ts": axis.to_pydatetime(), "observed": det.observed, "volume": s.volume,
        "expected": det.expected, "lower": det.lower, "upper": det.upper, "score": det.score,
        "anomalous": det.anomalous.astype(bool)}) for s, det in zip(series, detections) if len(s.segment) <= 1]
    reference = pd.concat(frames, ignore_index=True)
    bulk = _expectation_rows(axis, series, detections)
    con = duckdb.connect()
    con.execute((SQL_DIR / "schema.sql").read_text())
    con.register("reference", reference)
    con.register("bulk", bulk)
    con.execute("CREATE TABLE a AS SELECT * FROM expectations")
    con.execute("INSERT INTO a SELECT metric, slice, ts, observed, volume, expected, lower, upper, score, anomalous FROM reference")
    con.execute("INSERT INTO expectations SELECT ?, slice, ts, observed, volume, expected, lower, upper, score, anomalous"
                " FROM bulk", [metric.name])
    want = con.execute("SELECT * FROM a").fetchall()
    got = con.execute("SELECT * FROM expectations").fetchall()
    assert len(got) == len(want) == len(frames) * len(axis)
    assert any(r[3] is None for r in want)  # the comparison covers NULL observations
    assert got == want


def test_pairs_of_a_sum_with_negative_values_are_not_pruned_by_their_parents(tmp_path):
    """A pair holds no more than its parent only when values are >= 0: a net amount
    (refunds negative) can have a small parent and a large pair."""
    metric, problems = parse_metric(
        "/* ---\nname: net\nkind: sum\ngrain: day\ndimensions: [a, b]\nschedule: \"0 6 * * *\"\n--- */\n"
        "SELECT * FROM t WHERE ts >= $start AND ts < $end", tmp_path / "net.sql")
    assert not problems
    start = dt.datetime(2026, 3, 1)
    rows = [(start + dt.timedelta(days=d), a, b, v) for d in range(10)
            for a, b, v in (("x", "p", 100.0), ("x", "q", -99.5), ("y", "p", 50.0), ("y", "q", 50.0))]
    table = pa.Table.from_pandas(pd.DataFrame(rows, columns=["ts", "a", "b", "value"]), preserve_index=False)
    store = Store(tmp_path / "store.duckdb")
    store.write_window(metric, Window(start, start + dt.timedelta(days=10)), table, trigger="backfill", started_at=start)
    got = load_slices(store, metric, end=start + dt.timedelta(days=10))
    assert_same(got, reference_slices(store, metric, end=start + dt.timedelta(days=10)))
    assert "a=x&b=p" in {s.label for s in got[1]}


@pytest.mark.parametrize("attack", [None, (60, 63)])
def test_numbered_singles_equal_the_grouping_sets_ones(tmp_path, monkeypatch, attack):
    """A screened ratio metric's total and one-dimension slices summed by numpy from the
    numbered leaves (slices.NUMBERED_SINGLES) equal the GROUPING SETS ones: same series, order,
    values, volumes and screened pairs, with a tiny budget (many screen chunks) too."""
    from decline_world import METRIC, START, decline_leaves

    days = 84
    metric, problems = parse_metric(METRIC.replace("dimensions: [country, method]",
                                                   "dimensions: [country, method]\ndetect:\n  slice_min_volume: 400"),
                                    tmp_path / "decline_rate.sql")
    assert not problems
    store = Store(tmp_path / "store.duckdb")
    store.write_window(metric, Window(START, START + dt.timedelta(days=days)),
                       decline_leaves(days=days, n_countries=40, seed=3, attack=attack), trigger="backfill",
                       started_at=START)
    end = START + dt.timedelta(days=days)
    # pairs narrowed by their volume first, so the screen's finds are pairs of their own
    monkeypatch.setattr(slices, "PAIR_DIRECT", 0)
    for budget in (10**9, 10**5):
        monkeypatch.setattr(slices, "NUMBERED_SINGLES", True)
        got = load_slices(store, metric, end=end, memory_limit=budget)
        monkeypatch.setattr(slices, "NUMBERED_SINGLES", False)
        want = load_slices(store, metric, end=end, memory_limit=budget)
        assert_same(got, want)
        assert [s.screened for s in got[1]] == [s.screened for s in want[1]]
        assert len(got[1]) > 40 and any(len(s.segment) == 2 for s in got[1])
        assert any(s.screened for s in got[1]) == (attack is not None)
