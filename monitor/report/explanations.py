"""An incident's attribution (``Incident.explanation``, decoded in ``monitor.incident``) as the report shows it.

The one-line ``summary()``, the top root causes (segment, explained share, before -> after),
and for ratio metrics the mix vs rate split (as shares of the total change) with its verdict.
No attribution gives ``None``: the incident is still listed, without it.
"""
from __future__ import annotations

from monitor.attribute.explain import Explanation
from monitor.report.model import ExplanationView, SegmentShare
from monitor.slices import slice_label


def read_explanation(e: Explanation | None, *, top: int = 3) -> ExplanationView | None:
    if e is None:
        return None
    mix_share = rate_share = None
    if e.split is not None and e.change:
        mix_share = e.split.mix / e.change
        rate_share = (e.split.rate + e.split.interaction) / e.change
    segments = tuple(
        SegmentShare(slice_label(c.segment), c.explained_share, c.before, c.after, c.change_type)
        for c in e.causes[:top])
    return ExplanationView(summary=e.summary() or None, verdict=e.verdict, mix_share=mix_share,
                           rate_share=rate_share, segments=segments, baseline_label=e.baseline_label or None,
                           split_dimension=e.split.dimension if e.split is not None else None)
