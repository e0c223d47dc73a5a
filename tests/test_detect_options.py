"""Detection options: built once from the metric header, the same whether given as an
object or as keywords, validated when resolved for a batch."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from monitor.catalog import parse_metric
from monitor.detect import detect_batch, detect_series
from monitor.detect.options import DetectOptions


def metric(grain: str, detect: str = "") -> object:
    text = (f"/* ---\nname: m\nkind: ratio\ngrain: {grain}\ndimensions: [country]\nschedule: \"0 6 * * *\"\n"
            + (f"detect: {detect}\n" if detect else "") + "--- */\n"
            "SELECT ts, country, numerator, denominator FROM t WHERE ts >= $start AND ts < $end\n")
    parsed, problems = parse_metric(text, Path("m.sql"))
    assert not problems, problems
    return parsed


@pytest.mark.parametrize("grain, seasonality, period", [
    ("day", "auto", 7), ("hour", "auto", (24, 168)), ("day", "weekly", 7), ("hour", "weekly", 168),
    ("day", "daily", None), ("hour", "daily", 24), ("day", "none", None), ("hour", "none", None),
])
def test_seasonality_of_the_header_is_the_requested_period(grain, seasonality, period):
    assert DetectOptions.from_metric(metric(grain, f"{{seasonality: {seasonality}}}")).period == period


def test_header_settings_and_grain_defaults():
    day, hour = DetectOptions.from_metric(metric("day")), DetectOptions.from_metric(metric("hour"))
    assert (day.accept_after, hour.accept_after) == (14, 72)
    assert (day.direction, day.sensitivity, day.min_volume, day.detector) == ("both", "medium", 0.0, "default")
    tuned = DetectOptions.from_metric(metric("hour", "{direction: up, sensitivity: high, min_volume: 20, accept_after: 5}"))
    assert (tuned.direction, tuned.sensitivity, tuned.min_volume, tuned.accept_after) == ("up", "high", 20.0, 5)
    assert tuned.threshold == pytest.approx(3.0) and day.threshold == pytest.approx(4.0)


def test_options_object_and_keywords_detect_the_same():
    rng = np.random.default_rng(5)
    x = rng.poisson(200, (3, 120)).astype(float)
    x[:, 90] *= 1.6
    options = DetectOptions(period=7, direction="up", sensitivity="high", accept_after=5)
    by_object = detect_batch(x, options=options)
    by_keywords = detect_batch(x, period=7, direction="up", sensitivity="high", accept_after=5)
    for a, b in zip(by_object, by_keywords):
        assert np.array_equal(a.score, b.score, equal_nan=True) and a.segments == b.segments and a.params == b.params
    assert any(s.start == 90 for s in by_object[0].segments)
    # keywords override the object, field by field
    down = detect_series(x[0], options=options, direction="down")
    assert down.params["direction"] == "down" and down.params["accept_after"] == 5
    assert not any(s.start == 90 for s in down.segments)


def test_options_are_validated_for_the_batch():
    with pytest.raises(ValueError, match="direction"):
        DetectOptions(direction="sideways").resolve(n=30, n_series=1)
    with pytest.raises(ValueError, match="exclude"):
        DetectOptions().resolve(n=30, n_series=2, exclude=np.zeros((1, 30), bool))
    resolved = DetectOptions(period=(24, 168), sensitivity=0.5).resolve(n=24 * 21, n_series=2, exclude=[False] * 504)
    assert (resolved.period, resolved.inner_period, resolved.multiplier) == (168, 24, 0.5)
    assert resolved.exclude.shape == (2, 504)
    with pytest.raises(TypeError):
        detect_series([1.0] * 30, periodicity=7)


def test_an_hourly_series_too_short_for_its_cycle_keeps_the_hourly_threshold():
    # 40 hours: no cycle can be modelled yet, but it is still 24 tests a day
    hourly = DetectOptions(period=(24, 168))
    young, grown = hourly.resolve(n=40, n_series=1), hourly.resolve(n=400, n_series=1)
    assert young.period is None and grown.period == 24
    assert young.spike_threshold == grown.spike_threshold > young.threshold
    assert DetectOptions(period=None).resolve(n=40, n_series=1).spike_threshold == young.threshold
    assert DetectOptions(period=7).resolve(n=10, n_series=1).spike_threshold == young.threshold
