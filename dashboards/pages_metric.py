"""Metric page: the series with its expected band, change points and incidents; slices; why it fired."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from pages_common import (AppContext, chart, go, headers_data, metric_data, param, pills, severity_column,
                          shading_frame, status_column)
from monitor.dashboard.charts import series_chart, volume_chart
from monitor.dashboard.formatting import (MISSING, format_difference, format_relative, format_timestamp,
                                          format_value, severity_text, slice_text)
from monitor.dashboard.links import incident_url, metric_url, parse_slice
from monitor.dashboard.why import why_lines
from monitor.incident import Incident
from monitor.slices import slice_label

TOTAL, NONE = "(total)", "(none)"
RANGES = {"day": (28, 90, 180, 365), "hour": (3, 7, 14, 28, 90)}
HOURLY_DAYS = 14  # hourly series: two weeks stay readable


def _state(name: str, label: str, days: int, compare: bool) -> dict:
    return {"metric": name, "slice": label, "days": str(days), "compare": "" if compare else "0"}


def _set_slice(base: dict, segment: dict[str, str]) -> None:
    go("metric", **{**base, "slice": slice_label(segment)})


def _on_dim1(base: dict, key: str, values: dict) -> None:
    dim = st.session_state[key]
    if dim == TOTAL:
        _set_slice(base, {})
    else:
        shown = values.get((dim, ""), ([], 0))[0]
        _set_slice(base, {dim: shown[0]} if shown else {})


def _on_value1(base: dict, key: str, dim: str) -> None:
    _set_slice(base, {dim: st.session_state[key]})


def _on_dim2(base: dict, key: str, first: dict, values: dict) -> None:
    dim = st.session_state[key]
    if dim == NONE:
        _set_slice(base, first)
        return
    first_dim = next(iter(first))
    shown = values.get((dim, first_dim), ([], 0))[0]
    _set_slice(base, {**first, dim: shown[0]} if shown else first)


def _on_value2(base: dict, key: str, first: dict, dim: str) -> None:
    _set_slice(base, {**first, dim: st.session_state[key]})


def _on_range(base: dict, key: str) -> None:
    go("metric", **{**base, "days": str(st.session_state[key])})


def _on_compare(base: dict, key: str) -> None:
    go("metric", **{**base, "compare": "" if st.session_state[key] else "0"})


def _open_incident(frame: pd.DataFrame) -> None:
    click = st.session_state.get("metric_open_incident")
    if click is not None:
        go("incident", id=frame.iloc[int(click["row"])]["incident_id"])


def _choose_metric(ctx: AppContext, headers: dict, wanted: str) -> None:
    if wanted:
        st.warning(f"There is no metric named {wanted!r} in this project.")
    st.title("Metrics")
    names = list(headers)
    if not names:
        st.info("No metric has been computed yet.")
        return
    st.selectbox("Metric", names, index=None, format_func=lambda n: f"{headers[n]['title']} ({n})",
                 key="metric_choose", placeholder="choose a metric",
                 on_change=lambda: go("metric", metric=st.session_state["metric_choose"]))


def render(ctx: AppContext) -> None:
    name, label = param("metric"), param("slice")
    compare = param("compare") != "0"
    headers = headers_data(ctx)
    if not name or name not in headers:
        _choose_metric(ctx, headers, name)
        return
    default_days = HOURLY_DAYS if headers[name]["grain"] == "hour" else ctx.settings.history_days
    try:
        days = max(1, min(int(param("days", str(default_days))), 3660))
    except ValueError:
        days = default_days
    try:
        segment = parse_slice(label)
    except ValueError as exc:
        st.error(f"The slice {label!r} in the link is not valid ({exc}); showing the total.")
        segment, label = {}, ""
    header = headers[name]
    unknown = [d for d in segment if d not in (header.get("dimensions") or [])]
    if unknown:
        st.error(f"{header['title']} has no dimension {unknown[0]!r} (its dimensions: "
                 f"{', '.join(header.get('dimensions') or []) or 'none'}); showing the total.")
        segment, label = {}, ""
    label = slice_label(segment)
    data = metric_data(ctx, name, label, days)
    unit, grain = header["unit"], header["grain"]

    st.title(header["title"])
    facts = [f"`{name}`", f"{header['kind']} · {grain}", f"unit: {unit}"]
    if header.get("owner"):
        facts.append(f"owner: **{header['owner']}**")
    if header.get("team"):
        facts.append(f"team: {header['team']}")
    if header.get("runbook"):
        facts.append(f"[runbook]({header['runbook']})")
    st.caption(" · ".join(facts))
    if header.get("description"):
        st.caption(header["description"])
    if data is None or data.get("span") is None:
        st.info("No data stored for this metric yet: run `monitor backfill` for it.")
        return

    base = _state(name, label, days, compare)
    _slice_controls(ctx, header, segment, data, base, days, compare)

    series: pd.DataFrame = data["series"]
    here = data["incidents"][data["incidents"]["slice"] == label] if len(data["incidents"]) else data["incidents"]
    if series.empty:
        st.info(f"No data for {slice_text(segment)} in the last {days} days.")
    else:
        _headline(series, unit, grain, segment, ctx.settings.min_segment_size)
        chart(series_chart(series, title=f"{header['title']} — {slice_text(segment)}", unit=unit, grain=grain,
                           incidents=shading_frame(here, grain), change_points=data["change_points"],
                           focus_slice=label, compare=compare, events=data.get("events")))
        st.caption("Shaded: incidents of this slice · red dots: buckets outside the expected band · "
                   "dashed purple: change points · blue band: the expected range · teal: our own changes (events).")
        visible = series.assign(volume=series["volume"].where(~series["hidden"].astype(bool)))
        chart(volume_chart(visible, kind=header["kind"], grain=grain))
        notes = []
        if series["lower"].isna().all():
            notes.append("no expected band is stored for this slice (bands are kept for the total and "
                         "one-dimension slices); the series is summed from the leaf rows")
        if series["hidden"].any():
            notes.append(f"{int(series['hidden'].sum())} bucket(s) with fewer than "
                         f"{ctx.settings.min_segment_size:g} events are hidden")
        if notes:
            st.caption("Note: " + "; ".join(notes) + ".")
    st.caption(f"Share this view: {metric_url(ctx.base_url, name, segment)}")

    _why_it_fired(here, header)
    _incident_table(ctx, data["incidents"], header)


def _slice_controls(ctx, header, segment, data, base, days, compare) -> None:
    dims = list(header.get("dimensions") or [])
    values = data["slice_values"]
    suffix = slice_label(segment) or "total"
    cols = st.columns([1, 1.3, 1, 1.3, 0.7, 1.0], vertical_alignment="bottom")
    first_dim = next(iter(segment), None)
    first = {first_dim: segment[first_dim]} if first_dim else {}
    with cols[0]:
        options = [TOTAL, *dims]
        key = f"dim1:{suffix}"
        st.selectbox("Slice by", options, index=options.index(first_dim) if first_dim else 0, key=key,
                     on_change=_on_dim1, args=(base, key, values))
    with cols[1]:
        if first_dim:
            shown, hidden = values.get((first_dim, ""), ([], 0))
            options = shown if segment[first_dim] in shown else [segment[first_dim], *shown]
            key = f"val1:{suffix}"
            st.selectbox(first_dim, options, index=options.index(segment[first_dim]), key=key,
                         on_change=_on_value1, args=(base, key, first_dim),
                         help=f"{hidden} value(s) with fewer than {ctx.settings.min_segment_size:g} events in the "
                              "last 4 weeks are not listed (privacy floor)" if hidden else None)
    second_dim = next((d for d in segment if d != first_dim), None)
    if first_dim and len(dims) > 1:
        with cols[2]:
            options = [NONE, *[d for d in dims if d != first_dim]]
            key = f"dim2:{suffix}"
            st.selectbox("and by", options, index=options.index(second_dim) if second_dim in options else 0,
                         key=key, on_change=_on_dim2, args=(base, key, first, values))
        if second_dim:
            with cols[3]:
                shown, hidden = values.get((second_dim, first_dim), ([], 0))
                options = shown if segment[second_dim] in shown else [segment[second_dim], *shown]
                key = f"val2:{suffix}"
                st.selectbox(second_dim, options, index=options.index(segment[second_dim]), key=key,
                             on_change=_on_value2, args=(base, key, first, second_dim))
    with cols[4]:
        key = f"range:{suffix}"
        options = sorted({*RANGES.get(header["grain"], RANGES["day"]), days})
        st.selectbox("Days", options, index=options.index(days), key=key, on_change=_on_range, args=(base, key))
    with cols[5]:
        key = f"compare:{suffix}"
        st.toggle("last week", value=compare, key=key, on_change=_on_compare, args=(base, key),
                  help="Overlay the same buckets one week earlier")


def _headline(series: pd.DataFrame, unit: str, grain: str, segment: dict, min_size: float) -> None:
    visible = series.dropna(subset=["observed"])
    if visible.empty:
        st.warning(f"Every bucket of {slice_text(segment)} has fewer than {min_size:g} events: "
                   "its values are not shown (privacy floor).")
        return
    last = visible.iloc[-1]
    cols = st.columns(4)
    delta = format_difference(last["previous_week"], last["observed"], unit=unit) if pd.notna(last["previous_week"]) else None
    cols[0].metric(f"Latest ({format_timestamp(last['ts'], grain=grain)})", format_value(last["observed"], unit=unit),
                   delta=f"{delta} vs last week" if delta else None, delta_color="off", border=True)
    if pd.notna(last["expected"]):
        cols[1].metric("Expected", format_value(last["expected"], unit=unit),
                       delta=f"{format_relative(last['observed'] / last['expected'] - 1 if last['expected'] else None)}"
                             " vs expected", delta_color="off", border=True)
        cols[2].metric("Normal band", f"{format_value(last['lower'], unit=unit)} – {format_value(last['upper'], unit=unit)}",
                       border=True)
    else:
        cols[1].metric("Expected", MISSING, help="No expected band stored for this slice", border=True)
        cols[2].metric("Normal band", MISSING, border=True)
    cols[3].metric("Volume", format_value(last["volume"], unit="count"), border=True,
                   help="Events in the latest bucket (denominator for rates)")


def _why_it_fired(here: pd.DataFrame, header: dict) -> None:
    if here is None or here.empty:
        return
    latest = Incident.from_row(here.sort_values("start_ts").iloc[-1].to_dict())
    with st.expander(f"Why it fired: {severity_text(latest.severity)} incident since "
                     f"{format_timestamp(latest.start_ts, grain=header['grain'])}", expanded=latest.is_open):
        for line in why_lines(latest, header):
            st.markdown(f"- {line}")
        st.button("Open the incident ›", key="metric_open_latest", on_click=go, args=("incident",),
                  kwargs={"id": latest.incident_id})


def _incident_table(ctx: AppContext, incidents: pd.DataFrame, header: dict) -> None:
    st.subheader("Incidents in this period")
    if incidents is None or incidents.empty:
        st.caption("None: no incident on this metric or its slices in the period shown.")
        return
    incidents = incidents.reset_index(drop=True)
    grain, unit = header["grain"], header["unit"]
    st.dataframe(pd.DataFrame({
        "Severity": pills(incidents["severity"]),
        "Slice": [slice_text(s) for s in incidents["slice"]],
        "From": [format_timestamp(t, grain=grain) for t in incidents["start_ts"]],
        "Status": pills(incidents["status"]),
        "Resolution": incidents["resolution"].fillna(""),
        "Change": [format_relative(c) for c in incidents["relative_change"]],
        "Observed": [format_value(v, unit=unit) for v in incidents["observed"]],
        "Label": incidents["label"].fillna("").str.replace("_", " "),
        "Link": [incident_url(ctx.base_url, i) for i in incidents["incident_id"]],
        "open": "Open ›",
    }), hide_index=True, key="metric_incidents", column_config={
        "Severity": severity_column(),
        "Status": status_column(),
        "open": st.column_config.ButtonColumn("", type="tertiary", key="metric_open_incident",
                                              on_click=_open_incident, args=(incidents,)),
        "Link": st.column_config.LinkColumn("Link", display_text="share ↗"),
    }, column_order=["open", "Severity", "Slice", "From", "Status", "Resolution", "Change", "Observed", "Label",
                     "Link"])
