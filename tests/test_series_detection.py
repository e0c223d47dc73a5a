"""Series-level detection: baseline, noise model, segments, hygiene, registry contract."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.detect.cusum import returned_at
from monitor.detect.registry import DETECTORS, get_detector
from monitor.detect.series import AnomalySegment, SeriesDetection, detect_batch, detect_series

FAST = settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
WEEK = np.array([1.0, 1.05, 1.1, 1.0, 0.95, 0.7, 0.6])  # Mon..Sun shape of daily traffic


def weekly_counts(seed: int, n: int = 120, level: float = 1000.0) -> np.ndarray:
    t = np.arange(n)
    return np.random.default_rng(seed).poisson(level * WEEK[t % 7]).astype(float)


def weekly_rate(seed: int, n: int = 120, volume: float = 20000.0, rate: float = 0.02, jump_at=None, jump=0.0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    den = rng.poisson(volume * WEEK[t % 7]).astype(float)
    p = np.full(n, rate)
    if jump_at is not None:
        p[jump_at:] *= 1.0 + jump
    return rng.binomial(den.astype(np.int64), p).astype(float), den


def spans(det: SeriesDetection):
    return [(s.start, s.end, s.direction, s.kind) for s in det.segments]


# ----------------------------------------------------------------------------- good out of the box
def test_weekly_pattern_does_not_fire():
    sums = np.stack([weekly_counts(seed) for seed in range(30)])
    num, den = zip(*(weekly_rate(seed) for seed in range(30)))
    results = detect_batch(sums) + detect_batch(np.stack(num), denominators_2d=np.stack(den))
    judged = sum(int(np.isfinite(r.score).sum()) for r in results)
    false_segments = sum(len(r.segments) for r in results)
    # the product promise: at most ~1 false segment per 90 clean points
    assert false_segments / judged * 90 <= 1.0, false_segments
    # and the weekly swing (weekend at 60 %) is in the baseline, not in the scores
    assert max(np.nanmax(np.abs(r.score)) for r in results) < 6


def test_weekly_pattern_would_fire_without_seasonality():
    # the same data with the seasonal model switched off: the weekend dips are alarms, or,
    # once the young baseline's wide band has let them in as noise, they make the band
    # several times wider (it hides a weekday anomaly of 2x the normal noise)
    sums = np.stack([weekly_counts(seed) for seed in range(5)])
    flat, seasonal = detect_batch(sums, period=None), detect_batch(sums)
    widths = [np.nanmedian(f.upper - f.expected) / np.nanmedian(s.upper - s.expected) for f, s in zip(flat, seasonal)]
    assert sum(len(r.segments) for r in flat) >= 5 or min(widths) >= 2.5, widths


@FAST
@given(seed=st.integers(0, 10_000), jump=st.floats(0.2, 0.3), start=st.integers(60, 110))
def test_rate_jump_of_20_to_30_percent_with_decent_volume_is_caught_within_one_bucket(seed, jump, start):
    num, den = weekly_rate(seed, volume=50000.0, jump_at=start, jump=jump)
    det = detect_series(num, denominators=den)
    hits = [s for s in det.segments if start <= s.start <= start + 1 and s.direction == "up"]
    assert hits, spans(det)
    assert 0.1 < hits[0].relative_change < 0.45


@FAST
@given(seed=st.integers(0, 10_000), at=st.integers(40, 119))
def test_3x_burst_is_caught_at_its_bucket(seed, at):
    x = weekly_counts(seed)
    x[at] *= 3
    det = detect_series(x)
    assert det.anomalous[at]
    seg = next(s for s in det.segments if s.start == at)
    assert seg.kind == "spike" and seg.direction == "up"
    assert 1.5 < seg.relative_change < 2.5
    assert seg.end == (None if at == len(x) - 1 else at + 1)


def test_small_counts_are_not_alarms_large_ones_are():
    rng = np.random.default_rng(3)
    n = 90
    small_den = np.full(n, 10.0)
    small_num = rng.binomial(10, 0.05, n).astype(float)
    small_num[80] = 2.0  # 2 of 10 = 20 % against a ~5 % baseline
    det = detect_series(small_num, denominators=small_den, period=None)
    assert not det.anomalous[80]
    big_den = np.full(n, 10000.0)
    big_num = rng.binomial(10000, 0.05, n).astype(float)
    big_num[80] = 2000.0  # same 20 % but from 10,000
    det = detect_series(big_num, denominators=big_den, period=None)
    assert det.anomalous[80]
    assert det.observed[80] == pytest.approx(0.2)


def test_volume_floor_buckets_are_not_judged():
    num, den = weekly_rate(4, n=100)
    den[70] = 50.0
    num[70] = 40.0  # an 80 % rate, but on 50 orders
    det = detect_series(num, denominators=den, min_volume=1000)
    assert math.isnan(det.observed[70]) and math.isnan(det.score[70])
    assert not det.anomalous[70]
    assert detect_series(num, denominators=den, min_volume=0).anomalous[70]  # without the floor it fires


# ----------------------------------------------------------------------------- direction and sensitivity
def test_direction_is_honoured():
    x = weekly_counts(5)
    x[90:] *= 0.6  # a 40 % drop
    assert detect_series(x, direction="up").segments == []
    down = detect_series(x, direction="down")
    assert [s.direction for s in down.segments] == ["down"] and down.segments[0].start == 90
    both = detect_series(x, direction="both")
    assert spans(both) == spans(down)
    y = weekly_counts(5)
    y[90] *= 3
    assert detect_series(y, direction="down").segments == []
    assert not detect_series(y, direction="down").anomalous.any()


def test_sensitivity_moves_the_threshold():
    x = weekly_counts(6)
    # a deviation of ~3.5 sd at bucket 100: above "high" (3), below "medium" (4)
    det = detect_series(x)
    sd = (det.upper[100] - det.expected[100]) / det.params["threshold"]
    x[100] = det.expected[100] + 3.5 * sd
    assert detect_series(x, sensitivity="high").anomalous[100]
    assert not detect_series(x, sensitivity="medium").anomalous[100]
    assert not detect_series(x, sensitivity="low").anomalous[100]
    assert detect_series(x, sensitivity=0.8).params["threshold"] == pytest.approx(3.2)
    with pytest.raises(ValueError, match="sensitivity"):
        detect_series(x, sensitivity="extreme")


# ----------------------------------------------------------------------------- baseline hygiene
def test_attack_does_not_lift_its_own_baseline():
    x = weekly_counts(7)
    clean = x.copy()
    x[80:90] *= 3  # a ten-day attack
    det = detect_series(x)
    ref = detect_series(clean)
    assert det.anomalous[80:90].all()
    # the expected values during the attack are those of the clean run
    assert np.allclose(det.expected[80:90], ref.expected[80:90], rtol=0.02)


def test_excluded_incident_keeps_the_baseline_clean():
    base = weekly_counts(8)
    x = base.copy()
    rng = np.random.default_rng(8)
    x[40:70] = rng.poisson(1300 * WEEK[np.arange(40, 70) % 7])  # a 30-day +30 % incident
    incident = np.zeros(len(x), dtype=bool)
    incident[40:70] = True
    drifted = detect_series(x)
    cleaned = detect_series(x, exclude=incident)
    # without exclusion the incident became the normal, so the return to normal is an alarm
    assert any(s.direction == "down" and 70 <= s.start <= 72 for s in drifted.segments), spans(drifted)
    # with it, the later buckets are judged against the clean level and nothing fires after
    assert not cleaned.anomalous[70:].any(), spans(cleaned)
    t = np.arange(80, 100)
    assert np.allclose(cleaned.expected[t], 1000 * WEEK[t % 7], rtol=0.05)
    assert cleaned.params["excluded_buckets"] == 30


def test_excluded_mild_incident_does_not_drift_the_baseline():
    # +5 % for 30 days: too mild to flag bucket by bucket, so without exclusion it simply
    # becomes part of the baseline; excluded, the baseline stays at the clean level
    rng = np.random.default_rng(18)
    t = np.arange(120)
    level = np.where((t >= 40) & (t < 70), 1050.0, 1000.0)
    x = rng.poisson(level * WEEK[t % 7]).astype(float)
    incident = (t >= 40) & (t < 70)
    late = np.arange(66, 70)
    drift = detect_series(x).expected[late] / (1000 * WEEK[late % 7])
    clean = detect_series(x, exclude=incident).expected[late] / (1000 * WEEK[late % 7])
    assert drift.mean() > 1.03, drift
    assert abs(clean.mean() - 1.0) < 0.015, clean


def test_persistent_shift_is_accepted_as_the_new_normal():
    x = weekly_counts(9)
    x[60:] *= 1.4
    det = detect_series(x, accept_after=14)
    assert len(det.segments) == 1
    seg = det.segments[0]
    assert (seg.start, seg.end, seg.accepted, seg.accepted_at) == (60, 74, True, 74)
    assert seg.kind == "level_shift" and seg.direction == "up"
    assert not det.anomalous[74:].any()
    t = np.arange(90, 120)
    assert np.allclose(det.expected[t], 1400 * WEEK[t % 7], rtol=0.05)
    # a short-lived shift is not accepted and ends when the series returns
    y = weekly_counts(9)
    y[60:66] *= 1.4
    short = detect_series(y, accept_after=14)
    assert [(s.start, s.end, s.accepted) for s in short.segments] == [(60, 66, False)]


def test_the_new_normal_is_where_a_shift_settled_not_its_peak():
    # a jump that overshoots for a week and settles lower (an attack's burst, then what
    # mitigation leaves): the level accepted is the run's second half, so the settled level
    # is not then reported as a drop
    x = weekly_counts(9)
    x[60:68] *= 2.0
    x[68:] *= 1.4
    det = detect_series(x, accept_after=14)
    assert [(s.start, s.accepted) for s in det.segments] == [(60, True)]
    t = np.arange(80, 120)
    assert np.allclose(det.expected[t], 1400 * WEEK[t % 7], rtol=0.05)


def test_a_sparse_hourly_series_gets_its_cusum_at_the_same_age_as_a_full_one():
    """Night hours under the volume floor are not judged; they still count as time the slow
    reference has tracked the series, so its CUSUM starts 2 warm-ups (6 weeks) in, like a
    series seen every hour, and catches a moderate sustained rise at day 44."""
    rng = np.random.default_rng(3)
    hours = 24 * 52
    t = np.arange(hours)
    den = rng.poisson(np.where(t % 24 < 8, 20, 45)).astype(float)  # nights under the floor of 30
    rate = np.where((t >= 24 * 44) & (t < 24 * 49), 0.14, 0.09)
    num = rng.binomial(den.astype(np.int64), rate).astype(float)
    det = detect_series(num, denominators=den, period=(24, 168), min_volume=30, accept_after=168)
    shifted = [s for s in det.segments if s.direction == "up"]
    assert shifted and all(s.kind == "level_shift" for s in shifted)
    assert 24 * 44 - 12 <= shifted[0].start <= 24 * 45, shifted[0].start
    assert not det.anomalous[: 24 * 43].any()


def test_a_slice_that_appears_late_is_not_tracked_before_it_existed():
    """Months without traffic before a slice launches are not time its CUSUM reference has
    tracked it: its sums start a warm-up after launch, like any new series (counting them gave
    false level shifts in about half of these runs)."""
    hours, launch = 24 * 60, 24 * 35
    flagged_runs = 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        t = np.arange(hours)
        den = np.where(t < launch, 0.0, rng.poisson(np.where(t % 24 < 8, 60, 120))).astype(float)
        num = rng.binomial(den.astype(np.int64), 0.05).astype(float)
        det = detect_series(num, denominators=den, period=(24, 168), min_volume=30, accept_after=168)
        flagged_runs += bool(det.segments)
    assert flagged_runs <= 2, flagged_runs


def test_open_segment_at_the_end():
    x = weekly_counts(10)
    x[115:] *= 2
    det = detect_series(x)
    assert det.segments[-1].start == 115 and det.segments[-1].end is None
    assert det.open_segment is det.segments[-1]


def test_judgement_is_trailing():
    # appending future buckets never changes how earlier buckets were judged
    x = weekly_counts(11, n=150)
    full = detect_series(x)
    part = detect_series(x[:100])
    w = part.params["warmup"]
    assert full.params["warmup"] == w  # long enough for both to use the same warm-up
    assert np.allclose(full.expected[:100], part.expected, rtol=1e-12)
    assert np.allclose(full.score[w:100], part.score[w:], rtol=1e-12)


# ----------------------------------------------------------------------------- awkward input
def test_nan_constant_and_short_input():
    x = weekly_counts(12)
    x[[30, 31, 50, 99]] = np.nan
    x[100] *= 3
    det = detect_series(x)
    assert np.isnan(det.observed[[30, 31, 50, 99]]).all() and np.isnan(det.score[[30, 31, 50, 99]]).all()
    assert not det.anomalous[[30, 31, 50, 99]].any()
    assert det.anomalous[100]

    const = detect_series([5.0] * 60)
    assert const.segments == [] and not const.anomalous.any()
    assert np.nanmax(np.abs(const.score)) == 0

    for n in (0, 1, 3, 10):
        det = detect_series([1.0] * n)
        assert det.expected.shape == (n,) and det.segments == []

    assert detect_series([np.nan] * 30).segments == []


def test_batch_equals_series_by_series():
    rows = np.stack([weekly_counts(seed) for seed in range(4)])
    rows[1, 70:] *= 1.5
    rows[2, 95] *= 3
    batch = detect_batch(rows)
    for row, det in zip(rows, batch):
        single = detect_series(row)
        assert spans(single) == spans(det)
        assert single.change_points == det.change_points
        assert np.allclose(single.score, det.score, equal_nan=True)


def test_hourly_data_with_daily_and_weekly_cycles():
    rng = np.random.default_rng(13)
    t = np.arange(24 * 7 * 5)
    shape = (1 + 0.6 * np.sin(2 * np.pi * t / 24)) * np.where((t // 24) % 7 >= 5, 0.6, 1.0)
    x = rng.poisson(300 * shape).astype(float)
    det = detect_series(x, period=(24, 168))
    assert det.params["period"] == 168 and det.segments == []
    x[700] *= 3
    assert detect_series(x, period=(24, 168)).anomalous[700]


# ----------------------------------------------------------------------------- registry contract
def _cases():
    rng = np.random.default_rng(14)
    n = 100
    shifted = weekly_counts(14, n=n)
    shifted[70:] *= 1.6
    nan = weekly_counts(15, n=n)
    nan[rng.choice(n, 10, replace=False)] = np.nan
    num, den = weekly_rate(16, n=n, jump_at=70, jump=0.6)
    return {
        "nan": (nan, None, None),
        "constant": (np.full(n, 3.0), None, None),
        "short": (np.array([1.0, 2.0, 3.0]), None, None),
        "weekly": (weekly_counts(17, n=n), None, None),
        "shift": (shifted, None, 70),
        "ratio_shift": (num, den, 70),
    }


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_every_registered_detector_honours_the_contract(name):
    assert len(DETECTORS) >= 3
    for case, (values, den, shift_at) in _cases().items():
        det = detect_series(values, denominators=den, detector=name)
        n = len(values)
        assert isinstance(det, SeriesDetection)
        for arr in (det.expected, det.lower, det.upper, det.observed, det.score):
            assert arr.shape == (n,)
        assert det.anomalous.shape == (n,) and det.anomalous.dtype == bool
        assert np.isfinite(det.score[det.anomalous]).all(), case  # only judged buckets fire
        ok = np.isfinite(det.lower) & np.isfinite(det.upper)
        assert (det.lower[ok] <= det.expected[ok] + 1e-12).all() and (det.expected[ok] <= det.upper[ok] + 1e-12).all()
        assert det.change_points == sorted(set(det.change_points))
        assert all(isinstance(c, int) and 1 <= c < n for c in det.change_points)
        json.dumps(det.params)
        assert det.params["detector"] == name
        covered = np.zeros(n, dtype=bool)
        last_end = -1
        for i, seg in enumerate(det.segments):
            assert isinstance(seg, AnomalySegment)
            assert seg.start > last_end - 1 and seg.direction in ("up", "down")
            assert seg.kind in ("level_shift", "spike")
            end = n if seg.end is None else seg.end
            assert seg.start < end <= n
            assert seg.end is not None or i == len(det.segments) - 1
            assert seg.accepted == (seg.accepted_at is not None)
            if seg.accepted:
                assert seg.accepted_at == seg.end
            assert seg.score > 0
            assert (seg.relative_change > 0) == (seg.direction == "up") or seg.relative_change == 0
            inside = det.anomalous[seg.start : end] | ~np.isfinite(det.score[seg.start : end])
            assert inside.all(), (case, seg)
            covered[seg.start : end] = True
            last_end = end
        assert not (det.anomalous & ~covered).any(), case  # every anomalous bucket is in a segment
        if case in ("constant", "short", "weekly"):
            assert det.segments == [], (name, case, det.segments)
        if shift_at is not None:
            assert any(shift_at <= s.start <= shift_at + 3 and s.direction == "up" for s in det.segments), (name, case)


def test_unknown_detector_lists_the_valid_ones():
    with pytest.raises(ValueError) as err:
        detect_series([1.0] * 30, detector="prophet")
    for name in DETECTORS:
        assert name in str(err.value)
    with pytest.raises(ValueError):
        get_detector("nope")


def test_bad_options_are_errors():
    with pytest.raises(ValueError, match="direction"):
        detect_series([1.0] * 30, direction="sideways")
    with pytest.raises(ValueError, match="exclude"):
        detect_series([1.0] * 30, exclude=[True] * 5)


# ----------------------------------------------------------------------------- sustained moderate shifts (CUSUM)
def _rate_with_bump(seed: int, shift_sd: float, at: int = 70, width: int = 7, n: int = 120):
    """Daily ratio series (~12k/day, 0.6 %) whose rate rises by ``shift_sd`` binomial sd
    for ``width`` buckets from ``at``: no single bucket is remarkable."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    den = rng.poisson(12000.0 * WEEK[t % 7]).astype(float)
    p = np.full(n, 0.006)
    p[at : at + width] += shift_sd * np.sqrt(0.006 * 0.994 / den[at : at + width])
    return rng.binomial(den.astype(np.int64), p).astype(float), den


def test_a_short_sustained_attack_ends_where_it_ended_instead_of_becoming_the_new_normal():
    """A 3-bucket rise of 2.5 sd that the CUSUM signals: its end test needs ~h/(2k) normal
    buckets, more than accept_after=7 leaves, so before the forced choice at acceptance 6 of
    these 20 runs were "accepted as the new normal" with a level the series had already left."""
    found = accepted = 0
    for seed in range(20):
        num, den = _rate_with_bump(seed, 2.5, width=3)
        det = detect_series(num, denominators=den, direction="up", accept_after=7)
        shift = [s for s in det.segments if 68 <= s.start <= 71 and s.kind == "level_shift"]
        if shift:
            found += 1
            accepted += shift[0].accepted
            if not shift[0].accepted:
                assert 72 <= shift[0].end <= 74, shift[0]
    assert found >= 8, found
    assert accepted <= 3, accepted
    # the same rise persisting is still the new normal
    persisting = 0
    for seed in range(20):
        num, den = _rate_with_bump(seed, 2.5, width=200)
        det = detect_series(num, denominators=den, direction="up", accept_after=7)
        persisting += any(s.accepted and 66 <= s.start <= 72 for s in det.segments)
    assert persisting >= 18, persisting


def test_a_spike_after_a_short_shift_is_still_reported_when_the_shift_ends_at_acceptance():
    # a 4-hour rise, then normal hours, then a 12 sd spike on the very bucket where the run
    # reaches accept_after: the shift ends where it went back; the spike stays a spike
    t = np.arange(1200)
    rng = np.random.default_rng(0)
    den = rng.poisson(400.0 * HOUR_SHAPE[t % 24] / HOUR_SHAPE.mean()).astype(float)
    p = np.where((t >= 1100) & (t < 1104), 0.05 + 4.0 * np.sqrt(0.05 * 0.95 / den.clip(1)), 0.05)
    num = rng.binomial(den.astype(np.int64), p).astype(float)
    num[1107] += 12 * np.sqrt(0.05 * 0.95 * den[1107])
    det = detect_series(num, denominators=den, period=(24, 168), direction="both", accept_after=8)
    assert det.anomalous[1107] and det.score[1107] >= det.params["threshold"]
    assert det.anomalous[1100:1104].all() and not det.anomalous[1105:1107].any()
    # the spike comes back within the hold of an hourly segment (3 normal hours): one
    # incident, not two pages; nothing was accepted as a new normal
    assert [(s.start, s.end, s.kind, s.accepted) for s in det.segments if s.end > 1090] == [
        (1100, 1108, "level_shift", False)]


def test_returned_at_splits_a_signal_into_shift_and_return():
    judged = np.ones(12, bool)
    back = np.r_[np.zeros(2), [3.0, 2.5, 3.2], np.zeros(7)]  # shifted 2..4, back from 5
    assert returned_at(back, judged, 2, 11, 1, accept_after=7) == 5
    assert returned_at(-back, judged, 2, 11, -1, accept_after=7) == 5
    still = np.r_[np.zeros(2), np.full(10, 1.2)]  # still 1.2 sd up: persists
    assert returned_at(still, judged, 2, 11, 1, accept_after=7) is None
    # a few quieter buckets at the end of a shift that persists at ~1 sd are not a return:
    # below k, but not clearly below the shift before them
    quieter = np.r_[np.zeros(2), [1.3, 0.9, 1.2, 1.0, 1.1, 0.8, 1.2, 0.9], [0.3, 0.2]]
    assert returned_at(quieter, judged, 2, 11, 1, accept_after=7) is None
    # the return must last a quarter of accept_after (here 7 judged buckets)
    assert returned_at(back, judged, 2, 11, 1, accept_after=28) == 5
    assert returned_at(back, judged, 2, 9, 1, accept_after=28) is None  # 5 buckets back: too few
    # unjudged buckets are not evidence of a return: with one judged bucket after the rise,
    # the back part must reach into the rise and is no longer back at the reference
    sparse = judged.copy()
    sparse[5:11] = False
    assert returned_at(back, sparse, 2, 11, 1, accept_after=7) is None


def test_sustained_one_and_a_half_sd_shift_over_seven_buckets_is_flagged():
    hits = false = 0
    for seed in range(20):
        num, den = _rate_with_bump(seed, 1.5)
        det = detect_series(num, denominators=den, direction="up")
        found = [s for s in det.segments if 68 <= s.start <= 72 and s.direction == "up"]
        hits += bool(found)
        if found:
            assert found[0].kind == "level_shift"
            assert found[0].end is not None and found[0].end <= 86  # it ends after the bump
        null_num, null_den = _rate_with_bump(seed, 0.0)
        false += len(detect_series(null_num, denominators=null_den, direction="up").segments)
    # a CUSUM with k = 0.5 and a one-year in-control run length catches about half of such
    # bumps near their start (10/20 here; 1/20 without the CUSUM), while the same series without
    # the bump stay (nearly) quiet
    assert hits >= 8, hits
    assert false <= 2, false


HOUR_SHAPE = 0.4 + 0.6 * np.sin(np.pi * np.arange(24) / 24) ** 2


def test_persisting_hourly_step_is_a_level_shift_not_absorbed():
    at = 1100  # after the warm-up (3 weeks) and the CUSUM's own (another 3 weeks)
    detected = accepted = 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        t = np.arange(24 * 7 * 9)
        den = rng.poisson(115.0 * HOUR_SHAPE[t % 24] / HOUR_SHAPE.mean()).astype(float)
        num = rng.binomial(den.astype(np.int64), np.where(t >= at, 0.045, 0.083)).astype(float)
        det = detect_series(num, denominators=den, period=(24, 168), accept_after=72)
        # the start is estimated (best split of the CUSUM's run): within a few hours
        first = [s for s in det.segments if at - 8 <= s.start <= at + 12 and s.direction == "down"]
        assert first and first[0].kind == "level_shift", [(s.start, s.kind) for s in det.segments]
        detected += 1
        accepted += first[0].accepted
        # not absorbed: flagged as one run from the step until it is accepted (or a re-signal)
        assert first[0].accepted or first[0].end - first[0].start >= 24
        # and once accepted the new level is the baseline
        assert abs(np.nanmean(det.expected[-48:]) / 0.045 - 1.0) < 0.25
    assert detected == 10 and accepted >= 7, accepted


def test_a_large_hourly_step_in_a_slice_signals_within_three_hours():
    """Card testing on an hourly slice: a step of 5 sd an hour stays under a slice's spike
    threshold (~8.5 sd) and the k = 0.5 CUSUM, winsorised at 3.6 sd, needs 4-5 hours; the
    fast CUSUM (k = 1.5) signals in 2-3. Before it, 7 of these 20 were flagged by hour 3."""
    at, hours = 1100, 3
    flagged = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        t = np.arange(at + hours)
        den = rng.poisson(400.0 * HOUR_SHAPE[t % 24] / HOUR_SHAPE.mean()).astype(float)
        p = np.where(t >= at, 0.05 + 5.0 * np.sqrt(0.05 * 0.95 / den.clip(1)), 0.05)
        num = rng.binomial(den.astype(np.int64), p).astype(float)
        det = detect_series(num, denominators=den, period=(24, 168), accept_after=72, direction="up", sensitivity=1.8)
        flagged += any(s.direction == "up" and s.start >= at - 3 for s in det.segments)
        assert det.params["cusum"]["fast"]["k_sd"] == 1.5
    assert flagged >= 14, flagged
    # daily series keep the k = 0.5 CUSUM alone (the fast one added false incidents there)
    assert detect_series(weekly_rate(1)[0], denominators=weekly_rate(1)[1]).params["cusum"]["fast"] is None


# ----------------------------------------------------------------------------- false-alarm budget per day
def test_hourly_spike_threshold_keeps_the_daily_false_alarm_budget():
    from monitor.detect.rules import per_day_threshold

    assert per_day_threshold(4.0, 7) == 4.0 and per_day_threshold(4.0, None) == 4.0
    hourly = per_day_threshold(4.0, 168)
    assert 4.6 < hourly < 4.8  # 24 tests a day, each at 1/24 of the one-sided tail of 4 sd
    assert per_day_threshold(4.0, 24) == hourly
    rng = np.random.default_rng(21)
    t = np.arange(24 * 7 * 5)
    base = 400 * (1 + 0.5 * np.sin(2 * np.pi * t / 24))
    x = rng.poisson(base).astype(float)
    clean = detect_series(x, period=(24, 168))
    assert clean.params["threshold"] == pytest.approx(hourly) and not clean.anomalous.any()
    # bucket 700 is judged against earlier buckets only, so its expected value and sd are fixed
    sd = (clean.upper[700] - clean.expected[700]) / hourly
    x[700] = clean.expected[700] + 4.35 * sd  # beyond 4 sd, inside the hourly threshold
    det = detect_series(x, period=(24, 168))
    assert det.score[700] == pytest.approx(4.35) and not det.anomalous[700]
    x[700] = clean.expected[700] + 5.0 * sd
    assert detect_series(x, period=(24, 168)).anomalous[700]


def test_sparse_slice_is_not_judged_against_a_level_from_its_first_observations():
    # Above its volume floor on 3 % of hours: its baseline never sees enough buckets, so
    # one busy hour with 5 of 32 declined (a 15 % rate, normal 11 %) is not an alarm.
    rng = np.random.default_rng(5)
    n = 24 * 7 * 5
    den = rng.poisson(14, n).astype(float)
    busy = rng.choice(np.arange(600, n), size=int(0.03 * n), replace=False)
    den[busy] = 32.0
    num = rng.binomial(den.astype(np.int64), 0.11).astype(float)
    num[busy[:3]] = 0.0  # its first observations happen to be 0 %
    late = busy.max()
    num[late] = 5.0
    det = detect_series(num, denominators=den, period=(24, 168), min_volume=30)
    assert not det.anomalous.any()
    assert math.isnan(det.score[late])


def test_sparse_ratio_profile_is_shrunk_flat_busy_profile_is_kept():
    from monitor.detect.seasonal import seasonal_profile

    rng = np.random.default_rng(8)
    weeks = 3
    t = np.arange(7 * weeks)
    true = np.array([1.3, 1.0, 1.0, 1.0, 1.0, 0.85, 0.85])[t % 7] * 0.02
    busy_den = np.full(t.size, 50000.0)
    sparse_den = np.full(t.size, 100.0)  # ~2 events a day: per-weekday rates are noise
    busy = rng.binomial(50000, true) / busy_den
    sparse = rng.binomial(100, np.full(t.size, 0.02)) / sparse_den
    prof, mult = seasonal_profile(np.vstack([busy, sparse]), 7, weights=np.vstack([busy_den, sparse_den]))
    assert mult.all()
    assert prof[0, 0] == pytest.approx(1.3 / np.mean([1.3, 1, 1, 1, 1, 0.85, 0.85]), rel=0.05)
    assert np.all(np.abs(prof[1] - 1.0) < 0.15)  # unshrunk, weekday factors of 0-3 events swing 0-2.5x


def test_strong_short_shift_in_a_slice_signals_as_fast_as_in_the_total():
    """Four days at ~4 sd in a slice (judged at ~1.85x stricter thresholds, as among a few
    hundred slices): no single day is a spike there, but the CUSUM must signal within the
    run, as it would for the total at 1x. Its winsorising clip scales with h; a fixed clip of
    2 sd would need 5+ buckets at any strength."""
    rng = np.random.default_rng(31)
    n, start = 100, 80
    den = rng.poisson(20000 * WEEK[np.arange(n) % 7]).astype(float)
    p = np.full(n, 0.02)
    sd = np.sqrt(0.02 * 0.98 / den)
    p[start:start + 4] += 4.2 * sd[start:start + 4]
    num = rng.binomial(den.astype(np.int64), p).astype(float)
    det = detect_series(num, denominators=den, direction="up", sensitivity=1.85)
    assert not any(s.kind == "spike" for s in det.segments)
    assert det.anomalous[start:start + 4].any()
    assert [s.start for s in det.segments] == [start]
