"""Warehouse mode for the mean and distribution kinds: their leaves (a distribution's bucket key
too) on Spark, their series aggregated there and judged by the kind's own test, their incidents
attributed there, all as with the DuckDB store.

The demo world of 63 days (average_order_value: a mean; model_score: a distribution) with one
change put into its source in the last week, so both metrics have incidents to compare: orders
of electronics on the web cost 1.6 times more, and Android card orders score 0.3 higher.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from spark_session import require_spark

pytestmark = pytest.mark.spark

require_spark()

DAYS = 63
METRICS = ["average_order_value", "model_score"]
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


@dataclasses.dataclass
class Worlds:
    duck_store: object
    ware_store: object
    catalog: object
    end: dt.datetime


@pytest.fixture(scope="module")
def worlds(spark, tmp_path_factory) -> Worlds:
    import duckdb

    from monitor.demo.project import build_demo_project
    from monitor.pipeline import backfill_plan, compute, detect_and_attribute, load_project_catalog
    from monitor.warehouse import open_store

    folder = tmp_path_factory.mktemp("warehouse_kinds")
    project = build_demo_project(folder / "demo", days=DAYS, scale=0.25)
    with duckdb.connect(str(folder / "demo" / "source.duckdb")) as con:
        since = project.end - dt.timedelta(days=6)
        con.execute("UPDATE orders SET amount = amount * 1.6 WHERE merchant_category = 'electronics'"
                    " AND channel = 'web' AND created_at >= ?", [since])
        con.execute("UPDATE orders SET risk_score = least(risk_score + 0.3, 0.99) WHERE device_os = 'android'"
                    " AND payment_method = 'card' AND created_at >= ?", [since])
    duck = project.config
    ware = dataclasses.replace(duck, store_path=folder / "ware.duckdb", sections={
        **duck.sections, "store": {"leaves": "spark", "path": str(folder / "leaves")}})
    catalog = load_project_catalog(duck)
    duck_store, ware_store = open_store(duck), open_store(ware, session=spark)
    assert type(ware_store).__name__ == "WarehouseStore"
    for config, store in ((duck, duck_store), (ware, ware_store)):
        # three windows per metric: the warehouse replaces day folders window by window
        plan = backfill_plan(catalog.select(METRICS), project.start, project.end, chunk=DAYS * 24 // 3)
        result = compute(config, plan, trigger="backfill", store=store)
        assert not result.failures, result.failures
        cycle = detect_and_attribute(config, catalog.select(METRICS), now=project.end, store=store)
        assert not cycle.detect_failures, cycle.detect_failures
    return Worlds(duck_store, ware_store, catalog, project.end)


def _incidents(store) -> list[dict]:
    with store.connect(read_only=True) as con:
        rows = con.execute("SELECT incident_id, metric, slice, start_ts, end_ts, direction, kind, status, parent_id,"
                           " why_json, explanation_json FROM incidents ORDER BY incident_id").df().to_dict("records")
    for row in rows:
        explanation = json.loads(row.pop("explanation_json") or "{}")
        row["top_causes"] = [c.get("segment") for c in (explanation.get("causes") or [])[:3]]
        row["moved_buckets"] = explanation.get("buckets")  # a distribution's: which buckets gained mass
        row["metric_kind"] = json.loads(row.pop("why_json"))["metric_kind"]
    return rows


def _episode(segment) -> tuple:
    return segment.start, segment.end, segment.direction, segment.kind, segment.accepted, segment.accepted_at


def test_kinds_leaves_parity_in_the_warehouse(worlds):
    """The leaves of both kinds are in the warehouse (none in the store file), with the
    distribution's bucket as a key, and equal the DuckDB store's."""
    for name in METRICS:
        metric = worlds.catalog.metrics[name]
        house = worlds.ware_store.warehouse
        assert house.manifest(name)["columns"] == ["ts", *metric.keys, *metric.measures]
        assert len(house.manifest(name)["days"]) == DAYS
        assert not list((house.folder(name) / "incoming").iterdir())  # staged windows removed once written
        got, want = worlds.ware_store.read_leaves(metric), worlds.duck_store.read_leaves(metric)
        keys = ["ts", *metric.keys]
        got, want = got.sort_values(keys).reset_index(drop=True), want.sort_values(keys).reset_index(drop=True)
        assert len(got) == len(want) > 1000
        assert got[keys].astype(str).equals(want[keys].astype(str)), name
        np.testing.assert_allclose(got[list(metric.measures)].to_numpy(float),
                                   want[list(metric.measures)].to_numpy(float), rtol=1e-12)
    assert "bucket" in worlds.catalog.metrics["model_score"].keys


@pytest.mark.parametrize("name", METRICS)
def test_kinds_series_parity_aggregated_on_spark(worlds, name):
    """The series the kind's test reads, built on Spark (no DuckDB connection: con is None),
    equal those built by DuckDB from the store file, and so do the detections."""
    from monitor.detect.run_detection import HISTORY, slice_sensitivity
    from monitor.detect.run_kinds import kind_detections
    from monitor.engine import GRAIN_STEP
    from monitor.warehouse.kinds import kind_series_spark

    metric = worlds.catalog.metrics[name]
    start, end = worlds.end - HISTORY[metric.grain], worlds.end
    with worlds.duck_store.connect(read_only=True) as con:
        axis_d, duck, dets_d = kind_detections(con, metric, start=start, end=end, memory_limit=10**9,
                                               widen=slice_sensitivity)
    axis_s, ware, dets_s = kind_detections(None, metric, start=start, end=end, memory_limit=10**9,
                                           widen=slice_sensitivity, leaf_engine=worlds.ware_store.leaf_engine)
    assert len(duck) > 10 and axis_s.equals(axis_d)
    assert [s.label for s in ware] == [s.label for s in duck]
    for a, b in zip(ware, duck):
        np.testing.assert_allclose(a.values, b.values, rtol=1e-12, atol=1e-9, err_msg=a.label)
        np.testing.assert_allclose(a.volume, b.volume, rtol=1e-12, atol=1e-9, err_msg=a.label)
    # the same episodes; their numbers equal up to the order Spark and DuckDB sum in
    assert [[_episode(g) for g in d.segments] for d in dets_s] == [[_episode(g) for g in d.segments] for d in dets_d]
    assert any(d.segments for d in dets_d)
    for a, b in zip(dets_s, dets_d):
        np.testing.assert_allclose([g.observed for g in a.segments], [g.observed for g in b.segments], rtol=1e-9)
        np.testing.assert_allclose(a.expected, b.expected, rtol=1e-9, equal_nan=True)
    _, _, extra, labels = kind_series_spark(worlds.ware_store.warehouse, metric, start=start, end=end,
                                            step=GRAIN_STEP[metric.grain], memory_limit=10**9)
    assert extra.shape[0] == len(duck)  # a mean's sums of squares, a distribution's histograms
    assert (labels is None) == (metric.kind == "mean")


def test_kinds_detection_parity_same_incidents_and_top_causes(worlds):
    duck, ware = _incidents(worlds.duck_store), _incidents(worlds.ware_store)
    assert {r["metric"] for r in duck} == set(METRICS)
    assert [r["incident_id"] for r in ware] == [r["incident_id"] for r in duck]
    for a, b in zip(ware, duck):
        assert a == b, a["incident_id"]
    # the changes put in are found and attributed alike on both paths
    aov = [r for r in duck if r["metric"] == "average_order_value" and r["top_causes"]]
    assert any({"merchant_category": "electronics"}.items() <= c.items() for r in aov for c in r["top_causes"])
    score = [r for r in duck if r["metric"] == "model_score" and r["slice"] == "" and r["top_causes"]]
    assert score and score[0]["moved_buckets"]
    assert any("android" in json.dumps(c) for r in score for c in r["top_causes"])


def test_kinds_bands_parity(worlds):
    """The kinds store the bands of the total and every one-dimension slice, on both paths alike."""
    def bands(store):
        with store.connect(read_only=True) as con:
            return con.execute("SELECT metric, slice, ts, observed, volume, expected, lower, upper, anomalous"
                               " FROM expectations ORDER BY metric, slice, ts").df()

    duck, ware = bands(worlds.duck_store), bands(worlds.ware_store)
    assert len(duck) > 1000 and set(duck["metric"]) == set(METRICS)
    assert ware[["metric", "slice", "ts", "anomalous"]].equals(duck[["metric", "slice", "ts", "anomalous"]])
    np.testing.assert_allclose(ware[["observed", "volume", "expected", "lower", "upper"]].to_numpy(float),
                               duck[["observed", "volume", "expected", "lower", "upper"]].to_numpy(float),
                               rtol=1e-9, atol=1e-9, equal_nan=True)
