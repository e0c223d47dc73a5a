"""Incident page: what moved, since when, how much, which segments explain it; act on it."""
from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd
import streamlit as st

from pages_common import (AppContext, chart, clear_caches, go, incident_data, now_utc, overview_data, param, pills,
                          severity_column, shading_frame, status_column)
from monitor.dashboard import actions
from monitor.dashboard.attribution import AttributionView, attribution_view, waterfall_steps
from monitor.dashboard.charts import mix_rate_chart, series_chart, waterfall_chart
from monitor.dashboard.formatting import (LABELS, MISSING, SMALL_SEGMENTS, format_delta, format_difference,
                                          format_duration, format_relative, format_share, format_timestamp,
                                          format_value, severity_badge, severity_text, slice_text)
from monitor.dashboard.links import incident_url, metric_url
from monitor.dashboard.why import why_lines
from monitor.errors import MonitorError
from monitor.events.describe import describe_link
from monitor.incident import Incident
from monitor.slices import slice_label

VERDICT_TEXT = {
    "rate": "**Rate change**: the segments' own rates moved (a real change in behaviour, e.g. an attack "
            "or a rule change), not the traffic mix.",
    "mix": "**Mix shift**: traffic moved towards segments that always have a different rate; the rates "
           "themselves barely changed.",
    "mixed": "**Both**: part of the change is a traffic-mix shift, part is segments' own rates moving.",
}
SILENCE_DURATIONS = {"1 hour": 1, "4 hours": 4, "12 hours": 12, "1 day": 24, "3 days": 72, "7 days": 168}


# -- actions (callbacks run before the page is drawn again) ---------------------------------------
def _act(what: str, fn, *args, **kwargs) -> None:
    try:
        fn(*args, **kwargs)
    except MonitorError as exc:
        st.session_state["incident_flash"] = ("error", str(exc))
        return
    clear_caches()
    st.session_state["incident_flash"] = ("success", what)


def _ack(ctx: AppContext, incident_id: str) -> None:
    who = st.session_state.get("who", "")
    _act(f"Acknowledged by {who.strip()}.", actions.acknowledge, ctx.store, incident_id, by=who, now=now_utc())


def _label(ctx: AppContext, incident_id: str) -> None:
    who, label = st.session_state.get("who", ""), st.session_state.get("incident_label_choice")
    if not label:
        st.session_state["incident_flash"] = ("error", "Choose a label first.")
        return
    _act(f"Labelled {LABELS[label]}.", actions.set_label, ctx.store, incident_id, label, by=who, now=now_utc())


def _silence(ctx: AppContext, incident: Incident) -> None:
    scope = st.session_state.get("silence_scope", "slice")
    hours = SILENCE_DURATIONS[st.session_state.get("silence_duration", "4 hours")]
    comment = st.session_state.get("silence_comment", "")
    what = "this slice" if scope == "slice" else "the whole metric"
    _act(f"Alerts of {what} silenced for {st.session_state.get('silence_duration', '4 hours')}.",
         actions.silence_incident, ctx.store, incident, scope=scope, author=st.session_state.get("who", ""),
         comment=comment, duration=dt.timedelta(hours=hours), now=now_utc())


def _drill(metric: str) -> None:
    label = st.session_state.get("drill_segment")
    if label is not None:
        go("metric", metric=metric, slice=label)


def _open_other(key: str, frame: pd.DataFrame) -> None:
    click = st.session_state.get(key)
    if click is not None:
        go("incident", id=frame.iloc[int(click["row"])]["incident_id"])


# -- page -----------------------------------------------------------------------------------------
def _choose_incident(ctx: AppContext, wanted: str) -> None:
    st.title("Incidents")
    if wanted:
        st.error(f"No incident with id {wanted!r} in the store (it may have been withdrawn by a re-run).")
    data = overview_data(ctx)
    headers, open_incidents = data["headers"], data["open"]
    if open_incidents.empty:
        st.info("No open incident.")
        return
    ids = list(open_incidents["incident_id"])
    rows = {r["incident_id"]: r for r in open_incidents.to_dict("records")}
    st.selectbox("Open incident", ids, index=None, key="incident_choose", placeholder="choose an incident",
                 format_func=lambda i: f"{severity_text(rows[i]['severity'])} · "
                                       f"{headers.get(rows[i]['metric'], {}).get('title', rows[i]['metric'])} · "
                                       f"{slice_text(rows[i]['slice'])} · since {format_timestamp(rows[i]['start_ts'], grain='day')}",
                 on_change=lambda: go("incident", id=st.session_state["incident_choose"]))


def render(ctx: AppContext) -> None:
    incident_id = param("id")
    data = incident_data(ctx, incident_id) if incident_id else None
    if data is None:
        _choose_incident(ctx, incident_id)
        return
    inc, header = data["incident"], data["header"]
    unit, grain = header["unit"], header["grain"]
    volume_before, volume_after = data["volumes"]
    view = attribution_view(inc.explanation, min_size=ctx.settings.min_segment_size,
                            volume_before=volume_before, volume_after=volume_after, within=inc.segment)

    nav = st.columns([1, 1, 6])
    nav[0].button("← Overview", on_click=go, args=("overview",), type="tertiary", key="nav_overview")
    nav[1].button("Metric page ›", on_click=go, args=("metric",), kwargs={"metric": inc.metric,
                  "slice": inc.slice}, type="tertiary", key="nav_metric")

    flash = st.session_state.pop("incident_flash", None)
    if flash:
        (st.success if flash[0] == "success" else st.error)(flash[1])

    direction = inc.direction
    change = inc.relative_change
    small = _too_small(inc, data["series"], grain, ctx.settings.min_segment_size)
    st.title(f"{header['title']} {direction} {format_relative(abs(change)).lstrip('+')}"
             if change is not None and not small else f"{header['title']} moved {direction}")
    status = inc.status + (f" ({inc.resolution})" if inc.resolution else "")
    facts = [severity_badge(inc.severity), f"**{slice_text(inc.segment)}**", status,
             f"since {format_timestamp(inc.start_ts, grain=grain)}", f"last seen {format_timestamp(inc.last_ts, grain=grain)}"]
    if inc.acked_by:
        facts.append(f"acknowledged by {inc.acked_by}")
    expected = next((link for link in data.get("links") or [] if link.get("expected_here")), None)
    if expected:
        facts.append(f"**expected** ({expected['kind']} {expected['title']!r}): does not page")
    if inc.label:
        facts.append(f"labelled **{LABELS.get(inc.label, inc.label)}** by {inc.labelled_by or '?'}")
    st.markdown(" · ".join(facts))

    main, side = st.columns([3, 1], gap="large")
    with main:
        kpis = st.columns(4)
        if small:
            st.warning(f"{slice_text(inc.segment)} had fewer than {ctx.settings.min_segment_size:g} events during "
                       "the incident: its values are withheld (privacy floor).")
            kpis[0].metric("Expected", "withheld", border=True)
            kpis[1].metric("Observed", "withheld", border=True)
        else:
            kpis[0].metric("Expected", format_value(inc.baseline, unit=unit), border=True)
            kpis[1].metric("Observed", format_value(inc.observed, unit=unit),
                           delta=format_difference(inc.baseline, inc.observed, unit=unit),
                           delta_color="inverse" if header.get("detect", {}).get("direction") != "down" else "normal",
                           border=True)
        duration = (inc.end_ts or inc.last_ts + (dt.timedelta(hours=1) if grain == "hour"
                                                          else dt.timedelta(days=1))) - inc.start_ts
        kpis[2].metric("Duration", format_duration(duration), border=True)
        kpis[3].metric("Score", f"{float(inc.score):.1f}", help="Standardised deviation; higher is more abnormal",
                       border=True)
        st.markdown(_summary(inc, view, unit))
        series = data["series"]
        if not series.empty:
            shade = shading_frame(pd.DataFrame([{k: getattr(inc, k) for k in ("incident_id", "slice", "severity",
                                                                               "start_ts", "end_ts", "last_ts")}]),
                                  grain)
            chart(series_chart(series, title=f"{header['title']} — {slice_text(inc.segment)}", unit=unit,
                               grain=grain, incidents=shade, change_points=data["change_points"],
                               highlight_id=inc.incident_id, height=320, events=data.get("events")))
            st.caption("Shaded: this incident · red dots: buckets outside the expected band · dashed purple: "
                       "change points · blue band: the expected range · teal: our own changes (events).")
        histogram = data.get("histogram")
        if histogram is not None and not histogram.empty and not small:
            from monitor.dashboard.histogram import histogram_chart

            chart(histogram_chart(histogram, title=f"Where the mass moved — {slice_text(inc['segment'])}"))
            st.caption("Share of events per bucket: grey the 28 buckets before the incident (the detector's "
                       "baseline), red its first buckets.")
        _our_changes(data.get("links") or [])
    with side:
        _actions(ctx, inc)

    st.header("Which segments explain it")
    _attribution(ctx, inc, header, view)
    _related(ctx, data)
    with st.expander("Why it fired (detector evidence)", expanded=False):
        shown = dataclasses.replace(inc, baseline=None, observed=None) if small else inc
        for line in why_lines(shown, header):
            st.markdown(f"- {line}")
        if view and view.baseline_label:
            st.markdown(f"- Attribution baseline: {view.baseline_label}.")
    st.caption(f"Incident `{inc.incident_id}` · share: {incident_url(ctx.base_url, inc.incident_id)}")


def _our_changes(links: list[dict]) -> None:
    """The events linked to the incident (monitor.events), best match first: "did we do this?"."""
    st.subheader("Our changes before it")
    if not links:
        st.caption("No rule, model, promotion or deploy event of ours is linked to this incident "
                   "(event files under events/, or `monitor event add`).")
        return
    rows = [{"Change": describe_link(link), "Kind": link["kind"], "Match": link["scope_match"],
             "Score": round(float(link["score"]), 2), "Expected": "yes" if link.get("expected_here") else "",
             "Link": link.get("url") or None} for link in links]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                 column_config={"Link": st.column_config.LinkColumn("Link")})


def _too_small(inc: Incident, series: pd.DataFrame, grain: str, min_size: float) -> bool:
    """A slice with fewer events than the privacy floor over the incident's buckets."""
    if not inc.segment or series.empty:
        return False
    step = dt.timedelta(hours=1) if grain == "hour" else dt.timedelta(days=1)
    end = inc.end_ts or inc.last_ts + step
    window = series[(series["ts"] >= pd.Timestamp(inc.start_ts)) & (series["ts"] < pd.Timestamp(end))]
    return float(window["volume"].fillna(0).sum()) < min_size


def _summary(inc: Incident, view: AttributionView | None, unit: str) -> str:
    if view is None:
        return "_No attribution yet: it is computed in the cycle after detection (`monitor run`)._"
    parts = []
    roots = view.root_causes[view.root_causes["label"] != SMALL_SEGMENTS]
    if len(roots):
        top = roots.iloc[0]
        share = (f"{format_share(top['explained_share'])} of the change" if pd.notna(top["explained_share"])
                 else "most of it")
        moved = ""
        if pd.notna(top["before"]) and pd.notna(top["after"]):
            moved = f" ({format_value(top['before'], unit=unit)} → {format_value(top['after'], unit=unit)})"
        parts.append(f"**{share}** is explained by **{slice_text(top['segment'])}**{moved}.")
    if view.verdict in VERDICT_TEXT and view.kind == "ratio":
        parts.append(VERDICT_TEXT[view.verdict])
    return " ".join(parts) or "_The attribution found no segment that stands out: the change is spread out._"


def _actions(ctx: AppContext, inc: Incident) -> None:
    st.subheader("Act")
    st.text_input("Your name", key="who", placeholder="e.g. alice")
    if inc.acked_by:
        st.caption(f"✅ Acknowledged by {inc.acked_by} at {format_timestamp(inc.acked_at, grain='hour')}")
    else:
        st.button("Acknowledge", type="primary", key="incident_ack", on_click=_ack, args=(ctx, inc.incident_id),
                  width="stretch")
    choices = list(LABELS)
    st.radio("Label", choices, format_func=lambda c: LABELS[c], key="incident_label_choice",
             index=choices.index(inc.label) if inc.label in choices else None, horizontal=False)
    st.button("Save label", key="incident_label_save", on_click=_label, args=(ctx, inc.incident_id),
              width="stretch")
    with st.expander("Silence alerts"):
        st.radio("Scope", ["slice", "metric"], key="silence_scope",
                 format_func=lambda s: f"this series ({slice_text(inc.segment)})" if s == "slice"
                 else "the whole metric")
        st.selectbox("For", list(SILENCE_DURATIONS), index=1, key="silence_duration")
        st.text_input("Why", key="silence_comment", placeholder="e.g. known promo in BR")
        st.button("Add silence", key="incident_silence", on_click=_silence, args=(ctx, inc))


def _attribution(ctx: AppContext, inc: Incident, header: dict, view: AttributionView | None) -> None:
    unit = header["unit"]
    if view is None:
        st.info("This incident has no attribution yet; it is added by the next `monitor run`.")
        return
    if view.baseline_label:
        st.caption(f"Before = {view.baseline_label}; after = the incident's buckets.")
    if view.hidden_segments:
        st.caption(f"Privacy: {view.hidden_segments} segment(s) with fewer than {ctx.settings.min_segment_size:g} "
                   f"events are shown only together, as '{SMALL_SEGMENTS}'.")
    dims = [d for d, frame in view.dimensions.items() if not frame.empty]
    movers: list[dict[str, str]] = []  # the biggest contributors of the dimension shown, to drill into
    if dims and view.before is not None and view.after is not None:
        # The dimension of the top root cause says the most; else the one with the largest single move.
        roots = view.root_causes[view.root_causes["label"] != SMALL_SEGMENTS]
        top_dims = [d for d in (roots.iloc[0]["segment"] if len(roots) else {}) if d in dims]
        best = top_dims[-1] if top_dims else max(dims, key=lambda d: view.dimensions[d]["contribution"].abs().max())
        dim = st.segmented_control("Split the change by", dims, default=best, key=f"attr_dim:{inc.incident_id}")
        dim = dim or best
        frame = view.dimensions[dim]
        movers = [{**inc.segment, dim: v} for v in frame["value"].head(3) if v != SMALL_SEGMENTS]
        left, right = st.columns(2) if view.kind == "ratio" else (st.container(), None)
        with left:
            steps = waterfall_steps(frame, change=view.change)
            chart(waterfall_chart(steps, before=view.before, after=view.after, unit=unit,
                                  title=f"Change of the total, by {dim}"))
        if right is not None and frame[["mix", "rate"]].notna().any().any():
            with right:
                parts = frame.head(8)[["value", "mix", "rate", "interaction"]].rename(columns={"value": "label"})
                chart(mix_rate_chart(parts.fillna(0.0), unit=unit, title=f"Rate vs mix, by {dim}"))
        table = frame.head(15)
        st.dataframe(pd.DataFrame({
            dim: table["value"],
            "Contribution": [format_delta(c, unit=unit) for c in table["contribution"]],
            "Share of change": table["share_of_change"] * 100,
            **({"Rate part": [format_delta(c, unit=unit) if pd.notna(c) else MISSING for c in table["rate"]],
                "Mix part": [format_delta(c, unit=unit) if pd.notna(c) else MISSING for c in table["mix"]]}
               if view.kind == "ratio" else {}),
            "Before": [format_value(v, unit=unit) for v in table["before"]],
            "After": [format_value(v, unit=unit) for v in table["after"]],
            "Events": pd.to_numeric(table["size"]).round(0),
        }), hide_index=True, key=f"attr_table:{dim}", column_config={
            "Share of change": st.column_config.NumberColumn(format="%.0f%%"),
            "Events": st.column_config.NumberColumn(format="localized"),
        })
    st.subheader("Root-cause segments")
    roots = view.root_causes
    if roots.empty:
        st.caption("No segment stands out: the change is spread over many segments.")
    else:
        _root_cause_table(ctx, inc, roots, unit, view.kind)
    choices = list(dict.fromkeys([slice_label(s) for s in roots["segment"] if s] + [slice_label(s) for s in movers]))
    if choices:
        cols = st.columns([3, 1], vertical_alignment="bottom")
        cols[0].selectbox("Drill down: show a segment on the metric page", choices, key="drill_segment",
                          format_func=slice_text)
        cols[1].button("Show segment ›", key="drill_go", on_click=_drill, args=(inc.metric,))


def _root_cause_table(ctx: AppContext, inc: Incident, roots: pd.DataFrame, unit: str, kind: str) -> None:
    st.dataframe(pd.DataFrame({
        "Segment": [slice_text(s) if lbl != SMALL_SEGMENTS else SMALL_SEGMENTS
                    for s, lbl in zip(roots["segment"], roots["label"])],
        "Explains": roots["explained_share"] * 100,
        "Before": [format_value(v, unit=unit) for v in roots["before"]],
        "After": [format_value(v, unit=unit) for v in roots["after"]],
        "Events": pd.to_numeric(roots["size"]).round(0),
        "Share of traffic": roots["share_of_volume"] * 100,
        **({"What moved": [{"rate": "its rate", "mix": "its traffic share"}.get(c, "") for c in roots["change_type"]]}
           if kind == "ratio" else {}),
        "Link": [metric_url(ctx.base_url, inc.metric, s) if s else None for s in roots["segment"]],
    }), hide_index=True, key="root_causes", column_config={
        "Explains": st.column_config.ProgressColumn("Explains", format="%.0f%%", min_value=0, max_value=100,
                                                    help="Share of the total change this segment accounts for"),
        "Events": st.column_config.NumberColumn(format="localized", help="Events in the segment during the incident"),
        "Share of traffic": st.column_config.NumberColumn(format="%.1f%%"),
        "Link": st.column_config.LinkColumn("Link", display_text="metric page ↗"),
    })


def _related(ctx: AppContext, data: dict) -> None:
    others, same = data["other_metrics"], data["same_metric"]
    headers = data["headers"]
    st.header("At the same time")
    if others.empty and same.empty:
        st.caption("No other incident overlaps this one.")
        return
    for title, frame, key in (("Other metrics", others, "related_other"), ("Other slices of this metric", same,
                                                                           "related_same")):
        if frame.empty:
            continue
        st.subheader(title)
        frame = frame.head(50).reset_index(drop=True)
        st.dataframe(pd.DataFrame({
            "Severity": pills(frame["severity"]),
            "Metric": [headers.get(m, {}).get("title", m) for m in frame["metric"]],
            "Slice": [slice_text(s) for s in frame["slice"]],
            "From": [format_timestamp(t, grain="day") for t in frame["start_ts"]],
            "Change": [format_relative(c) for c in frame["relative_change"]],
            "Status": pills(frame["status"]),
            "Link": [incident_url(ctx.base_url, i) for i in frame["incident_id"]],
            "open": "Open ›",
        }), hide_index=True, key=f"{key}_table", column_config={
            "Severity": severity_column(),
            "Status": status_column(),
            "open": st.column_config.ButtonColumn("", type="tertiary", key=f"{key}_open", on_click=_open_other,
                                                  args=(f"{key}_open", frame)),
            "Link": st.column_config.LinkColumn("Link", display_text="share ↗"),
        }, column_order=["open", "Severity", "Metric", "Slice", "From", "Change", "Status", "Link"])
