"""Trailing, robust, seasonal baseline and per-bucket judgement, vectorised across series.

Why this shape:
- *Trailing*: bucket t is judged against a state built from buckets < t only (online
  level + damped trend + seasonal profile: a robust Holt-Winters in the spirit of Gelper,
  Fried & Croux 2010), so a back-fill judges a day exactly as the live run did. The first
  buckets (``warmup_length``) only initialise the state, by medians, and are not judged.
- *Seasonality*: multiplicative for positive metrics (the weekend is a fraction of the
  week, also after a level shift); hourly data with (24, 168) uses hour-of-day x
  day-of-week so that three weeks of history are enough.
- *Robust*: updates use residuals clipped at 2 sd (Huber), and anomalous or excluded buckets
  do not update the state at all, so an attack cannot lift its own baseline.
- *Acceptance*: once an anomaly has persisted ``accept_after`` buckets it is the new
  normal: the level is reset to the median of the run's second half and later buckets are
  judged against it. Excluded buckets never count towards acceptance. A CUSUM signal
  whose level has already gone back (a few buckets of attack, then normal buckets its end
  test is still accumulating) ends where it went back instead (``returned_at``).
- *Noise*: sum metrics use an exponentially weighted robust residual variance with a
  Poisson floor (var >= expected: small counts are not precise); ratio metrics add the
  binomial variance p(1-p)/den of each bucket to an over-dispersion term tau^2 (the part
  of the residual variance binomial noise does not explain), so 2 of 10 is noise while
  2,000 of 10,000 is not.
- *Sustained moderate shifts* (ratio metrics): a two-sided CUSUM (Page; k = 0.5 sd) of
  residuals winsorised at HUBER sd (both it and h x the sensitivity multiplier), measured against a slow reference level (4x slower
  than the level, with the same memory in *time* for hourly data, ~4 weeks) that only
  learns from normal buckets. It catches shifts of 1-2 sd per bucket that no single
  bucket reveals and that the level would otherwise absorb. The decision interval h gives
  an in-control run length of one series-year (Siegmund's approximation; per side when
  both directions are watched), times the sensitivity multiplier. Hourly residuals share
  day-level conditions, so they are scaled by the day-scale variance ratio measured in the
  warm-up. A signal starts at the best mean-shift split of the CUSUM's run (flagged
  retroactively), resets the level to the reference, and ends when a CUSUM for "back
  below k" (h/2) signals; a bucket that is a spike itself is the spike test's, not a shift.
  Sub-daily series add a fast CUSUM (k = 1.5, h for four times the run length) that
  signals a shift of 3+ sd per bucket in 2-3 buckets: card testing pages hours earlier.
  The sums start only after the reference has learnt from another warm-up length of
  observed buckets. Once the reference is live, a change-point regime of a ratio metric is
  confirmed only if it also departs significantly, the same way, from that reference: the
  fast level (hours of memory for hourly data) can overshoot, and a return to normal must
  not be judged as a shift against it.
- *Speed*: one Python loop over time; every step is a handful of numpy operations over
  all series at once (about a second of CPU for 10,000 series x 365 days).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

ALPHA = 0.15  # level smoothing: ~7-bucket memory, follows slow drift
BETA = 0.1  # trend smoothing (fraction of the level correction that goes into the trend)
DAMPING = 0.9  # damped trend: a trend is extrapolated ~10 buckets at most, never forever
GAMMA = 0.10  # seasonal smoothing per phase: ~10-cycle memory
LAMBDA = 0.05  # variance smoothing: ~20-bucket memory
HUBER = 2.0  # residuals are clipped at this many sd before updating the state
# E[min(Z^2, c^2)] for a standard normal Z and c = 2: rescales clipped squares so the
# variance estimate is unbiased for normal noise.
HUBER_VAR_CONSISTENCY = 1.0 / 0.9206
MEDIAN_SD_FACTOR = math.sqrt(math.pi / 2.0)  # sd of a normal sample median, x sqrt(m)
REL_FLOOR = 1e-3  # sd never below 0.1 % of the expected value (constant series)
ABS_FLOOR = 1e-12
# CUSUM of standardised residuals against a slow baseline (Page 1954): catches moderate
# sustained shifts (1-2 sd per bucket) that no single bucket reveals. k = 0.5 is the
# reference value optimal for a 1 sd shift; the decision interval h is set from a target
# in-control run length (see ``cusum_h``).
CUSUM_K = 0.5
END_FACTOR = 0.5  # a signalled shift ends faster than it starts: a late end costs more
# A second, fast CUSUM beside it (k = 1.5: optimal for a 3 sd shift) signals a large
# sustained shift in 2-3 buckets where the k = 0.5 sum, winsorised at 2 sd, needs 5 or
# more: card testing on an hourly slice. Its h is set for four times the in-control run
# length, so the two together raise at most ~1.25x the false signals of the slow one alone
# (twice the run length gave 6 false signals instead of 4 in 30 late-launched null slices).
CUSUM_K_FAST = 1.5
FAST_ARL_FACTOR = 4.0
RETURN_Z = 2.0  # how clearly a signalled shift must have gone back to end it at acceptance
SLOW_FACTOR = 0.25  # the CUSUM's reference level moves 4x slower than the level


def buckets_per_day(period: int | None) -> int:
    """Hourly series are recognised by their daily (24) or weekly (168) cycle."""
    return 24 if period and period % 24 == 0 else 1


def level_alpha(period: int | None) -> float:
    """ALPHA per bucket for daily data (period 7, or none), scaled so that the memory is the
    same span of *time* for hourly buckets (period 24/168). Used for the CUSUM's reference
    level: it must not adapt in hours to a step that daily data would take weeks to absorb."""
    return 1.0 - (1.0 - ALPHA) ** (1.0 / buckets_per_day(period))


def day_variance_ratio(block: np.ndarray, den: np.ndarray | None, st: "_State", P: int) -> np.ndarray:
    """Per row, variance of day means of the de-seasonalised warm-up x 24 / variance of one
    hour (>= 1; 1 for daily data): how much more a day's worth of hourly residuals
    wanders than independent hours would. Robust: MADs of differences, so a level shift
    or a bad day in the warm-up does not inflate it."""
    n_series, W = block.shape
    day = 24
    if P % day or W < 4 * day:
        return np.ones(n_series)
    desea = decompose(block, st.season[:, np.arange(W) % P], st.mult[:, None])
    with np.errstate(all="ignore"), _quiet():
        w = np.where(np.isfinite(desea), 1.0 if den is None else den, 0.0)
        x = np.nan_to_num(desea)
        # hour-to-hour variance from consecutive observed hours
        dh = np.where(np.isfinite(desea[:, 1:]) & np.isfinite(desea[:, :-1]), desea[:, 1:] - desea[:, :-1], np.nan)
        var_h = _mad2(dh) / 2.0
        # a day's mean weighs its hours like the pooled rate does; count of hours per day
        days = W // day
        wd = w[:, : days * day].reshape(n_series, days, day)
        means = (x[:, : days * day].reshape(n_series, days, day) * wd).sum(axis=2) / wd.sum(axis=2)
        hours = (wd > 0).sum(axis=2)
        eff = np.nanmedian(np.where(hours > 0, hours, np.nan), axis=1)
        var_d = _mad2(means[:, 1:] - means[:, :-1]) / 2.0
        ratio = var_d * eff / var_h
    return np.where(np.isfinite(ratio), np.maximum(ratio, 1.0), 1.0)


def _mad2(a: np.ndarray) -> np.ndarray:
    med = np.nanmedian(a, axis=1, keepdims=True)
    return (1.4826 * np.nanmedian(np.abs(a - med), axis=1)) ** 2


def per_day_threshold(threshold: float, period: int | None) -> float:
    """The one-bucket threshold that keeps the false-spike rate *per day* of a sub-daily
    series equal to that of a daily series at ``threshold``: an hourly series makes 24
    tests a day, so each one gets 1/24 of the normal tail probability (4 sd -> 4.69 sd)."""
    per_day = buckets_per_day(period)
    if per_day == 1 or not math.isfinite(threshold):
        return threshold
    from scipy.stats import norm

    return float(norm.isf(norm.sf(threshold) / per_day))


def cusum_h(period: int | None, multiplier: float = 1.0, arl_years: float = 1.0, k: float = CUSUM_K) -> float:
    """Decision interval for a one-sided CUSUM (reference value k) with an in-control
    average run length of ``arl_years`` x one year of buckets (daily for period 7/none,
    hourly for 24/168), by Siegmund's approximation ARL0 = (e^{2k h'} - 2k h' - 1) / (2k^2),
    h' = h + 1.166; scaled by the sensitivity multiplier like the spike threshold."""
    buckets = 365.0 * buckets_per_day(period) * arl_years
    lo, hi = 0.0, 50.0
    for _ in range(60):
        mid = (lo + hi) / 2
        a = 2 * k * (mid + 1.166)
        arl = (math.exp(a) - a - 1) / (2 * k**2)
        lo, hi = (mid, hi) if arl < buckets else (lo, mid)
    return lo * multiplier


def fast_clip(fast_h: float) -> float:
    """Winsorising level of the fast CUSUM: above k_fast (else it could never move), and
    low enough that one bucket adds at most 3/4 of h: it takes two buckets to signal, a
    single outlier is the spike test's."""
    return CUSUM_K_FAST + 0.75 * fast_h


@dataclass
class ShiftPlan:
    """Candidate level shifts from the change point search: at bucket ``start`` series
    ``row`` may enter a new regime lasting until ``end`` (exclusive)."""

    starts: dict[int, list[tuple[int, int]]] = field(default_factory=dict)  # t -> [(row, end)]

    def add(self, row: int, start: int, end: int) -> None:
        self.starts.setdefault(int(start), []).append((int(row), int(end)))


@dataclass
class Judgement:
    expected: np.ndarray  # (N, n)
    sd: np.ndarray  # (N, n) sd of the observation around expected
    score: np.ndarray  # (N, n) signed z, NaN where not judged
    anomalous: np.ndarray  # (N, n) bool, direction-aware
    direction: np.ndarray  # (N, n) int8: +1 up / -1 down where anomalous, else 0
    shift: np.ndarray  # (N, n) bool: anomalous as part of a change-point level shift
    shift_score: np.ndarray  # (N, n) region statistic where ``shift``
    accepted: list[tuple[int, int, int]]  # (row, run start, accepted_at)
    confirmed: list[tuple[int, int]]  # (row, t): change points that start or end a level shift
    warmup: int


def warmup_length(n: int, period: int | None) -> int:
    """Buckets used to initialise the state (not judged): three cycles when the series has
    at least six, else half the series but at least two cycles (and at most n - 1)."""
    cycle = period or 7
    base = 3 * cycle
    if n < 2 * base:
        base = max(2 * cycle, n // 2)
    return min(base, max(n - 1, 0))


def binomial_variance(p: np.ndarray, den: np.ndarray) -> np.ndarray:
    """p(1-p)/den with p pulled off 0 and 1 by half a count (Jeffreys), so a zero
    baseline rate still has a noise level and 2/10 against 0 % is not infinitely odd."""
    with np.errstate(divide="ignore", invalid="ignore"):
        q = (np.clip(p, 0.0, 1.0) * den + 0.5) / (den + 1.0)
        return q * (1.0 - q) / den


def seasonal_profile(
    block: np.ndarray, period: int, weights: np.ndarray | None = None, inner: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Seasonal profile per row, (N, period), and whether it is multiplicative. With
    ``inner`` (e.g. 24 inside 168) it is the product (or sum) of an inner profile and a
    per-inner-cycle factor, each estimated from all the data (see ``inner_period``)."""
    if not inner or period % inner or period // inner < 2:
        return _flat_profile(block, period, weights)
    n_series, w = block.shape
    inner_prof, mult_in = _flat_profile(block, inner, weights)
    t = np.arange(w)
    rest = decompose(block, inner_prof[:, t % inner], mult_in[:, None])
    # one value per inner cycle (day), then a profile over the cycles of the outer period
    cycles = w // inner
    if cycles == 0:
        return _flat_profile(block, period, weights)
    with np.errstate(all="ignore"), _quiet():
        if weights is None:
            per_cycle = np.nanmedian(rest[:, : cycles * inner].reshape(n_series, cycles, inner), axis=2)
            cycle_weights = None
        else:  # pooled, as for the inner profile: the median of sparse hourly rates is 0
            r = rest[:, : cycles * inner].reshape(n_series, cycles, inner)
            wt = np.where(np.isfinite(r), weights[:, : cycles * inner].reshape(n_series, cycles, inner), 0.0)
            cycle_weights = wt.sum(axis=2)
            per_cycle = np.nansum(np.nan_to_num(r) * wt, axis=2) / cycle_weights
    outer_prof, mult_out = _flat_profile(per_cycle, period // inner, cycle_weights)
    k = np.arange(period)
    inner_part = inner_prof[:, k % inner]
    outer_part = outer_prof[:, k // inner]
    mult = mult_in & mult_out
    both_add = ~mult_in & ~mult_out
    combined = np.where(mult[:, None], inner_part * outer_part, inner_part + outer_part)
    # mixed cases (one part additive): fall back to the flat profile for those rows
    mixed = ~(mult | both_add)
    if mixed.any():
        flat, flat_mult = _flat_profile(block[mixed], period, None if weights is None else weights[mixed])
        combined[mixed] = flat
        mult = mult.copy()
        mult[mixed] = flat_mult
    return combined, mult


def _flat_profile(block: np.ndarray, period: int, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Seasonal profile per row, (N, period), and whether it is multiplicative.

    Rows whose typical value is positive (counts, amounts, rates: nearly every business
    metric) get factors (typical value per phase / overall): weekend traffic is a
    *fraction* of weekday traffic, so after a level shift the weekly swing scales with the
    level. Other rows get offsets. Unknown phases are neutral.

    "Typical" is the median (robust to the anomalies in the history) for sum metrics. For
    ratio metrics ``weights`` (denominators) make it the pooled rate sum(num)/sum(den):
    with small denominators most per-bucket rates are 0 and their median would say the
    rate is 0.
    """
    n_series, w = block.shape
    cycles = w // period
    no_profile = np.zeros(n_series, dtype=bool)
    if cycles == 0:
        return neutral_profile(n_series, no_profile).repeat(period, axis=1), no_profile
    full = block[:, : cycles * period]  # whole cycles only: every phase weighs the same
    with np.errstate(all="ignore"), _quiet():
        if weights is not None:
            wts = np.where(np.isfinite(full), weights[:, : cycles * period], 0.0)
            vals = np.nan_to_num(full) * wts
            den_phase = wts.reshape(n_series, cycles, period).sum(axis=1)
            per_phase = vals.reshape(n_series, cycles, period).sum(axis=1) / den_phase
            overall = (vals.sum(axis=1) / wts.sum(axis=1))[:, None]
            per_phase = _shrink_rates(per_phase, den_phase, overall)
        else:
            # np.median is several times faster than np.nanmedian; use it when nothing is missing
            median = np.median if not np.isnan(full).any() else np.nanmedian
            per_phase = median(full.reshape(n_series, cycles, period), axis=1)
            overall = median(full, axis=1, keepdims=True)
        mult = (overall[:, 0] > 0) & np.all(np.nan_to_num(per_phase, nan=1.0) > 0, axis=1)
        factors = np.where(np.isfinite(per_phase), per_phase / np.where(overall > 0, overall, 1.0), 1.0)
        offsets = np.nan_to_num(per_phase - overall, nan=0.0)
    return np.where(mult[:, None], factors, offsets), mult


def _shrink_rates(per_phase: np.ndarray, den_phase: np.ndarray, overall: np.ndarray) -> np.ndarray:
    """Per-phase rates pulled towards the row's overall rate by how little they rest on
    (empirical Bayes): a phase seen with 6 events has a factor error of +-40 %, and a
    sparse slice's raw profile is mostly that noise (a phase at 0 % predicts 0 %, and then
    one event looks impossible). The spread of the true factors, tau^2, is estimated per
    row as the observed spread minus the sampling variance (method of moments), so a busy
    series keeps its profile and a sparse one gets a flat one."""
    R = np.where(overall > 0, overall, np.nan)
    factor = per_phase / R
    # sampling variance of a factor: binomial var of the rate / R^2 = (1 - R) / (R * den)
    s2 = (1.0 - R) / (R * np.where(den_phase > 0, den_phase, np.nan))
    ok = np.isfinite(factor) & np.isfinite(s2)
    with np.errstate(all="ignore"), _quiet():
        spread = np.nanmean(np.where(ok, (factor - 1.0) ** 2, np.nan), axis=1, keepdims=True)
        noise = np.nanmean(np.where(ok, s2, np.nan), axis=1, keepdims=True)
        tau2 = np.maximum(spread - noise, 0.0)
        weight = np.where(ok, tau2 / (tau2 + s2), 0.0)
    shrunk = R * (1.0 + np.nan_to_num(weight) * np.nan_to_num(factor - 1.0))
    return np.where(np.isfinite(shrunk), shrunk, per_phase)


def neutral_profile(n_series: int, mult: np.ndarray) -> np.ndarray:
    return np.where(mult[:, None], 1.0, 0.0) * np.ones((n_series, 1))


def compose(level, season, mult):
    """Expected value from level and seasonal term."""
    return np.where(mult, level * season, level + season)


def decompose(x, season, mult):
    """Level implied by an observation (the de-seasonalised value)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mult, x / season, x - season)


class _quiet:
    """Silence 'All-NaN slice' warnings: all-NaN rows are expected and handled."""

    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def judge(
    obs: np.ndarray,
    *,
    den: np.ndarray | None,
    exclude: np.ndarray | None,
    period: int | None,
    threshold: float,
    inner_period: int | None = None,
    direction: str,
    accept_after: int,
    plan: ShiftPlan | None = None,
    shift_threshold: float | None = None,
    shift_min_effect: float = 1.0,
    cusum_threshold: float | None = None,
    cusum_clip: float = HUBER,
    fast_threshold: float | None = None,
) -> Judgement:
    """Judge every bucket of every series (rows of ``obs``; NaN = not judged)."""
    n_series, n = obs.shape
    ratio = den is not None
    P = period or 1
    W = warmup_length(n, period)
    excl = np.zeros(obs.shape, dtype=bool) if exclude is None else np.asarray(exclude, dtype=bool)
    usable = np.isfinite(obs) & ~excl
    shift_threshold = threshold if shift_threshold is None else shift_threshold
    up_ok = direction in ("up", "both")
    down_ok = direction in ("down", "both")
    phase = np.arange(n) % P
    alpha = ALPHA
    alpha_slow = SLOW_FACTOR * level_alpha(period)
    use_cusum = cusum_threshold is not None and math.isfinite(cusum_threshold)
    use_fast = use_cusum and fast_threshold is not None and math.isfinite(fast_threshold)
    f_h = fast_threshold if use_fast else math.inf
    f_clip = fast_clip(fast_threshold) if use_fast else 0.0

    st = _initial_state(np.where(usable[:, :W], obs[:, :W], np.nan), None if den is None else den[:, :W], P, inner_period)
    L, T, S, mult, v, bbar = st.level, st.trend, st.season, st.mult, st.var, st.binvar

    expected = np.full((n_series, n), np.nan)
    sd_out = np.full((n_series, n), np.nan)
    score = np.full((n_series, n), np.nan)
    anomalous = np.zeros((n_series, n), dtype=bool)
    dirs = np.zeros((n_series, n), dtype=np.int8)
    shift = np.zeros((n_series, n), dtype=bool)
    shift_score = np.zeros((n_series, n))
    accepted: list[tuple[int, int, int]] = []
    confirmed: list[tuple[int, int]] = []  # (row, t): change points that start/end a shift

    # warm-up buckets: shown against the initial state, not judged
    for t in range(W):
        pred = _clip_rate(compose(L, S[:, phase[t]], mult), ratio)
        expected[:, t] = pred
        sd_out[:, t], _ = _noise_sd(pred, S[:, phase[t]], mult, v, bbar, den[:, t] if ratio else None)

    # a series is judged only once its baseline has learnt from half a warm-up of observed
    # buckets: a sparse slice (above its volume floor a few hours a month) would otherwise
    # be judged against a level set by its first one or two observations
    learnt = np.sum(usable[:, :W], axis=1)
    min_learnt = max(W // 2, 1)
    run_len = np.zeros(n_series, dtype=int)
    run_dir = np.zeros(n_series, dtype=int)
    run_start = np.zeros(n_series, dtype=int)
    shift_until = np.full(n_series, -1)
    shift_dir = np.zeros(n_series, dtype=int)
    shift_stat = np.zeros(n_series)
    starts = plan.starts if plan is not None else {}

    finite = np.isfinite(obs)
    fill = np.zeros(n_series)
    # CUSUM state: slow reference level and trend, upper/lower sums, where each sum last
    # left 0, and whether it has signalled (buckets stay anomalous until the end test fires)
    Ls = L.copy()
    Ts = np.zeros(n_series)
    n_upd = np.zeros(n_series, dtype=int)  # buckets the reference has learnt from
    n_track = np.zeros(n_series, dtype=int)  # ... plus gaps (no observation) once the row has a level
    c_up = np.zeros(n_series)
    c_dn = np.zeros(n_series)
    c_up_from = np.zeros(n_series, dtype=int)
    c_dn_from = np.zeros(n_series, dtype=int)
    f_up = np.zeros(n_series)  # the fast CUSUM's sums and where each last left 0
    f_dn = np.zeros(n_series)
    f_up_from = np.zeros(n_series, dtype=int)
    f_dn_from = np.zeros(n_series, dtype=int)
    c_alarm = np.zeros(n_series, dtype=int)  # +1 / -1 while a CUSUM signal lasts
    b_end = np.zeros(n_series)  # CUSUM for the end of a signalled shift
    zs_hist = np.zeros((n_series, n)) if use_cusum else None
    b_from = np.zeros(n_series, dtype=int)
    # a CUSUM assumes independent buckets; hourly residuals share day-level conditions,
    # so they are scaled by the day-scale variance ratio measured in the warm-up
    vr_scale = 1.0 / np.sqrt(day_variance_ratio(obs[:, :W], None if den is None else den[:, :W], st, P)) if use_cusum else None
    def signal_stats():
        # the shift's score in units of the slow h: a fast signal scores at least h too
        if not use_fast:
            return c_up, c_dn
        return np.maximum(c_up, f_up * (cusum_threshold / f_h)), np.maximum(c_dn, f_dn * (cusum_threshold / f_h))

    def restart_sums(rows) -> None:
        # every place a signal starts over resets the slow and the fast sums together
        c_up[rows] = c_dn[rows] = f_up[rows] = f_dn[rows] = 0.0

    # one errstate for the whole loop: NaN rows and zero levels are handled explicitly
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for t in range(W, n):
            j = phase[t]
            season = S[:, j]
            pred = compose(L + DAMPING * T, season, mult)
            if ratio:
                pred = np.minimum(np.maximum(pred, 0.0), 1.0)
            sd, b = _noise_sd(pred, season, mult, v, bbar, den[:, t] if ratio else None)
            x = obs[:, t]
            r = x - pred
            seen = finite[:, t] & np.isfinite(pred)
            if use_cusum:
                # the reference level starts from the warm-up medians; a row's sums start once
                # it has tracked that row for another warm-up length of buckets, gaps included
                # (a slice under its volume floor at night), of which at least half were normal
                # observations (a slice judged only now and then does not get there)
                tracked = (n_track >= W) & (n_upd >= W // 2)
            judged = seen & (learnt >= min_learnt)
            z = np.where(judged, r / sd, np.nan)
            expected[:, t], sd_out[:, t], score[:, t] = pred, sd, z

            # ---- change-point regimes starting here, judged as a whole against the frozen state
            for row, end in starts.get(t, ()):
                if learnt[row] < min_learnt:
                    continue
                # Only the regime's first accept_after buckets are compared: a level shift is
                # abrupt, so it shows at once; a regime that only drifts away from an
                # extrapolated baseline later (a staircase cut into a trend) is not one.
                head = min(end, t + accept_after)
                stat, mean_z = _region_stat(
                    obs[row, t:head], None if den is None else den[row, t:head],
                    _State.row(st, row, L, T, S, v, bbar), phase[t:head], ratio,
                )
                sign = 1 if stat > 0 else -1
                ok = (up_ok and sign > 0) or (down_ok and sign < 0)
                if ok and use_cusum and tracked[row]:
                    # the level has a memory of hours for hourly data and may have chased the
                    # last few noisy buckets (or an unflagged excursion the regime now ends):
                    # a shift must also depart significantly, the same way, from the slow
                    # reference level (learnt from normal buckets only), else it is a return
                    # to normal judged against a level that overshot
                    ref = _State(Ls[row], Ts[row], S[row], st.mult[row], v[row], bbar[row])
                    stat_s, _ = _region_stat(
                        obs[row, t:head], None if den is None else den[row, t:head], ref, phase[t:head], ratio,
                    )
                    ok = sign * stat_s >= shift_threshold
                if ok and abs(stat) >= shift_threshold and abs(mean_z) >= shift_min_effect:
                    shift_until[row], shift_dir[row], shift_stat[row] = end, sign, abs(stat)
                    confirmed.append((row, t))
                elif shift_until[row] > t:  # the regime moved back: the shift is over
                    shift_until[row] = t
                    confirmed.append((row, t))

            in_shift = shift_until > t
            if use_cusum:
                # its own slow (damped) trend: the level's trend chases shifts within hours
                pred_s = compose(Ls + DAMPING * Ts, season, mult)
                if ratio:
                    pred_s = np.minimum(np.maximum(pred_s, 0.0), 1.0)
                # residuals winsorised at HUBER sd: one spike cannot make a sustained shift
                live_t = tracked
                fed = judged & ~excl[:, t] & live_t
                u = (x - pred_s) / sd
                zs_raw = np.where(fed, np.clip(u, -cusum_clip, cusum_clip), 0.0)
                zs = zs_raw * vr_scale
                c_up_from = np.where(c_up <= 0, t, c_up_from)
                c_dn_from = np.where(c_dn <= 0, t, c_dn_from)
                c_up = np.maximum(0.0, c_up + zs - CUSUM_K)
                c_dn = np.maximum(0.0, c_dn - zs - CUSUM_K)
                if use_fast:
                    zf = np.where(fed, np.clip(u, -f_clip, f_clip), 0.0) * vr_scale
                    f_up_from = np.where(f_up <= 0, t, f_up_from)
                    f_dn_from = np.where(f_dn <= 0, t, f_dn_from)
                    f_up = np.maximum(0.0, f_up + zf - CUSUM_K_FAST)
                    f_dn = np.maximum(0.0, f_dn - zf - CUSUM_K_FAST)
                # a signalled shift ends when a CUSUM for "back below k" (same k, half h)
                # signals; it ended where that sum last left 0, so those buckets are unflagged
                live = (c_alarm != 0) & judged & ~excl[:, t]
                b_from = np.where(b_end <= 0, t, b_from)
                b_end = np.where(live, np.maximum(0.0, b_end + CUSUM_K - c_alarm * zs), b_end)
                over = live & (b_end >= END_FACTOR * cusum_threshold)
                for row in np.flatnonzero(over & (shift_until <= t)):  # not inside a change-point regime
                    back = slice(int(b_from[row]), t)
                    anomalous[row, back] = False
                    dirs[row, back] = 0
                    shift[row, back] = False
                    shift_score[row, back] = 0.0
                    run_len[row] = 0
                restart_sums(over)
                c_alarm = np.where(over, 0, c_alarm)
                fast_up, fast_dn = f_up >= f_h, f_dn >= f_h
                new_up = (c_alarm == 0) & ((c_up >= cusum_threshold) | fast_up) & up_ok & judged
                new_dn = (c_alarm == 0) & ((c_dn >= cusum_threshold) | fast_dn) & down_ok & judged & ~new_up
                zs_hist[:, t] = zs
                up_stat, dn_stat = signal_stats()
                for row in np.flatnonzero(new_up | new_dn):
                    sign = 1 if new_up[row] else -1
                    c_alarm[row] = sign
                    b_end[row] = 0.0
                    s0 = int(c_up_from[row] if sign > 0 else c_dn_from[row])
                    if (fast_up[row] if sign > 0 else fast_dn[row]):
                        # the slow sum's run may start later, or be 0: search from the earlier
                        s0 = min(s0, int(f_up_from[row] if sign > 0 else f_dn_from[row]))
                    if sign * z[row] >= threshold:
                        # the bucket is a spike itself: the spike test owns it, and the
                        # sum restarts (a spike must not turn into a level shift)
                        c_alarm[row] = 0
                        restart_sums(row)
                        continue
                    # start: the split of [s0, t] with the largest mean-shift statistic
                    # S(tau)^2 / (t - tau + 1) (unknown shift size), not Page's last-zero
                    # estimate, which is biased early by the noise that started the sum
                    tail = np.cumsum((sign * zs_hist[row, s0 : t + 1])[::-1])[::-1]
                    m = np.arange(t + 1 - s0, 0, -1)
                    s0 = s0 + int(np.argmax(np.where(tail > 0, tail * tail / m, -1.0)))
                    # the buckets from the estimated start are flagged retroactively
                    back = np.arange(s0, t)[np.isfinite(score[row, s0:t])]
                    # the level followed the shift before it was recognised: put it back
                    # on the reference the shift was measured against
                    L[row], T[row] = Ls[row], 0.0
                    Ts[row] = 0.0
                    if back.size:
                        stat = float(up_stat[row] if sign > 0 else dn_stat[row])
                        anomalous[row, back] = True
                        dirs[row, back] = sign
                        shift[row, back] = True
                        shift_score[row, back] = np.maximum(shift_score[row, back], stat)
                        if not (run_len[row] > 0 and run_dir[row] == sign):
                            run_start[row] = back[0]
                            run_len[row] = int(np.sum(~excl[row, back]))
                            run_dir[row] = sign
                in_cusum = c_alarm != 0
                in_shift = in_shift | in_cusum
                shift_dir = np.where(in_cusum & (shift_until <= t), c_alarm, shift_dir)
                shift_stat = np.where(in_cusum & (shift_until <= t), np.where(c_alarm > 0, up_stat, dn_stat), shift_stat)
            spike_up = (z >= threshold) if up_ok else np.zeros(n_series, dtype=bool)
            spike_down = (z <= -threshold) if down_ok else np.zeros(n_series, dtype=bool)
            anom = judged & (in_shift | spike_up | spike_down)

            if anom.any():
                direction_t = np.where(in_shift, shift_dir, np.where(spike_up, 1, -1))
                anomalous[:, t] = anom
                dirs[:, t] = np.where(anom, direction_t, 0)
                shift[:, t] = anom & in_shift
                shift_score[:, t] = np.where(anom & in_shift, shift_stat, 0.0)

                # ---- runs of anomalies and acceptance of persisting ones
                continues = anom & (run_len > 0) & (direction_t == run_dir)
                new_run = anom & ~continues
                run_start = np.where(new_run, t, run_start)
                run_dir = np.where(anom, direction_t, run_dir)
                counted = (anom & ~excl[:, t]).astype(int)  # known incidents never become the new normal
                run_len = np.where(continues, run_len + counted, np.where(new_run, counted, run_len))
                run_len[judged & ~anom] = 0  # unjudged buckets bridge a run
                for row in np.flatnonzero(anom & (run_len >= accept_after)):
                    if use_cusum and c_alarm[row] != 0 and shift_until[row] <= t:
                        # a CUSUM signal's end test needs ~h/(2k) normal buckets, often more
                        # than accept_after: an attack of a few buckets would be "accepted"
                        # with the level it has already left. Decide now which it is.
                        back = returned_at(zs_hist[row], np.isfinite(score[row]) & ~excl[row],
                                           int(run_start[row]), t, int(c_alarm[row]), accept_after)
                        if back is not None:
                            # the shift's flags go; a bucket that is a spike by itself stays one
                            span = slice(back, t + 1)
                            zb = score[row, span]
                            spiky = np.where(up_ok & (zb >= threshold), 1, np.where(down_ok & (zb <= -threshold), -1, 0))
                            anomalous[row, span] = spiky != 0
                            dirs[row, span] = spiky
                            shift[row, span] = False
                            shift_score[row, span] = 0.0
                            restart_sums(row)
                            b_end[row] = 0.0
                            c_alarm[row] = 0
                            # bucket t: normal again (it may update the state), or a spike's own run
                            anom[row] = bool(spiky[-1])
                            run_len[row] = int(anom[row] and not excl[row, t])
                            run_start[row], run_dir[row] = t, spiky[-1]
                            continue
                    # the new normal is where the series is now: the run's second half (an
                    # attack's peak at the start of a run must not set the level it returns from)
                    span = slice(t + 1 - max((t + 1 - run_start[row]) // 2, 1), t + 1)
                    L[row] = _run_level(obs[row, span], S[row], mult[row], phase[span], L[row])
                    T[row] = 0.0  # a new regime starts without a trend
                    accepted.append((int(row), int(run_start[row]), t + 1))
                    run_len[row] = 0
                    shift_until[row] = -1
                    Ls[row], Ts[row] = L[row], 0.0
                    restart_sums(row)
                    c_alarm[row] = 0
                upd = seen & ~anom & ~excl[:, t]
            else:
                run_len[judged] = 0
                upd = seen & ~excl[:, t]
            learnt += upd
            if use_cusum:
                # a gap counts only once the row has a level: a slice that appears late has
                # not been tracked during the months before it existed
                n_track += upd | (~finite[:, t] & np.isfinite(pred))

            # ---- state update from normal buckets only
            if upd.any():
                e = np.where(upd, np.minimum(np.maximum(r, -HUBER * sd), HUBER * sd), fill)
                g = np.where(mult, season, 1.0)  # residuals in de-seasonalised units
                e_level = e / g
                L_new = L + DAMPING * T + alpha * e_level
                if use_cusum:
                    r_s = x - pred_s
                    e_s = np.where(upd, np.minimum(np.maximum(r_s, -HUBER * sd), HUBER * sd), fill)
                    Ls = np.where(upd, Ls + DAMPING * Ts + alpha_slow * e_s / g, Ls)
                    Ts = np.where(upd, DAMPING * Ts + (alpha_slow * BETA) * e_s / g, Ts)
                    n_upd += upd
                T = np.where(upd, DAMPING * T + (alpha * BETA) * e_level, T)
                # the seasonal term learns what the level does not explain
                s_step = np.where(mult, e / np.where(L_new > 0, L_new, np.inf), e)
                L = np.where(upd, L_new, L)
                S[:, j] = season + (GAMMA * (1.0 - alpha)) * s_step
                sq = np.minimum(r * r, (HUBER * HUBER) * sd * sd) / (g * g) * HUBER_VAR_CONSISTENCY
                v = np.where(upd, (1.0 - LAMBDA) * v + LAMBDA * sq, v)
                if ratio:
                    bbar = np.where(upd, (1.0 - LAMBDA) * bbar + LAMBDA * b / (g * g), bbar)
            # a series whose warm-up had no data starts its level at its first observation
            fresh = ~np.isfinite(L) & finite[:, t] & ~excl[:, t]
            if fresh.any():
                L = np.where(fresh, decompose(x, season, mult), L)
                learnt += fresh
                Ls = np.where(fresh, L, Ls)
                if use_cusum:
                    Ts = np.where(fresh, 0.0, Ts)
                T = np.where(fresh, 0.0, T)
                v = np.where(fresh, 0.0, v)

    return Judgement(expected, sd_out, score, anomalous, dirs, shift, shift_score, accepted, confirmed, W)


@dataclass
class _State:
    level: np.ndarray
    trend: np.ndarray
    season: np.ndarray  # (N, P): factors where mult, offsets elsewhere
    mult: np.ndarray
    var: np.ndarray  # residual variance, de-seasonalised units
    binvar: np.ndarray  # average binomial part of it (ratio metrics)

    @staticmethod
    def row(st: "_State", row: int, L, T, S, v, bbar) -> "_State":
        return _State(L[row], T[row], S[row], st.mult[row], v[row], bbar[row])


def _initial_state(block: np.ndarray, den: np.ndarray | None, P: int, inner: int | None = None) -> _State:
    """Level, trend, seasonal profile and noise from the warm-up block: medians for sum
    metrics, pooled rates for ratio metrics (``den`` given)."""
    n_series, W = block.shape
    if P > 1:
        S, mult = seasonal_profile(block, P, weights=den, inner=inner)
    else:
        mult = np.zeros(n_series, dtype=bool)
        S = neutral_profile(n_series, mult)
    phase = np.arange(W) % P
    desea = decompose(block, S[:, phase], mult[:, None])
    span = P if P > 1 else min(7, W)
    typical = np.nanmedian if den is None else _pooled(den)  # see seasonal_profile
    with _quiet():
        last = typical(desea[:, W - span :], cols=slice(W - span, W)) if den is not None else typical(desea[:, W - span :], axis=1)
        first = typical(desea[:, :span], cols=slice(0, span)) if den is not None else typical(desea[:, :span], axis=1)
        trend = np.where(np.isfinite(last - first), (last - first) / max(W - span, 1), 0.0) if W >= 2 * span else np.zeros(n_series)
        # the median of the last cycle sits (span-1)/2 buckets before the warm-up's end
        overall = np.nanmedian(desea, axis=1) if den is None else typical(desea, cols=slice(0, W))
        level = np.where(np.isfinite(last), last + trend * (span - 1) / 2.0, overall)
        # noise from differences one cycle apart: the seasonal profile cancels, so its
        # estimation error (medians of 2-3 points fit the noise) does not shrink the scale
        lag = P if P > 1 else 1
        d = desea[:, lag:] - desea[:, :-lag]
        d = d - np.nanmedian(d, axis=1, keepdims=True)
        var = (1.4826 * np.nanmedian(np.abs(d), axis=1)) ** 2 / 2.0
    var = np.nan_to_num(var, nan=0.0)
    if den is not None:
        g = np.where(mult[:, None], S[:, phase], 1.0)
        pred = np.clip(compose(level[:, None], S[:, phase], mult[:, None]), 0.0, 1.0)
        with _quiet():
            binvar = np.nanmean(np.where(np.isfinite(block), binomial_variance(pred, den) / (g * g), np.nan), axis=1)
        binvar = np.nan_to_num(binvar, nan=0.0)
    else:
        binvar = np.zeros(n_series)
    return _State(level, np.nan_to_num(trend, nan=0.0), S, mult, var, binvar)


def _pooled(den: np.ndarray):
    """Pooled (denominator-weighted) mean of the given columns of each row."""

    def mean(x: np.ndarray, *, cols: slice) -> np.ndarray:
        w = np.where(np.isfinite(x), den[:, cols], 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sum(np.nan_to_num(x) * w, axis=1) / np.sum(w, axis=1)

    return mean


def _clip_rate(pred, ratio):
    return np.clip(pred, 0.0, 1.0) if ratio else pred


def _noise_sd(pred, season, mult, v, bbar, den):
    """sd of one observation around ``pred`` and the binomial variance part (ratio)."""
    g2 = np.where(mult, season, 1.0) ** 2
    if den is not None:
        b = binomial_variance(pred, den)
        var = g2 * np.maximum(v - bbar, 0.0) + b
    else:
        b = np.zeros_like(pred)
        # sum metrics are mostly counts: Poisson variance is a floor, which keeps small
        # counts (0, 1, 3 ...) from looking infinitely precise
        var = np.maximum(g2 * v, np.abs(pred))
    floor = np.maximum(REL_FLOOR * np.abs(pred), ABS_FLOOR)
    return np.sqrt(np.maximum(var, floor * floor)), b


def _region_stat(x, den, st: _State, phases, ratio) -> tuple[float, float]:
    """z-test that a regime departs from the frozen baseline (damped trend extrapolated):
    returns (statistic, typical standardised deviation), both signed."""
    h = np.arange(1, x.size + 1)
    level = st.level + st.trend * DAMPING * (1.0 - DAMPING**h) / (1.0 - DAMPING)
    season = st.season[phases]
    pred = _clip_rate(compose(level, season, st.mult), ratio)
    sd, _ = _noise_sd(pred, season, st.mult, st.var, st.binvar, den)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (x - pred) / sd
    z = z[np.isfinite(z)]
    if z.size == 0:
        return 0.0, 0.0
    # the median, not the mean: one spike inside an otherwise normal regime must not make
    # the regime look shifted. sd of the median of m normal z's ~ 1.2533 / sqrt(m).
    typical = float(np.median(z))
    return typical * math.sqrt(z.size) / MEDIAN_SD_FACTOR, typical


def returned_at(zs: np.ndarray, judged: np.ndarray, start: int, t: int, sign: int, accept_after: int) -> int | None:
    """Where a CUSUM-signalled shift [start, t] went back to its reference level, or None
    when it persists (the new normal).

    A forced choice at acceptance time: the end is the maximum-likelihood split of "shifted
    by an unknown amount, then back at the reference" (S(tau)^2 / n(tau) of the signed
    residuals ``zs`` before tau, judged buckets only). The level is back when the buckets
    from that split on
    - lie closer to the reference than to the smallest shift the CUSUM is built for (2k):
      mean below k, and
    - lie clearly below the shift before the split (two-sample z >= ``RETURN_Z``): the
      split is chosen to make the two parts differ, so a shift that persists at ~1 sd would
      otherwise often end on a few quieter buckets (and then be absorbed by the baseline).
    The stretch must hold a quarter of ``accept_after`` judged buckets (at least 2), so one
    quiet bucket inside an ongoing attack is not taken for its end.
    """
    idx = np.arange(start, t + 1)
    idx = idx[judged[idx]]
    need = max(2, accept_after // 4)
    if idx.size <= need:
        return None
    z = sign * zs[idx]
    before = np.cumsum(z)[:-need]  # the shift part keeps >= 1 bucket, the back part >= need
    n = np.arange(1, before.size + 1)
    fit = np.where(before > 0, before * before / n, -1.0)
    cut = int(np.argmax(fit)) + 1  # first index (in idx) of the back part
    if fit[cut - 1] <= 0:
        return None
    shifted, after = z[:cut], z[cut:]
    if after.mean() >= CUSUM_K or (shifted.mean() - after.mean()) / math.sqrt(1 / cut + 1 / after.size) < RETURN_Z:
        return None
    return int(idx[cut])


def _run_level(x, S, mult, phases, fallback) -> float:
    """New normal level after acceptance: median of the run, de-seasonalised."""
    d = decompose(x, S[phases], mult)
    d = d[np.isfinite(d)]
    return float(np.median(d)) if d.size else fallback
