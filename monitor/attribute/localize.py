"""Multi-dimensional root-cause localisation (Contract 3: ``localize``).

Given one row per leaf (a full combination of the dimensions) with an expected and an actual
value, find the few segments (``{dimension: value}``, 1..len(dimensions) dimensions) whose change
explains the anomaly. Published relatives: Adtributor (one dimension, explanatory power),
HotSpot/Squeeze (ripple effect: the leaves of a cause move by a common factor), RiskLoc (leaf
partition + risk score). What this one does differently:

1. Noise-aware leaves. Every leaf becomes an observed and an expected count with a standard
   deviation from a variance model fitted on the data itself (most leaves are normal):
   - ``sum``: v = a|e| + b e^2 (Poisson-like + forecast-error-like), fitted robustly by size bins.
   - ``ratio``: we condition on the actual traffic (denominator): expected events = actual_den x
     the leaf's expected rate, so traffic moving between segments is a mix effect, never a root
     cause. Leaf rates are shrunk hierarchically: towards a model of the baseline made of one
     factor per dimension value plus one per pair of values, each shrunk by a few pseudo-events
     (see ``shrunk_rates``). Shrinking towards the overall rate instead would bias every small
     leaf of a high-rate segment (a risky country, a high-refund category) down, and those
     biases add up to a fake rise of the whole segment. The variance is binomial + uncertainty
     of the baseline rate + a wobble of real rates (at least ~10 %, at most 50 %) + one event
     (count data cannot resolve less). A leaf with 2 orders therefore cannot carry a 0 % or
     100 % rate into the search. Events are counted on the rarer side (stalls, not non-stalls).
2. A capped ripple score per segment. Under "segment S is the cause" each of its leaves moves by
   S's own factor k. Per leaf, in units of ``clip`` sigmas capped at 1: a = observed move,
   p = predicted move (the leaf's power to tell). The leaf adds ``2ap - p^2``: +1 if it moved as
   predicted, -1 if it should have moved and did not (a normal leaf inside a too-general parent),
   ~0 when it is too small to tell. Capping keeps big leaves and heterogeneous effect sizes
   inside the true cause from dominating; tiny leaves have no power and cannot win.
3. Greedy search over all cuboids with every cell scored in a few vectorised bincounts; after a
   pick, the coarsest segment that explains the change is named (see ``_refine``): a child
   instead of its parent only when the parent's other leaves reject, beyond their noise, the
   move the child predicts for them. On thin data they cannot, and the parent is named. The
   leaves are then marked as explained.
   Event counts (ratio metrics) are also judged as counts (``count_evidence``: a segment's
   total events against its expected events, Poisson while they are few, with the rates'
   wobble when many): a child is named when its siblings' total events reject the parent's
   uniform move, and when no leaf stands out (thin data, every leaf expects a fraction of an
   event) the segment whose events moved most surely is the first cause if it passes
   Bonferroni over every segment searched (``_count_pick``).
4. Acceptance: a cause must be significant at segment level (z deflated by the observed spread
   of one-dimension segments, since real leaf noise is correlated; the leaves' one-event noise
   floors count once per segment, not once per leaf; the spread is read on the leaves that no
   pick claims, so one cause does not hide another; the first cause's bar is Bonferroni over
   the segments that explain a third of the total's move, see ``_first_bar``) and worth at
   least one fully anomalous leaf (or, on thin data, pass the count test above); further
   causes need more (they must stand on their own). A later cause that contains an earlier
   one replaces it. Then, for event counts, a cause whose parent's other leaves moved with
   it - by another factor, but closer to the cause's than to none - is replaced by that
   parent (``_uneven_parents``).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from monitor.attribute import count_evidence
from monitor.attribute.leaves import LeafTable, normalise_leaves

# 25 % quantile of a chi-square(1) variable: reading a variance from the lower quartile of squared
# residuals stays valid when a large share of the leaves is anomalous.
_CHI2_Q25 = 0.10153104426762
# Prior relative wobble of a segment's rate between periods (minute to minute, day to day):
# real rates move ~10 % without any cause, far beyond binomial noise on big segments.
_RATE_WOBBLE = 0.1
# Largest wobble the data may claim. The fit reads the wobble from the lower quartile of the
# leaves; when one cause covers more than 3/4 of the well-measured leaves (a whole bitrate, a
# whole platform) the quartile is itself anomalous and would call a x3 change "normal".
_RATE_WOBBLE_MAX = 0.5
# Pseudo-events of the hierarchical rate prior: a segment (or leaf) with a few baseline events
# stays near its parent level, one with dozens keeps its own rate.
_PRIOR_EVENTS = 5.0
# Judge event counts (ratio metrics) as counts when refining and when no leaf stands out
# (see ``count_evidence``); False gives the earlier, leaf-score-only behaviour.
COUNT_EVIDENCE = True
# Name the parent of a cause whose siblings moved with it, less (see ``_uneven_parents``).
UNEVEN_PARENTS = True
# An option, off: judge a cause's segment z against the number of segments searched
# (Bonferroni at ``count_evidence.FAMILY_ALPHA``, as the count pick is) rather than a fixed 3.
# With hundreds of candidate segments a z of 3 turns up by chance in a world with no cause
# (RS-like no-cause worlds: 10 of 50 name one with it off, 3 with it on), but on the demo the
# bar (4.4 over ~5,200 segments) drops a real cause: paypal's decline-rule change, 56 % of the
# total's move at z 3.3-3.6, while the whole population drifted too (seed 6). Off:
# ``FAMILY_OF_EXPLAINERS`` keeps both.
FAMILY_Z = False
# The first cause's bar is family-wise over the segments that could be the answer: those whose
# change explains at least ``_FIRST_SHARE`` of the total's move, its way (``_first_bar``). A
# move shared by up to three causes (the default cap) leaves at least a third to the largest
# (1/4 or 1/2 give the same RS-like figures). When the total moved, few segments explain a
# third of it and the bar stays near ``first_z`` (paypal above: 8 of 5,193 segments, bar 3);
# when it is within its noise, or the pick explains less, the bar is Bonferroni over all.
FAMILY_OF_EXPLAINERS = True
_FIRST_SHARE = 1.0 / 3.0
# Judge every pick's z against the noise of the leaves no pick claims (see ``_rescore``).
RESCORE = True
# Raking sweeps for the one-dimension factors (they overlap, so one pass is not enough).
_MAIN_EFFECT_SWEEPS = 3


@dataclass(frozen=True)
class LeafScores:
    """Per-leaf quantities on an additive scale (see the module docstring)."""

    observed: np.ndarray
    expected: np.ndarray
    sd: np.ndarray  # noise standard deviation of observed - expected
    # The "one event" part of sd^2 (count data cannot resolve less). It bounds what a single
    # tiny leaf may claim, but does not add up over a segment's leaves: a segment of 50 thin
    # leaves still resolves one event, not 50 (see ``_segment_variance``).
    floor: np.ndarray


@dataclass(frozen=True)
class Cuboid:
    """One combination of dimensions; every leaf belongs to exactly one of its cells."""

    dims: tuple[int, ...]  # positions into the dimension list
    cell: np.ndarray  # per leaf: dense index of its cell
    n_cells: int
    cell_values: np.ndarray  # n_cells x len(dims): the dimension codes of each cell


@dataclass(frozen=True)
class Step:
    """One greedy pick with the evidence used to accept or reject it."""

    dims: tuple[int, ...]
    values: tuple[int, ...]
    score: float  # capped ripple score, in "fully anomalous leaves"
    z: float  # segment deviation in segment-level standard errors
    counted: bool = False  # found on its event counts (thin data, see ``_count_pick``)
    bar: float = 0.0  # z it needs as the first cause, beyond ``first_z`` (see ``_first_bar``)


@dataclass(frozen=True)
class SearchOptions:
    """Knobs of the search and of the acceptance of causes (see ``localize``)."""

    clip: float = 3.0
    miss_cost: float = 1.0
    child_evidence: float = 3.84
    first_z: float = 3.0
    first_score: float = 1.0
    more_z: float = 5.0
    more_score: float = 2.0


_DEFAULTS = SearchOptions()


def localize(
    leaves: pd.DataFrame,
    dimensions: list[str] | tuple[str, ...],
    kind: str,
    *,
    max_causes: int = 3,
    max_layer: int | None = None,
    clip: float = _DEFAULTS.clip,
    first_z: float = _DEFAULTS.first_z,
    first_score: float = _DEFAULTS.first_score,
    more_z: float = _DEFAULTS.more_z,
    more_score: float = _DEFAULTS.more_score,
    miss_cost: float = _DEFAULTS.miss_cost,
    child_evidence: float = _DEFAULTS.child_evidence,
) -> list[dict[str, str]]:
    """Root-cause segments of the change from ``expected`` to ``actual``, best first.

    ``kind`` is ``"sum"`` (columns ``actual``, ``expected``) or ``"ratio"`` (columns
    ``actual_num``, ``actual_den``, ``expected_num``, ``expected_den``). Returns ``[]`` when there
    is nothing to explain. Options (the defaults need no tuning):

    - ``max_causes`` caps the answer; ``max_layer`` caps how many dimensions a segment may fix.
    - ``clip``: z at which a leaf counts as fully anomalous.
    - Acceptance: the first cause needs a segment-level z of ``first_z`` and a score of
      ``first_score`` fully anomalous leaves; every further cause ``more_z`` and ``more_score``
      (a second cause must stand on its own, not be the leftovers of the first). With
      ``FAMILY_OF_EXPLAINERS`` (on) the first cause's bar is Bonferroni over the segments that
      explain a third of the total's move (over all segments when the pick does not or the
      total is within its noise; see ``_first_bar``). With
      ``FAMILY_Z`` (off) both z bars are raised to the Bonferroni bar over the segments searched
      when that is higher (``count_evidence.z_threshold``: 3.5 for 100 segments, 4.1 for
      1,000, 4.6 for 10,000).
    - ``miss_cost``: penalty for a leaf that should have moved under the hypothesis and did not,
      relative to the reward for one that did.
    - ``child_evidence``: a child segment is named instead of its parent only if it scores at
      least as well and the parent's other leaves reject the move the child predicts for them
      with twice a log-likelihood ratio of at least this (3.84: a 5 % test of one parameter).
      Otherwise - they moved too, or are too thin to tell - the parent is named.
    """
    table = normalise_leaves(leaves=leaves, dimensions=dimensions, kind=kind)
    options = SearchOptions(
        clip=clip,
        miss_cost=miss_cost,
        child_evidence=child_evidence,
        first_z=first_z,
        first_score=first_score,
        more_z=more_z,
        more_score=more_score,
    )
    return localize_table(table=table, max_causes=max_causes, max_layer=max_layer, options=options)


def localize_table(
    table: LeafTable,
    *,
    max_causes: int = 3,
    max_layer: int | None = None,
    options: SearchOptions = _DEFAULTS,
) -> list[dict[str, str]]:
    """``localize`` on an already normalised :class:`LeafTable`."""
    dims = table.dimensions
    if len(table) == 0:
        return []
    scores = leaf_scores(table=table)
    if np.allclose(scores.observed, scores.expected, rtol=1e-9, atol=1e-12):
        return []  # nothing moved (for a ratio: no leaf's rate moved)
    if len(table) == 1:
        # Contract: a single changed leaf is its own root cause.
        return [{d: str(table.labels[j][table.codes[0, j]]) for j, d in enumerate(dims)}]
    # Leaves with nothing expected and nothing observed (no traffic) carry no evidence.
    keep = (scores.expected != 0) | (scores.observed != 0)
    scores = LeafScores(
        observed=scores.observed[keep], expected=scores.expected[keep], sd=scores.sd[keep],
        floor=scores.floor[keep],
    )
    codes = table.codes[keep]
    layer_cap = len(dims) if max_layer is None else max(1, min(max_layer, len(dims)))
    cuboids = _cuboids(codes=codes, max_layer=layer_cap)
    # Every cell of every cuboid is a candidate cause: a segment-level z is judged against the
    # largest of that many noise z-scores (Bonferroni, the family-wise chance of the count pick).
    family_z = count_evidence.z_threshold(sum(c.n_cells for c in cuboids)) if FAMILY_Z else 0.0
    steps = _search(
        cuboids=cuboids,
        codes=codes,
        scores=scores,
        max_steps=max_causes,
        options=options,
        # ratio: one pseudo-event keeps a segment with 0.2 expected stalls and 2 observed from
        # claiming a x10 factor; a sum has no natural unit, so no shrinkage.
        pseudo=1.0 if table.kind == "ratio" else 0.0,
        first_z=max(options.first_z, family_z),
    )
    accepted: list[Step] = []
    for step in steps:
        need_z, need_score = (
            (max(options.first_z, family_z, step.bar), options.first_score)
            if not accepted
            else (max(options.more_z, family_z), options.more_score)
        )
        if not step.counted and (step.z < need_z or step.score < need_score):
            break
        # A later cause containing an earlier one: the rest of its leaves moved as well, so the
        # coarser segment is the cause and the earlier one only its loudest part.
        pairs = set(zip(step.dims, step.values))
        accepted = [a for a in accepted if not pairs < set(zip(a.dims, a.values))]
        accepted.append(step)
    if table.kind == "ratio" and COUNT_EVIDENCE and UNEVEN_PARENTS:
        accepted = _uneven_parents(steps=accepted, codes=codes, scores=scores, options=options)
    return [
        {dims[d]: str(table.labels[d][code]) for d, code in zip(step.dims, step.values)}
        for step in accepted
    ]


# --------------------------------------------------------------------------------------------
# Leaf scores: observed, expected, noise


def leaf_scores(table: LeafTable) -> LeafScores:
    """Observed/expected counts and noise sd of every leaf."""
    if table.kind == "sum":
        observed = table.measures["actual"]
        expected = table.measures["expected"]
        variance = _sum_variance(observed=observed, expected=expected)
        # counts: the part of the floor above Poisson (leaves expected to see less than one)
        floor = (
            np.clip(1.0 - np.abs(expected), 0.0, None) * (variance >= 1.0)
            if _is_count_data(observed) else np.zeros_like(variance)
        )
    else:
        observed, expected, variance = _ratio_counts(table=table)
        floor = np.ones_like(variance)
    variance = np.maximum(variance, 0.0)
    return LeafScores(
        observed=observed, expected=expected, sd=np.sqrt(variance),
        floor=np.minimum(floor, variance),
    )


def shrunk_rates(
    events: np.ndarray, trials: np.ndarray, codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Hierarchically shrunk baseline rates: (per-leaf rate, per-leaf prior rate).

    The prior of a leaf is a log-linear model of the baseline: one factor per dimension value
    (raked jointly) times one factor per pair of values, each factor shrunk by
    ``_PRIOR_EVENTS`` pseudo-events towards the level above it. The leaf's own rate is then
    shrunk towards its prior with the same pseudo-events: rate = (events + K) / (trials + K /
    prior). Every level keeps its own rate once it has dozens of events, and a leaf with a
    handful of trials inherits the rate of the segments it belongs to, not the overall rate, so
    no segment gets a systematic bias from the shrinkage of its small leaves.
    """
    events, trials = np.clip(events, 0, None), np.clip(trials, 0, None)
    total = float(trials.sum())
    overall = float(events.sum()) / total if total > 0 else 0.0
    overall = float(np.clip(overall, 1e-9, 1 - 1e-9))
    log_rate = np.full(len(events), np.log(overall))
    n_dims = codes.shape[1]
    cards = codes.max(axis=0) + 1 if len(codes) else np.ones(n_dims, dtype=np.int64)
    # Levels strictly above the leaves: one dimension, then pairs (when pairs are not leaves).
    for layer in range(1, min(2, n_dims - 1) + 1):
        for _ in range(_MAIN_EFFECT_SWEEPS if layer == 1 else 1):
            for dims in itertools.combinations(range(n_dims), layer):
                cell = _cuboid(codes=codes, cards=cards, dims=dims).cell
                observed = np.bincount(cell, weights=events)
                predicted = np.bincount(cell, weights=trials * np.exp(log_rate))
                shrunk = np.log((observed + _PRIOR_EVENTS) / (predicted + _PRIOR_EVENTS))
                log_rate = log_rate + shrunk[cell]
    prior_rate = np.clip(np.exp(log_rate), 1e-9, 0.999)
    rate = (events + _PRIOR_EVENTS) / (trials + _PRIOR_EVENTS / prior_rate)
    return np.clip(rate, 0.0, 1.0), prior_rate


def _ratio_counts(table: LeafTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Events on the rarer side, expected events at actual traffic, and their variance."""
    m = table.measures
    a_num, a_den = m["actual_num"], m["actual_den"]
    e_num, e_den = m["expected_num"], m["expected_den"]
    base_den = e_den.sum() if e_den.sum() > 0 else a_den.sum()
    base_num = e_num.sum() if e_den.sum() > 0 else a_num.sum()
    if base_den > 0 and base_num / base_den > 0.5:
        # Count the rarer outcome: 1 - rate has the same binomial noise, but multiplicative
        # effects (x2 stalls, x3 fraud) live on the rare side.
        a_num, e_num = a_den - a_num, e_den - e_num
    rate, _ = shrunk_rates(events=e_num, trials=e_den, codes=table.codes)
    expected = a_den * rate
    # Noise of the new draw (binomial) + uncertainty of the baseline rate itself (few past
    # events, own plus the prior's pseudo-events -> uncertain) + one event (count data cannot
    # resolve less).
    baseline_rel_var = 1.0 / (np.clip(e_num, 0, None) + _PRIOR_EVENTS)
    base = expected * (1 - rate) + expected**2 * baseline_rel_var + 1.0
    wobble = _fit_rate_wobble(residual=a_num - expected, base=base, mean=expected)
    return a_num, expected, base + wobble * expected**2


def _fit_rate_wobble(residual: np.ndarray, base: np.ndarray, mean: np.ndarray) -> float:
    """Relative variance tau^2 beyond ``base``, between the prior wobble and the maximum.

    Solved so that the lower quartile of r^2 / (base + tau^2 mean^2) over leaves with enough
    expected events matches a chi-square(1); with fewer than 20 such leaves the quartile is too
    noisy and the prior is used. Capped at ``_RATE_WOBBLE_MAX`` (see there).
    """
    floor = _RATE_WOBBLE**2
    ok = mean >= 5.0
    if ok.sum() < 20:
        return floor
    r2, b, m2 = residual[ok] ** 2, base[ok], mean[ok] ** 2

    def q25(tau2: float) -> float:
        return float(np.quantile(r2 / (b + tau2 * m2), 0.25))

    if q25(floor) <= _CHI2_Q25:
        return floor
    ceiling = _RATE_WOBBLE_MAX**2
    if q25(ceiling) > _CHI2_Q25:
        return ceiling
    lo, hi = floor, ceiling
    for _ in range(40):  # bisection on a monotone function
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if q25(mid) > _CHI2_Q25 else (lo, mid)
    return hi


def _sum_variance(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Variance v = a|e| + b e^2 fitted robustly on size bins (Poisson + forecast error)."""
    mean = np.abs(expected)
    residual = observed - expected
    ok = mean > 0
    floor = 1e-9 * max(float(np.max(mean, initial=0.0)), 1e-12) ** 2
    counts = _is_count_data(observed)
    # a count leaf expected to see nothing (none in the baseline weeks) is still an estimate:
    # one event of noise, as for ratio leaves
    count_floor = np.maximum(mean, 1.0)
    if ok.sum() < 16:
        scale = float(np.median(residual[ok] ** 2)) / 0.455 if ok.any() else 1.0
        flat = np.full_like(mean, max(scale, floor, 1e-12))
        return np.maximum(flat, count_floor) if counts else flat
    m_ok, r2_ok = mean[ok], residual[ok] ** 2
    order = np.argsort(m_ok, kind="stable")
    bins = np.array_split(order, min(12, len(order) // 8))
    xs = np.asarray([np.median(m_ok[b]) for b in bins])
    vs = np.asarray([np.quantile(r2_ok[b], 0.25) / _CHI2_Q25 for b in bins])
    if counts:
        # small counts tie: with ~1 event a leaf, a third of the leaves match their expected
        # value exactly and the lower quartile of r^2 is 0, which would make every leaf
        # "infinitely" anomalous. Counts are never less noisy than Poisson.
        vs = np.maximum(vs, xs)
    a, b = _fit_poisson_multiplicative(x=xs, v=vs)
    if counts:
        return np.maximum(a * mean + b * mean**2, count_floor)
    return a * mean + b * mean**2 + floor


def _is_count_data(observed: np.ndarray) -> bool:
    """Whole, non-negative numbers only (events, signups), not amounts."""
    return bool(len(observed)) and bool(np.all(observed >= 0)) and bool(np.all(observed == np.round(observed)))


def _fit_poisson_multiplicative(x: np.ndarray, v: np.ndarray) -> tuple[float, float]:
    """Non-negative least squares of v ~ a x + b x^2 in relative error (each bin counts equally)."""
    # A bin without any noise (identical values) would get an infinite weight: floor each bin
    # at a one-in-a-million relative error.
    v = np.maximum(v, (1e-6 * x) ** 2 + 1e-300)
    design = np.column_stack([x / v, x**2 / v])
    target = np.ones_like(v)
    candidates = []
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    if np.all(coef >= 0):
        candidates.append((float(coef[0]), float(coef[1])))
    for j in (0, 1):
        col = design[:, j]
        only = float(np.sum(col) / np.sum(col**2)) if np.sum(col**2) > 0 else 0.0
        candidates.append((only, 0.0) if j == 0 else (0.0, only))

    def loss(ab: tuple[float, float]) -> float:
        return float(np.sum((design @ np.asarray(ab) - target) ** 2))

    return min(candidates, key=loss)


# --------------------------------------------------------------------------------------------
# Cuboids


def _cuboids(codes: np.ndarray, max_layer: int) -> list[Cuboid]:
    """All combinations of 1..max_layer dimensions, lowest layer first."""
    n_dims = codes.shape[1]
    cards = codes.max(axis=0) + 1
    return [
        _cuboid(codes=codes, cards=cards, dims=dims)
        for layer in range(1, max_layer + 1)
        for dims in itertools.combinations(range(n_dims), layer)
    ]


def _cuboid(codes: np.ndarray, cards: np.ndarray, dims: tuple[int, ...]) -> Cuboid:
    """Mixed-radix key per leaf, compressed to dense cell ids (no row-wise sort needed)."""
    size = float(np.prod([float(cards[d]) for d in dims]))
    if size >= 2**62:  # key would overflow: fall back to a row-wise unique
        values, cell = np.unique(codes[:, dims], axis=0, return_inverse=True)
        return Cuboid(dims=dims, cell=cell.ravel(), n_cells=len(values), cell_values=values)
    key = np.zeros(len(codes), dtype=np.int64)
    for d in dims:
        key = key * int(cards[d]) + codes[:, d]
    if size <= max(4 * len(codes), 1 << 16):
        present = np.zeros(int(size), dtype=bool)
        present[key] = True
        keys = np.nonzero(present)[0]
        cell = (np.cumsum(present) - 1)[key]
    else:
        keys, cell = np.unique(key, return_inverse=True)
    values = np.empty((len(keys), len(dims)), dtype=np.int64)
    rest = keys.copy()
    for j in range(len(dims) - 1, -1, -1):
        card = int(cards[dims[j]])
        values[:, j] = rest % card
        rest //= card
    return Cuboid(dims=dims, cell=cell.ravel(), n_cells=len(keys), cell_values=values)


def _members(
    by_dims: dict[tuple[int, ...], Cuboid], dims: tuple[int, ...], values: tuple[int, ...]
) -> np.ndarray:
    cuboid = by_dims[dims]
    hit = np.nonzero(np.all(cuboid.cell_values == np.asarray(values), axis=1))[0]
    return cuboid.cell == int(hit[0])


# --------------------------------------------------------------------------------------------
# Search


@dataclass
class _State:
    """What the greedy search knows between picks."""

    observed: np.ndarray
    expected: np.ndarray
    sd: np.ndarray
    active: np.ndarray  # leaves not yet explained
    floor: np.ndarray  # see LeafScores


def _search(
    cuboids: list[Cuboid],
    codes: np.ndarray,
    scores: LeafScores,
    max_steps: int,
    options: SearchOptions,
    pseudo: float,
    first_z: float | None = None,
) -> list[Step]:
    """Greedy picks, best first (the acceptance thresholds are applied by the caller).

    Event counts (``pseudo`` > 0, ratio metrics) may descend by their counts
    (``_descend_counts``) and, when the ripple score finds no first cause it can accept, the
    segment with the strongest count evidence is the first cause if that evidence passes
    (``_count_pick``).
    """
    state = _State(
        observed=scores.observed,
        expected=scores.expected,
        sd=np.where(scores.sd > 0, scores.sd, np.inf),
        active=np.isfinite(scores.sd) & (scores.sd > 0),
        floor=scores.floor,
    )
    counts = pseudo > 0 and COUNT_EVIDENCE
    by_dims = {c.dims: c for c in cuboids}
    steps: list[Step] = []
    claimed: list[np.ndarray] = []  # per pick, the leaves it explained
    start = state.active.copy()
    for _ in range(max_steps):
        if not state.active.any():
            break
        best = _best_cell(cuboids=cuboids, state=state, options=options, pseudo=pseudo)
        step = None
        if best is not None:
            dims, values, score = best
            member = _members(by_dims=by_dims, dims=dims, values=values)
            spread = _segment_spread(cuboids=cuboids, state=state, exclude=member)
            dims, values = _refine(
                dims=dims, values=values, by_dims=by_dims, state=state, options=options,
                pseudo=pseudo, spread=spread if counts else None,
            )
            if counts:
                dims, values = _descend_counts(
                    dims=dims, values=values, codes=codes, state=state, options=options,
                    pseudo=pseudo, spread=spread,
                )
            member = _members(by_dims=by_dims, dims=dims, values=values)
            z = _segment_z(state=state, member=member & state.active, spread=spread)
            bar = (
                _first_bar(cuboids=cuboids, state=state, member=member & state.active,
                           spread=spread)
                if FAMILY_OF_EXPLAINERS and not steps else 0.0
            )
            step = Step(dims=dims, values=values, score=score, z=z, bar=bar)
        if counts and not steps and (
            step is None
            or step.z < max(options.first_z if first_z is None else first_z, step.bar)
            or step.score < options.first_score
        ):
            step = _count_pick(
                cuboids=cuboids, codes=codes, state=state, options=options, pseudo=pseudo
            ) or step
        if step is None:
            break
        steps.append(step)
        claimed.append(_members(by_dims=by_dims, dims=step.dims, values=step.values) & state.active)
        state.active &= ~claimed[-1]
    if RESCORE and len(steps) > 1:
        steps = _rescore(steps=steps, claimed=claimed, cuboids=cuboids, state=state, start=start)
    return steps


def _rescore(
    steps: list[Step], claimed: list[np.ndarray], cuboids: list[Cuboid], state: _State,
    start: np.ndarray,
) -> list[Step]:
    """Each pick's z against the segment noise of the leaves that no pick claims.

    A pick's own z is deflated by the spread of one-dimension segments around it, and while
    another cause is still unexplained that spread measures the other cause, not the noise
    (p2p=p2 beside bitrate=b4: every cdn and device moved with b4, spread 14 instead of 1).
    """
    every = np.logical_or.reduce(claimed)
    rest = _State(observed=state.observed, expected=state.expected, sd=state.sd,
                  active=start.copy(), floor=state.floor)
    spread = _segment_spread(cuboids=cuboids, state=rest, exclude=every)
    out = []
    for step, member in zip(steps, claimed):
        z = _segment_z(state=rest, member=member, spread=spread)
        out.append(Step(dims=step.dims, values=step.values, score=step.score, z=z,
                        counted=step.counted, bar=step.bar))
    return out


def _first_bar(
    cuboids: list[Cuboid], state: _State, member: np.ndarray, spread: float
) -> float:
    """z the first pick needs: Bonferroni over the segments that could be the first cause.

    The first cause is the segment that explains most of the total's move, so it explains
    at least ``_FIRST_SHARE`` of it (see there), its way. The candidates are every cell, of
    every cuboid, whose change explains that much: when the total moved, the cause and the
    few segments around it, so a real cause of modest z is kept (Bonferroni over all ~5,000
    segments dropped one). A pick that is not a candidate (it moved against the total, or
    explains a sliver) is judged as one of all the segments, and so is any pick while the
    total is within its noise (z under 1.96, ``FAMILY_ALPHA``): there is no move to explain,
    and worlds without a cause stay quiet as the segments grow in number. Each family is
    tested at ``FAMILY_ALPHA``, so together they name a false cause at most twice that often.
    """
    deviation = np.where(state.active, state.observed - state.expected, 0.0)
    total = float(deviation.sum())
    every = count_evidence.z_threshold(sum(c.n_cells for c in cuboids))
    if total == 0.0 or float(deviation[member].sum()) / total < _FIRST_SHARE:
        return every  # not among the candidates: one of all segments
    if _segment_z(state=state, member=state.active, spread=spread) < count_evidence.z_threshold(1):
        return every  # the total is within its noise: no move to explain narrows the search
    candidates = 0
    for cuboid in cuboids:
        cells = np.bincount(cuboid.cell, weights=deviation, minlength=cuboid.n_cells)
        candidates += int(np.count_nonzero(cells / total >= _FIRST_SHARE))
    return count_evidence.z_threshold(candidates)


def _leaf_variance(state: _State) -> np.ndarray:
    """Per leaf, the variance that adds up over a segment (without the one-event floor)."""
    return np.where(np.isfinite(state.sd), state.sd**2 - state.floor, 0.0)


def _count_pick(
    cuboids: list[Cuboid], codes: np.ndarray, state: _State, options: SearchOptions, pseudo: float
) -> Step | None:
    """The segment whose event counts moved most surely (thin data), if that passes.

    Every cell of every cuboid gets the deviance of its total events against its expected
    events (``count_evidence``), deflated like the z-scores by the spread of one-dimension
    segments; the best must pass Bonferroni over all cells searched. Ties go to the lower
    layer; the pick is then refined by its counts.
    """
    weight = state.active.astype(float)
    observed, expected = state.observed * weight, state.expected * weight
    variance = _leaf_variance(state) * weight
    best, searched = None, 0
    for cuboid in cuboids:
        o = np.bincount(cuboid.cell, weights=observed, minlength=cuboid.n_cells)
        e = np.bincount(cuboid.cell, weights=expected, minlength=cuboid.n_cells)
        v = np.bincount(cuboid.cell, weights=variance, minlength=cuboid.n_cells)
        dev = count_evidence.segment_deviance(o, e, v)
        searched += cuboid.n_cells
        cell = int(np.argmax(dev))
        if dev[cell] > 0 and (best is None or dev[cell] > best[2] * (1 + 1e-9)):
            best = (cuboid.dims, tuple(int(x) for x in cuboid.cell_values[cell]), float(dev[cell]))
    if best is None:
        return None
    dims, values, dev = best
    member = _segment_mask(codes=codes, dims=dims, values=values)
    spread = _segment_spread(cuboids=cuboids, state=state, exclude=member)
    if dev / spread**2 < count_evidence.threshold(searched):
        return None
    by_dims = {c.dims: c for c in cuboids}
    dims, values = _refine(
        dims=dims, values=values, by_dims=by_dims, state=state, options=options, pseudo=pseudo,
        spread=spread,
    )
    dims, values = _descend_counts(
        dims=dims, values=values, codes=codes, state=state, options=options, pseudo=pseudo,
        spread=spread,
    )
    member = _segment_mask(codes=codes, dims=dims, values=values) & state.active
    z = _segment_z(state=state, member=member, spread=spread)
    return Step(dims=dims, values=values, score=0.0, z=z, counted=True)


def _count_child_evidence(
    state: _State, child: np.ndarray, parent: np.ndarray, options: SearchOptions, pseudo: float,
    spread: float,
) -> float:
    """``count_evidence.child_evidence`` of one child (a leaf mask) against its parent."""
    if not (parent & ~child).any():
        return -np.inf  # no siblings: the coarser name says the same
    variance = _leaf_variance(state)

    def totals(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        columns = (state.observed, state.expected, variance)
        return tuple(np.asarray([float(x[mask].sum())]) for x in columns)

    o_p, e_p, v_p = (float(x[0]) for x in totals(parent))
    evidence, moved = count_evidence.child_evidence(totals(child), (o_p, e_p, v_p), pseudo)
    return float(_beats_parent(evidence, moved, spread, options)[0])


def _uneven_parents(
    steps: list[Step], codes: np.ndarray, scores: LeafScores, options: SearchOptions
) -> list[Step]:
    """Each cause replaced by its parent while the parent's other leaves moved with it.

    The capped leaf score and ``_refine`` keep a child when its siblings reject the child's own
    factor. A cause rarely hits every leaf alike, though: when cdn=5 x p2p=0 stalls x40 on one
    bitrate, x30 on another and not at all on a third, the quiet leaves reject x40 and the
    loudest bitrate is named, yet the cdn is the cause (RS case103; the next bitrate's few
    leaves do not pass as a second cause). So, once the causes are known, a cause climbs to a
    parent when
    the siblings' events (the leaves of the other causes left out, they moved for their own
    reason) moved significantly, the cause's way, and closer to the cause's factor than to no
    change (quasi-Poisson deviance, ``count_evidence``). The siblings of a child that is the
    cause stayed put, or moved by far less: x1.6 beside x11. A parent that overlaps another
    cause is not named (the two would claim the same leaves).
    """
    valid = np.isfinite(scores.sd) & (scores.sd > 0)
    variance = np.where(valid, scores.sd**2 - scores.floor, 0.0)
    masks = [_segment_mask(codes, s.dims, s.values) for s in steps]
    out = list(steps)
    for i, step in enumerate(steps):
        others = np.zeros(len(codes), dtype=bool)
        for j, m in enumerate(masks):
            if j != i:
                others |= m
        dims, values = step.dims, step.values
        while len(dims) > 1:
            child = _segment_mask(codes, dims, values) & valid & ~others
            best = None
            for drop in range(len(dims)):
                p_dims = dims[:drop] + dims[drop + 1 :]
                p_values = values[:drop] + values[drop + 1 :]
                parent = _segment_mask(codes, p_dims, p_values)
                if (parent & others).any():
                    continue
                moved = _siblings_followed(
                    observed=scores.observed, expected=scores.expected, variance=variance,
                    child=child, siblings=parent & valid & ~child, options=options,
                )
                if moved is not None and (best is None or moved > best[2]):
                    best = (p_dims, p_values, moved)
            if best is None:
                break
            dims, values = best[0], best[1]
        if dims != step.dims:
            out[i] = Step(dims=dims, values=values, score=step.score, z=step.z,
                          counted=step.counted)
    return out


def _siblings_followed(
    observed: np.ndarray, expected: np.ndarray, variance: np.ndarray, child: np.ndarray,
    siblings: np.ndarray, options: SearchOptions,
) -> float | None:
    """The siblings' deviance from "unchanged" when they moved with the child (see
    ``_uneven_parents``), else None."""
    if not siblings.any() or not child.any():
        return None
    o_a, e_a = float(observed[child].sum()), float(expected[child].sum())
    o_b, e_b = float(observed[siblings].sum()), float(expected[siblings].sum())
    if e_a <= 0 or e_b <= 0 or (o_b - e_b) * (o_a - e_a) <= 0:
        return None
    phi = count_evidence.dispersion(
        np.asarray([e_b]), np.asarray([float(variance[siblings].sum())])
    )
    k_a = float(count_evidence.factor(np.asarray(o_a), np.asarray(e_a), 1.0))
    unchanged = float(count_evidence.deviance(np.asarray([o_b]), np.asarray([e_b]), phi)[0])
    like_child = float(
        count_evidence.deviance(np.asarray([o_b]), np.asarray([k_a * e_b]), phi)[0]
    )
    if unchanged >= options.child_evidence and like_child < unchanged:
        return unchanged
    return None


def _beats_parent(
    evidence: np.ndarray, siblings_moved: np.ndarray, spread: float, options: SearchOptions
) -> np.ndarray:
    """Evidence for a child over its parent, deflated by the spread; -inf when the siblings
    moved significantly themselves (by another factor: the parent moved, unevenly). That test
    is not deflated: doubt about the siblings' move keeps the coarser name."""
    return np.where(siblings_moved < options.child_evidence, evidence / spread**2, -np.inf)


def _segment_mask(codes: np.ndarray, dims: tuple[int, ...], values: tuple[int, ...]) -> np.ndarray:
    return np.all(codes[:, list(dims)] == np.asarray(values, dtype=codes.dtype), axis=1)


def _descend_counts(
    dims: tuple[int, ...],
    values: tuple[int, ...],
    codes: np.ndarray,
    state: _State,
    options: SearchOptions,
    pseudo: float,
    spread: float,
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A child instead of the pick when its counts say so (after ``_refine`` climbed).

    A dimension is added only when the data reject the pick's uniform move across it: "only
    the child moved" beats "the pick moved by one factor" by twice a log-likelihood ratio of
    ``child_evidence`` (``count_evidence.child_evidence``, deflated by the segment spread), and
    the child's siblings did not significantly move themselves (if they did, by another factor,
    the pick moved unevenly and is still the cause). The test's power follows the siblings'
    expected events: on thin data it cannot reject a uniform move and the pick stays. We
    descend while some child beats its parent, to the one with the most evidence.
    """
    active = state.active
    observed, expected = state.observed, state.expected
    variance = _leaf_variance(state)

    def totals(mask: np.ndarray) -> tuple[float, float, float]:
        return float(observed[mask].sum()), float(expected[mask].sum()), float(variance[mask].sum())

    while True:
        parent = _segment_mask(codes, dims, values) & active
        o_p, e_p, v_p = totals(parent)
        best = None
        for d in range(codes.shape[1]):
            if d in dims:
                continue
            value_of = codes[parent, d]
            n = int(codes[:, d].max()) + 1
            o = np.bincount(value_of, weights=observed[parent], minlength=n)
            e = np.bincount(value_of, weights=expected[parent], minlength=n)
            v = np.bincount(value_of, weights=variance[parent], minlength=n)
            leaves = np.bincount(value_of, minlength=n)
            found = _beats_parent(
                *count_evidence.child_evidence((o, e, v), (o_p, e_p, v_p), pseudo), spread, options
            )
            found[(leaves == 0) | (leaves == parent.sum())] = -np.inf  # absent, or no siblings
            j = int(np.argmax(found))
            if found[j] >= options.child_evidence and (best is None or found[j] > best[2]):
                best = (d, j, float(found[j]))
        if best is None:
            break
        pairs = sorted([*zip(dims, values), (best[0], best[1])])
        dims, values = tuple(p[0] for p in pairs), tuple(p[1] for p in pairs)
    return dims, values


def _best_cell(
    cuboids: list[Cuboid], state: _State, options: SearchOptions, pseudo: float
) -> tuple[tuple[int, ...], tuple[int, ...], float] | None:
    """Highest-scoring cell over all cuboids; ties go to the lower layer (more succinct)."""
    weight = state.active.astype(float)
    leaf = _LeafTerms(
        observed=state.observed * weight,
        expected=state.expected * weight,
        unit=state.expected / (options.clip * state.sd) * weight,
        moved=np.clip((state.observed - state.expected) / (options.clip * state.sd), -1.0, 1.0),
    )
    best = None
    for cuboid in cuboids:  # ordered by layer
        cell_scores = _ripple_scores(
            cuboid=cuboid, leaf=leaf, miss_cost=options.miss_cost, pseudo=pseudo
        )
        cell = int(np.argmax(cell_scores))
        score = float(cell_scores[cell])
        if score > 0 and (best is None or score > best[2] * (1 + 1e-9)):
            best = (cuboid.dims, tuple(int(v) for v in cuboid.cell_values[cell]), score)
    return best


@dataclass(frozen=True)
class _LeafTerms:
    """Per-leaf inputs of the ripple score for one search step (inactive leaves zeroed)."""

    observed: np.ndarray
    expected: np.ndarray
    unit: np.ndarray  # predicted move, in clip units, per unit of (k - 1)
    moved: np.ndarray  # observed move in clip units, capped to [-1, 1]


def _ripple_scores(
    cuboid: Cuboid, leaf: _LeafTerms, miss_cost: float, pseudo: float
) -> np.ndarray:
    """Capped ripple score of every cell of a cuboid (see the module docstring, point 2)."""
    big_o = np.bincount(cuboid.cell, weights=leaf.observed, minlength=cuboid.n_cells)
    big_e = np.bincount(cuboid.cell, weights=leaf.expected, minlength=cuboid.n_cells)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(big_e > 0, (big_o + pseudo) / (big_e + pseudo), 1.0)
    predicted = np.clip((factor - 1.0)[cuboid.cell] * leaf.unit, -1.0, 1.0)
    gain = (2.0 * leaf.moved - miss_cost * predicted) * predicted
    return np.bincount(cuboid.cell, weights=gain, minlength=cuboid.n_cells)


def _refine(
    dims: tuple[int, ...],
    values: tuple[int, ...],
    by_dims: dict[tuple[int, ...], Cuboid],
    state: _State,
    options: SearchOptions,
    pseudo: float,
    spread: float | None = None,
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The coarsest segment around the pick that explains the change.

    The capped score favours the purest segment: on thin data a child of the real cause can
    look purest by chance (country x web x one account age, where every account age was hit
    alike). A child is named instead of its parent only if it explains the change at least as
    well and the parent's other leaves significantly reject the move the child predicts for
    them (see ``_child_evidence``), or - for event counts (``spread`` given) - their total
    events do (``_count_child_evidence``: thin leaves cannot tell one by one, their sum can);
    when they moved too, or are too thin to tell, the parent is named. We climb while some
    parent is not beaten, to the one with the least evidence against it. The reverse step is
    ``_descend_counts`` (event counts only: with the capped leaf evidence it never changed an
    answer on B0, RS or the thin synthetic worlds).
    """
    while len(dims) > 1:
        own = _members(by_dims=by_dims, dims=dims, values=values) & state.active
        best = None
        for drop in range(len(dims)):
            p_dims, p_values = dims[:drop] + dims[drop + 1 :], values[:drop] + values[drop + 1 :]
            parent = _members(by_dims=by_dims, dims=p_dims, values=p_values) & state.active
            evidence = float(
                _child_evidence(
                    state=state, parent=parent, children=own[None, parent], options=options,
                    pseudo=pseudo,
                )[0]
            )
            if spread is not None:  # counts: their own evidence may keep the child too
                evidence = max(evidence, _count_child_evidence(
                    state=state, child=own, parent=parent, options=options, pseudo=pseudo,
                    spread=spread,
                ))
            if evidence < options.child_evidence and (best is None or evidence < best[2]):
                best = (p_dims, p_values, evidence)
        if best is None:
            break
        dims, values = best[0], best[1]
    return dims, values


def _child_evidence(
    state: _State,
    parent: np.ndarray,
    children: np.ndarray,
    options: SearchOptions,
    pseudo: float,
) -> np.ndarray:
    """Evidence for naming each child instead of ``parent`` (a leaf mask); ``children`` holds
    one row per child, a mask over the parent's leaves (in leaf order).

    Per leaf, the capped ripple gain g = 2ap - p^2 (module docstring, point 2) is, before
    capping, the log-likelihood ratio of "moved as predicted" over "unchanged" in units of
    1/clip^2 of its noise. So -clip^2 x the gain of the child's siblings under the child's own
    factor is twice the log-likelihood ratio of "the siblings did not move" over "they moved
    like the child": large only when they are well measured and stayed put; ~0 when they are
    thin; negative when they moved too (capping makes leaves that moved by more or less than
    the child's factor count as having moved). -inf when the child scores below its parent (it
    does not explain the change better) and when it has no siblings (the coarser name says the
    same).
    """
    idx = np.nonzero(parent)[0]  # only the parent's leaves matter
    siblings = ~children
    observed, expected, sd = state.observed[idx], state.expected[idx], state.sd[idx]
    unit = expected / (options.clip * sd)
    moved = np.clip((observed - expected) / (options.clip * sd), -1.0, 1.0)

    def predicted(factor: np.ndarray) -> np.ndarray:
        return np.clip((factor - 1.0)[:, None] * unit[None, :], -1.0, 1.0)

    k_child = _shrunk_factor(children @ observed, children @ expected, pseudo)
    k_parent = _shrunk_factor(np.asarray([observed.sum()]), np.asarray([expected.sum()]), pseudo)
    p_child = predicted(k_child)
    per_leaf = (2.0 * moved[None, :] - options.miss_cost * p_child) * p_child
    against = -(options.clip**2) * np.where(siblings, per_leaf, 0.0).sum(axis=1)
    own = np.where(children, per_leaf, 0.0).sum(axis=1)
    p_parent = predicted(k_parent)[0]
    whole = float(((2.0 * moved - options.miss_cost * p_parent) * p_parent).sum())
    against[(own < whole) | ~siblings.any(axis=1)] = -np.inf
    return against


def _shrunk_factor(observed: np.ndarray, expected: np.ndarray, pseudo: float) -> np.ndarray:
    """observed / expected with ``pseudo`` events on both sides (1 where nothing is expected)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(expected > 0, (observed + pseudo) / (expected + pseudo), 1.0)


def _segment_z(state: _State, member: np.ndarray, spread: float) -> float:
    """Absolute deviation of a segment in standard errors, deflated by the segment spread."""
    var = float(_segment_variance(state=state, members=member[None, :])[0])
    if var <= 0:
        return 0.0
    change = state.observed[member].sum() - state.expected[member].sum()
    return float(abs(change) / np.sqrt(var) / spread)


def _segment_variance(state: _State, members: np.ndarray) -> np.ndarray:
    """Noise variance of the sum of each segment (rows of a leaf mask): the leaves' variances
    add, their one-event floors do not (the largest one counts)."""
    finite = np.isfinite(state.sd)
    summable = np.where(finite, state.sd**2 - state.floor, 0.0)
    top = np.where(members & finite[None, :], state.floor[None, :], 0.0).max(axis=1, initial=0.0)
    return members @ summable + top


def _segment_spread(cuboids: list[Cuboid], state: _State, exclude: np.ndarray) -> float:
    """Robust scale (>= 1) of one-dimension segment z-scores among the unexplained leaves.

    Leaf noise is not independent in real data (a whole minute is a bit worse everywhere), so
    a segment's z under independence overstates its significance. Most one-dimension segments
    are normal, so the median |z| across them measures the real segment-level noise.
    """
    weight = (state.active & ~exclude).astype(float)
    deviation = (state.observed - state.expected) * weight
    finite = np.isfinite(state.sd)
    variance = np.where(finite, state.sd**2 - state.floor, 0.0) * weight
    floor = np.where(finite, state.floor, 0.0) * weight
    zs = []
    for cuboid in cuboids:
        if len(cuboid.dims) != 1:
            break
        dev = np.bincount(cuboid.cell, weights=deviation, minlength=cuboid.n_cells)
        var = np.bincount(cuboid.cell, weights=variance, minlength=cuboid.n_cells)
        top = np.zeros(cuboid.n_cells)
        np.maximum.at(top, cuboid.cell, floor)
        var = var + top
        zs.append(dev[var > 0] / np.sqrt(var[var > 0]))
    all_z = np.concatenate(zs) if zs else np.empty(0)
    if all_z.size < 3:
        return 1.0
    return float(max(1.0, np.median(np.abs(all_z)) / 0.6745))
