"""The noise model: how far one observation may sit from its expected value by chance.

- *Noise*: sum metrics use an exponentially weighted robust residual variance, with a
  Poisson floor (var >= expected: small counts are not precise) for counts, i.e. series
  whose warm-up values are whole numbers (a price or a CPU % averaged per hour is not a
  count: in its units the floor would be arbitrary, and it made such series deaf); the
  initial scale is the MAD of differences one cycle apart, or their mean absolute
  deviation where more than half of them are equal (a mostly-constant series is not
  noiseless); ratio metrics add the
  binomial variance p(1-p)/den of each bucket to an over-dispersion term tau^2 (the part
  of the residual variance binomial noise does not explain), so 2 of 10 is noise while
  2,000 of 10,000 is not.
- Hourly residuals share day-level conditions: ``day_variance_ratio`` measures how much
  more a day's worth of them wanders than independent hours would (the CUSUM scales by it).

Everything the noise model knows lives in ``Noise`` (its state per series) and its
methods: the estimate from the warm-up, ``sd``, what one normal bucket teaches it. How
far beyond the core scale a page must be (heavy tails, a young baseline) is ``tails.py``;
its warm-up quantiles are kept here (``tail_q``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monitor.detect.seasonal import compose, decompose, quiet
from monitor.detect.tails import MAD_EFFICIENCY, TailHistory, tail_quantiles

LAMBDA = 0.05  # variance smoothing: ~20-bucket memory (daily buckets; see noise_lambda)
HUBER = 2.0  # residuals are clipped at this many sd before updating the state
# E[min(Z^2, c^2)] for a standard normal Z and c = 2: rescales clipped squares so the
# variance estimate is unbiased for normal noise.
HUBER_VAR_CONSISTENCY = 1.0 / 0.9206
REL_FLOOR = 1e-3  # sd never below 0.1 % of the expected value (constant series)
ABS_FLOOR = 1e-12


def binomial_variance(p: np.ndarray, den: np.ndarray) -> np.ndarray:
    """p(1-p)/den with p pulled off 0 and 1 by half a count (Jeffreys), so a zero
    baseline rate still has a noise level and 2/10 against 0 % is not infinitely odd."""
    with np.errstate(divide="ignore", invalid="ignore"):
        q = (np.clip(p, 0.0, 1.0) * den + 0.5) / (den + 1.0)
        return q * (1.0 - q) / den


@dataclass
class Noise:
    """Noise state of each series (arrays over series, or scalars for one series)."""

    var: np.ndarray  # residual variance, de-seasonalised units
    binvar: np.ndarray  # average binomial part of it (ratio metrics)
    counts: np.ndarray  # bool: a sum metric of whole numbers (Poisson floor)
    tail_q: np.ndarray  # (N, 3) 75th and upper percentile of |warm-up residual| in core sd, its probability
    tails: TailHistory | None = None  # |residuals| so far (warm-up first), the tail is re-read from them

    @classmethod
    def from_warmup(cls, desea: np.ndarray, lag: int, block: np.ndarray, den: np.ndarray | None,
                    level: np.ndarray, season: np.ndarray, mult: np.ndarray) -> "Noise":
        """Initial noise from the de-seasonalised warm-up ``desea``; ``season`` is the
        profile per warm-up bucket, ``level`` the initial level."""
        n_series = desea.shape[0]
        with quiet():
            # noise from differences one cycle apart: the seasonal profile cancels, so its
            # estimation error (medians of 2-3 points fit the noise) does not shrink the scale
            d = desea[:, lag:] - desea[:, :-lag]
            d = d - np.nanmedian(d, axis=1, keepdims=True)
            scale = 1.4826 * np.nanmedian(np.abs(d), axis=1)
            # more than half the differences equal (a mostly-constant series with bursts):
            # the MAD is 0, the mean absolute deviation (Gaussian-consistent) is not
            scale = np.where(scale > 0, scale, 1.2533 * np.nanmean(np.abs(d), axis=1))
            var = scale**2 / 2.0
            u = d / np.where(scale > 0, scale, np.nan)[:, None]
        var = np.nan_to_num(var, nan=0.0)
        tail_q = tail_quantiles(u)
        if den is not None:
            g = np.where(mult[:, None], season, 1.0)
            expected = np.clip(compose(level[:, None], season, mult[:, None]), 0.0, 1.0)
            with quiet():
                binvar = np.nanmean(np.where(np.isfinite(block), binomial_variance(expected, den) / (g * g), np.nan),
                                    axis=1)
            binvar = np.nan_to_num(binvar, nan=0.0)
        else:
            binvar = np.zeros(n_series)
        with np.errstate(invalid="ignore"):
            whole = np.all(~np.isfinite(block) | (block == np.round(block)), axis=1)
        # a row with no warm-up data (a sparse slice, late) is taken as counts, as before
        counts = whole & (den is None)
        return cls(var, binvar, counts, tail_q, TailHistory.from_residuals(u))

    def row(self, i: int) -> "Noise":
        return Noise(self.var[i], self.binvar[i], self.counts[i], self.tail_q[i])

    def sd(self, expected, season, mult, den):
        """sd of one observation around ``expected`` and the binomial variance part (ratio;
        ``den`` given) of it."""
        g2 = np.where(mult, season, 1.0) ** 2
        if den is not None:
            b = binomial_variance(expected, den)
            var = g2 * np.maximum(self.var - self.binvar, 0.0) + b
        else:
            b = np.zeros_like(expected)
            # counts: Poisson variance is a floor, which keeps small counts (0, 1, 3 ...)
            # from looking infinitely precise
            var = np.maximum(g2 * self.var, np.where(self.counts, np.abs(expected), 0.0))
        floor = np.maximum(REL_FLOOR * np.abs(expected), ABS_FLOOR)
        return np.sqrt(np.maximum(var, floor * floor)), b

    def learn(self, upd: np.ndarray, residual: np.ndarray, sd: np.ndarray, g: np.ndarray, b: np.ndarray,
              ratio: bool, lam: float = LAMBDA) -> None:
        """Learn from the normal buckets ``upd`` (residual clipped at HUBER sd; ``g`` the
        seasonal factor, ``b`` the bucket's binomial variance; ``lam`` the smoothing, see
        ``noise_lambda``)."""
        sq = np.minimum(residual * residual, (HUBER * HUBER) * sd * sd) / (g * g) * HUBER_VAR_CONSISTENCY
        self.var = np.where(upd, (1.0 - lam) * self.var + lam * sq, self.var)
        if ratio:
            self.binvar = np.where(upd, (1.0 - lam) * self.binvar + lam * b / (g * g), self.binvar)

    def forget(self, rows: np.ndarray) -> None:
        """A series that starts late starts without a residual variance."""
        self.var = np.where(rows, 0.0, self.var)


def noise_lambda(per_day: int) -> float:
    """LAMBDA per bucket for daily data, scaled so that the memory is the same span of
    *time* for ``per_day`` buckets a day (~20 days): with a 20-*hour* memory an hourly
    series' variance followed every quiet night and burst, and the band with it."""
    return 1.0 - (1.0 - LAMBDA) ** (1.0 / per_day)


def day_variance_ratio(block: np.ndarray, den: np.ndarray | None, season: np.ndarray, mult: np.ndarray,
                       P: int) -> np.ndarray:
    """Per row, variance of day means of the de-seasonalised warm-up x 24 / variance of one
    hour (>= 1; 1 for daily data): how much more a day's worth of hourly residuals
    wanders than independent hours would. Robust: MADs of differences, so a level shift
    or a bad day in the warm-up does not inflate it. ``season`` is the (N, P) profile."""
    n_series, W = block.shape
    day = 24
    if P % day or W < 4 * day:
        return np.ones(n_series)
    desea = decompose(block, season[:, np.arange(W) % P], mult[:, None])
    with np.errstate(all="ignore"), quiet():
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


def day_ratio_df(W: int, P: int) -> float:
    """How many independent days ``day_variance_ratio`` of a W-bucket warm-up is worth: its
    MAD of W // 24 - 1 day-to-day differences at the MAD's efficiency; 0 when it is not
    measured (fewer than four days, or not hourly)."""
    day = 24
    if P % day or W < 4 * day:
        return 0.0
    return MAD_EFFICIENCY * (W // day - 1)


def _mad2(a: np.ndarray) -> np.ndarray:
    med = np.nanmedian(a, axis=1, keepdims=True)
    return (1.4826 * np.nanmedian(np.abs(a - med), axis=1)) ** 2
