"""Judge every bucket of many series at once: predict, score, decide, update.

Bucket t of each series is judged against a baseline built from buckets < t only (see
``state.py``; its cold start in ``warmup.py``, its noise model in ``noise.py``). A bucket
is anomalous when it is a spike (one bucket beyond the band), inside a change-point regime
that departs from the baseline (``regimes.py``) or inside a CUSUM signal (``cusum.py``);
anomalous and excluded buckets do not update the baseline, and a run that persists becomes
the new normal (``acceptance.py``).

- *Speed*: one Python loop over time; every step is a handful of numpy operations over
  all series at once (about a second of CPU for 10,000 series x 365 days).
"""
from __future__ import annotations

import numpy as np

from monitor.detect.acceptance import Runs, accept
from monitor.detect.cusum import Cusum
from monitor.detect.noise import day_ratio_df, day_variance_ratio, noise_lambda
from monitor.detect.regimes import ShiftPlan, Shifts
from monitor.detect.rules import Rules
from monitor.detect.state import Baseline, buckets_per_day
from monitor.detect.tails import predictive_factor, refresh_every, tail_factor, variance_df
from monitor.detect.verdicts import Judgement, Verdicts
from monitor.detect.warmup import initial_baseline, min_learnt, show_warmup, start_late_series, unseen_swing, warmup_length


def judge(obs: np.ndarray, *, den: np.ndarray | None, exclude: np.ndarray | None, period: int | None,
          rules: Rules, inner_period: int | None = None, plan: ShiftPlan | None = None, on_step=None,
          cycle_unseen: bool = False) -> Judgement:
    """Judge every bucket of every series (rows of ``obs``; NaN = not judged). ``on_step(t,
    verdicts)``, if given, sees the verdicts after each bucket t: without a change point plan
    they are what a run on buckets 0..t would return (a live replay in one pass).
    ``cycle_unseen``: a requested cycle is not modelled yet (``options.BatchOptions``): the
    spike band is widened by the swing the warm-up showed (``warmup.unseen_swing``)."""
    n_series, n = obs.shape
    ratio = den is not None
    P = period or 1
    W = warmup_length(n, period)
    excl = np.zeros(obs.shape, dtype=bool) if exclude is None else np.asarray(exclude, dtype=bool)
    finite = np.isfinite(obs)
    usable = finite & ~excl
    phase = np.arange(n) % P
    warm_den = None if den is None else den[:, :W]
    warm_block = np.where(usable[:, :W], obs[:, :W], np.nan)
    baseline = initial_baseline(warm_block, warm_den, P, inner_period, cycle_unseen)
    swing = np.zeros(n_series)
    if cycle_unseen:
        # a bucket must leave the swing seen so far by a band's worth; the swing is added
        # in band sd (/ threshold) so the score keeps reading "beyond the band" at 1 x threshold
        swing = unseen_swing(warm_block, baseline.level) / rules.threshold
    out = Verdicts.empty(n_series, n)
    show_warmup(baseline, out.expected, out.sd, phase, den, W)
    # the band is the core sd x a factor for heavy tails and for a young baseline (tails.py);
    # the score is in band sd, so the spike threshold keeps its promised tail probability
    tail = tail_factor(baseline.noise.tail_q, rules.threshold)
    tails, every = baseline.noise.tails, refresh_every(buckets_per_day(period))
    lag = P if P > 1 else 1
    # sums: the variance memory is a span of time (bursty hourly counts); ratio metrics keep
    # 20 buckets: their binomial part is known per bucket, and a 20-day over-dispersion
    # memory moved the CUSUM start of the demo's hourly decline rate a day early (seed 5)
    lam = noise_lambda(buckets_per_day(period)) if den is None else noise_lambda(1)
    warm = baseline.learnt.copy()
    out.sd[:, :W] *= (tail * predictive_factor(variance_df(warm, warm, lag), rules.threshold))[:, None]
    ready = min_learnt(W)
    runs, shifts = Runs.none(n_series), Shifts.none(n_series)
    starts = plan.starts if plan is not None else {}
    cusum = None
    # buckets the CUSUM's reference must track before its sums start: a ratio slice may
    # appear late, under its volume floor; a plain series' reference starts at the same
    # warm-up level the spike test judges against, so its sums start with the judging
    settle = W if ratio else 0
    if rules.use_cusum:
        # a plain sub-daily series is judged after a warm-up of as little as three days, too
        # few to measure its day-scale ratio: it learns it as days accrue (cusum.DayScale)
        day_df = np.full(n_series, day_ratio_df(W, P)) if not ratio and buckets_per_day(period) > 1 else None
        cusum = Cusum.start(rules.cusum_threshold, rules.cusum_clip, rules.fast_threshold, period, baseline.level, n,
                            day_variance_ratio(obs[:, :W], warm_den, baseline.season, baseline.mult, P), day_df)

    # one errstate for the whole loop: NaN rows and zero levels are handled explicitly
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for t in range(W, n):
            j, x, excluded = phase[t], obs[:, t], excl[:, t]
            if t > W and t % every == 0:
                # the tail re-read from every residual so far (tails.py); on absolute bucket
                # numbers, so a run on buckets 0..t judges t as the longer run did
                tail = tail_factor(tails.quantiles(), rules.threshold)
            # ---- predict
            pred = baseline.expected(j, ratio)
            sd, b = baseline.sd(pred, j, den[:, t] if ratio else None)
            r = x - pred
            seen = finite[:, t] & np.isfinite(pred)
            tracked = cusum.tracked(settle) if cusum is not None else None
            # ---- score
            judged = seen & (baseline.learnt >= ready)
            young = predictive_factor(variance_df(baseline.learnt, warm, lag), rules.threshold)
            band = sd * tail * young + swing
            z = np.where(judged, r / band, np.nan)
            out.record(t, pred, band, z)
            # ---- decide: change-point regimes starting here, CUSUM signals, spikes
            shifts.confirm(t, starts.get(t, ()), obs, den, phase, baseline, cusum, tracked, rules, ready, out.confirmed)
            in_shift = shifts.until > t
            if cusum is not None:
                # a plain series' sums start with its first judged buckets, when its variance
                # rests on few residuals: they get the band's Student-t widening (not its
                # heavy-tail factor: residuals are winsorised at the clip; in band sd the
                # 26 short NAB series scored 32.2 instead of 36.8)
                in_shift = in_shift | _cusum_step(t, j, x, sd if ratio else sd * young, z, judged, tracked, cusum, baseline, shifts, runs, rules,
                                                  out, excl, ratio)
            spike_up = (z >= rules.threshold) if rules.up_ok else np.zeros(n_series, dtype=bool)
            spike_down = (z <= -rules.threshold) if rules.down_ok else np.zeros(n_series, dtype=bool)
            anom = judged & (in_shift | spike_up | spike_down)
            # the tail learns one residual per surprise: normal buckets and the first
            # bucket of a run of spikes, nothing inside a level shift
            tails.add(judged & ~excluded & ~in_shift & ~(anom & (runs.length > 0)), r / (sd * young))
            if anom.any():
                direction = np.where(in_shift, shifts.direction, np.where(spike_up, 1, -1))
                out.flag(t, anom, direction, in_shift, shifts.stat)
                runs.extend(t, anom, direction, judged, excluded)
                accept(t, anom, runs, rules, baseline, cusum, shifts, out, obs, phase, excl)
                upd = seen & ~anom & ~excluded
            else:
                runs.length[judged] = 0
                upd = seen & ~excluded
            # ---- update from normal buckets only
            baseline.learnt += upd
            if cusum is not None:
                # a gap counts only once the row has a level: a slice that appears late has
                # not been tracked during the months before it existed
                cusum.tracked_for += upd | (~finite[:, t] & np.isfinite(pred))
            if upd.any():
                if cusum is not None:
                    cusum.learn(upd, x, sd, np.where(baseline.mult, baseline.season[:, j], 1.0))
                baseline.learn(upd, r, sd, b, j, ratio, lam)
            start_late_series(baseline, cusum, x, j, usable[:, t])
            if on_step is not None:
                on_step(t, out)
    return out.result(W)


def _cusum_step(t: int, j: int, x, sd, z, judged, tracked, cusum: Cusum, baseline: Baseline, shifts: Shifts,
                runs: Runs, rules: Rules, out: Verdicts, excl: np.ndarray, ratio: bool) -> np.ndarray:
    """Feed bucket t to the CUSUMs, end and start signals; returns the rows in a signal."""
    judged_in = judged & ~excl[:, t]
    cusum.feed(t, x, sd, judged_in & tracked, baseline.season[:, j], baseline.mult, ratio)
    over = cusum.ended(t, (cusum.alarm != 0) & judged_in)
    for row in np.flatnonzero(over & (shifts.until <= t)):  # not inside a change-point regime
        out.unflag(row, slice(int(cusum.end_from[row]), t))
        runs.length[row] = 0
    cusum.stop(over)
    new_up, new_dn, fast_up, fast_dn = cusum.new_signals(rules.up_ok, rules.down_ok, judged)
    up_stat, dn_stat = cusum.signal_stats()
    for row in np.flatnonzero(new_up | new_dn):
        sign = 1 if new_up[row] else -1
        cusum.alarm[row] = sign
        cusum.end[row] = 0.0
        if sign * z[row] >= rules.threshold:
            # the bucket is a spike itself: the spike test owns it, and the sum restarts
            # (a spike must not turn into a level shift)
            cusum.alarm[row] = 0
            cusum.restart(row)
            continue
        s0 = cusum.signal_start(row, sign, t, bool(fast_up[row] if sign > 0 else fast_dn[row]))
        # the buckets from the estimated start are flagged retroactively
        back = np.arange(s0, t)[np.isfinite(out.score[row, s0:t])]
        # the level followed the shift before it was recognised: put it back on the
        # reference the shift was measured against
        baseline.level[row], baseline.trend[row] = cusum.ref_level[row], 0.0
        cusum.ref_trend[row] = 0.0
        if back.size:
            out.flag_shift(row, back, sign, float(up_stat[row] if sign > 0 else dn_stat[row]))
            if not (runs.length[row] > 0 and runs.direction[row] == sign):
                runs.start[row] = back[0]
                runs.length[row] = int(np.sum(~excl[row, back]))
                runs.direction[row] = sign
    in_cusum = cusum.alarm != 0
    since = in_cusum & (shifts.until <= t)
    shifts.direction = np.where(since, cusum.alarm, shifts.direction)
    shifts.stat = np.where(since, np.where(cusum.alarm > 0, up_stat, dn_stat), shifts.stat)
    return in_cusum
