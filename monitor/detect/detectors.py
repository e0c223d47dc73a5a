"""The built-in detectors. Each is a batch function registered under a key:

- ``default``: spikes (one bucket beyond the band) *and* level shifts (regimes found by the
  change point search whose mean departs from the trailing baseline, and, for ratio
  metrics, sustained moderate shifts signalled by a CUSUM against a slow reference level;
  plain sub-daily series get theirs from the CUSUM alone), with acceptance.
- ``zscore``: spikes only, same baseline and noise model (no change point search).
- ``level_shift``: change-point level shifts only (no single-bucket spikes).
"""
from __future__ import annotations

import math

import numpy as np

from monitor.detect.cusum import CUSUM_K, CUSUM_K_FAST, FAST_ARL_FACTOR, cusum_h, fast_clip
from monitor.detect.judge import judge
from monitor.detect.noise import HUBER, LAMBDA
from monitor.detect.options import BatchOptions
from monitor.detect.regimes import ShiftPlan
from monitor.detect.registry import register
from monitor.detect.results import AnomalySegment, SeriesDetection, relative_change
from monitor.detect.rules import Rules
from monitor.detect.seasonal import decompose, seasonal_profile
from monitor.detect.shifts import MIN_SIZE, SCREEN_FACTOR, ChangePoints, find_batch
from monitor.detect.state import ALPHA, GAMMA, buckets_per_day
from monitor.detect.verdicts import Judgement

SHIFT_MIN_EFFECT = 1.5  # a regime must sit >= 1.5 sd (x sensitivity) off the baseline on average
MIN_LEVEL_SHIFT_RUN = 3  # anomalous runs this long are level shifts even without a change point
# Sub-daily series: a segment stays open through up to this many normal buckets, so an
# anomaly that dips under its band for an hour or two is one incident (one page), not a
# page each time it comes back. Daily buckets keep 0: a normal day is news.
HOLD_BUCKETS_SUBDAILY = 3


def observed_values(values: np.ndarray, den: np.ndarray | None, min_volume: float) -> np.ndarray:
    """Value (or rate) per bucket, NaN where missing or below the volume floor."""
    with np.errstate(invalid="ignore", divide="ignore"):
        if den is None:
            ok = np.isfinite(values) & (values >= min_volume)
            return np.where(ok, values, np.nan)
        ok = np.isfinite(values) & np.isfinite(den) & (den > 0) & (den >= min_volume)
        return np.where(ok, values / np.where(ok, den, 1.0), np.nan)


def deseasonalise(obs: np.ndarray, period: int | None, den: np.ndarray | None = None, inner: int | None = None) -> np.ndarray:
    """Remove a seasonal profile estimated over the whole history; used only to *find*
    regimes, never as the baseline a bucket is judged against."""
    if not period:
        return obs
    prof, mult = seasonal_profile(obs, period, weights=den, inner=inner)
    return decompose(obs, prof[:, np.arange(obs.shape[1]) % period], mult[:, None])


def _plan(cps: ChangePoints, n: int) -> ShiftPlan:
    plan = ShiftPlan()
    for row, points in enumerate(cps.points):
        bounds = list(points) + [n]
        for start, end in zip(bounds[:-1], bounds[1:]):
            plan.add(row, start, end)
    return plan


def _run(values, den, options: BatchOptions, *, name: str, spikes: bool, shifts: bool,
         on_step=None) -> list[SeriesDetection]:
    """``on_step``: see ``judge`` (benchmarks/nab.py replays a live run in one pass with it)."""
    n_series, n = values.shape
    obs = observed_values(values, den, options.min_volume)
    cps = None
    plan = None
    # a level shift is a departure from a baseline that models the cycle: none before the
    # cycle is seen twice (options.cycle_unseen): most first-week false pages of tweet-like counts
    shifts = shifts and not options.cycle_unseen
    # sub-daily plain series (counts, levels): level shifts are sequential (CUSUM), not regimes
    # of a change point search over the whole history. That search, rerun every hour, moves
    # its breaks as data arrive: a shift appears with a start in the past, vanishes, comes
    # back, and pages each time (most false level-shift pages on the NAB series)
    sequential = shifts and den is None and buckets_per_day(options.period) > 1
    if shifts and not sequential and n >= 2 * MIN_SIZE:
        cps = find_batch(deseasonalise(obs, options.period, den, options.inner_period), min_size=MIN_SIZE)
        plan = _plan(cps, n)
    threshold = options.threshold
    spike_threshold = options.spike_threshold
    # one false CUSUM signal per series-year in control, split over the two sides
    arl_years = 2.0 if options.direction == "both" else 1.0
    cusum = cusum_h(options.period, options.multiplier, arl_years=arl_years) if shifts and (den is not None or sequential) else None
    # sub-daily ratio series only: there a large shift is worth paging hours earlier. On the
    # demo's daily metrics it added 4 false incidents to 9 (7 seeds) and found nothing sooner;
    # on plain hourly series (small Poisson counts, bursty counts) two ordinary 3 sd hours
    # in a row signalled, and runs of spikes page large shifts there
    fast = (cusum_h(options.period, options.multiplier, arl_years=arl_years * FAST_ARL_FACTOR, k=CUSUM_K_FAST)
            if cusum is not None and buckets_per_day(options.period) > 1 and not sequential else None)
    rules = Rules(
        threshold=spike_threshold if spikes else math.inf,
        direction=options.direction,
        accept_after=options.accept_after,
        shift_threshold=threshold,
        shift_min_effect=SHIFT_MIN_EFFECT * options.multiplier,
        cusum_threshold=cusum,
        # the clip scales with h (both x sensitivity): a sustained shift needs the same number
        # of buckets to signal in a slice, judged at a stricter h, as in the total
        cusum_clip=HUBER * options.multiplier,
        fast_threshold=fast,
    )
    judged = judge(obs, den=den, exclude=options.exclude, period=options.period,
                   inner_period=options.inner_period, rules=rules, plan=plan, on_step=on_step,
                   cycle_unseen=options.cycle_unseen)
    base_params = _params(name, options, spike_threshold, spikes, shifts, judged.warmup, cusum, fast)
    hold = HOLD_BUCKETS_SUBDAILY if buckets_per_day(options.period) > 1 else 0
    out = []
    accepted_by_row: dict[int, list[tuple[int, int]]] = {}
    for row, start, at in judged.accepted:
        accepted_by_row.setdefault(row, []).append((start, at))
    confirmed_by_row: dict[int, set[int]] = {}
    for row, t in judged.confirmed:
        confirmed_by_row.setdefault(row, set()).add(t)
    for row in range(n_series):
        params = dict(base_params)
        if cps is not None:
            params["change_points"] = {
                "method": "ruptures KernelCPD(linear) = l2 mean shifts, BIC penalty 2*log(n) in long-run sd units",
                "searched": bool(cps.screened[row]),
                "screen_gain": _json_float(cps.screen_gain[row]),
                "screen_rule": f"exact search only if best one-step/one-bump gain >= {SCREEN_FACTOR} x penalty",
                "candidates": list(cps.points[row]),
                "reported": "candidates that start a significant departure from the baseline or end one",
            }
        change_points = sorted(confirmed_by_row.get(row, ()))
        # the band is where one bucket becomes a spike
        out.append(_series_result(row, obs, den, judged, change_points, accepted_by_row.get(row, []),
                                  spike_threshold, params, hold))
    return out


def _series_result(row, obs, den, judged: Judgement, change_points, accepted, threshold, params,
                   hold: int = 0) -> SeriesDetection:
    expected = judged.expected[row]
    sd = judged.sd[row]
    lower = expected - threshold * sd
    upper = expected + threshold * sd
    if den is not None:
        lower, upper = np.clip(lower, 0.0, 1.0), np.clip(upper, 0.0, 1.0)
    segments = _segments(
        obs[row], None if den is None else den[row], judged.score[row], judged.anomalous[row],
        judged.direction[row], judged.shift[row], judged.shift_score[row], expected, accepted, hold,
    )
    return SeriesDetection(
        expected=expected,
        lower=lower,
        upper=upper,
        observed=obs[row].copy(),
        score=judged.score[row],
        anomalous=judged.anomalous[row],
        change_points=[int(c) for c in change_points],
        segments=segments,
        params=params,
    )


def _segments(obs, den, score, anomalous, dirs, shift, shift_score, expected, accepted,
              hold: int = 0) -> list[AnomalySegment]:
    """Consecutive anomalous buckets of one direction form one segment; buckets that were
    not judged (missing, below volume) neither break nor extend a segment, and up to
    ``hold`` judged normal buckets between two anomalous ones do not break it either (nor
    close it at the end of the series: it is still open). An acceptance ends its segment
    (``accepted=True``); later buckets belong to the new normal."""
    n = obs.size
    flagged = np.flatnonzero(anomalous)
    if flagged.size == 0:  # the common case: nothing to build
        return []
    judged = np.isfinite(score)
    accepted_ats = {at for _, at in accepted}
    segments = []
    k = 0
    while k < flagged.size:
        t = int(flagged[k])
        sign = int(dirs[t])
        members = [t]
        last = t
        u = t + 1
        normal = 0  # judged normal buckets since ``last``
        closed = False
        while u < n:
            if u in accepted_ats:
                closed = True
                break
            if anomalous[u] and dirs[u] == sign:
                members.append(u)
                last = u
                normal = 0
            elif judged[u]:
                normal += 1
                if anomalous[u] or normal > hold:
                    closed = True
                    break
            u += 1
        is_accepted = (last + 1) in accepted_ats
        if is_accepted:
            end = last + 1
        elif not closed:
            end = None  # still anomalous at the last judged bucket (or within ``hold`` of it)
        else:
            end = last + 1
        idx = np.array(members)
        if den is not None:
            d = den[idx]
            base = float(np.sum(expected[idx] * d) / np.sum(d))
            seen = float(np.sum(obs[idx] * d) / np.sum(d))
        else:
            base = float(np.mean(expected[idx]))
            seen = float(np.mean(obs[idx]))
        level_shift = bool(np.any(shift[idx])) or idx.size >= MIN_LEVEL_SHIFT_RUN or is_accepted
        segments.append(
            AnomalySegment(
                start=int(t),
                end=None if end is None else int(end),
                direction="up" if sign > 0 else "down",
                kind="level_shift" if level_shift else "spike",
                baseline=base,
                observed=seen,
                relative_change=relative_change(seen, base),
                score=float(max(np.max(np.abs(score[idx])), np.max(shift_score[idx]))),
                accepted=is_accepted,
                accepted_at=int(last + 1) if is_accepted else None,
            )
        )
        k = int(np.searchsorted(flagged, last + 1))
    return segments


def _json_float(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _params(name, options: BatchOptions, spike_threshold, spikes, shifts, warmup, cusum=None, fast=None) -> dict:
    return {
        "detector": name,
        "direction": options.direction,
        "sensitivity": options.sensitivity if isinstance(options.sensitivity, str) else float(options.sensitivity),
        "threshold": float(spike_threshold),
        "spikes": spikes,
        "level_shifts": shifts,
        "shift_threshold": options.threshold if shifts else None,
        "shift_min_effect_sd": SHIFT_MIN_EFFECT * options.multiplier if shifts else None,
        "period": options.period,
        "inner_period": options.inner_period,
        "period_requested": options.period_requested,
        "min_volume": options.min_volume,
        "accept_after": options.accept_after,
        "warmup": warmup,  # first buckets: initialise the baseline, not judged
        "excluded_buckets": int(options.exclude[0].sum()) if options.exclude is not None else 0,
        "baseline": (
            f"trailing robust level + seasonal profile (period {options.period}): first {warmup} buckets "
            f"initialise it and are not judged; then each bucket is compared with the state built from "
            f"earlier buckets only; updates use residuals clipped at {HUBER} sd (level alpha={ALPHA}, "
            f"seasonal gamma={GAMMA}, variance lambda={LAMBDA} per day of buckets); anomalous and excluded buckets never "
            f"update it; a run anomalous for accept_after buckets resets the level (accepted)"
        ),
        "cusum": None if cusum is None else {
            "k_sd": CUSUM_K,
            "h": float(cusum),
            "clip_sd": HUBER * options.multiplier,
            "rule": "sustained shifts: CUSUM of residuals (winsorised at clip_sd) against a slow reference level; "
                    "h gives an in-control run length of one series-year (per side when both); h and the clip "
                    "x sensitivity",
            "fast": None if fast is None else {
                "k_sd": CUSUM_K_FAST, "h": float(fast), "clip_sd": float(fast_clip(fast)),
                "rule": f"a second CUSUM for large shifts, signalling in 2-3 buckets; h for {FAST_ARL_FACTOR:g}x the "
                        "in-control run length; one bucket adds at most 3/4 of h",
            },
        },
        "noise": "ratio: binomial p(1-p)/den + over-dispersion tau^2 from history; sum: robust residual variance "
                 "(Poisson floor for whole-number series only)",
        "band": "sd = core sd x heavy-tail factor (75th/upper percentiles of |residual|, from the warm-up, re-read "
                "daily (weekly for daily data) from every judged residual so far, extrapolated as an exponential "
                "tail, over a Gaussian's, 1..25) x Student-t factor for the residuals the variance rests on (wide "
                "while the baseline is young); while a requested cycle is unseen (an hourly series' first two days, "
                "a daily one's first two weeks), plus the largest swing of the warm-up from its level (in band sd)",
        "hold_buckets": HOLD_BUCKETS_SUBDAILY if buckets_per_day(options.period) > 1 else 0,
        "score": "signed (observed - expected) / sd (band sd)",
    }


@register("default")
def default_detector(values, *, denominators=None, options: BatchOptions) -> list[SeriesDetection]:
    return _run(values, denominators, options, name="default", spikes=True, shifts=True)


@register("zscore")
def zscore_detector(values, *, denominators=None, options: BatchOptions) -> list[SeriesDetection]:
    return _run(values, denominators, options, name="zscore", spikes=True, shifts=False)


@register("level_shift")
def level_shift_detector(values, *, denominators=None, options: BatchOptions) -> list[SeriesDetection]:
    return _run(values, denominators, options, name="level_shift", spikes=False, shifts=True)
