"""Plain-text rendering of a stored explanation, for `monitor explain`."""
from __future__ import annotations

from monitor.attribute.explain import Explanation
from monitor.format import MISSING, format_rate, format_share, format_value
from monitor.slices import slice_text

TOP_VALUES = 5


def render_text(e: Explanation) -> str:
    def val(x: float | None) -> str:
        return format_value(x, kind=e.kind)

    lines = [f"  {e.summary()}", f"  baseline: {e.baseline_label}; before {val(e.before)} -> after {val(e.after)}"]
    if e.split is not None and e.change:
        lines.append(f"  mix vs rate (cut by {e.split.dimension}): mix {_share(e.split.mix, e.change)}, "
                     f"rate {_share(e.split.rate, e.change)}, interaction {_share(e.split.interaction, e.change)}"
                     f" -> verdict: {e.verdict}")
    if e.causes:
        lines.append("  root-cause segments:")
        for c in e.causes:
            kind = f", {c.change_type} change" if c.change_type else ""
            lines.append(f"    {slice_text(c.segment):<45} explains {format_share(c.explained_share):>7}  "
                         f"size {format_share(c.size):>6}  {val(c.before)} -> {val(c.after)}{kind}")
    for dim in e.dimensions:
        lines.append(f"  by {dim.dimension}:")
        for v in dim.values[:TOP_VALUES]:
            extra = ""
            if e.kind == "ratio" and v.mix is not None:
                extra = (f"  (mix {_share(v.mix, e.change)}, rate {_share(v.rate, e.change)}; "
                         f"share {format_rate(v.share_before)} -> {format_rate(v.share_after)})")
            lines.append(f"    {v.value:<24} explains {format_share(v.share_of_change):>7}  "
                         f"{val(v.before)} -> {val(v.after)}{extra}")
        if len(dim.values) > TOP_VALUES:
            lines.append(f"    ... {len(dim.values) - TOP_VALUES} more")
    return "\n".join(lines)


def _share(part: float | None, total: float | None) -> str:
    """A part of the change as a share of it."""
    if part is None or not total:
        return MISSING
    return format_share(part / total)
