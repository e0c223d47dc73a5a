"""Read an incident's stored attribution (``incidents.explanation_json``) for the report.

The attribution step stores ``monitor.attribute.explain.Explanation.to_dict()``;
it is read back with ``Explanation.from_dict`` and shown as: the one-line
``summary()``, the top root causes (segment, explained share, before -> after),
and for ratio metrics the mix vs rate split (as shares of the total change) with
its verdict. A dict in another shape (an older version) is read by common key
names; a missing, empty or unreadable explanation gives ``None``: the incident
is still listed, without attribution.
"""
from __future__ import annotations

import json
import logging
import math
from typing import Any

from monitor.report.model import ExplanationView, SegmentShare
from monitor.slices import slice_label

log = logging.getLogger(__name__)

_SEGMENT_LISTS = ("causes", "root_causes", "segments", "top_segments")
_SHARE_KEYS = ("explained_share", "share", "explains", "contribution_share")
_BEFORE_KEYS = ("before", "expected", "baseline")
_AFTER_KEYS = ("after", "actual", "observed")


def read_explanation(raw: Any, *, top: int = 3) -> ExplanationView | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        if not raw.strip():
            return None
        try:
            raw = json.loads(raw)
        except ValueError:
            log.warning("unreadable explanation_json ignored")
            return None
    if not isinstance(raw, dict) or not raw:
        return None
    view = _from_explanation(raw, top)
    return view if view is not None else _from_plain_dict(raw, top)


def _from_explanation(raw: dict, top: int) -> ExplanationView | None:
    """Through the attribution module's own reader, when the dict is in its format."""
    if "dimensions" not in raw or "kind" not in raw:
        return None
    try:
        from monitor.attribute.explain import Explanation

        e = Explanation.from_dict(raw)
        summary = e.summary()
    except Exception as exc:  # noqa: BLE001 - an explanation from another version must not break the report
        log.warning("explanation could not be read by Explanation.from_dict (%s); reading it as plain data", exc)
        return None
    mix_share = rate_share = None
    if e.split is not None and e.change:
        mix_share = e.split.mix / e.change
        rate_share = (e.split.rate + e.split.interaction) / e.change
    segments = tuple(
        SegmentShare(slice_label(c.segment), c.explained_share, c.before, c.after, c.change_type)
        for c in e.causes[:top])
    return ExplanationView(summary=summary or None, verdict=e.verdict, mix_share=mix_share, rate_share=rate_share,
                           segments=segments, baseline_label=e.baseline_label or None,
                           split_dimension=e.split.dimension if e.split is not None else None)


def _from_plain_dict(raw: dict, top: int) -> ExplanationView | None:
    segments = []
    items = next((raw[k] for k in _SEGMENT_LISTS if isinstance(raw.get(k), list)), [])
    for item in items[:top]:
        if not isinstance(item, dict):
            continue
        segment = next((item[k] for k in ("segment", "dimensions", "where") if isinstance(item.get(k), dict)), None)
        label = item.get("label") if isinstance(item.get("label"), str) else (slice_label(segment) if segment else "")
        if not label:
            continue
        change_type = item.get("change_type") if isinstance(item.get("change_type"), str) else None
        segments.append(SegmentShare(label, _number(item, _SHARE_KEYS), _number(item, _BEFORE_KEYS),
                                     _number(item, _AFTER_KEYS), change_type))
    verdict, mix, rate = _verdict(raw)
    summary = next((raw[k].strip() for k in ("summary", "headline", "text")
                    if isinstance(raw.get(k), str) and raw[k].strip()), None)
    if not segments and summary is None and verdict is None:
        return None
    baseline = raw.get("baseline_label")
    return ExplanationView(summary=summary, verdict=verdict, mix_share=mix, rate_share=rate,
                           segments=tuple(segments), baseline_label=str(baseline) if baseline else None)


def _verdict(raw: dict) -> tuple[str | None, float | None, float | None]:
    for key in ("mix_vs_rate", "mix_rate", "decomposition", "verdict"):
        value = raw.get(key)
        if isinstance(value, str) and value:
            return value, _number(raw, ("mix_share",)), _number(raw, ("rate_share",))
        if isinstance(value, dict):
            verdict = value.get("verdict") or value.get("kind") or value.get("label")
            return (str(verdict) if verdict else None, _number(value, ("mix_share", "mix")),
                    _number(value, ("rate_share", "rate")))
    return None, None, None


def _number(raw: dict, keys: tuple[str, ...]) -> float | None:
    for key in keys:
        value = raw.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    return None
