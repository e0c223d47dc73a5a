"""Offline change point detection: ``find_change_points`` (Contract 3).

One default configuration meant to hold on unseen series, so every choice is a
principle rather than a tuned number:

- Segments are straight lines (``model="linear"``: level *and* slope may change), because
  business and economic series trend; a mean-only model cuts a trend into a staircase of
  false changes. ``model="mean"`` (piecewise constant) is what the product uses on
  de-seasonalised metric residuals, where only level shifts matter.
- Isolated spikes are replaced by the local median first (Hampel filter): a single
  outlier is not a regime change.
- A clear seasonal cycle (auto-detected from the autocorrelation of first differences) is
  removed with robust STL, otherwise every seasonal swing looks like a shift. "Clear" is
  a test (``SEASON_ALPHA``, ``detect_period``): the peak must beat the best of the lags
  searched on differenced noise at 5 % family-wise, not only a fixed 0.3, which on 60
  points of white noise found a period in ~1 series of 5; a false cycle taken out by STL
  leaves a residue that reads as changes.
- The noise scale is the *long-run* standard deviation: one-step volatility (std of first
  differences after spike removal, so frequent jumps that are part of the series' normal
  behaviour count as noise) inflated by an AR(1) factor ``(1+phi)/(1-phi)`` with phi
  estimated robustly (winsorised lag-1 correlation) from the differences. Serially
  correlated noise wanders, and a wandering level is not a change; the plain BIC with
  i.i.d. noise over-segments it.
- Search: exact penalised segmentation (PELT; ruptures for the mean model, a vectorised
  implementation with the same optimum for the linear one) with a BIC penalty
  ``(parameters per segment + 1) * log(n)`` in units of that long-run variance.
- Linear model: the noise is then re-estimated from the residuals of that segmentation
  (direct marginal sd, lag-1 autocorrelation of the residuals, same cap) and the search
  repeated, up to 3 times: the difference-based phi has variance ~4/n against
  ~(1-phi^2)/n for the residual one, and dividing by sqrt(2(1-phi)) amplifies its error.
  Chosen on held-out data (benchmarks/tcpd_synthetic.py), not on the TCPD labels.
- Linear model, series of at least ``AR1_SELECT_MIN_N`` points: the noise scale above is
  estimated *before* the changes are known, and every missed change inflates it (a missed
  level shift looks like persistence, phi goes up, the long-run sd with it), so the refits
  settle on too few changes: on the held-out set the estimated long-run sd is ~1.2x the
  true one (upper quartile 2x) on series with changes, and knowing the true one would raise
  cover by ~0.08. So the final choice is made by a likelihood that estimates the noise
  *jointly* with each candidate segmentation: lines per segment plus AR(1) errors (the
  conditional Gaussian likelihood, phi profiled on a grid, variance with the usual
  degrees-of-freedom correction for the fitted lines), penalised by the same BIC cost per
  change as the search, ``(2 parameters + location) * log(n)``. Candidates are the
  refit answer, no change, and the exact segmentations at a range of noise scales (0.3x to
  3x the first estimate). Below ``AR1_SELECT_MIN_N`` points a line-plus-AR(1) fit cannot tell
  persistence from shifts (a 40-point AR(0.8) path is as well described by a few segments),
  and the long-run sd of the first passes is inflated by any missed change (phi near its
  cap), so on its own the search reports nothing on short yearly series whose one or two
  breaks a reader sees at once. There the selection runs with phi capped at
  ``SHORT_MAX_AR`` = 0.5: moderate persistence is allowed, strong persistence is read as
  shifts, as a reader of a 30-point chart does.
- Smooth growth is not a staircase: in the selection, a change must also beat one smooth
  trend (a polynomial of degree 2 or 3 with the same AR(1) errors, BIC: log(n) per extra
  coefficient); if the curve explains the series better, there is no change. And a series
  whose noise is tiny next to its curvature (a population) would make any bend
  "significant", so the selection's innovation variance is floored at
  ``(RESOLUTION * range)^2``, 0.5 % of the range: a bend too small to see on a chart of the
  whole series is not a change. Both measured on the synthetic smooth-growth family of
  benchmarks/tcpd_synthetic.py, not on the TCPD labels.
- Pruning (``PRUNE``): the selection's answer is thinned by backward elimination: any
  change whose removal lowers the criterion goes. The candidates are the exact
  segmentations at a few noise scales, nested by scale, not by change, so the subset
  without one spurious change was often never scored (brent_spot 100, jfk_passengers 165
  on the dev series). It acts only where the selection found a change and only removes.
- ``curvature=True`` (off by default): the candidates' lines may also share one smooth
  curvature (global u^2, u^2 + u^3 terms, log(n) each, ``trend_deviance``), so a change is
  judged against the bend of the whole series (growth that slows is not a break wherever
  straight lines stop fitting). With pruning it removes gdp_japan's false change at 11,
  but on the synthetic set it costs cover (0.745 -> 0.735, paired se 0.003: a shared
  bend absorbs real slope changes), so it stays an option. Both choices: leave-one-out
  over the 12 dev series among the on/off variants, checked on the synthetic sets
  (benchmarks/tcpd.py --loo --synthetic 300 --all-configs).
- ``scale="auto"`` (off by default) also runs the search on log(x) for positive series and
  keeps the answer with the higher likelihood (Jacobian included): right for steady
  multiplicative growth, where the values' noise grows with the level; but annotators
  read charts on the values' scale, and on the dev series it costs F1 (changes in growth
  rate at low levels that nobody marks), so it stays an option.

- Short trending series (``TYPED_MAX_N`` = 120 points or fewer, not seasonal): a reader
  marks where a yearly trend bends or breaks, and a bend is one parameter (a slope change,
  the line stays continuous), not the two of a new line per segment; so one smooth trend
  nearly always beat a change there. The selection's answer therefore also competes with
  the best line with at most 2 typed changes (``trend_breaks``: kink or jump 1 parameter,
  break 2, each location ``TYPED_LOCATION`` = 2 more, regimes of at least
  ``TYPED_MIN_SIZE`` = 5 points), found exhaustively, in one criterion with the line, one
  smooth trend and that answer, all with phi profiled up to 0.9 (the short-series cap
  would let persistent noise pass for bends). A location costs two parameters because it
  is the best of ~n places; at one (plain BIC) the search flags persistent noise
  (benchmarks/tcpd.py: ``ours_bic``). Measured on the yearly family of
  benchmarks/tcpd_synthetic.py (simulated annotators) and the other synthetic sets, and by
  leave-one-out over the dev series, where it changes nothing.

- Multiplicative smooth growth (``LOG_SMOOTH``, positive series): an exponential rise
  with noise that grows with the level has no straight piece on the values' scale, and
  neither the lines nor one cubic follow its tail, so the search cut its last third into
  lines (benchmarks/tcpd_synthetic.py's growth family: 2.3 changes per no-change series of
  100-300 points, F1 below "no change at all"). So whether there is a change at all is
  asked on the likelier scale: the whole selection also runs on log(x), and when that
  answer is "no change" and its likelihood (Jacobian of the log included, the comparison
  of ``scale="auto"``) is higher than the values' answer, there is no change. Where the
  changes are is still read on the values (what annotators look at): a log-scale answer
  with changes does not replace it, since that is ``scale="auto"``, which costs dev F1.
  It only removes changes, so it cannot add a false alarm.

Indices are 0-based positions where a new regime starts, in the caller's index space
(NaN positions are dropped for the search and mapped back).
"""
from __future__ import annotations

import functools
import importlib.machinery
import importlib.metadata
import importlib.util
import math
import os
import sys
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

# 1.4826 * MAD estimates a normal standard deviation.
MAD_TO_SD = 1.4826
MODELS = ("linear", "mean")
# Shortest series on which the linear model's answer is chosen by the AR(1) likelihood
# (see the module docstring); shorter series keep the refit answer.
AR1_SELECT_MIN_N = 60
# Noise scales (multiples of the first long-run sd estimate) whose segmentations are
# candidates for that choice, and the grid on which phi is profiled.
AR1_SELECT_SCALES = tuple(float(s) for s in np.geomspace(0.3, 3.0, 7))
AR1_PHI_STEP = 0.05
# Smooth alternatives a change must beat (polynomial degrees of one global trend).
SMOOTH_DEGREES = (2, 3)
# Below AR1_SELECT_MIN_N points the selection caps phi here (see the module docstring).
SHORT_MAX_AR = 0.5
# Share of the series' range below which a deviation counts as invisible: the selection's
# noise variance is floored at (RESOLUTION * range)^2.
RESOLUTION = 0.005
# Scale of the search: "auto" compares the answer on the values with the answer on their
# logarithm (positive series only) by likelihood; None keeps the values.
SCALE = None
# The AR(1) selection drops any change whose removal lowers its criterion; judging changes
# against lines that share one smooth curvature is an option (see ``_select_ar1``): with the
# log check on, its dev gain is still one series (gdp_japan), so leave-one-out gains nothing,
# and it costs synthetic cover (-0.007, se 0.002, paired; benchmarks/tcpd.py ``ours_curv``).
CURVATURE = False
PRUNE = True
# Series of at most this many points also try every line with at most 2 typed changes
# (kink, jump, break; ``trend_breaks``) in the same criterion; 0 = off.
TYPED_MAX_N = 120
# Shortest regime of that search: on a yearly chart a run of fewer points reads as an
# episode (an outlier cluster, a cycle's residue), not a new trend.
TYPED_MIN_SIZE = 5
# Parameters a change's location costs there (2: it is chosen among ~n places by an
# exhaustive search, which a regular parameter's log(n) underprices on short series).
TYPED_LOCATION = 2.0
# A positive series has no change when the selection on log(x) says none and is the
# likelier (see the module docstring).
LOG_SMOOTH = True
# Family-wise level of the seasonality test over the lags searched (``detect_period``).
SEASON_ALPHA = 0.05
# Interior knots (1..this) of the cubic splines that the smooth rival also tries; 0 = the
# polynomials alone (an option: on synthetic it lets a logistic rise pass, see tcpd.py).
SMOOTH_KNOTS = 0


@dataclass(frozen=True)
class NoiseScale:
    """Noise of a series, for standardising before the search."""

    long_run: float  # long-run sd: what a segment mean's uncertainty scales with
    marginal: float  # sd of one observation
    ar: float  # robust AR(1) coefficient used for the inflation, in [0, max_ar]


def robust_sd(a: np.ndarray) -> float:
    a = a[np.isfinite(a)]
    if a.size == 0:
        return 0.0
    return MAD_TO_SD * float(np.median(np.abs(a - np.median(a))))


def robust_lag1_correlation(d: np.ndarray, *, clip: float = 2.5) -> float:
    """Lag-1 autocorrelation of ``d`` after winsorising at ``clip`` robust sds around the
    median: the few huge differences that level shifts create cannot dominate it, and it
    keeps most of the efficiency of the plain estimate (MAD-based correlation estimators
    are too noisy on the 50-200 point series this runs on)."""
    if d.size < 3:
        return 0.0
    scale = robust_sd(d)
    if not scale > 0:
        return 0.0
    w = np.clip(d - np.median(d), -clip * scale, clip * scale)
    denom = float(w @ w)
    return float(w[1:] @ w[:-1]) / denom if denom > 0 else 0.0


def noise_scale(x: np.ndarray, *, max_ar: float = 0.9, step_sd: float | None = None) -> NoiseScale:
    """Long-run noise sd of ``x`` (assumed cleaned of isolated spikes).

    White noise has lag-1 correlation of differences -1/2, AR(1) noise -(1-phi)/2, so
    phi = 1 + 2 * corr(diff). phi is capped because >= 1 means "smooth/trending", which
    the AR(1) model cannot describe; the cap keeps the scale finite but conservative.
    ``step_sd`` overrides the one-step sd (used for seasonal series).
    """
    d = np.diff(x)
    if d.size == 0:
        return NoiseScale(0.0, 0.0, 0.0)
    phi = min(max(1.0 + 2.0 * robust_lag1_correlation(d), 0.0), max_ar)
    sd_step = float(np.std(d)) if step_sd is None else step_sd
    marginal = sd_step / math.sqrt(2.0 * (1.0 - phi))
    return NoiseScale(marginal * math.sqrt((1.0 + phi) / (1.0 - phi)), marginal, phi)


def remove_spikes(x: np.ndarray, *, window: int = 3, threshold: float = 5.0) -> np.ndarray:
    """Hampel filter: replace points further than ``threshold`` robust sds from the
    median of the ``2*window+1`` points around them by that median."""
    if x.size < 2 * window + 1 or window < 1:
        return x.copy()
    med = rolling_median(x[None, :], window)[0]
    dev = x - med
    scale = robust_sd(dev)
    out = x.copy()
    if scale > 0:
        bad = np.abs(dev) > threshold * scale
        out[bad] = med[bad]
    return out


def detect_period(x: np.ndarray, *, min_cycles: int = 4, min_acf: float = 0.3, min_period: int = 3,
                  alpha: float | None = SEASON_ALPHA) -> int | None:
    """Dominant seasonal period, if the series clearly has one.

    The autocorrelation of first differences is used because differencing removes trends
    and level shifts that would otherwise dominate the autocorrelation. Periods 1-2 are
    not seasonality (they are what over-differenced noise looks like).

    The peak must also be significant: the largest of the ``max_lag - min_period + 1``
    lags searched is compared with the one-sided ``alpha`` / lags quantile (Bonferroni) of
    its null distribution, differenced white noise, whose autocorrelation at lags >= 2 has
    Bartlett variance (1 + 2 * 0.5^2) / n. Without it, on 100 points the best of ~23 lags
    passes 0.3 by chance in ~5 % of noise series, and a false cycle removed by STL bends
    the residue into false changes. ``alpha`` None: the fixed ``min_acf`` alone.
    """
    max_lag = x.size // min_cycles
    if max_lag < min_period:
        return None
    d = np.diff(x)
    d = d - d.mean()
    denom = float(d @ d)
    if denom <= 0:
        return None
    acf = np.array([float(d[lag:] @ d[: d.size - lag]) / denom for lag in range(max_lag + 1)])
    period = int(np.argmax(acf[min_period:])) + min_period
    bound = min_acf
    if alpha is not None:
        lags = max_lag + 1 - min_period
        bound = max(bound, NormalDist().inv_cdf(1.0 - alpha / lags) * math.sqrt(1.5 / d.size))
    return period if acf[period] >= bound else None


def seasonal_component(x: np.ndarray, period: int) -> np.ndarray:
    """Robust STL seasonal component (outliers and shifts do not distort it)."""
    from statsmodels.tsa.seasonal import STL

    return np.asarray(STL(x, period=period, robust=True).fit().seasonal)


def standardise_rows(
    X: np.ndarray, *, spike_window: int = 3, spike_threshold: float = 5.0, max_ar: float = 0.9
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``X`` (complete, no NaN) with spikes removed, centred on their median and
    divided by their long-run noise sd; also returns that sd (0 = flat row).

    Vectorised form of ``remove_spikes`` + ``noise_scale`` (same numbers, tested), used
    by ``find_change_points`` and by the batch screen over thousands of series.
    """
    X = np.asarray(X, dtype=float)
    n_rows, n = X.shape
    w = spike_window
    clean = X.copy()
    if n >= 2 * w + 1 and w >= 1:
        med = rolling_median(X, w)
        dev = X - med
        scale = MAD_TO_SD * np.median(np.abs(dev - np.median(dev, axis=1, keepdims=True)), axis=1, keepdims=True)
        bad = (np.abs(dev) > spike_threshold * scale) & (scale > 0)
        clean[bad] = med[bad]
    d = np.diff(clean, axis=1)
    if n >= 4:  # robust_lag1_correlation, row-wise
        scale = _row_robust_sd(d)[:, None]
        w = np.clip(d - np.median(d, axis=1, keepdims=True), -2.5 * scale, 2.5 * scale)
        num = np.sum(w[:, 1:] * w[:, :-1], axis=1)
        denom = np.sum(w * w, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = np.where((denom > 0) & (scale[:, 0] > 0), num / np.where(denom > 0, denom, 1.0), 0.0)
    else:
        rho = np.zeros(n_rows)
    phi = np.clip(1.0 + 2.0 * rho, 0.0, max_ar)
    step = d.std(axis=1) if n >= 2 else np.zeros(n_rows)
    sigma = step / np.sqrt(2.0 * (1.0 - phi)) * np.sqrt((1.0 + phi) / (1.0 - phi))
    safe = np.where(sigma > 0, sigma, 1.0)
    z = (clean - np.median(clean, axis=1, keepdims=True)) / safe[:, None]
    return z, np.where(np.isfinite(sigma), sigma, 0.0)


def rolling_median(X: np.ndarray, w: int) -> np.ndarray:
    """Centred median of 2w+1 points per row (edges padded with the edge value).

    An odd-even transposition sorting network over the 2w+1 shifted copies: elementwise
    min/max over whole matrices, several times faster than np.median on a sliding
    window view for the small windows used here (same result)."""
    k = 2 * w + 1
    n = X.shape[1]
    padded = np.pad(X, ((0, 0), (w, w)), mode="edge")
    lanes = [padded[:, i : i + n] for i in range(k)]
    for rnd in range(k):
        for i in range(rnd % 2, k - 1, 2):
            lo = np.minimum(lanes[i], lanes[i + 1])
            lanes[i + 1] = np.maximum(lanes[i], lanes[i + 1])
            lanes[i] = lo
    return lanes[w]


def _row_robust_sd(a: np.ndarray) -> np.ndarray:
    return MAD_TO_SD * np.median(np.abs(a - np.median(a, axis=1, keepdims=True)), axis=1)


def default_penalty(n: int, model: str) -> float:
    """BIC: each extra segment costs its parameters (mean, or mean and slope) plus its
    location, times log(n), in units of the (long-run) noise variance."""
    params = 1 if model == "mean" else 2
    return (params + 1) * math.log(max(n, 2))


def segment(z: np.ndarray, *, model: str, penalty: float, min_size: int) -> list[int]:
    """Exact penalised segmentation of an already standardised series (PELT)."""
    n = z.size
    if n < 2 * min_size:
        return []
    if model != "mean":
        return segment_linear(z, penalty=penalty, min_size=max(min_size, 3))
    # ruptures' KernelCPD with the linear kernel is the l2 (mean-shift) cost, PELT in C
    pelt = _pelt_l2()
    if pelt is None:
        import ruptures as rpt

        algo = rpt.KernelCPD(kernel="linear", min_size=min_size, jump=1).fit(z.reshape(-1, 1))
        return [int(b) for b in algo.predict(pen=penalty) if b < n]
    assert penalty > 0, penalty  # as KernelCPD.predict asserts
    # KernelCPD raises min_size to 1; the C function would read out of bounds below it
    path = pelt(np.asarray(z, dtype=np.double).reshape(-1, 1), float(penalty), max(int(min_size), 1))
    bkps, end = [], n
    while end > 0:  # KernelCPD.predict's walk back through the path
        bkps.append(end)
        end = int(path[end])
    return [b for b in reversed(bkps) if b < n]


@functools.lru_cache(maxsize=1)
def _pelt_l2():
    """KernelCPD's C function for the linear kernel (``ekcpd_pelt_L2``), loaded on its own:
    importing ruptures runs its package __init__, which imports scipy.stats, scipy.signal and
    scipy.spatial for estimators detection never uses (0.2-0.7 s of every detect process).
    The same compiled code, so the same change points; None (KernelCPD then) if ruptures
    lays its files out differently, or is a release other than the 1.1 series whose private
    signature (signal, penalty, min_size) tests/test_changepoint_pelt.py checks."""
    name = "ruptures.detection._detection.ekcpd"
    try:
        if not importlib.metadata.version("ruptures").lstrip("v").startswith("1.1."):
            return None
        if name in sys.modules:  # ruptures already imported
            return sys.modules[name].ekcpd_pelt_L2
        spec = importlib.util.find_spec("ruptures")  # finds the package without running its __init__
        folder = os.path.join(os.path.dirname(spec.origin), "detection", "_detection")
        path = next(os.path.join(folder, f) for f in sorted(os.listdir(folder))
                    if f.startswith("ekcpd.") and f.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)))
        found = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(found)
        found.loader.exec_module(module)
        return module.ekcpd_pelt_L2
    except Exception:  # noqa: BLE001 - any other layout: the public API
        return None


def _linear_sse(sums, start: np.ndarray, end: int) -> np.ndarray:
    """Residual sum of squares of a least-squares line on each segment ``[start, end)``
    (vectorised over ``start``), from the cumulative sums ``(t, t^2, y, t*y, y^2)``."""
    T, TT, Y, TY, YY = sums
    m = end - start
    sy = Y[end] - Y[start]
    sse = (YY[end] - YY[start]) - sy * sy / m
    st = T[end] - T[start]
    ctt = (TT[end] - TT[start]) - st * st / m
    cty = (TY[end] - TY[start]) - st * sy / m
    pos = ctt > 0
    sse = sse - np.where(pos, cty * cty / np.where(pos, ctt, 1.0), 0.0)
    return np.maximum(sse, 0.0)


def _cumulative_sums(y: np.ndarray):
    t = np.arange(y.size, dtype=float)

    def csum(a):
        return np.concatenate(([0.0], np.cumsum(a)))

    return csum(t), csum(t * t), csum(y), csum(t * y), csum(y * y)


def segment_linear(z: np.ndarray, *, penalty: float, min_size: int = 3, length_weight: float = 0.0) -> list[int]:
    """Exact penalised piecewise-linear segmentation (PELT), vectorised over the candidate
    starts: minimises sum over segments of [RSS of a line + length_weight * log(length)]
    + penalty * (number of changes), segments at least ``min_size`` long.

    Same optimum as ruptures ``Pelt`` with the same cost (tested) when
    ``length_weight == 0``, 10-25x faster on long series. Pruning stays exact with the
    length term (log a + log b - log(a+b) < 0 keeps the PELT inequality with K = 0), and a
    pruned start is only dropped ``min_size`` steps later, when the pruning point itself
    becomes a usable start.
    """
    y = np.asarray(z, dtype=float).reshape(-1)
    n = y.size
    if n < 2 * min_size:
        return []
    sums = _cumulative_sums(y)
    best = np.full(n + 1, np.inf)
    best[0] = -penalty
    last = np.zeros(n + 1, dtype=int)
    cand = np.array([0])
    kill = np.array([np.inf])
    for end in range(min_size, n + 1):
        new = end - min_size
        if new >= min_size:
            cand = np.append(cand, new)
            kill = np.append(kill, np.inf)
        alive = kill > end
        if not alive.all():
            cand, kill = cand[alive], kill[alive]
        v = best[cand] + _linear_sse(sums, cand, end)
        if length_weight:
            v = v + length_weight * np.log(end - cand)
        j = int(np.argmin(v))
        best[end] = v[j] + penalty
        last[end] = cand[j]
        kill[(v > v[j] + penalty) & np.isinf(kill)] = end + min_size
    out, end = [], n
    while end > 0:
        end = int(last[end])
        if end > 0:
            out.append(end)
    return sorted(out)


def _segment_residuals(y: np.ndarray, cps: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Residuals of a least-squares line per segment, and the segment id of each point."""
    bounds = [0, *cps, y.size]
    res = np.empty_like(y)
    seg_id = np.empty(y.size, dtype=int)
    for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        t = np.arange(b - a, dtype=float)
        seg = y[a:b]
        if b - a >= 2:
            slope, icpt = np.polyfit(t, seg, 1)
            res[a:b] = seg - (icpt + slope * t)
        else:
            res[a:b] = 0.0
        seg_id[a:b] = k
    return res, seg_id


def residual_noise(y: np.ndarray, cps: list[int], *, max_ar: float, params: int = 2) -> tuple[float, float]:
    """(long-run sd, phi) of the noise around a piecewise-linear fit with breaks ``cps``.

    The lag-1 autocorrelation of the residuals has variance ~(1-phi^2)/n, against ~4/n
    for the estimate from differences (phi = 1 + 2 corr(diff)) that the first pass uses,
    and the marginal sd is measured directly instead of being divided by
    sqrt(2(1-phi)), which explodes when phi is near 1. Winsorised like
    ``robust_lag1_correlation``; pairs that straddle a break are skipped.
    """
    res, seg_id = _segment_residuals(y, cps)
    dof = y.size - params * (len(cps) + 1)
    if dof < 3:
        return 0.0, 0.0
    scale = robust_sd(res)
    if not scale > 0:
        scale = float(np.std(res))
    if not scale > 0:
        return 0.0, 0.0
    w = np.clip(res, -2.5 * scale, 2.5 * scale)
    same = seg_id[1:] == seg_id[:-1]
    denom = float(w @ w)
    rho = float(np.sum((w[1:] * w[:-1])[same])) / denom if denom > 0 else 0.0
    phi = min(max(rho, 0.0), max_ar)
    marginal = math.sqrt(float(res @ res) / dof)
    return marginal * math.sqrt((1.0 + phi) / (1.0 - phi)), phi


def linear_penalty(n: int, criterion: str) -> tuple[float, float]:
    """(penalty per change, weight of log(segment length)) for the piecewise-linear model.

    "bic": (2 parameters + location) * log(n), the same as ``default_penalty(n, "linear")``.
    "mbic": modified BIC (Zhang & Siegmund 2007), as in the R changepoint package: a
    location is not a regular parameter and costs more, (parameters + 2) * log(n), and each
    segment adds log(its length) (Laplace approximation of its level's precision).
    """
    logn = math.log(max(n, 2))
    if criterion == "bic":
        return 3.0 * logn, 0.0
    if criterion == "mbic":
        return 4.0 * logn, 1.0
    raise ValueError(f"criterion must be 'bic' or 'mbic', got {criterion!r}")


def _segment_design(n: int, cps) -> np.ndarray:
    """Design of a line per segment: an intercept and a centred, length-scaled slope column."""
    bounds = [0, *cps, n]
    X = np.zeros((n, 2 * (len(bounds) - 1)))
    for j, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        t = np.arange(b - a, dtype=float)
        X[a:b, 2 * j] = 1.0
        X[a:b, 2 * j + 1] = (t - t.mean()) / (b - a)
    return X


def ar1_deviance(
    y: np.ndarray, cps, *, max_ar: float, phi_step: float = AR1_PHI_STEP, floor_var: float = 0.0
) -> tuple[float, float]:
    """(-2 log likelihood up to a constant, phi) of lines per segment (breaks ``cps``) plus
    AR(1) errors, with phi profiled on a grid over [0, max_ar]; see ``ar1_deviance_design``."""
    y = np.asarray(y, dtype=float)
    return ar1_deviance_design(y, _segment_design(y.size, cps), max_ar=max_ar, phi_step=phi_step, floor_var=floor_var)


def ar1_deviance_design(
    y: np.ndarray, X: np.ndarray, *, max_ar: float, phi_step: float = AR1_PHI_STEP, floor_var: float = 0.0
) -> tuple[float, float]:
    """(-2 log likelihood up to a constant, phi) of the regression ``y ~ X`` with AR(1)
    errors, phi profiled on a grid over [0, max_ar].

    Conditional Gaussian likelihood: y_t - phi y_{t-1} regressed on X_t - phi X_{t-1}. The
    innovation variance is the residual sum of squares over its degrees of freedom (n - 1
    minus the regression parameters and phi), not the ML one: each extra segment's two fitted
    parameters would otherwise look like explained variance for free, which matters on
    the short segments a change point search produces. ``floor_var`` is a lower bound on
    the marginal variance of the errors (see ``RESOLUTION``).
    """
    n = y.size
    dof = max(n - 1 - X.shape[1] - 1, 1)
    phis = np.arange(0.0, max_ar + 1e-9, phi_step)
    # All phi at once: the normal equations of D = X1 - phi X0 are combinations of the
    # cross-products of X1 and X0 (k x k systems, cheap); the residuals are then computed
    # directly, so their sum of squares keeps its precision.
    X1, X0, y1, y0 = X[1:], X[:-1], y[1:], y[:-1]
    A, B, C = X1.T @ X1, X1.T @ X0, X0.T @ X0
    p = phis[:, None, None]
    G = A[None] - p * (B + B.T)[None] + p * p * C[None]
    rhs = (X1.T @ y1)[None] - phis[:, None] * (X1.T @ y0 + X0.T @ y1)[None] + (phis * phis)[:, None] * (X0.T @ y0)[None]
    try:
        coef = np.linalg.solve(G, rhs[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:  # a degenerate design (a column of zeros): least squares per phi
        coef = np.stack([np.linalg.lstsq(X1 - f * X0, y1 - f * y0, rcond=None)[0] for f in phis])
    fit1, fit0 = X1 @ coef.T, X0 @ coef.T  # (n-1, P)
    r = (y1[:, None] - fit1) - phis[None, :] * (y0[:, None] - fit0)
    # the floor bounds the marginal variance, innovation var / (1 - phi^2)
    var = np.maximum(np.maximum(np.einsum("np,np->p", r, r) / dof, floor_var * (1.0 - phis * phis)), 1e-300)
    dev = (n - 1) * np.log(var)
    i = int(np.argmin(dev))
    return float(dev[i]), float(phis[i])


def smooth_deviance(y: np.ndarray, *, max_ar: float, floor_var: float = 0.0, knots: int = 0) -> float:
    """Best BIC-penalised ``ar1_deviance_design`` of a single smooth trend, a polynomial of
    degree ``SMOOTH_DEGREES``, counted against a single line: each extra coefficient costs
    log(n). Growth that bends smoothly (a population, a cumulative count) is then not cut
    into straight pieces unless the pieces explain it better than a curve does.
    ``knots`` > 0 also tries cubic regression splines with 1..knots equally spaced
    interior knots (log(n) per coefficient beyond the line): an S-shaped rise (logistic)
    that no single cubic follows."""
    n = y.size
    u = np.linspace(-1.0, 1.0, n)
    best = min(
        ar1_deviance_design(y, np.vander(u, d + 1), max_ar=max_ar, floor_var=floor_var)[0] + (d - 1) * math.log(n)
        for d in SMOOTH_DEGREES
    )
    for k in range(1, knots + 1):
        X = np.column_stack([np.vander(u, 4)] + [np.maximum(u - c, 0.0) ** 3 for c in np.linspace(-1, 1, k + 2)[1:-1]])
        best = min(best, ar1_deviance_design(y, X, max_ar=max_ar, floor_var=floor_var)[0] + (k + 2) * math.log(n))
    return best


def select_ar1(
    z: np.ndarray,
    refit: list[int],
    *,
    penalty: float,
    max_ar: float,
    min_size: int,
    smooth: bool = True,
    resolution: float = 0.0,
) -> list[int]:
    """Among the refit answer, no change, and the exact segmentations of ``z`` at noise
    scales ``AR1_SELECT_SCALES``, the one with the smallest ``ar1_deviance`` + ``penalty``
    per change (see the module docstring). With ``smooth``, a change must also beat a
    smooth polynomial trend (``smooth_deviance``); if the curve wins, there is no change."""
    return _select_ar1(
        z, refit, penalty=penalty, max_ar=max_ar, min_size=min_size, smooth=smooth, resolution=resolution
    )[0]


def trend_deviance(
    y: np.ndarray, cps, *, max_ar: float, floor_var: float = 0.0, degrees=SMOOTH_DEGREES
) -> float:
    """``ar1_deviance`` of lines per segment (breaks ``cps``) that may share one smooth
    curvature: the best, over no curvature and global polynomial terms u^2..u^d for d in
    ``degrees``, of the deviance plus log(n) per curvature coefficient. With ``cps`` empty
    and curvature, this is ``smooth_deviance``; with breaks, a change is judged against
    the bend the whole series has, not against a straight line (growth that slows is
    not a break at every place where the lines stop fitting)."""
    y = np.asarray(y, dtype=float)
    n = y.size
    X = _segment_design(n, cps)
    best = ar1_deviance_design(y, X, max_ar=max_ar, floor_var=floor_var)[0]
    u = np.linspace(-1.0, 1.0, n)
    for d in degrees:
        Xd = np.hstack([X, np.vander(u, d + 1)[:, : d - 1]])
        best = min(best, ar1_deviance_design(y, Xd, max_ar=max_ar, floor_var=floor_var)[0] + (d - 1) * math.log(n))
    return best


def _select_ar1(z, refit, *, penalty, max_ar, min_size, smooth, resolution, curvature=False,
                prune=False, typed_max_n=0, typed_location=1.0, typed_max_ar=None,
                knots=0) -> tuple[list[int], float]:
    """``_select_plain``; then, on series of at most ``typed_max_n`` points, the best line with
    at most 2 typed changes (``trend_breaks.best_typed_changes``: a kink or a jump pays one
    parameter, a break two, plus ``typed_location`` for the location) replaces that answer
    when, with phi profiled up to ``typed_max_ar`` (default ``max_ar``), it beats the line,
    one smooth trend (with ``smooth``) and that answer in one criterion. The full range of
    phi there (not the short-series cap) keeps persistent noise from passing for bends."""
    best, crit = _select_plain(z, refit, penalty=penalty, max_ar=max_ar, min_size=min_size, smooth=smooth,
                               resolution=resolution, curvature=curvature, prune=prune, knots=knots)
    if z.size > typed_max_n or not robust_sd(np.diff(z)) > 0:
        # (most steps exactly 0: a flat line with isolated values has no trend to bend)
        return best, crit
    from monitor.detect.trend_breaks import best_typed_changes

    cap = max_ar if typed_max_ar is None else typed_max_ar
    floor_var = (resolution * float(np.ptp(z))) ** 2
    typed, typed_crit, line = best_typed_changes(z, max_ar=cap, min_size=max(min_size, TYPED_MIN_SIZE), floor_var=floor_var,
                                                 location_cost=typed_location)
    if not typed:
        return best, crit
    rivals = [line]
    if smooth:
        rivals.append(smooth_deviance(z, max_ar=cap, floor_var=floor_var, knots=knots))
    if best:
        rivals.append(ar1_deviance(z, best, max_ar=cap, floor_var=floor_var)[0] + penalty * len(best))
    if typed_crit < min(rivals):
        return typed, typed_crit
    return best, crit


def _select_plain(z, refit, *, penalty, max_ar, min_size, smooth, resolution, curvature=False,
                  prune=False, knots=0) -> tuple[list[int], float]:
    """``select_ar1`` and the criterion of its answer (deviance + penalties, in units of z).

    The answer is "no change" whenever the straight-line selection says so (no candidate
    beats no change, or ``smooth`` and one smooth curve beats the best). Otherwise
    ``curvature`` re-chooses among the candidates with lines that may share one smooth
    curvature (``trend_deviance``), and ``prune`` drops, one at a time, any change whose
    removal lowers the criterion (backward elimination). Both act only where the
    straight-line selection found a change, so they cannot add a false alarm to a series
    it leaves alone: a curve plus a break fits a logistic or exponential rise better than the
    curve alone, and would otherwise cut smooth growth."""
    candidates: dict[tuple[int, ...], None] = {}
    for s in AR1_SELECT_SCALES:
        candidates[tuple(segment_linear(z / s, penalty=penalty, min_size=min_size))] = None
    candidates[()] = None
    candidates[tuple(refit)] = None
    floor_var = (resolution * float(np.ptp(z))) ** 2

    def plain(cand) -> float:
        return ar1_deviance(z, list(cand), max_ar=max_ar, floor_var=floor_var)[0] + penalty * len(cand)

    def curved(cand) -> float:
        return trend_deviance(z, list(cand), max_ar=max_ar, floor_var=floor_var) + penalty * len(cand)

    scored = {cand: plain(cand) for cand in candidates}
    best = min(scored, key=scored.get)
    best_crit = scored[best]
    if not best:
        return [], best_crit
    if smooth:
        smooth_crit = smooth_deviance(z, max_ar=max_ar, floor_var=floor_var, knots=knots)
        if smooth_crit < best_crit:
            return [], smooth_crit
    crit_of = curved if (curvature and smooth) else plain
    if crit_of is curved:
        scored = {cand: curved(cand) for cand in candidates}
        best = min(scored, key=scored.get)
        best_crit = scored[best]
    best = list(best)
    while prune and best:
        crit, k = min((crit_of(best[:k] + best[k + 1:]), k) for k in range(len(best)))
        if crit >= best_crit:
            break
        best, best_crit = best[:k] + best[k + 1:], crit
    return best, best_crit


def _standardise(xv: np.ndarray, season: int | None, *, spike_window: int, spike_threshold: float,
                 max_ar: float) -> tuple[np.ndarray, float]:
    """Spike-cleaned, seasonally adjusted series centred and divided by its long-run noise
    sd, and that sd (0 = nothing to search)."""
    if season:
        seasonal = seasonal_component(xv, season)
        clean = remove_spikes(xv - seasonal, window=spike_window, threshold=spike_threshold)
        # Marginal sd from differences one season apart: they cancel the cycle but keep
        # the slow wander of the level (noise for a seasonal series); var = 2 sd^2 once
        # the lag exceeds the noise memory. The AR inflation comes from the adjusted series.
        lagged = xv[season:] - xv[:-season]
        marginal = float(np.std(lagged)) / math.sqrt(2.0)
        phi = noise_scale(clean, max_ar=max_ar).ar
        sigma = marginal * math.sqrt((1.0 + phi) / (1.0 - phi))
        if not sigma > 0 or not math.isfinite(sigma):
            return clean, 0.0
        return (clean - np.median(clean)) / sigma, sigma
    z_rows, sigma_rows = standardise_rows(
        xv[None, :], spike_window=spike_window, spike_threshold=spike_threshold, max_ar=max_ar
    )
    return z_rows[0], float(sigma_rows[0])


def _linear_search(z: np.ndarray, *, pen: float, length_weight: float, size: int, refits: int, max_ar: float,
                   select_cap: float | None, smooth: bool, resolution: float, curvature: bool = False,
                   prune: bool = False, typed_max_n: int = 0, typed_location: float = 1.0,
                   typed_max_ar: float | None = None, knots: int = 0) -> tuple[list[int], float | None]:
    """Piecewise-linear change points of a standardised series (search, noise refits, then
    the AR(1) selection when ``select_cap`` is set), and the selection's criterion in units
    of ``z`` (None without a selection)."""
    n = z.size
    cps = segment_linear(z, penalty=pen, min_size=size, length_weight=length_weight)
    for _ in range(refits):
        long_run, _phi = residual_noise(z, cps, max_ar=max_ar)
        if not long_run > 0 or not math.isfinite(long_run):
            break
        new = segment_linear(z / long_run, penalty=pen, min_size=size, length_weight=length_weight)
        if new == cps:
            break
        cps = new
    if select_cap is None:
        return cps, None
    return _select_ar1(
        z, [c for c in cps if 0 < c < n], penalty=pen, max_ar=select_cap, min_size=size, smooth=smooth,
        resolution=resolution, curvature=curvature, prune=prune, typed_max_n=typed_max_n,
        typed_location=typed_location, typed_max_ar=typed_max_ar, knots=knots,
    )


def find_change_points(
    values,
    *,
    model: str = "linear",
    penalty: float | None = None,
    min_size: int = 3,
    period: int | str | None = "auto",
    spike_window: int = 3,
    spike_threshold: float = 5.0,
    max_ar: float = 0.9,
    criterion: str = "bic",
    refits: int = 3,
    select: str | None = "ar1",
    smooth: bool = True,
    short_max_ar: float | None = SHORT_MAX_AR,
    penalty_scale: float = 1.0,
    resolution: float = RESOLUTION,
    scale: str | None = SCALE,
    curvature: bool = CURVATURE,
    prune: bool = PRUNE,
    typed_max_n: int = TYPED_MAX_N,
    typed_location: float = TYPED_LOCATION,
    typed_max_ar: float | None = 0.9,
    log_smooth: bool = LOG_SMOOTH,
    season_alpha: float | None = SEASON_ALPHA,
    smooth_knots: int = SMOOTH_KNOTS,
) -> list[int]:
    """0-based indices where a new regime starts (sorted, unique, within 1..n-1).

    ``values``: 1-D sequence, NaN/None allowed (dropped for the search, indices mapped
    back to the first valid position of the new regime).
    ``model``: "linear" (level and slope per segment, the default) or "mean".
    ``penalty``: None = BIC ``(params+1)*log(n)`` in long-run-variance units; a number
    overrides it (same units). ``period``: "auto" (detect), an int, or None (no seasonality).
    Linear model only: ``criterion`` "bic" or "mbic" (see ``linear_penalty``); ``refits``
    re-estimates the noise (long-run sd and phi) from the residuals of the current
    segmentation and searches again, up to that many times (0 = the first pass only).
    ``select``: "ar1" = on series of at least ``AR1_SELECT_MIN_N`` points, the final answer
    is chosen by ``select_ar1`` (AR(1) likelihood with the noise estimated per candidate);
    None = the refit answer as it is. ``smooth``: in that selection a change must also
    beat one smooth polynomial trend (``smooth_deviance``). ``short_max_ar``: on shorter
    series the selection caps phi there (None = keep the refit answer, the old behaviour).
    ``resolution``: the selection's noise variance is at least (resolution * range)^2.
    ``penalty_scale`` multiplies the default penalty (for sensitivity studies).
    ``scale``: "auto" = for a positive series, the answer on the log scale is kept when
    its likelihood (with the Jacobian of the log) is higher (see ``SCALE``); None = the
    values as they are. ``log_smooth``: for a positive series, no change when the same
    selection on log(x) finds none and has the higher likelihood (see ``LOG_SMOOTH``). ``season_alpha``: level of the seasonality test of
    ``detect_period`` (None = its fixed autocorrelation bound alone). ``smooth_knots``:
    the smooth rival also tries cubic splines with up to that many knots (0 = off).
    """
    if select not in ("ar1", None):
        raise ValueError(f"select must be 'ar1' or None, got {select!r}")
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if scale not in ("auto", None):
        raise ValueError(f"scale must be 'auto' or None, got {scale!r}")
    x = np.asarray(values, dtype=float).reshape(-1)
    valid = np.flatnonzero(np.isfinite(x))
    xv = x[valid]
    n = xv.size
    if n < 2 * min_size or np.ptp(xv) == 0:
        return []

    season = None
    if period == "auto":
        season = detect_period(xv, alpha=season_alpha)
    elif period is not None:
        season = int(period) if 2 <= int(period) <= n // 2 else None
    opts = dict(spike_window=spike_window, spike_threshold=spike_threshold, max_ar=max_ar)

    z, sigma = _standardise(xv, season, **opts)
    if not sigma > 0:
        return []
    if model == "mean":
        pen = default_penalty(n, model) if penalty is None else float(penalty)
        cps = segment(z, model=model, penalty=pen, min_size=min_size)
        return sorted({int(valid[c]) for c in cps if 0 < c < n})

    pen, length_weight = linear_penalty(n, criterion)
    pen *= penalty_scale
    if penalty is not None:
        pen = float(penalty)
    cap = None
    if select == "ar1" and penalty is None:
        cap = max_ar if n >= AR1_SELECT_MIN_N else short_max_ar
    if season:  # the typed search is for yearly-like trends; a seasonal series is not one
        typed_max_n = 0
    search = dict(pen=pen, length_weight=length_weight, size=max(min_size, 3), refits=refits, max_ar=max_ar,
                  select_cap=cap, smooth=smooth, resolution=resolution, curvature=curvature, prune=prune,
                  typed_max_n=typed_max_n, typed_location=typed_location, typed_max_ar=typed_max_ar,
                  knots=smooth_knots)
    cps, crit = _linear_search(z, **search)
    if log_smooth and cps and crit is not None and xv.min() > 0 and scale != "auto":
        # Is there a change at all is asked on the likelier scale (see ``LOG_SMOOTH``); the
        # units are those of the scale="auto" comparison below.
        lx = np.log(xv)
        z_log, sigma_log = _standardise(lx, detect_period(lx, alpha=season_alpha) if period == "auto" else season, **opts)
        if sigma_log > 0:
            cps_log, crit_log = _linear_search(z_log, **search)
            raw = crit + (n - 1) * 2.0 * math.log(sigma)
            logged = crit_log + (n - 1) * 2.0 * math.log(sigma_log) + 2.0 * float(np.sum(lx[1:]))
            if not cps_log and logged < raw:
                cps = []
    if scale == "auto" and crit is not None and xv.min() > 0:
        # Same model on log(x): -2 log L of x is that of z plus 2 log sigma per
        # (conditional) point, plus 2 log x_t from the Jacobian of the log.
        lx = np.log(xv)
        season_log = detect_period(lx, alpha=season_alpha) if period == "auto" else season
        z_log, sigma_log = _standardise(lx, season_log, **opts)
        if sigma_log > 0:
            cps_log, crit_log = _linear_search(z_log, **search)
            raw = crit + (n - 1) * 2.0 * math.log(sigma)
            logged = crit_log + (n - 1) * 2.0 * math.log(sigma_log) + 2.0 * float(np.sum(lx[1:]))
            if logged < raw:
                cps = cps_log
    return sorted({int(valid[c]) for c in cps if 0 < c < n})
