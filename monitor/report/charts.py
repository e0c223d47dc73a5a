"""Report charts: Altair specs rendered to inline SVG by vl-convert (no browser, no network).

The SVG is deterministic: timestamps are passed as epoch milliseconds on UTC
scales (no dependence on the machine's timezone), ARIA labels are off, and the
element ids vl-convert numbers with a process-wide counter (``clip1``,
``clip2``...) are renamed per chart, so a chart is the same bytes whether it is
the first or the hundredth rendered by the process, and two charts on one page
never share an id.
"""
from __future__ import annotations

import calendar
import datetime as dt
import functools
import json
import os
import re
from typing import Any

from monitor.errors import MonitorError
from monitor.report.model import IncidentView, MetricDay

COLOR = "#4c78a8"
ALERT = "#d62728"
MUTED = "#9aa5b1"
# The Vega-Lite version Altair writes specs for (vl-convert bundles several; pin it so an
# upgrade of vl-convert cannot silently change the SVG).
VL_VERSION = "5.20"
RENDER_THREADS = min(2, os.cpu_count() or 1)  # vl-convert converts concurrently; 2 is most of the gain
_ID = re.compile(r'\bid="([^"]+)"')
UTC = {"type": "utc"}  # timestamps are epoch ms read as UTC, whatever the machine's timezone
LOOSE = {"zero": False}
Y_FORMAT = {"percent": ".2%", "count": "~s", "currency": "~s"}


def epoch_ms(ts: dt.datetime | dt.date) -> int:
    if not isinstance(ts, dt.datetime):
        ts = dt.datetime.combine(ts, dt.time())
    return calendar.timegm(ts.timetuple()) * 1000


def sparkline_spec(day: MetricDay) -> dict[str, Any] | None:
    """The daily values of the last weeks, the report day as a dot, the baseline as a dashed rule."""
    points = [{"t": epoch_ms(d), "v": v} for d, v in day.history if v is not None]
    if not points:
        return None
    datasets = {"points": points}
    if day.baseline.reference is not None:
        datasets["baseline"] = [{"b": day.baseline.reference}]
    if day.value is not None:
        datasets["day"] = [{"t": epoch_ms(day.date), "v": day.value}]
    return _bind(_sparkline_template("baseline" in datasets, "day" in datasets, bool(day.incidents)), datasets)


def incident_spec(incident: IncidentView, *, unit: str, grain: str, day: dt.date) -> dict[str, Any] | None:
    """The incident's series (its slice), the expected band when detection stored one, the incident shaded."""
    points = [{"t": epoch_ms(ts), "v": v} for ts, v in incident.series if v is not None]
    if not points:
        return None
    step = dt.timedelta(days=1) if grain == "day" else dt.timedelta(hours=1)
    day_end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time())
    shade_end = max(min(incident.end_ts or day_end, day_end), incident.start_ts + step)
    datasets = {"points": points, "incident": [{"a": epoch_ms(incident.start_ts), "b": epoch_ms(shade_end)}]}
    band = [{"t": epoch_ms(ts), "e": e, "lo": lo, "hi": hi} for ts, e, lo, hi in incident.band
            if lo is not None and hi is not None]
    if band:
        datasets["band"] = band
    return _bind(_incident_template(unit, grain, bool(band)), datasets)


# -- templates: the grammar is built once per variant with Altair, the rows are bound per chart ---
@functools.lru_cache(maxsize=None)
def _sparkline_template(baseline: bool, day: bool, alert: bool) -> str:
    alt = _altair()
    x = alt.X("t:T", axis=None, scale=UTC)
    y = alt.Y("v:Q", axis=None, scale=LOOSE)
    layers = [alt.Chart(alt.NamedData("points")).mark_line(color=COLOR, strokeWidth=1.5).encode(x=x, y=y)]
    if baseline:
        layers.append(alt.Chart(alt.NamedData("baseline"))
                      .mark_rule(color=MUTED, strokeDash=[3, 2], strokeWidth=1).encode(y=alt.Y("b:Q", axis=None)))
    if day:
        layers.append(alt.Chart(alt.NamedData("day"))
                      .mark_point(filled=True, size=22, color=ALERT if alert else COLOR).encode(x=x, y=y))
    return _template(alt.layer(*layers).properties(width=140, height=28), padding=2)


@functools.lru_cache(maxsize=None)
def _incident_template(unit: str, grain: str, band: bool) -> str:
    alt = _altair()
    # utcFormat in a label expression: Vega-Lite 5.20 ignores `format` with formatType "utc" on a utc scale.
    axis = {"labelExpr": "utcFormat(datum.value, '%b %d')", "labelOverlap": True, "grid": False,
            "tickCount": {"interval": "day" if grain == "hour" else "week", "step": 1}}
    y_axis = {"format": Y_FORMAT.get(unit, "~s"), "tickCount": 4}

    def x(field: str):
        return alt.X(f"{field}:T", title=None, scale=UTC, axis=axis)

    def y(field: str):
        return alt.Y(f"{field}:Q", title=None, scale=LOOSE, axis=y_axis)

    layers = [alt.Chart(alt.NamedData("incident")).mark_rect(color=ALERT, opacity=0.12).encode(x=x("a"), x2=alt.X2("b"))]
    if band:
        layers.append(alt.Chart(alt.NamedData("band")).mark_area(color=MUTED, opacity=0.25)
                      .encode(x=x("t"), y=y("lo"), y2=alt.Y2("hi")))
        layers.append(alt.Chart(alt.NamedData("band")).mark_line(color=MUTED, strokeDash=[4, 3], strokeWidth=1)
                      .encode(x=x("t"), y=y("e")))
    layers.append(alt.Chart(alt.NamedData("points")).mark_line(color=COLOR, strokeWidth=1.5)
                  .encode(x=x("t"), y=y("v")))
    return _template(alt.layer(*layers).properties(width=520, height=130), padding=4)


def _template(chart, *, padding: int) -> str:
    spec = chart.to_dict(validate=False)
    # Set as data: Altair's configure() validates the whole config schema, slower than the chart itself.
    spec["config"] = {**spec.get("config", {}), "aria": False, "background": "transparent", "padding": padding,
                      "font": "sans-serif", "view": {"stroke": None}}
    return json.dumps(spec, sort_keys=True)


def _bind(template: str, datasets: dict[str, list[dict]]) -> dict[str, Any]:
    spec = json.loads(template)
    spec["datasets"] = datasets
    return spec


def render_svg(spec: dict[str, Any], *, key: str) -> str:
    """The spec as an SVG element string; element ids are prefixed with `key` (unique per page)."""
    try:
        import vl_convert as vlc
    except ImportError as exc:
        raise MonitorError("The report needs vl-convert to draw charts: pip install vl-convert-python.") from exc
    svg = vlc.vegalite_to_svg(spec, vl_version=VL_VERSION)
    return scope_ids(svg, key)


def warm_up() -> None:
    """Load Altair and start vl-convert's JavaScript runtime (about a second each, once per process).

    ``generate_report`` runs this on a thread while it reads the store, so the
    start-up overlaps the queries instead of adding to them.
    """
    try:
        _sparkline_template(True, True, False)
        tiny = {"data": {"values": [{"v": 0}]}, "mark": "point", "encoding": {"y": {"field": "v", "type": "quantitative"}}}
        render_svg(tiny, key="warm-up")
    except MonitorError:
        pass  # the same error is raised, with its install hint, when the first chart is drawn


def render_all(specs: dict[str, dict[str, Any]], *, threads: int = RENDER_THREADS) -> dict[str, str]:
    """Render many specs (key -> spec) to SVG; vl-convert runs them in parallel on a few threads.

    The output does not depend on the order the threads finish in: each SVG's ids
    are renamed from its own key, whatever counter values vl-convert used.
    """
    if not specs:
        return {}
    keys = list(specs)
    if threads <= 1 or len(keys) < 4:
        return {k: render_svg(specs[k], key=k) for k in keys}
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return dict(zip(keys, pool.map(lambda k: render_svg(specs[k], key=k), keys)))


def scope_ids(svg: str, key: str) -> str:
    """Rename every element id (and its url(#...)/href="#..." references) to `key`-n, in document order."""
    names = {}
    for old in _ID.findall(svg):
        names.setdefault(old, f"{key}-{len(names) + 1}")
    if not names:
        return svg
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    pattern = re.compile(r'(\bid="|url\(#|href="#)(' + alternatives + r')(?=[")])')
    return pattern.sub(lambda m: m.group(1) + names[m.group(2)], svg)


def _altair():
    try:
        import altair
    except ImportError as exc:
        raise MonitorError("The report needs Altair to build charts: pip install 'altair>=5'.") from exc
    return altair
