"""Seasonal profile of a series, and the two ways it combines with a level.

- *Seasonality*: multiplicative for positive metrics (the weekend is a fraction of the
  week, also after a level shift); hourly data with (24, 168) uses hour-of-day x
  day-of-week so that three weeks of history are enough.
"""
from __future__ import annotations

import numpy as np


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
    with np.errstate(all="ignore"), quiet():
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
    if weights is None:
        combined = _own_phases(block, combined, mult, period)
    return combined, mult


def _own_phases(block: np.ndarray, sep: np.ndarray, mult: np.ndarray, period: int) -> np.ndarray:
    """The separable profile (hour of day x day of week) moved toward each phase's own
    median by what two or more full cycles say beyond their noise (empirical Bayes, as
    ``_shrink_rates``): taxi rides on Friday and Saturday nights, low on weekend mornings,
    are not a weekday's hours scaled. The spread of the true departures, tau^2, is the
    observed spread of the per-phase medians minus their sampling variance (pi/2 sigma^2 /
    cycles, sigma from the MAD of the cycles around them); a row whose phases say nothing
    beyond noise keeps the separable profile."""
    n_series, w = block.shape
    cycles = w // period
    if cycles < 2:
        return sep
    full = block[:, : cycles * period].reshape(n_series, cycles, period)
    with np.errstate(all="ignore"), quiet():
        # each cycle against its own level (a level that drifts over the weeks is no phase effect)
        m3 = mult[:, None, None]
        desea = np.where(m3, full / np.where(sep != 0, sep, np.nan)[:, None, :], full - sep[:, None, :])
        level = np.nanmedian(desea, axis=2, keepdims=True)
        r = np.where(m3, desea / np.where(level != 0, level, np.nan) - 1.0, desea - level)
        dev = np.nanmedian(r, axis=1)  # (N, period): each phase's own departure
        spread_in = r - dev[:, None, :]
        sigma = 1.4826 * np.nanmedian(np.abs(spread_in.reshape(n_series, -1)), axis=1)
        # median of 2 values is their mean (sigma^2 / 2); the median's pi/2 applies from 3 on
        s2 = (np.pi / 2.0 if cycles >= 3 else 1.0) * sigma**2 / cycles * cycles / max(cycles - 1, 1)
        centred = dev - np.nanmean(dev, axis=1, keepdims=True)
        tau2 = np.maximum(np.nanmean(centred**2, axis=1) - s2, 0.0)
        wgt = np.where(np.isfinite(tau2 / (tau2 + s2)), tau2 / (tau2 + s2), 0.0)
        moved = np.where(mult[:, None], sep * (1.0 + wgt[:, None] * np.nan_to_num(dev)),
                         sep + wgt[:, None] * np.nan_to_num(dev))
    ok = np.all(np.isfinite(moved), axis=1) & (~mult | np.all(moved > 0, axis=1))
    return np.where(ok[:, None], moved, sep)


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
    with np.errstate(all="ignore"), quiet():
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
    with np.errstate(all="ignore"), quiet():
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


class quiet:
    """Silence 'All-NaN slice' warnings: all-NaN rows are expected and handled."""

    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)
