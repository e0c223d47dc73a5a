"""An incident's attribution (``Incident.explanation``) as the tables the incident page draws.

Lays the :class:`monitor.attribute.explain.Explanation` out as frames and applies the privacy
floor: a segment with fewer events than ``min_segment_size`` (denominator events for
rates, the value itself for sums; the larger of before and after) is never shown on
its own. Such segments are summed into one row, "other (small segments)". For rates
the explanation carries traffic shares, so absolute sizes need the window's total
volume (:func:`monitor.dashboard.queries.attribution_volumes`); without it every
segment counts as small.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from monitor.attribute.explain import Explanation
from monitor.catalog.kinds import RATIO_LIKE
from monitor.dashboard.formatting import SMALL_SEGMENTS
from monitor.slices import slice_label

OTHER_VALUES = "other values"
CONTRIBUTION_COLUMNS = ["value", "contribution", "mix", "rate", "interaction", "share_of_change", "before",
                        "after", "share_before", "share_after", "size"]
ROOT_CAUSE_COLUMNS = ["label", "segment", "explained_share", "size", "share_of_volume", "before", "after",
                      "change_type"]


@dataclass
class AttributionView:
    kind: str
    baseline_label: str
    before: float | None
    after: float | None
    verdict: str | None  # ratio: rate | mix | mixed
    split: dict[str, Any] | None  # ratio: {dimension, mix, rate, interaction} of the most telling cut
    dimensions: dict[str, pd.DataFrame] = field(default_factory=dict)  # CONTRIBUTION_COLUMNS, largest first
    root_causes: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=ROOT_CAUSE_COLUMNS))
    hidden_segments: int = 0  # segments shown only inside "other (small segments)"

    @property
    def change(self) -> float | None:
        if self.before is None or self.after is None:
            return None
        return self.after - self.before


def _num(data: Any, key: str) -> float | None:
    value = data.get(key) if isinstance(data, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def attribution_view(e: Explanation | None, *, min_size: float, volume_before: float | None = None,
                     volume_after: float | None = None, within: dict[str, str] | None = None) -> AttributionView | None:
    """The explanation as display tables with small segments folded; None without one.

    `volume_before` / `volume_after`: total denominator events of the attributed
    windows (ratio metrics), to turn traffic shares into event counts. `within`:
    the incident's own slice, which root-cause segments (found inside it) extend.
    """
    if e is None:
        return None
    explanation = e.to_dict()  # plain rows for the frames
    kind = str(explanation.get("kind") or "")
    view = AttributionView(kind=kind, baseline_label=str(explanation.get("baseline_label") or ""),
                           before=_num(explanation, "before"), after=_num(explanation, "after"),
                           verdict=explanation.get("verdict"),
                           split=explanation.get("split") if isinstance(explanation.get("split"), dict) else None)
    for item in explanation.get("dimensions") or []:
        if not isinstance(item, dict) or "dimension" not in item:
            continue
        frame = _contributions(item.get("values") or [], kind=kind, min_size=min_size,
                               volume_before=volume_before, volume_after=volume_after)
        view.hidden_segments += int(frame.attrs.get("hidden", 0))
        view.dimensions[str(item["dimension"])] = frame
    view.root_causes = _root_causes(explanation.get("causes") or [], kind=kind, min_size=min_size,
                                    volume_after=volume_after, within=within or {})
    view.hidden_segments += int(view.root_causes.attrs.get("hidden", 0))
    return view


def _size(kind: str, row: dict, volume_before: float | None, volume_after: float | None) -> float | None:
    """Events behind one dimension value: the larger side (before or after)."""
    if kind in RATIO_LIKE:
        sides = []
        if volume_before is not None and _num(row, "share_before") is not None:
            sides.append(row["share_before"] * volume_before)
        if volume_after is not None and _num(row, "share_after") is not None:
            sides.append(row["share_after"] * volume_after)
        return max(sides) if sides else None
    sides = [abs(v) for v in (_num(row, "before"), _num(row, "after")) if v is not None]
    return max(sides) if sides else None


def _contributions(rows: list, *, kind: str, min_size: float, volume_before: float | None,
                   volume_after: float | None) -> pd.DataFrame:
    records = []
    for row in rows:
        if not isinstance(row, dict):
            continue
        record = {c: _num(row, c) for c in CONTRIBUTION_COLUMNS if c not in ("value", "size")}
        record["value"] = str(row.get("value", "?"))
        record["contribution"] = record["contribution"] or 0.0
        record["size"] = _size(kind, row, volume_before, volume_after)
        records.append(record)
    frame = pd.DataFrame(records, columns=CONTRIBUTION_COLUMNS)
    small = frame["size"].isna() | (frame["size"] < min_size)
    hidden = int(small.sum())
    if hidden:
        frame = pd.concat([frame[~small], _fold(frame[small], kind)], ignore_index=True)
    frame = frame.assign(_abs=frame["contribution"].abs(), _small=frame["value"] == SMALL_SEGMENTS)
    frame = frame.sort_values(["_small", "_abs"], ascending=[True, False], kind="stable")
    frame = frame.drop(columns=["_abs", "_small"]).reset_index(drop=True)
    frame.attrs["hidden"] = hidden
    return frame


def _fold(part: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Several values as one row: additive parts summed, the group's rate recomputed from shares."""
    row: dict[str, Any] = {"value": SMALL_SEGMENTS}
    for col in ("contribution", "mix", "rate", "interaction", "share_of_change", "share_before", "share_after",
                "size"):
        row[col] = part[col].sum(min_count=1)
    if kind in RATIO_LIKE:
        for side in ("before", "after"):
            weights = part[f"share_{side}"].fillna(0.0)
            known = part[side].notna() & (weights > 0)
            row[side] = float((part.loc[known, side] * weights[known]).sum() / weights[known].sum()) \
                if known.any() else np.nan
    else:
        row["before"], row["after"] = part["before"].sum(min_count=1), part["after"].sum(min_count=1)
    return pd.DataFrame([row])


def _root_causes(rows: list, *, kind: str, min_size: float, volume_after: float | None,
                 within: dict[str, str]) -> pd.DataFrame:
    records, hidden, small_share = [], 0, 0.0
    for row in rows:
        if not isinstance(row, dict):
            continue
        segment = {**within, **{str(k): str(v) for k, v in (row.get("segment") or {}).items()}}
        share_of_volume = _num(row, "size")
        if kind in RATIO_LIKE:
            size = share_of_volume * volume_after if share_of_volume is not None and volume_after is not None else None
        else:
            sides = [abs(v) for v in (_num(row, "before"), _num(row, "after")) if v is not None]
            size = max(sides) if sides else None
        if size is None or size < min_size:
            hidden += 1
            small_share += _num(row, "explained_share") or 0.0
            continue
        records.append({"label": slice_label(segment) or "total", "segment": segment,
                        "explained_share": _num(row, "explained_share"), "size": size,
                        "share_of_volume": share_of_volume, "before": _num(row, "before"),
                        "after": _num(row, "after"), "change_type": row.get("change_type")})
    if hidden:
        records.append({"label": SMALL_SEGMENTS, "segment": {}, "explained_share": small_share or None,
                        "size": None, "share_of_volume": None, "before": None, "after": None, "change_type": None})
    frame = pd.DataFrame(records, columns=ROOT_CAUSE_COLUMNS)
    frame.attrs["hidden"] = hidden
    return frame


def waterfall_steps(contributions: pd.DataFrame, *, change: float | None, top: int = 8) -> pd.DataFrame:
    """The bars between 'before' and 'after': the biggest contributions, the rest as 'other values',
    small segments as one bar, and 'not attributed' if the parts do not add up to the change."""
    if contributions.empty:
        return pd.DataFrame(columns=["label", "contribution"])
    small = contributions[contributions["value"] == SMALL_SEGMENTS]
    named = contributions[contributions["value"] != SMALL_SEGMENTS]
    head, tail = named.iloc[:top], named.iloc[top:]
    steps = [(v, float(c)) for v, c in zip(head["value"], head["contribution"])]
    if len(tail):
        steps.append((f"{OTHER_VALUES} ({len(tail)})", float(tail["contribution"].sum())))
    if len(small):
        steps.append((SMALL_SEGMENTS, float(small["contribution"].sum())))
    frame = pd.DataFrame(steps, columns=["label", "contribution"])
    if change is not None:
        residual = change - float(frame["contribution"].sum())
        if abs(residual) > max(abs(change) * 0.01, 1e-12):
            frame = pd.concat([frame, pd.DataFrame([{"label": "not attributed", "contribution": residual}])],
                              ignore_index=True)
    return frame
