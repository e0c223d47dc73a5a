"""Plain-text rendering of a stored explanation, for `monitor explain`."""
from __future__ import annotations

from monitor.attribute.explain import Explanation

TOP_VALUES = 5


def _pct(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "-"
    return f"{x * 100:+.1f}%" if signed else f"{x * 100:.1f}%"


def _val(x: float | None, kind: str) -> str:
    if x is None:
        return "-"
    return f"{x * 100:.3f}%" if kind == "ratio" else f"{x:,.1f}"


def render_text(data: dict) -> str:
    e = Explanation.from_dict(data)
    lines = [f"  {e.summary()}", f"  baseline: {e.baseline_label}; "
             f"before {_val(e.before, e.kind)} -> after {_val(e.after, e.kind)}"]
    if e.split is not None and e.change:
        lines.append(f"  mix vs rate (cut by {e.split.dimension}): mix {_share(e.split.mix, e.change)}, "
                     f"rate {_share(e.split.rate, e.change)}, interaction {_share(e.split.interaction, e.change)}"
                     f" -> verdict: {e.verdict}")
    if e.causes:
        lines.append("  root-cause segments:")
        for c in e.causes:
            kind = f", {c.change_type} change" if c.change_type else ""
            lines.append(f"    {c.label():<45} explains {_pct(c.explained_share):>7}  size {_pct(c.size):>6}  "
                         f"{_val(c.before, e.kind)} -> {_val(c.after, e.kind)}{kind}")
    for dim in e.dimensions:
        lines.append(f"  by {dim.dimension}:")
        for v in dim.values[:TOP_VALUES]:
            extra = ""
            if e.kind == "ratio" and v.mix is not None:
                extra = (f"  (mix {_share(v.mix, e.change)}, rate {_share(v.rate, e.change)}; "
                         f"share {_pct(v.share_before)} -> {_pct(v.share_after)})")
            lines.append(f"    {v.value:<24} explains {_pct(v.share_of_change):>7}  "
                         f"{_val(v.before, e.kind)} -> {_val(v.after, e.kind)}{extra}")
        if len(dim.values) > TOP_VALUES:
            lines.append(f"    ... {len(dim.values) - TOP_VALUES} more")
    return "\n".join(lines)


def _share(part: float | None, total: float | None) -> str:
    if part is None or not total:
        return "-"
    return f"{part / total * 100:.0f}%"
