"""One incident's attribution: what moved, how much, which segments, mix or rate.

``explain`` combines the per-dimension decomposition (``contributions_by_dimension``) with the root causes found by
``localize`` into an :class:`Explanation`, a frozen value that round-trips through JSON
(``to_dict`` / ``from_dict``) and reads as one line (``summary``).

Mix or rate (ratio metrics). The mix / rate / interaction split depends on how the traffic is
cut: with no cut everything is "rate"; a cut along the dimension whose traffic shares actually
moved reveals the mix. We therefore report the split of the dimension with the largest absolute
mix effect (named in ``split.dimension``); over its values mix + rate + interaction equals the
total change exactly. Verdict, with M = |mix| + |rate| + |interaction| of that split:
``"mix"`` if |mix| >= 3/4 M, ``"rate"`` if |rate| + |interaction| >= 3/4 M, else ``"mix"`` when
rate + interaction is within 2 binomial standard errors of 0 (``split.rate_se``: the segments'
rates moved no more than sampling noise moves them), else ``"mixed"``. Under a "mix" verdict the
first cause is the split dimension's value whose share moved the total most.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from monitor.attribute.contributions import (
    Contribution,
    Totals,
    dimension_contributions,
    segment_effects,
    totals,
)
from monitor.attribute.leaves import LeafTable, normalise_leaves
from monitor.attribute.localize import localize_table
from monitor.format import format_delta, format_rate, format_relative, format_share, format_value
from monitor.slices import slice_text

VERDICT_SHARE = 0.75  # share of the split's magnitude needed for a clear "mix" / "rate" verdict
RATE_NOISE_Z = 2.0  # a rate part within this many standard errors of 0 is sampling noise


@dataclass(frozen=True)
class DimensionBreakdown:
    """All values of one dimension with their contributions, largest first."""

    dimension: str
    values: tuple[Contribution, ...]
    mix: float | None = None  # ratio: sums over the values
    rate: float | None = None
    interaction: float | None = None
    rate_se: float | None = None  # ratio: binomial standard error of rate + interaction


@dataclass(frozen=True)
class MixRateSplit:
    """The overall split of a ratio change, cut along ``dimension``."""

    dimension: str
    mix: float
    rate: float
    interaction: float
    rate_se: float | None = None  # binomial standard error of rate + interaction


@dataclass(frozen=True)
class RootCause:
    """A segment from ``localize`` with what it explains.

    ``explained_share``: the segment's part of the total change (its contribution against the rest
    of the traffic, / total change). ``size``: its share of the volume (denominator for ratio,
    of the total for sum) after the change. ``before``/``after``: its total (sum) or rate (ratio).
    ``change_type`` (ratio): "rate" if the segment's own rate moved more than its traffic share
    mattered, else "mix".
    """

    segment: dict[str, str]
    explained_share: float | None
    size: float | None
    before: float | None
    after: float | None
    change_type: str | None = None

    def label(self) -> str:
        return slice_text(self.segment)


@dataclass(frozen=True)
class Explanation:
    kind: str
    baseline_label: str
    metric_label: str
    before: float | None
    after: float | None
    change: float | None
    relative_change: float | None  # change / |before|; None when before is 0 or undefined
    dimensions: tuple[DimensionBreakdown, ...]
    split: MixRateSplit | None  # ratio only
    verdict: str | None  # ratio only: "rate" | "mix" | "mixed"; None when nothing moved
    causes: tuple[RootCause, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (dicts, lists, str, float, None)."""
        return _plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Explanation:
        dims = tuple(
            DimensionBreakdown(
                dimension=d["dimension"],
                values=tuple(Contribution(**v) for v in d["values"]),
                mix=d.get("mix"),
                rate=d.get("rate"),
                interaction=d.get("interaction"),
                rate_se=d.get("rate_se"),
            )
            for d in data["dimensions"]
        )
        split = MixRateSplit(**data["split"]) if data.get("split") else None
        causes = tuple(
            RootCause(**{**c, "segment": dict(c["segment"])}) for c in data.get("causes", ())
        )
        scalars = {
            k: data[k]
            for k in (
                "kind", "baseline_label", "metric_label", "before", "after", "change",
                "relative_change", "verdict",
            )
        }
        return cls(**scalars, dimensions=dims, split=split, causes=causes)

    def summary(self) -> str:
        """One line for a Slack alert or a report row."""
        head = f"{self.metric_label} {_describe_change(self)} vs {self.baseline_label}"
        if not self.change:
            return head
        parts = [head, _describe_causes(self)]
        if self.kind in ("ratio", "mean", "distribution"):
            parts.append(_describe_mix(self))
        return "; ".join(p for p in parts if p)


def explain(
    leaves: pd.DataFrame,
    dimensions: list[str] | tuple[str, ...],
    kind: str,
    *,
    baseline_label: str,
    max_causes: int = 3,
    metric_label: str | None = None,
) -> Explanation:
    """Explain the change from ``expected`` (the baseline) to ``actual`` in ``leaves``.

    ``baseline_label`` says which baseline produced ``expected`` (e.g. "same weekday last week",
    "trailing 4-week median", "detector expected value"); ``metric_label`` names the metric in
    the summary (default: "metric").
    """
    # a mean is sum/count, so its leaves split into mix and rate exactly as a ratio's do
    # (columns actual_num = value sum, actual_den = count); only the binomial noise of the
    # rates does not apply to it
    mean = kind == "mean"
    table = normalise_leaves(leaves=leaves, dimensions=dimensions, kind="ratio" if mean else kind)
    total = totals(table) if len(table) else Totals(before=None, after=None)
    breakdowns = tuple(_breakdown(table=table, dimension=d) for d in table.dimensions)
    if mean:
        breakdowns = tuple(replace(b, rate_se=None) for b in breakdowns)
    split = _best_split(breakdowns) if kind in ("ratio", "mean") and len(table) else None
    # a mean's segments are searched on value sums against what each leaf's own baseline
    # mean predicts at its actual count: what moved beyond traffic (the binomial search
    # of a ratio does not fit values)
    search = _mean_search_table(leaves, dimensions) if mean else table
    causes = tuple(
        _root_cause(table=table, segment=segment, total=total)
        for segment in localize_table(table=search, max_causes=max_causes)
    )
    change = total.change
    verdict = _verdict(split=split, change=change) if kind in ("ratio", "mean") else None
    if verdict == "mix":
        causes = _mix_driver_first(table, breakdowns, split, total, causes)[:max_causes]
    return Explanation(
        kind=kind,
        baseline_label=baseline_label,
        metric_label=metric_label or "metric",
        before=total.before,
        after=total.after,
        change=change,
        relative_change=(
            change / abs(total.before) if change is not None and total.before else None
        ),
        dimensions=breakdowns,
        split=split,
        verdict=verdict,
        causes=causes,
    )


def _mean_search_table(leaves: pd.DataFrame, dimensions) -> LeafTable:
    with np.errstate(invalid="ignore", divide="ignore"):
        before = leaves["expected_num"] / leaves["expected_den"]
    overall = leaves["expected_num"].sum() / max(leaves["expected_den"].sum(), 1e-12)
    expected = leaves["actual_den"] * before.where(leaves["expected_den"] > 0, overall)
    frame = leaves[list(dimensions)].assign(actual=leaves["actual_num"], expected=expected.fillna(0.0))
    return normalise_leaves(leaves=frame, dimensions=dimensions, kind="sum")


def _mix_driver_first(table: LeafTable, breakdowns: tuple[DimensionBreakdown, ...], split: MixRateSplit | None,
                      total: Totals, causes: tuple[RootCause, ...]) -> tuple[RootCause, ...]:
    """Under a "mix" verdict the root cause is the value whose traffic share moved the total
    most (country=NG doubling its share), not a small segment the localiser found on rates:
    it leads, and the localiser's causes follow."""
    dim = next((b for b in breakdowns if split is not None and b.dimension == split.dimension), None)
    if dim is None or not dim.values:
        return causes
    top = max(dim.values, key=lambda v: abs(v.mix or 0.0))
    if not top.mix:
        return causes
    driver = _root_cause(table=table, segment={dim.dimension: top.value}, total=total)
    return (driver, *(c for c in causes if c.segment != driver.segment))


def _breakdown(table: LeafTable, dimension: str) -> DimensionBreakdown:
    values = tuple(dimension_contributions(table=table, dimension=dimension))
    if table.kind != "ratio":
        return DimensionBreakdown(dimension=dimension, values=values)
    _, den0, _, den1 = table.before_after()
    return DimensionBreakdown(
        dimension=dimension,
        values=values,
        mix=math.fsum(v.mix or 0.0 for v in values),
        rate=math.fsum(v.rate or 0.0 for v in values),
        interaction=math.fsum(v.interaction or 0.0 for v in values),
        rate_se=_rate_se(values, float(den0.sum()), float(den1.sum())),
    )


def _rate_se(values: tuple[Contribution, ...], total0: float, total1: float) -> float | None:
    """Standard error of rate + interaction = sum of s1 (r1 - r0) over the values, from the
    binomial noise of each value's rates: how large a "rate change" pure sampling makes."""
    var = 0.0
    for v in values:
        if v.before is None or v.after is None or not v.share_before or not v.share_after:
            continue
        n0, n1 = v.share_before * total0, v.share_after * total1
        var += v.share_after ** 2 * (v.after * (1 - v.after) / n1 + v.before * (1 - v.before) / n0)
    return math.sqrt(var) if total0 > 0 and total1 > 0 and var >= 0 else None  # a mean: not binomial


def _best_split(breakdowns: tuple[DimensionBreakdown, ...]) -> MixRateSplit | None:
    """The dimension whose traffic shares moved the most (largest |mix|), see module docstring."""
    if not breakdowns:
        return None
    best = max(breakdowns, key=lambda b: abs(b.mix or 0.0))
    return MixRateSplit(
        dimension=best.dimension,
        mix=best.mix or 0.0,
        rate=best.rate or 0.0,
        interaction=best.interaction or 0.0,
        rate_se=best.rate_se,
    )


def _verdict(split: MixRateSplit | None, change: float | None) -> str | None:
    if split is None or not change:
        return None
    magnitude = abs(split.mix) + abs(split.rate) + abs(split.interaction)
    if magnitude == 0:
        return None
    if abs(split.mix) >= VERDICT_SHARE * magnitude:
        return "mix"
    if abs(split.rate) + abs(split.interaction) >= VERDICT_SHARE * magnitude:
        return "rate"
    if split.rate_se is not None and abs(split.rate + split.interaction) < RATE_NOISE_Z * split.rate_se:
        # the segments' rates moved no more than sampling noise moves them: the shares did it
        return "mix"
    return "mixed"


def _root_cause(table: LeafTable, segment: dict[str, str], total: Totals) -> RootCause:
    member = table.segment(segment)
    num0, den0, num1, den1 = table.before_after()
    change = total.change
    if table.kind == "sum":
        before, after = float(num0[member].sum()), float(num1[member].sum())
        whole = float(np.abs(num1).sum())
        return RootCause(
            segment=segment,
            explained_share=(after - before) / change if change else None,
            size=float(np.abs(num1[member]).sum()) / whole if whole > 0 else None,
            before=before,
            after=after,
        )
    mix, rate, interaction = segment_effects(table=table, member=member)
    d0, d1 = float(den0[member].sum()), float(den1[member].sum())
    return RootCause(
        segment=segment,
        explained_share=(mix + rate + interaction) / change if change else None,
        size=d1 / float(den1.sum()) if den1.sum() > 0 else None,
        before=float(num0[member].sum()) / d0 if d0 > 0 else None,
        after=float(num1[member].sum()) / d1 if d1 > 0 else None,
        change_type="rate" if abs(rate + interaction) > abs(mix) else "mix",
    )


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_ATOMS = (float, int, str, bool, type(None))


def _plain(value: Any) -> Any:
    """Dataclasses -> dicts and tuples -> lists, recursively. Not ``asdict``: with 60,000
    leaves its deep copies took most of an incident's attribution time."""
    kind = type(value)
    if kind in _ATOMS:
        return value
    names = _FIELD_NAMES.get(kind)
    if names is None and is_dataclass(value) and not isinstance(value, type):
        names = _FIELD_NAMES.setdefault(kind, tuple(f.name for f in fields(value)))
    if names is not None:
        return {name: _plain(getattr(value, name)) for name in names}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------
# Summary wording


def _describe_change(e: Explanation) -> str:
    if not e.change:
        return "did not move"
    if e.relative_change is not None:
        return format_relative(e.relative_change)
    return (f"{format_delta(e.change, kind=e.kind)} (from {format_value(e.before, kind=e.kind)} "
            f"to {format_value(e.after, kind=e.kind)})")


def _describe_causes(e: Explanation) -> str:
    if not e.causes:
        # A pure mix shift has no segment to blame; the mix clause says what moved.
        return "" if e.verdict == "mix" else "no single segment explains it"
    top = e.causes[0]
    if top.explained_share is None:
        return f"mostly {top.label()}"
    return f"{format_share(top.explained_share)} of it is {top.label()}"


def _describe_mix(e: Explanation) -> str:
    rate = {"mean": "mean", "distribution": "distribution"}.get(e.kind, "rate")
    if e.verdict == "rate":
        if e.causes and e.causes[0].change_type == "rate":
            return f"traffic mix did not move, the segment's own {rate} did"
        return f"traffic mix did not move, segment {rate}s did"
    mover = _top_mix_value(e)
    if e.verdict == "mix":
        return f"segment {rate}s did not move, traffic mix did{mover}"
    if e.verdict == "mixed" and e.split is not None and e.change:
        mix_share = e.split.mix / e.change
        return f"both moved: traffic mix {format_share(mix_share)} of it{mover}, {rate}s the rest"
    return ""


def _top_mix_value(e: Explanation) -> str:
    """" (country=BR share 10% -> 20%)" for the value with the largest mix effect."""
    if e.split is None:
        return ""
    dim = next((b for b in e.dimensions if b.dimension == e.split.dimension), None)
    if dim is None or not dim.values:
        return ""
    top = max(dim.values, key=lambda v: abs(v.mix or 0.0))
    if top.share_before is None or top.share_after is None:
        return ""
    return (
        f" ({dim.dimension}={top.value} share {format_rate(top.share_before)}"
        f" -> {format_rate(top.share_after)})"
    )
