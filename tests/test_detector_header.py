"""``detect.detector`` in a metric header picks the detector from the registry: validated by
the catalog with file:line, and a metric that names ``zscore`` is judged by zscore end to end."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from monitor.catalog import load_catalog, parse_metric
from monitor.detect.options import DetectOptions
from monitor.detect.run_detection import detect_metric
from monitor.engine import Window
from monitor.registry import DETECTORS
from monitor.store import Store
from tests.test_detect_metric import DAYS, METRIC, START, leaves


def with_detector(name: str) -> str:
    return METRIC.replace('severity: high\n', f'severity: high\ndetect:\n  direction: up\n  detector: {name}\n')


def test_an_unknown_detector_is_a_catalog_problem_at_its_line(tmp_path):
    folder = tmp_path / "metrics"
    folder.mkdir()
    text = with_detector("zscroe")
    (folder / "decline_rate.sql").write_text(text)
    catalog = load_catalog(folder)
    assert "decline_rate" not in catalog.metrics
    line = text.splitlines().index("  detector: zscroe") + 1
    messages = [str(p) for p in catalog.problems]
    assert messages == [f"{folder / 'decline_rate.sql'}:{line}: detect.detector: unknown detector 'zscroe'; "
                        f"valid detectors: {', '.join(sorted(DETECTORS))}"]
    assert {"default", "zscore", "level_shift"} <= set(DETECTORS)


def test_the_header_reaches_the_detection_options(tmp_path):
    metric, problems = parse_metric(with_detector("level_shift"), tmp_path / "decline_rate.sql")
    assert not problems and metric.detect.detector == "level_shift"
    assert DetectOptions.from_metric(metric).detector == "level_shift"
    plain, _ = parse_metric(METRIC, tmp_path / "decline_rate.sql")
    assert DetectOptions.from_metric(plain).detector == "default"


def judged_by(tmp_path, detector: str | None) -> list[dict]:
    text = with_detector(detector) if detector else METRIC
    metric, problems = parse_metric(text, tmp_path / "decline_rate.sql")
    assert not problems
    store = Store(tmp_path / f"{detector or 'plain'}.duckdb")
    store.write_window(metric, Window(START, START + dt.timedelta(days=DAYS)), leaves(),
                       trigger="backfill", started_at=START)
    detect_metric(store, metric, now=START + dt.timedelta(days=DAYS))
    with store.connect(read_only=True) as con:
        rows = con.execute("SELECT slice, kind, why_json FROM incidents WHERE kind <> 'mix_shift'").fetchall()
    return [{"slice": s, "kind": k, "why": json.loads(w)} for s, k, w in rows]


@pytest.mark.parametrize("detector", ["zscore", "level_shift"])
def test_a_metric_naming_a_detector_is_judged_by_it(tmp_path, detector):
    found = judged_by(tmp_path, detector)
    assert found, "the attack on BR & card is found"
    assert {i["why"]["detector"] for i in found} == {detector}
    assert any(i["slice"] == "country=BR&method=card" for i in found)


def test_without_the_key_the_default_detector_judges(tmp_path):
    found = judged_by(tmp_path, None)
    assert found and {i["why"]["detector"] for i in found} == {"default"}
