"""Altair charts of the dashboard: readable at a glance, with titles, units and incident shading.

Each builder returns a :class:`Figure`: Altair charts (marks and encodings) drawn as
layers over named data sets. :meth:`Figure.to_dict` assembles the Vega-Lite spec
the app hands to Streamlit. Layering by hand, over named data, instead of with
``alt.layer(...)`` on inline data frames, skips Altair's repeated deep copies,
data sanitising and JSON-schema validation, which cost several hundred
milliseconds per page; the charts are fixed code, and the tests check their specs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import altair as alt
import pandas as pd
from altair.utils.schemapi import debug_mode

from monitor.dashboard.formatting import (axis_format, format_delta, format_value, slice_text, unit_label)
OBSERVED = "#1f5fa8"
EXPECTED = "#7f7f7f"
LAST_WEEK = "#b59b5c"
BAND = "#9ecae1"
ANOMALY = "#d62728"
CHANGE_POINT = "#6a3d9a"
INCIDENT = "#d62728"
OTHER_INCIDENT = "#ff9f40"
EVENT = "#2a9d8f"  # our own changes (monitor.events)
UP, DOWN, TOTAL = "#d9534f", "#2e8b57", "#5b7fa6"
PARTS = {"rate": "#d9534f", "mix": "#5b7fa6", "interaction": "#b8b8b8"}
SERIES_NAMES = {"observed": "observed", "expected": "expected", "previous_week": "same time last week"}
SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"


@dataclass
class Figure:
    """Altair layers over named data sets, plus the top-level title and size."""

    title: str
    height: int
    layers: list[alt.Chart] = field(default_factory=list)
    datasets: dict[str, list[dict]] = field(default_factory=dict)
    resolve: dict[str, Any] | None = None

    def data(self, name: str, frame: pd.DataFrame) -> alt.NamedData:
        """Register `frame` as data set `name`; returns the reference a layer draws from."""
        self.datasets[name] = records(frame)
        return alt.NamedData(name=name)

    def add(self, chart: alt.Chart) -> None:
        self.layers.append(chart)

    def to_dict(self) -> dict[str, Any]:
        """The Vega-Lite spec (a layer chart, data inline as named data sets)."""
        with debug_mode(False):
            layers = [_layer_dict(chart) for chart in self.layers]
        spec: dict[str, Any] = {
            "$schema": SCHEMA, "title": {"text": self.title, "anchor": "start"}, "height": self.height,
            "width": "container", "datasets": self.datasets, "layer": layers,
        }
        if self.resolve:
            spec["resolve"] = self.resolve
        return spec


def _layer_dict(chart: alt.Chart) -> dict[str, Any]:
    spec = chart.to_dict(validate=False)
    for key in ("$schema", "config", "datasets"):
        spec.pop(key, None)
    return spec


def records(frame: pd.DataFrame) -> list[dict]:
    """JSON-ready rows: timestamps as ISO text, NaN as null, numpy scalars as Python numbers."""
    columns = {}
    for name, column in frame.items():
        if pd.api.types.is_datetime64_any_dtype(column):
            columns[name] = [None if pd.isna(v) else v.isoformat() for v in column]
        elif pd.api.types.is_bool_dtype(column):
            columns[name] = [bool(v) for v in column]
        elif pd.api.types.is_numeric_dtype(column):
            columns[name] = [None if v != v else v for v in column.astype(float).tolist()]
        else:
            columns[name] = [None if v is None or (isinstance(v, float) and v != v) else str(v) for v in column]
    names = list(columns)
    return [dict(zip(names, row)) for row in zip(*columns.values())]


def _time_axis(grain: str) -> alt.Axis:
    return alt.Axis(title=None, format="%b %d %H:%M" if grain == "hour" else "%b %d", labelAngle=0, grid=False)


def series_chart(frame: pd.DataFrame, *, title: str, unit: str, grain: str = "day",
                 incidents: pd.DataFrame | None = None, change_points: list | None = None,
                 focus_slice: str | None = None, highlight_id: str | None = None,
                 compare: bool = True, height: int = 360, events: pd.DataFrame | None = None) -> Figure:
    """The series with its expected band, anomalies, change points and incidents shaded.

    `incidents` needs start_ts, end (exclusive), slice, severity, incident_id;
    those of `focus_slice` (or `highlight_id`) are shaded red, other slices orange.
    `events` (monitor.events.annotations.chart_events) are drawn as teal rules at their time,
    with their window (a promotion) as a teal band.
    """
    with debug_mode(False):
        fig = _series_chart(frame, title=title, unit=unit, grain=grain, incidents=incidents,
                            change_points=change_points, focus_slice=focus_slice, highlight_id=highlight_id,
                            compare=compare, height=height)
        if events is not None and not events.empty:
            _event_layers(fig, events, frame)
        return fig


def _event_layers(fig: Figure, events: pd.DataFrame, frame: pd.DataFrame) -> None:
    data = events.copy()
    data["ts"] = pd.to_datetime(data["ts"])
    data["end"] = pd.to_datetime(data["end"])
    if len(frame):  # a window that began before the chart starts is drawn from its left edge
        first = pd.to_datetime(frame["ts"]).min()
        data["band_start"] = data["ts"].clip(lower=first)
    else:
        data["band_start"] = data["ts"]
    tooltip = [alt.Tooltip("text:N", title="our change"), alt.Tooltip("ts:T", title="at"),
               alt.Tooltip("end:T", title="until")]
    windows = data[data["end"].notna()]
    if len(windows):
        fig.add(alt.Chart(fig.data("event_windows", windows[["band_start", "end", "text", "ts"]])).mark_rect(
            opacity=0.10, color=EVENT).encode(x=alt.X("band_start:T"), x2=alt.X2("end"), tooltip=tooltip))
    fig.add(alt.Chart(fig.data("events", data[["ts", "end", "text", "kind"]])).mark_rule(
        color=EVENT, strokeWidth=2).encode(x=alt.X("ts:T"), tooltip=tooltip))


def _series_chart(frame, *, title, unit, grain, incidents, change_points, focus_slice, highlight_id, compare,
                  height) -> Figure:
    fmt = axis_format(unit)
    data = frame.copy()
    data["ts"] = pd.to_datetime(data["ts"])
    y_axis = alt.Axis(format=fmt, title=unit_label(unit))
    x = alt.X("ts:T", axis=_time_axis(grain))
    fig = Figure(title=title, height=height)
    if incidents is not None and not incidents.empty:
        shade = incidents.copy()
        mine = [(highlight_id and i == highlight_id) or (not highlight_id and s == focus_slice)
                for i, s in zip(shade["incident_id"], shade["slice"])]
        shade["where"] = [slice_text(s) for s in shade["slice"]]
        shade["start"] = pd.to_datetime(shade["start_ts"]).clip(lower=data["ts"].min() if len(data) else None)
        shade["end"] = pd.to_datetime(shade["end"])
        columns = ["start", "end", "where", "severity", "incident_id"]
        tooltip = [alt.Tooltip("where:N", title="slice"), alt.Tooltip("severity:N"),
                   alt.Tooltip("start:T", title="from"), alt.Tooltip("end:T", title="until"),
                   alt.Tooltip("incident_id:N", title="incident")]
        for name, rows, color in (("related", [not m for m in mine], OTHER_INCIDENT), ("incident", mine, INCIDENT)):
            part = shade.loc[rows, columns]
            if len(part):
                fig.add(alt.Chart(fig.data(name, part)).mark_rect(opacity=0.13, color=color).encode(
                    x=alt.X("start:T"), x2=alt.X2("end"), tooltip=tooltip))
    source = fig.data("series", data[[c for c in ("ts", "observed", "expected", "lower", "upper", "previous_week",
                                                  "score", "anomalous") if c in data]])
    if data["lower"].notna().any():
        fig.add(alt.Chart(source).mark_area(color=BAND, opacity=0.35).encode(
            x=x, y=alt.Y("lower:Q", axis=y_axis, scale=alt.Scale(zero=False)), y2=alt.Y2("upper"),
            tooltip=[alt.Tooltip("ts:T", title="bucket"), alt.Tooltip("lower:Q", format=fmt, title="band low"),
                     alt.Tooltip("upper:Q", format=fmt, title="band high")]))
    lines = ["observed"]
    if data["expected"].notna().any():
        lines.append("expected")
    if compare and "previous_week" in data and data["previous_week"].notna().any():
        lines.append("previous_week")
    domain = [SERIES_NAMES[n] for n in lines]
    colors = {"observed": OBSERVED, "expected": EXPECTED, "same time last week": LAST_WEEK}
    dashes = {"observed": [1, 0], "expected": [5, 3], "same time last week": [2, 2]}
    fig.add(alt.Chart(source).transform_fold(lines, as_=["series", "value"]).transform_calculate(
        series="{" + ", ".join(f"'{k}': '{v}'" for k, v in SERIES_NAMES.items()) + "}[datum.series]"
    ).mark_line(strokeWidth=2).encode(
        x=x, y=alt.Y("value:Q", axis=y_axis, scale=alt.Scale(zero=False)),
        color=alt.Color("series:N", title=None, scale=alt.Scale(domain=domain, range=[colors[d] for d in domain]),
                        legend=alt.Legend(orient="top", direction="horizontal")),
        strokeDash=alt.StrokeDash("series:N", scale=alt.Scale(domain=domain, range=[dashes[d] for d in domain]),
                                  legend=None),
        tooltip=[alt.Tooltip("ts:T", title="bucket"), alt.Tooltip("series:N"),
                 alt.Tooltip("value:Q", format=fmt)]))
    if (data["anomalous"].fillna(False).astype(bool) & data["observed"].notna()).any():
        fig.add(alt.Chart(source).transform_filter("datum.anomalous && datum.observed != null").mark_point(
            color=ANOMALY, filled=True, size=45, opacity=1).encode(
            x=x, y=alt.Y("observed:Q"),
            tooltip=[alt.Tooltip("ts:T", title="anomalous bucket"), alt.Tooltip("observed:Q", format=fmt),
                     alt.Tooltip("expected:Q", format=fmt), alt.Tooltip("score:Q", format=".1f")]))
    if change_points:
        cps = fig.data("change_points", pd.DataFrame({"ts": pd.to_datetime(list(change_points))}))
        fig.add(alt.Chart(cps).mark_rule(color=CHANGE_POINT, strokeDash=[4, 3], strokeWidth=1.5).encode(
            x=x, tooltip=[alt.Tooltip("ts:T", title="change point")]))
    return fig


def volume_chart(frame: pd.DataFrame, *, kind: str, grain: str = "day", height: int = 130) -> Figure:
    """Events per bucket (the denominator of a rate, the value of a sum)."""
    fig = Figure(title="Volume (denominator events)" if kind == "ratio" else "Volume", height=height)
    with debug_mode(False):
        fig.add(alt.Chart(fig.data("volume", frame[["ts", "volume"]])).mark_bar(color="#c6d4e3").encode(
            x=alt.X("ts:T", axis=_time_axis(grain)),
            y=alt.Y("volume:Q", axis=alt.Axis(format=",.3~s", title="events", tickCount=3)),
            tooltip=[alt.Tooltip("ts:T", title="bucket"), alt.Tooltip("volume:Q", format=",.0f")]))
    return fig


def waterfall_chart(steps: pd.DataFrame, *, before: float, after: float, unit: str, title: str,
                    before_label: str = "before", after_label: str = "after", height: int = 340) -> Figure:
    """How the total went from `before` to `after`: one floating bar per segment's contribution.

    `steps` has columns label and contribution (in the metric's unit), in display order.
    """
    rows = [{"label": before_label, "start": 0.0, "end": before, "type": "total", "text": format_value(before, unit=unit)}]
    level = before
    for label, contribution in zip(steps["label"], steps["contribution"]):
        contribution = float(contribution)
        rows.append({"label": str(label), "start": level, "end": level + contribution,
                     "type": "increase" if contribution >= 0 else "decrease",
                     "text": format_delta(contribution, unit=unit)})
        level += contribution
    rows.append({"label": after_label, "start": 0.0, "end": after, "type": "total", "text": format_value(after, unit=unit)})
    data = pd.DataFrame(rows)
    data["order"] = range(len(data))
    data["top"] = data[["start", "end"]].max(axis=1)
    moves = data.loc[data["type"] != "total", ["start", "end"]]
    low = min(float(moves.min().min()) if len(moves) else before, before, after)
    high = max(float(data["top"].max()), before, after)
    pad = (high - low) * 0.25 or abs(high) * 0.1 or 1.0
    domain = [max(low - pad, 0.0) if low >= 0 else low - pad, high + pad * 0.6]
    fmt = axis_format(unit)
    fig = Figure(title=title, height=height)
    source = fig.data("waterfall", data)
    with debug_mode(False):
        x = alt.X("label:N", sort=alt.SortField("order"),
                  axis=alt.Axis(title=None, labelAngle=-35, labelLimit=150, labelOverlap=False, labelFontSize=11))
        fig.add(alt.Chart(source).mark_bar(size=28).encode(
            x=x,
            y=alt.Y("start:Q", scale=alt.Scale(domain=domain, clamp=True), axis=alt.Axis(format=fmt, title=None)),
            y2=alt.Y2("end"),
            color=alt.Color("type:N", title=None, legend=alt.Legend(orient="top", direction="horizontal"),
                            scale=alt.Scale(domain=["total", "increase", "decrease"], range=[TOTAL, UP, DOWN])),
            tooltip=[alt.Tooltip("label:N", title="segment"), alt.Tooltip("text:N", title="contribution"),
                     alt.Tooltip("start:Q", format=fmt, title="from"), alt.Tooltip("end:Q", format=fmt, title="to")]))
        fig.add(alt.Chart(source).mark_text(dy=-7, fontSize=11, color="#333").encode(
            x=x, y=alt.Y("top:Q"), text=alt.Text("text:N")))
    return fig


def mix_rate_chart(parts: pd.DataFrame, *, unit: str, title: str, height: int = 340) -> Figure:
    """Per segment, how much of its contribution came from its own rate moving, how much from
    its share of traffic (mix), and the interaction of both. Columns: label, mix, rate, interaction."""
    long = parts.melt("label", value_vars=[c for c in ("rate", "mix", "interaction") if c in parts],
                      var_name="part", value_name="contribution")
    long["order"] = long["label"].map({label: i for i, label in enumerate(parts["label"])})
    long["text"] = [format_delta(v, unit=unit) for v in long["contribution"]]
    fmt = axis_format(unit)
    fig = Figure(title=title, height=max(height, 40 + 30 * len(parts)))
    with debug_mode(False):
        fig.add(alt.Chart(fig.data("parts", long)).mark_bar().encode(
            y=alt.Y("label:N", sort=alt.SortField("order"), title=None, axis=alt.Axis(labelLimit=180)),
            x=alt.X("sum(contribution):Q", axis=alt.Axis(format=fmt, title="contribution to the change of the rate")),
            color=alt.Color("part:N", title=None, legend=alt.Legend(orient="top", direction="horizontal"),
                            scale=alt.Scale(domain=list(PARTS), range=list(PARTS.values()))),
            tooltip=[alt.Tooltip("label:N", title="segment"), alt.Tooltip("part:N"),
                     alt.Tooltip("text:N", title="contribution")]))
    return fig
