"""CUSUM for sustained moderate shifts (ratio metrics, and the level shifts of plain sub-daily
series), stepped bucket by bucket.

- *Sustained moderate shifts*: a two-sided CUSUM (Page; k = 0.5 sd) of residuals
  winsorised at HUBER sd (both it and h x the sensitivity multiplier), measured against a
  slow reference level (4x slower than the level, with the same memory in *time* for
  hourly data, ~4 weeks) that only learns from normal buckets. It catches shifts of 1-2 sd
  per bucket that no single bucket reveals and that the level would otherwise absorb. The
  decision interval h gives an in-control run length of one series-year (Siegmund's
  approximation; per side when both directions are watched), times the sensitivity
  multiplier. Hourly residuals share day-level conditions, so they are scaled by the
  day-scale variance ratio measured in the warm-up (a plain series learns it on as days
  accrue, and its sums wait until it is known: ``DayScale``). A signal starts at the best mean-shift
  split of the CUSUM's run (flagged retroactively), resets the level to the reference, and
  ends when a CUSUM for "back below k" (h/2) signals; a bucket that is a spike itself is
  the spike test's, not a shift.
- Plain (not ratio) sub-daily series get their level shifts from the slow CUSUM alone,
  on residuals in core sd x the young-baseline widening (see ``judge``), from their first
  judged bucket once the day scale is known: sequential evidence that does not move as hours arrive, where a
  change point search rerun every hour did. Large shifts there are runs of spikes.
- Sub-daily ratio series add a fast CUSUM (k = 1.5, h for four times the run length) that
  signals a shift of 3+ sd per bucket in 2-3 buckets: card testing pages hours earlier.
- The sums start only after the reference has learnt from another warm-up length of
  observed buckets.
- A CUSUM signal whose level has already gone back (a few buckets of attack, then normal
  buckets its end test is still accumulating) ends where it went back instead of being
  accepted (``returned_at``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from monitor.detect.noise import HUBER
from monitor.detect.seasonal import compose, quiet
from monitor.detect.tails import MAD_EFFICIENCY
from monitor.detect.state import BETA, DAMPING, buckets_per_day, level_alpha

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
class Cusum:
    """CUSUM state of every series (arrays over series): the slow reference level and
    trend, the upper/lower sums and where each last left 0, and whether a signal lasts
    (its buckets stay anomalous until the end test fires)."""

    h: float
    clip: float  # residuals are winsorised at this many sd
    fast_h: float  # inf without the fast CUSUM
    fast_clip: float
    alpha: float  # smoothing of the slow reference level
    ref_level: np.ndarray
    ref_trend: np.ndarray
    scale: np.ndarray  # 1 / sqrt(day variance ratio)
    learnt: np.ndarray  # buckets the reference has learnt from
    tracked_for: np.ndarray  # ... plus gaps (no observation) once the row has a level
    up: np.ndarray
    down: np.ndarray
    up_from: np.ndarray
    down_from: np.ndarray
    fast_up: np.ndarray
    fast_down: np.ndarray
    fast_up_from: np.ndarray
    fast_down_from: np.ndarray
    alarm: np.ndarray  # +1 / -1 while a signal lasts
    end: np.ndarray  # CUSUM for the end of a signalled shift
    end_from: np.ndarray
    history: np.ndarray  # (N, n) winsorised, scaled residuals fed to the sums
    ref_expected: np.ndarray | None = None  # the reference's expected value for this bucket
    days: DayScale | None = None  # the day-scale variance ratio learnt as days accrue (plain sub-daily)

    @classmethod
    def start(cls, h: float, clip: float, fast_h: float | None, period: int | None, level: np.ndarray, n: int,
              day_variance_ratio: np.ndarray, day_df: np.ndarray | None = None) -> "Cusum":
        """``day_df``: given (plain sub-daily series), the day-scale ratio is learnt on from
        the judged days, its warm-up estimate weighing as that many days (0: not measured)."""
        n_series = level.size
        use_fast = fast_h is not None and math.isfinite(fast_h)
        zeros, izeros = (lambda: np.zeros(n_series)), (lambda: np.zeros(n_series, dtype=int))
        return cls(
            h=h, clip=clip, fast_h=fast_h if use_fast else math.inf, fast_clip=fast_clip(fast_h) if use_fast else 0.0,
            alpha=SLOW_FACTOR * level_alpha(period), ref_level=level.copy(), ref_trend=zeros(),
            # a CUSUM assumes independent buckets; hourly residuals share day-level
            # conditions, so they are scaled by the day-scale variance ratio of the warm-up
            scale=1.0 / np.sqrt(day_variance_ratio), learnt=izeros(), tracked_for=izeros(),
            up=zeros(), down=zeros(), up_from=izeros(), down_from=izeros(),
            fast_up=zeros(), fast_down=zeros(), fast_up_from=izeros(), fast_down_from=izeros(),
            alarm=izeros(), end=zeros(), end_from=izeros(), history=np.zeros((n_series, n)),
            days=None if day_df is None else DayScale.start(day_variance_ratio, day_df, buckets_per_day(period), n),
        )

    @property
    def use_fast(self) -> bool:
        return math.isfinite(self.fast_h)

    def tracked(self, warmup: int) -> np.ndarray:
        """The reference level starts from the warm-up medians; a row's sums start once it
        has tracked that row for another warm-up length of buckets, gaps included (a slice
        under its volume floor at night), of which at least half were normal observations
        (a slice judged only now and then does not get there)."""
        return (self.tracked_for >= warmup) & (self.learnt >= warmup // 2)

    def feed(self, t: int, x: np.ndarray, sd: np.ndarray, fed: np.ndarray, season: np.ndarray, mult: np.ndarray,
             ratio: bool) -> None:
        """Add bucket ``t``'s residual against the reference to the sums of the ``fed`` rows."""
        # its own slow (damped) trend: the level's trend chases shifts within hours
        pred = compose(self.ref_level + DAMPING * self.ref_trend, season, mult)
        if ratio:
            pred = np.minimum(np.maximum(pred, 0.0), 1.0)
        self.ref_expected = pred
        # residuals winsorised at HUBER sd: one spike cannot make a sustained shift
        u = (x - pred) / sd
        if self.days is not None:
            self.scale = self.days.scale()
        zs = np.where(fed, np.clip(u, -self.clip, self.clip), 0.0) * self.scale
        self.up_from = np.where(self.up <= 0, t, self.up_from)
        self.down_from = np.where(self.down <= 0, t, self.down_from)
        self.up = np.maximum(0.0, self.up + zs - CUSUM_K)
        self.down = np.maximum(0.0, self.down - zs - CUSUM_K)
        if self.use_fast:
            zf = np.where(fed, np.clip(u, -self.fast_clip, self.fast_clip), 0.0) * self.scale
            self.fast_up_from = np.where(self.fast_up <= 0, t, self.fast_up_from)
            self.fast_down_from = np.where(self.fast_down <= 0, t, self.fast_down_from)
            self.fast_up = np.maximum(0.0, self.fast_up + zf - CUSUM_K_FAST)
            self.fast_down = np.maximum(0.0, self.fast_down - zf - CUSUM_K_FAST)
        self.history[:, t] = zs
        if self.days is not None:
            # normal hours only: a signalled shift is not day-scale noise
            self.days.add(t, np.where(fed & (self.alarm == 0), np.clip(u, -self.clip, self.clip), np.nan))

    def ended(self, t: int, live: np.ndarray) -> np.ndarray:
        """Signals (of the ``live`` rows) that end at ``t``: a CUSUM for "back below k" (same
        k, half h) signals; the shift ended where that sum last left 0 (``end_from``)."""
        self.end_from = np.where(self.end <= 0, t, self.end_from)
        self.end = np.where(live, np.maximum(0.0, self.end + CUSUM_K - self.alarm * self.history[:, t]), self.end)
        return live & (self.end >= END_FACTOR * self.h)

    def restart(self, rows) -> None:
        """Every place a signal starts over resets the slow and the fast sums together."""
        self.up[rows] = self.down[rows] = self.fast_up[rows] = self.fast_down[rows] = 0.0

    def stop(self, rows) -> None:
        """The signal of ``rows`` is over (ended, or its level went back)."""
        self.restart(rows)
        self.alarm = np.where(rows, 0, self.alarm)

    def new_signals(self, up_ok: bool, down_ok: bool, judged: np.ndarray):
        """(new up, new down, fast up, fast down) signals among the rows without one."""
        fast_up, fast_dn = self.fast_up >= self.fast_h, self.fast_down >= self.fast_h
        new_up = (self.alarm == 0) & ((self.up >= self.h) | fast_up) & up_ok & judged
        new_dn = (self.alarm == 0) & ((self.down >= self.h) | fast_dn) & down_ok & judged & ~new_up
        return new_up, new_dn, fast_up, fast_dn

    def signal_stats(self):
        """The shift's score in units of the slow h: a fast signal scores at least h too."""
        if not self.use_fast:
            return self.up, self.down
        return (np.maximum(self.up, self.fast_up * (self.h / self.fast_h)),
                np.maximum(self.down, self.fast_down * (self.h / self.fast_h)))

    def signal_start(self, row: int, sign: int, t: int, fast: bool) -> int:
        """Where the shift signalled at ``t`` began: the split of the sum's run [s0, t] with
        the largest mean-shift statistic S(tau)^2 / (t - tau + 1) (unknown shift size), not
        Page's last-zero estimate, which is biased early by the noise that started the sum."""
        s0 = int(self.up_from[row] if sign > 0 else self.down_from[row])
        if fast:
            # the slow sum's run may start later, or be 0: search from the earlier
            s0 = min(s0, int(self.fast_up_from[row] if sign > 0 else self.fast_down_from[row]))
        tail = np.cumsum((sign * self.history[row, s0 : t + 1])[::-1])[::-1]
        m = np.arange(t + 1 - s0, 0, -1)
        return s0 + int(np.argmax(np.where(tail > 0, tail * tail / m, -1.0)))

    def learn(self, upd: np.ndarray, x: np.ndarray, sd: np.ndarray, g: np.ndarray) -> None:
        """The reference learns from normal buckets only (residuals clipped at HUBER sd)."""
        fill = np.zeros(upd.shape)
        r_s = x - self.ref_expected
        e_s = np.where(upd, np.minimum(np.maximum(r_s, -HUBER * sd), HUBER * sd), fill)
        self.ref_level = np.where(upd, self.ref_level + DAMPING * self.ref_trend + self.alpha * e_s / g, self.ref_level)
        self.ref_trend = np.where(upd, DAMPING * self.ref_trend + (self.alpha * BETA) * e_s / g, self.ref_trend)
        self.learnt += upd

    def start_level(self, rows: np.ndarray, level: np.ndarray) -> None:
        """Rows whose level starts late start their reference there too."""
        self.ref_level = np.where(rows, level, self.ref_level)
        self.ref_trend = np.where(rows, 0.0, self.ref_trend)


@dataclass
class DayScale:
    """The day-scale variance ratio R of a plain sub-daily series, learnt as days accrue.

    Hourly residuals share day-level conditions (a news day, a slow Sunday), so a day's mean
    of them wanders sqrt(R) times more than independent hours would, and the CUSUM divides
    them by sqrt(R). R cannot be measured from a warm-up of three days, and fixing it at 1
    made a new metric's CUSUM signal on every day-scale wander. Each judged day with at
    least half its buckets gives sqrt(n) |m|, m its mean residual (in sd, winsorised like
    the sums), whose median / 0.6745 estimates sqrt(R): robust, so a shift the CUSUM has
    not yet signalled does not teach it that shifts are noise (a mean of squares did, and
    a 4 sd shift never paged). The estimate rests on the MAD's efficiency x days; with a
    Jeffreys prior R's posterior is scaled-inverse-chi-square and its mean, R df / (df - 2),
    is infinite until df > 2 (the CUSUM is off; spikes still page), then conservative, and
    it tightens as days accrue. A warm-up long enough to measure R (four days and more,
    ``noise.day_variance_ratio``) weighs as its own df. Never below 1.
    """

    per_day: int
    warm_ratio: np.ndarray
    warm_df: np.ndarray
    stats: np.ndarray  # (N, days) sqrt(n) |m| per judged day, NaN where not known
    days: int  # columns of stats filled
    cur_sum: np.ndarray  # the current day's residuals so far
    cur_n: np.ndarray
    ratio: np.ndarray  # the current posterior mean of R

    @classmethod
    def start(cls, ratio: np.ndarray, df: np.ndarray, per_day: int, n: int) -> "DayScale":
        z = np.zeros(ratio.shape)
        out = cls(per_day, ratio.astype(float), df.astype(float), np.full((ratio.size, n // per_day + 1), np.nan), 0,
                  z.copy(), z.copy(), z.copy())
        out.ratio = out._posterior()
        return out

    def scale(self) -> np.ndarray:
        return 1.0 / np.sqrt(self.ratio)

    def _posterior(self) -> np.ndarray:
        known = self.stats[:, : self.days]
        d = np.sum(np.isfinite(known), axis=1)
        with np.errstate(divide="ignore", invalid="ignore"), quiet():
            live = (np.nanmedian(known, axis=1) / 0.6745) ** 2 if self.days else np.zeros(d.size)
            live_df = MAD_EFFICIENCY * d
            df = self.warm_df + live_df
            r = (self.warm_df * self.warm_ratio + live_df * np.nan_to_num(live)) / df
            post = np.where(df > 2, r * df / (df - 2), np.inf)
        return np.maximum(np.where(np.isnan(post), np.inf, post), 1.0)

    def add(self, t: int, u: np.ndarray) -> None:
        """Bucket t's residuals (NaN: not a normal judged bucket); a day closes at its last bucket."""
        ok = np.isfinite(u)
        self.cur_sum += np.where(ok, u, 0.0)
        self.cur_n += ok
        if t % self.per_day == self.per_day - 1:
            full = self.cur_n >= self.per_day / 2
            with np.errstate(divide="ignore", invalid="ignore"):
                self.stats[:, self.days] = np.where(full, np.abs(self.cur_sum) / np.sqrt(self.cur_n), np.nan)
            self.days += 1
            self.cur_sum[:] = 0.0
            self.cur_n[:] = 0.0
            self.ratio = self._posterior()


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
