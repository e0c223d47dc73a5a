"""The mean and distribution kinds on the surfaces: Slack names a distribution incident's
moved buckets, the dashboard reads both kinds' series and draws the before/after histogram."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

from monitor.alert.blocks import _alert_blocks
from monitor.alert.message import alert_entry
from monitor.dashboard import queries
from monitor.dashboard.histogram import histogram_chart, histogram_frame
from monitor.detect.run_detection import detect_metric
from monitor.incident import Incident

from test_kinds_detect import DAYS, DIST, EVENT, MEAN, START, _orders, _store


def _distribution_incident(tmp_path: Path):
    store, metric = _store(tmp_path, DIST, _orders(4, shift_mean=False, shift_scores=True))
    result = detect_metric(store, metric, now=START + dt.timedelta(days=DAYS))
    row = next(r for r in result.incidents if r["slice"] == "country=BR"
               and r["start_ts"] >= START + dt.timedelta(days=EVENT))
    return store, metric, Incident.from_row(row)


def test_slack_shows_the_top_moved_buckets(tmp_path: Path) -> None:
    _, metric, incident = _distribution_incident(tmp_path)
    entry = alert_entry(dataclasses.replace(incident, status="open"), metric.header_dict(), fingerprint="f", labels={}, quiet=None,
                        dashboard_url=None, top_segments=3)
    assert entry["buckets"].startswith("gained 0.")
    gained = entry["buckets"].split("; lost")[0]
    assert all(float(part.split(" (")[0]) >= 0.5 for part in gained[len("gained "):].split(", "))
    text = json.dumps(_alert_blocks(entry, created_at=None))
    assert "Buckets that moved" in text and "lost 0." in text


def test_dashboard_histogram_and_series_of_both_kinds(tmp_path: Path) -> None:
    store, metric, incident = _distribution_incident(tmp_path)
    with store.connect(read_only=True) as con:
        header = queries.metric_headers(con, {})[metric.name]
        frame = histogram_frame(con, header, incident, dt.timedelta(days=1))
        series = queries.metric_series(con, header, {"country": "BR"}, start=START + dt.timedelta(days=60),
                                       end=START + dt.timedelta(days=DAYS), min_size=0)
    assert set(frame["period"]) == {"before", "during"}
    for period, part in frame.groupby("period"):
        assert abs(part["share"].sum() - 1.0) < 1e-9
    high = frame[frame["bucket"].astype(float) >= 0.5].groupby("period")["share"].sum()
    assert high["during"] > high["before"] + 0.1
    spec = histogram_chart(frame, title="t").to_dict()
    assert spec["layer"][0]["mark"]["type"] == "bar" and len(spec["datasets"]["histogram"]) == len(frame)
    # the series' value is the mean bucket value, and it rises with the injected scores
    before = series[series["ts"] < START + dt.timedelta(days=EVENT)]["observed"].mean()
    after = series[series["ts"] >= START + dt.timedelta(days=EVENT)]["observed"].mean()
    assert after > before + 0.05

    (tmp_path / "m").mkdir()
    mean_store, mean_metric = _store(tmp_path / "m", MEAN, _orders(3, shift_mean=False, shift_scores=False, scale=0.1))
    with mean_store.connect(read_only=True) as con:
        header = queries.metric_headers(con, {})[mean_metric.name]
        series = queries.metric_series(con, header, {}, start=START, end=START + dt.timedelta(days=5), min_size=0)
    assert header["unit"] == "currency"
    assert series["observed"].between(40, 90).all() and (series["volume"] > 100).all()
