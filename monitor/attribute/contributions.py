"""Per-dimension contributions to a metric's change (before = expected, after = actual).

Sum metrics: a value's contribution is ``after - before`` of that value; its share is the
contribution divided by the total change. The contributions of one dimension add up to the total.

Ratio metrics (R = sum(num) / sum(den)): for segment i let s_i be its share of the denominator
(traffic share) and r_i its rate, so R = sum_i s_i r_i. The change R1 - R0 splits exactly into

    mix_i         = (s1_i - s0_i) * (r0_i - R0)     the segment's traffic share moved
    rate_i        = s0_i * (r1_i - r0_i)            the segment's own rate moved
    interaction_i = (s1_i - s0_i) * (r1_i - r0_i)   both at once

and sum_i (mix_i + rate_i + interaction_i) == R1 - R0, because sum_i (s1_i - s0_i) * R0 = 0.
Centring the mix effect on R0 means a segment with an average rate whose share moves contributes
~0 mix (it does not change the average), while a risky segment gaining share contributes
positively. A segment's contribution is mix + rate + interaction.

Segments present on one side only (rate undefined on the other side): any stand-in rate keeps
the sum exact (the undefined rate is always multiplied by a zero share), so we pick the reading
an analyst expects: a segment that appears (s0 = 0) is a pure mix effect with its new rate
(mix = s1 * (r1 - R0)); a segment that disappears (s1 = 0) is a pure mix effect with its old
rate (mix = -s0 * (r0 - R0)). Their rate and interaction parts are 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from monitor.attribute.leaves import LeafTable, normalise_leaves


@dataclass(frozen=True)
class Contribution:
    """One dimension value's part of the total change.

    ``before``/``after`` are the value's totals (sum) or rates (ratio; None when the segment has
    no traffic on that side). ``share_of_change`` is ``contribution / total change`` (None when
    the total did not change). Ratio metrics also carry the traffic shares and the mix / rate /
    interaction parts (``contribution == mix + rate + interaction``).
    """

    value: str
    before: float | None
    after: float | None
    contribution: float
    share_of_change: float | None
    share_before: float | None = None
    share_after: float | None = None
    mix: float | None = None
    rate: float | None = None
    interaction: float | None = None


@dataclass(frozen=True)
class Totals:
    """The metric before and after: totals (sum) or overall rates (ratio; None if no traffic)."""

    before: float | None
    after: float | None

    @property
    def change(self) -> float | None:
        if self.before is None or self.after is None:
            return None
        return self.after - self.before


def contributions_by_dimension(
    leaves: pd.DataFrame, dimensions: list[str] | tuple[str, ...], kind: str
) -> dict[str, list[Contribution]]:
    """For every dimension, each value's contribution to the change, largest first."""
    table = normalise_leaves(leaves=leaves, dimensions=dimensions, kind=kind)
    return {dim: dimension_contributions(table=table, dimension=dim) for dim in table.dimensions}


def totals(table: LeafTable) -> Totals:
    num0, den0, num1, den1 = table.before_after()
    if table.kind == "sum":
        return Totals(before=float(num0.sum()), after=float(num1.sum()))
    return Totals(before=_rate(num0.sum(), den0.sum()), after=_rate(num1.sum(), den1.sum()))


def dimension_contributions(table: LeafTable, dimension: str) -> list[Contribution]:
    """Contributions of every value of ``dimension``, sorted by |contribution| (then value)."""
    j = table.dimensions.index(dimension)
    codes, labels = table.codes[:, j], table.labels[j]
    sums = [
        np.bincount(codes, weights=column, minlength=len(labels))
        for column in table.before_after()
    ]
    if table.kind == "sum":
        rows = _sum_contributions(labels=labels, before=sums[0], after=sums[2])
    else:
        rows = _ratio_contributions(
            labels=labels, num0=sums[0], den0=sums[1], num1=sums[2], den1=sums[3]
        )
    return sorted(rows, key=lambda c: (-abs(c.contribution), c.value))


def ratio_effects(
    num0: np.ndarray, den0: np.ndarray, num1: np.ndarray, den1: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per segment (mix, rate, interaction); they sum to R1 - R0 over all segments.

    Returns zeros when either side has no traffic at all (the overall rate is undefined).
    """
    num0, den0, num1, den1 = (np.asarray(a, dtype=float) for a in (num0, den0, num1, den1))
    total0, total1 = den0.sum(), den1.sum()
    if total0 <= 0 or total1 <= 0:
        zeros = np.zeros_like(den0)
        return zeros, zeros.copy(), zeros.copy()
    s0, s1 = den0 / total0, den1 / total1
    overall0 = num0.sum() / total0
    with np.errstate(divide="ignore", invalid="ignore"):
        r0 = np.where(den0 > 0, num0 / den0, np.nan)
        r1 = np.where(den1 > 0, num1 / den1, np.nan)
    # Stand-in rates for one-sided segments (see module docstring): appearing -> own new rate,
    # disappearing -> own old rate; both absent -> the overall rate (all parts are 0 anyway).
    r0 = np.where(np.isnan(r0), np.where(np.isnan(r1), overall0, r1), r0)
    r1 = np.where(np.isnan(r1), r0, r1)
    mix = (s1 - s0) * (r0 - overall0)
    rate = s0 * (r1 - r0)
    interaction = (s1 - s0) * (r1 - r0)
    return mix, rate, interaction


def segment_effects(table: LeafTable, member: np.ndarray) -> tuple[float, float, float]:
    """(mix, rate, interaction) of one segment against the rest of the traffic (ratio only)."""
    num0, den0, num1, den1 = table.before_after()
    pair = [np.asarray([col[member].sum(), col[~member].sum()]) for col in (num0, den0, num1, den1)]
    mix, rate, interaction = ratio_effects(*pair)
    return float(mix[0]), float(rate[0]), float(interaction[0])


def _sum_contributions(
    labels: np.ndarray, before: np.ndarray, after: np.ndarray
) -> list[Contribution]:
    change = float(after.sum() - before.sum())
    contribution = after - before
    return [
        Contribution(
            value=str(label),
            before=float(b),
            after=float(a),
            contribution=float(c),
            share_of_change=_share(c, change),
        )
        for label, b, a, c in zip(labels, before, after, contribution)
    ]


def _ratio_contributions(
    labels: np.ndarray, num0: np.ndarray, den0: np.ndarray, num1: np.ndarray, den1: np.ndarray
) -> list[Contribution]:
    mix, rate, interaction = ratio_effects(num0, den0, num1, den1)
    overall0, overall1 = _rate(num0.sum(), den0.sum()), _rate(num1.sum(), den1.sum())
    change = None if overall0 is None or overall1 is None else overall1 - overall0
    total0, total1 = den0.sum(), den1.sum()
    rows = []
    for i, label in enumerate(labels):
        contribution = float(mix[i] + rate[i] + interaction[i])
        rows.append(
            Contribution(
                value=str(label),
                before=_rate(num0[i], den0[i]),
                after=_rate(num1[i], den1[i]),
                contribution=contribution,
                share_of_change=_share(contribution, change),
                share_before=float(den0[i] / total0) if total0 > 0 else None,
                share_after=float(den1[i] / total1) if total1 > 0 else None,
                mix=float(mix[i]),
                rate=float(rate[i]),
                interaction=float(interaction[i]),
            )
        )
    return rows


def _rate(num: float, den: float) -> float | None:
    return float(num) / float(den) if den > 0 else None


def _share(part: float, whole: float | None) -> float | None:
    if whole is None or whole == 0:
        return None
    return float(part) / float(whole)
