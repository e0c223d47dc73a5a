"""find_change_points (Contract 3) and the batch change point screen."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from monitor.detect.changepoint import (
    detect_period,
    find_change_points,
    noise_scale,
    remove_spikes,
    rolling_median,
    standardise_rows,
)
from monitor.detect.shifts import find_batch

from ar_noise import ar1 as _ar1

# derandomize: the examples are the same on every run, so a failure is reproducible and
# a pass is not luck of the draw
FAST = settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def noise(seed: int, n: int, sd: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, sd, n)


# ----------------------------------------------------------------------------- known changes
@FAST
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(100, 300),
    where=st.floats(0.3, 0.7),
    size=st.floats(5.0, 8.0),
    sign=st.sampled_from([-1.0, 1.0]),
)
def test_single_level_shift_is_found_where_it_is(seed, n, where, size, sign):
    # The default is deliberately conservative (few, strong change points): a 5 sd shift
    # is found ~99.5 % of the time at the corner of this range, 4 sd ones are sometimes not.
    x = noise(seed, n)
    cp = int(where * n)
    x[cp:] += sign * size
    found = find_change_points(x)
    assert any(abs(c - cp) <= 2 for c in found), (cp, found)
    # conservative: few, strong change points
    assert len(found) <= 2, found


def test_several_separated_shifts_are_all_found():
    x = noise(1, 400)
    for cp, step in ((100, 5.0), (200, -7.0), (300, 6.0)):
        x[cp:] += step
    found = find_change_points(x)
    for cp in (100, 200, 300):
        assert any(abs(c - cp) <= 2 for c in found), (cp, found)
    assert len(found) <= 4


def test_noise_without_change_gives_nothing_most_of_the_time():
    hits = sum(bool(find_change_points(noise(seed, 120))) for seed in range(25))
    assert hits <= 1, hits


def test_trend_is_not_cut_into_a_staircase():
    t = np.arange(200, dtype=float)
    x = 0.5 * t + noise(3, 200)
    assert find_change_points(x) == []
    # the mean-only model does cut it: the default (linear) model is what prevents it
    assert len(find_change_points(x, model="mean")) >= 3


def test_slope_change_is_found():
    t = np.arange(200, dtype=float)
    x = np.where(t < 120, 0.5 * t, 60.0 - 0.8 * (t - 120)) + noise(4, 200)
    found = find_change_points(x)
    assert any(abs(c - 120) <= 5 for c in found), found


def test_seasonal_cycle_is_not_a_change_but_a_shift_on_top_is():
    t = np.arange(240)
    cycle = 10.0 * np.sin(2 * np.pi * t / 12)
    x = cycle + noise(5, 240)
    assert detect_period(x) == 12
    assert find_change_points(x) == []
    x[150:] += 8.0
    found = find_change_points(x)
    assert any(abs(c - 150) <= 3 for c in found), found


# ----------------------------------------------------------------------------- robustness
def test_single_spike_is_not_a_regime_change():
    x = noise(6, 200)
    x[90] += 50.0
    assert find_change_points(x) == []
    # also in a series that is otherwise flat
    flat = np.full(100, 3.0)
    flat[40] = 100.0
    assert find_change_points(flat) == []


def test_constant_series_has_no_change():
    assert find_change_points(np.full(50, 7.0)) == []
    assert find_change_points([1.0] * 10) == []


@pytest.mark.parametrize("values", [[], [1.0], [1.0, 2.0], [1.0, 5.0, 1.0, 5.0, 1.0]])
def test_very_short_series_gives_nothing(values):
    assert find_change_points(values) == []


def test_nan_is_dropped_and_indices_map_back_to_the_original_positions():
    x = noise(7, 150)
    x[100:] += 6.0
    x[[5, 17, 60, 61, 62, 95, 96, 97, 98, 99, 120]] = np.nan
    found = find_change_points(x)
    # the regime starts at 100, the first valid bucket after the gap 95..99
    assert any(abs(c - 100) <= 2 for c in found), found
    assert all(np.isfinite(x[c]) for c in found)
    assert find_change_points([np.nan] * 20) == []
    assert find_change_points([None, 1.0, None, 1.0]) == []


@FAST
@given(
    data=st.lists(
        st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)),
        min_size=0,
        max_size=120,
    )
)
def test_output_contract_holds_for_any_input(data):
    found = find_change_points([np.nan if v is None else v for v in data])
    n = len(data)
    assert found == sorted(set(found))
    assert all(isinstance(c, int) and 1 <= c <= n - 1 for c in found)


# ----------------------------------------------------------------------------- internals the batch path relies on
def test_rolling_median_matches_numpy():
    x = np.random.default_rng(8).normal(size=(20, 50))
    for w in (1, 3):
        ref = np.median(sliding_window_view(np.pad(x, ((0, 0), (w, w)), mode="edge"), 2 * w + 1, axis=1), axis=-1)
        assert np.array_equal(rolling_median(x, w), ref)


def test_vectorised_standardisation_matches_the_single_series_functions():
    rows = np.stack([noise(s, 120) + (np.arange(120) > 60) * 3.0 for s in range(5)])
    rows[2, 30] += 40.0  # a spike for the Hampel filter
    z, sigma = standardise_rows(rows)
    for i, x in enumerate(rows):
        clean = remove_spikes(x)
        s = noise_scale(clean).long_run
        assert math.isclose(sigma[i], s, rel_tol=1e-9)
        assert np.allclose(z[i], (clean - np.median(clean)) / s)


def test_batch_screen_keeps_shifted_rows_and_agrees_with_the_exact_search():
    rng = np.random.default_rng(9)
    rows = rng.normal(size=(60, 200))
    rows[:20, 120:] += 4.0  # 20 rows with a clear shift
    screened = find_batch(rows)
    exact = find_batch(rows, screen=False)
    assert screened.screened[:20].all()
    assert screened.screened[20:].mean() < 0.5  # the screen actually skips work
    assert screened.points == exact.points
    # the location is exact up to noise (a spike-like first post-shift value can move it)
    near = [any(abs(c - 120) <= 2 for c in pts) for pts in screened.points[:20]]
    assert sum(near) >= 18, screened.points[:20]


def test_benchmark_scoring_matches_the_readme_checks():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "tcpd.py"
    spec = importlib.util.spec_from_file_location("tcpd_bench", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # the module asserts the README's two checks on import
    assert mod.f1({1: [], 2: [10], 3: [50]}, []) == 0.8
    assert mod.cover({1: [10, 20], 2: [10], 3: [0, 5]}, [10, 20], n=45) == 0.7962962962962963
    # a perfect prediction scores 1 on both
    assert mod.f1({1: [30], 2: [30]}, [30]) == 1.0
    assert mod.cover({1: [30], 2: [30]}, [30], n=60) == 1.0


# ----------------------------------------------------------------------------- linear search and noise re-estimation
def _line_cost():
    """ruptures cost for the same piecewise-linear model, so Pelt can serve as the reference search."""
    from ruptures.base import BaseCost

    from monitor.detect.changepoint import _cumulative_sums, _linear_sse

    class LineCost(BaseCost):
        model = "piecewise_linear"
        min_size = 3

        def fit(self, signal):
            self.signal = np.asarray(signal, dtype=float).reshape(-1, 1)  # ruptures reads the length here
            self._sums = _cumulative_sums(self.signal[:, 0])
            return self

        def error(self, start, end):
            return float(_linear_sse(self._sums, np.array([start]), end)[0])

    return LineCost()


def test_linear_segment_cost_is_the_least_squares_line_residual():
    from monitor.detect.changepoint import _cumulative_sums, _linear_sse

    y = np.random.default_rng(3).normal(size=60) + 0.1 * np.arange(60)
    sums = _cumulative_sums(y)
    for start, end in [(0, 60), (5, 9), (20, 45)]:
        t = np.arange(end - start)
        fit = np.polyval(np.polyfit(t, y[start:end], 1), t)
        assert _linear_sse(sums, np.array([start]), end)[0] == pytest.approx(np.sum((y[start:end] - fit) ** 2))


def test_vectorised_linear_search_matches_ruptures_pelt():
    import ruptures as rpt

    from monitor.detect.changepoint import segment_linear

    rng = np.random.default_rng(11)
    for _ in range(40):
        n = int(rng.integers(10, 250))
        z = rng.normal(size=n) + np.repeat(rng.normal(0, 3, 5), n // 5 + 1)[:n] + 0.02 * np.arange(n) * rng.normal()
        pen, ms = 3 * math.log(n), int(rng.integers(3, 6))
        ref = rpt.Pelt(custom_cost=_line_cost(), min_size=ms, jump=1).fit(z).predict(pen=pen)
        assert segment_linear(z, penalty=pen, min_size=ms) == [b for b in ref if b < n]


def test_length_term_makes_the_search_more_conservative():
    from monitor.detect.changepoint import segment_linear

    x = noise(12, 300)
    x[150:] += 1.2  # weak shift: BIC with a small penalty keeps it, log-length terms cost more
    loose = segment_linear(x, penalty=2.0 * math.log(300), min_size=3)
    strict = segment_linear(x, penalty=2.0 * math.log(300), min_size=3, length_weight=1.0)
    assert len(strict) <= len(loose)


def test_residual_noise_recovers_ar_coefficient_and_long_run_sd():
    from monitor.detect.changepoint import residual_noise

    phi = 0.6
    x = _ar1(13, 4000, phi)
    x[2000:] += 10.0 + 0.01 * np.arange(2000)  # a known break: pairs across it are skipped
    long_run, est = residual_noise(x, [2000], max_ar=0.9)
    assert abs(est - phi) < 0.05
    assert math.isclose(long_run, math.sqrt((1 + phi) / (1 - phi)), rel_tol=0.1)
    # the cap holds
    assert residual_noise(x, [2000], max_ar=0.3)[1] == 0.3


def test_refit_keeps_a_known_break_and_does_not_add_noise_breaks():
    x = _ar1(14, 300, 0.8)
    assert find_change_points(x) == []  # strongly correlated noise alone: no change
    x[180:] += 6.0
    found = find_change_points(x)
    assert any(abs(c - 180) <= 2 for c in found), found
    assert len(found) <= 2, found
    assert find_change_points(x, refits=0)  # the first pass alone also sees it


def test_mean_model_is_not_affected_by_the_linear_options():
    x = noise(15, 200)
    x[120:] += 3.0
    base = find_change_points(x, model="mean")
    assert find_change_points(x, model="mean", refits=0) == base
    assert find_change_points(x, model="mean", criterion="mbic") == base


def test_ar1_deviance_profiles_the_ar_coefficient_and_prefers_the_true_breaks():
    from monitor.detect.changepoint import ar1_deviance

    x = _ar1(16, 3000, 0.6)
    x[1500:] += 4.0
    dev_true, phi = ar1_deviance(x, [1500], max_ar=0.9)
    assert abs(phi - 0.6) <= 0.05
    assert dev_true < ar1_deviance(x, [], max_ar=0.9)[0]


def test_ar1_selection_finds_shifts_that_the_inflated_noise_estimate_misses():
    # Three 3-sd shifts in AR(0.5) noise: every missed shift inflates the noise estimate
    # the refits start from, so without the AR(1) selection most of them go unseen.
    def complete(found):
        return len(found) == 3 and all(any(abs(f - t) <= 3 for f in found) for t in (60, 120, 180))

    new = old = 0
    for seed in range(30):
        x = _ar1(seed, 240, 0.5)
        for where, size in ((60, 3.0), (120, -3.0), (180, 3.0)):
            x[where:] += size
        new += complete(find_change_points(x))
        old += complete(find_change_points(x, select=None))
    assert new >= 12 and new >= old + 6, (new, old)


def test_ar1_selection_adds_no_breaks_to_correlated_noise():
    false = sum(bool(find_change_points(_ar1(100 + seed, 200, 0.8))) for seed in range(30))
    assert false <= 3, false


# ----------------------------------------------------------------------------- short series and smooth growth (issue 18)
def test_smooth_growth_is_not_cut_at_any_amplitude():
    # A logistic rise far larger than the noise (a population, a cumulative count): the
    # pieces of a piecewise-linear fit explain it "significantly" better than one line, so
    # without the smooth check and the resolution floor it is cut into a staircase.
    u = np.linspace(0, 1, 600)
    for amp in (50.0, 1e3, 1e5):
        x = amp / (1 + np.exp(-(u - 0.5) / 0.2)) + _ar1(7, 600, 0.8)
        assert find_change_points(x) == [], amp
        assert len(find_change_points(x, smooth=False, resolution=0.0)) >= 2, amp


def test_a_break_on_a_smooth_curve_is_still_found():
    u = np.linspace(0, 1, 400)
    x = 500.0 * u * u + _ar1(8, 400, 0.5)
    x[250:] += 40.0  # a clear level shift on top of the curve
    found = find_change_points(x)
    assert any(abs(c - 250) <= 3 for c in found), found


def test_short_series_breaks_are_seen():
    # 30-40 yearly points, moderately persistent noise: a 3 sd shift or a turn from rise to
    # fall. With short series keeping the refit answer (short_max_ar=None), the inflated
    # long-run noise estimate hides most of them.
    def ratio(make, where, tol):
        new = old = 0
        for s in range(30):
            x = make(s)
            new += any(abs(p - where) <= tol for p in find_change_points(x))
            old += any(abs(p - where) <= tol for p in find_change_points(x, short_max_ar=None))
        return new, old

    t = np.arange(40, dtype=float)
    new, old = ratio(lambda s: np.where(t < 22, t, 44 - t) * 0.5 + _ar1(300 + s, 40, 0.5), 22, 3)
    assert new >= 15 and new >= old + 10, (new, old)

    def shift(s):
        x = _ar1(400 + s, 30, 0.5)
        x[17:] += 3.0
        return x

    new, old = ratio(shift, 17, 2)
    assert new >= 12 and new >= old + 6, (new, old)


def test_short_noise_false_alarms_stay_bounded():
    # The price of seeing short breaks: some false alarms on short pure noise (about 15 %
    # measured), bounded here so that a change of the short-series rule that makes it
    # trigger-happy fails.
    hits = sum(bool(find_change_points(_ar1(200 + s, n, phi))) for s in range(30) for n in (20, 40) for phi in (0.0, 0.6))
    assert hits <= 30, hits  # of 120


def test_resolution_floor_is_relative_to_the_range():
    from monitor.detect.changepoint import ar1_deviance

    y = np.linspace(0.0, 1000.0, 200) + 0.1 * np.sin(np.linspace(0, 30, 200))  # bends far below 0.5 % of the range
    floor = (0.005 * np.ptp(y)) ** 2
    for max_ar in (0.0, 0.9):
        assert ar1_deviance(y, [], max_ar=max_ar, floor_var=floor)[0] > ar1_deviance(y, [], max_ar=max_ar)[0]
    # the floor bounds the marginal variance: with phi = 0 it is the variance itself
    y = np.linspace(0.0, 1.0, 200)  # a straight line, residuals exactly 0
    assert ar1_deviance(y, [], max_ar=0.0, floor_var=floor)[0] == pytest.approx(199 * math.log(floor), rel=1e-9)


# ----------------------------------------------------------------------------- shared curvature, pruning, log scale (issue 18 item 4)
def test_ar1_deviance_design_matches_least_squares_per_phi():
    # The vectorised profile (normal equations over all phi at once) against the plain
    # least-squares fit per phi it replaced, on random piecewise-linear and curved designs.
    from monitor.detect.changepoint import _segment_design, ar1_deviance_design

    def reference(y, X, max_ar, floor_var):
        n, dof, best = y.size, max(y.size - 1 - X.shape[1] - 1, 1), (math.inf, 0.0)
        for phi in np.arange(0.0, max_ar + 1e-9, 0.05):
            D, v = X[1:] - phi * X[:-1], y[1:] - phi * y[:-1]
            r = v - D @ np.linalg.lstsq(D, v, rcond=None)[0]
            dev = (n - 1) * math.log(max(float(r @ r) / dof, floor_var * (1 - phi * phi), 1e-300))
            best = (dev, float(phi)) if dev < best[0] else best
        return best

    rng = np.random.default_rng(3)
    for _ in range(40):
        n = int(rng.integers(15, 600))
        y = np.cumsum(rng.normal(size=n)) * rng.uniform(0.1, 10) + rng.uniform(0, 1e3) * np.linspace(0, 1, n) ** 2
        cps = sorted({int(c) for c in rng.integers(3, n - 3, size=int(rng.integers(0, 5)))})
        cps = [c for i, c in enumerate(cps) if i == 0 or c - cps[i - 1] >= 3]
        X = _segment_design(n, cps)
        if rng.random() < 0.5:
            X = np.hstack([X, np.vander(np.linspace(-1, 1, n), 4)[:, :2]])
        floor = float(rng.choice([0.0, 0.5]))
        got, want = ar1_deviance_design(y, X, max_ar=0.9, floor_var=floor), reference(y, X, 0.9, floor)
        assert got[0] == pytest.approx(want[0], rel=1e-9, abs=1e-6)
        assert got[1] == want[1] or got[0] == pytest.approx(want[0], abs=1e-6)


def test_trend_deviance_without_breaks_is_the_best_of_line_and_smooth_curve():
    from monitor.detect.changepoint import ar1_deviance, smooth_deviance, trend_deviance

    u = np.linspace(0, 1, 150)
    for y in (3 * u + _ar1(1, 150, 0.3), 40 * u**2 + _ar1(2, 150, 0.3), 40 * u**3 + _ar1(3, 150, 0.6)):
        want = min(ar1_deviance(y, [], max_ar=0.9)[0], smooth_deviance(y, max_ar=0.9))
        assert trend_deviance(y, [], max_ar=0.9) == pytest.approx(want, rel=1e-9)


def test_a_shift_on_a_bending_trend_is_the_only_change():
    # Accelerating growth with one level shift: straight lines need extra breaks to follow
    # the bend, so without the shared curvature (an option) and the backward elimination
    # one or two spurious changes come with the real one.
    u = np.linspace(0, 1, 240)
    only = extra = 0
    for seed in range(8):
        x = 60 * u**2 + _ar1(500 + seed, 240, 0.3)
        x[150:] += 6.0
        new = find_change_points(x, curvature=True)
        only += len(new) == 1 and abs(new[0] - 150) <= 2
        extra += len(find_change_points(x, curvature=False, prune=False)) > 1
    assert only >= 7 and extra >= 6, (only, extra)


def test_log_scale_is_chosen_for_steady_multiplicative_growth():
    # 5 % growth a step with 5 % noise: on the values the noise grows with the level and
    # the late, noisy part looks like changes (on the values alone, log_smooth off); on the
    # log scale it is one straight line.
    cut_raw = cut_auto = 0
    for seed in range(8):
        rng = np.random.default_rng(600 + seed)
        x = 100 * np.exp(0.05 * np.arange(200) + 0.05 * rng.normal(size=200))
        cut_raw += bool(find_change_points(x, scale=None, log_smooth=False))
        cut_auto += bool(find_change_points(x, scale="auto"))
    assert cut_auto == 0 and cut_raw >= 6, (cut_auto, cut_raw)


def test_log_scale_keeps_an_additive_shift():
    # Additive noise on a positive series: the likelihood keeps the values' answer.
    for seed in range(5):
        x = 50 + _ar1(700 + seed, 200, 0.3)
        x[120:] += 5.0
        assert any(abs(c - 120) <= 2 for c in find_change_points(x, scale="auto"))
    with pytest.raises(ValueError):
        find_change_points(np.arange(20.0), scale="log")


def test_pruning_only_removes_changes():
    # Backward elimination starts from the selection's answer and only drops changes:
    # never a change the unpruned answer lacks, so no new false alarm anywhere.
    rng = np.random.default_rng(900)
    changed = 0
    for _ in range(25):
        x = _ar1(int(rng.integers(1 << 30)), 300, 0.7) + np.cumsum(rng.normal(size=300)) * 0.15
        x[100:] += 3.0
        x[200:] -= 3.0
        pruned, full = find_change_points(x), find_change_points(x, prune=False)
        assert set(pruned) <= set(full), (pruned, full)
        changed += pruned != full
    assert changed >= 1, changed  # it does act on wandering series
