"""Overview: every metric, what needs attention first."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from pages_common import AppContext, go, overview_data, param, pills, severity_column, status_column
from monitor.dashboard.formatting import (format_relative, format_timestamp, format_value, slice_text)
from monitor.dashboard.links import incident_url, metric_url

# A metric's status, most urgent first: open incident nobody acknowledged, last computation failed,
# open incidents all acknowledged, fine, nothing stored yet.
STATUSES = ["alerting", "failing", "acknowledged", "ok", "no data"]


def _filter_changed(name: str) -> None:
    params = {k: param(k) for k in ("owner", "team", "status")}
    params[name] = ",".join(st.session_state[f"filter_{name}"])
    go("overview", **params)


def _multiselect(label: str, name: str, options: list[str], *, fmt=str) -> list[str]:
    chosen = [v for v in param(name).split(",") if v in options]
    return st.multiselect(label, options, default=chosen, key=f"filter_{name}", on_change=_filter_changed,
                          args=(name,), format_func=fmt, placeholder="all")


def _open_metric(frame: pd.DataFrame) -> None:
    click = st.session_state.get("overview_open_metric")
    if click is not None:
        go("metric", metric=frame.iloc[int(click["row"])]["metric"])


def _open_incident(key: str, frame: pd.DataFrame) -> None:
    click = st.session_state.get(key)
    if click is not None:
        go("incident", id=frame.iloc[int(click["row"])]["incident_id"])


def render(ctx: AppContext) -> None:
    data = overview_data(ctx)
    headers, frame, incidents = data["headers"], data["metrics"], data["open"]
    st.title("Risk metrics")
    if frame.empty:
        st.info("No metric has been computed yet: run `monitor backfill` or `monitor run` first.")
        return
    latest = frame["latest_ts"].dropna().max()
    st.caption(f"{len(frame)} metrics · data up to {format_timestamp(latest, grain='day')} · store `{ctx.store.path.name}`")

    cols = st.columns(3)
    with cols[0]:
        owners = _multiselect("Owner", "owner", sorted(o for o in frame["owner"].unique() if o))
    with cols[1]:
        teams = _multiselect("Team", "team", sorted(t for t in frame["team"].unique() if t))
    with cols[2]:
        statuses = _multiselect("Status", "status", STATUSES)
    shown = frame
    if owners:
        shown = shown[shown["owner"].isin(owners)]
    if teams:
        shown = shown[shown["team"].isin(teams)]
    if statuses:
        shown = shown[shown["status"].isin(statuses)]
    shown = shown.reset_index(drop=True)
    open_here = incidents[incidents["metric"].isin(shown["metric"])].reset_index(drop=True)

    kpis = st.columns(4)
    kpis[0].metric("Open incidents", int(len(open_here)), border=True)
    kpis[1].metric("Not acknowledged", int(open_here["acked_by"].isna().sum()) if len(open_here) else 0, border=True)
    kpis[2].metric("Critical or high", int(open_here["severity"].isin(["critical", "high"]).sum())
                   if len(open_here) else 0, border=True)
    kpis[3].metric("Metrics alerting", int((shown["status"] == "alerting").sum()), border=True)

    st.subheader("Metrics, most urgent first")
    table = pd.DataFrame({
        "Status": pills(shown["status"]),
        "Metric": shown["title"],
        "Latest": [format_value(v, unit=u) for v, u in zip(shown["latest"], shown["unit"])],
        "vs last week": [format_relative(v) for v in shown["change_vs_last_week"]],
        "Open": shown["open_incidents"].astype(int),
        "Severity": pills(shown["max_severity"]),
        "Trend": shown["sparkline"],
        "Owner": [" · ".join(x for x in (o, t) if x) for o, t in zip(shown["owner"], shown["team"])],
        "Link": [metric_url(ctx.base_url, m) for m in shown["metric"]],
        "open": "Open ›",
    })
    st.dataframe(table, hide_index=True, key="overview_metrics", height=min(36 + 35 * len(table), 640), column_config={
        "open": st.column_config.ButtonColumn("", type="tertiary", key="overview_open_metric",
                                              on_click=_open_metric, args=(shown,)),
        "Status": status_column(),
        "Severity": severity_column("Worst"),
        "Metric": st.column_config.TextColumn(width="medium"),
        "vs last week": st.column_config.TextColumn(help="Latest value against the same bucket a week earlier"),
        "Open": st.column_config.NumberColumn(help="Open incidents on the metric and its slices"),
        "Trend": st.column_config.LineChartColumn("Trend", width=150, color="#1f5fa8",
                                                  help="Last 4 weeks (daily metrics) or 7 days (hourly metrics)"),
        "Owner": st.column_config.TextColumn("Owner · team"),
        "Link": st.column_config.LinkColumn("Link", display_text="share ↗", help="Deep link to the metric page"),
    }, column_order=["open", "Status", "Metric", "Latest", "vs last week", "Open", "Severity", "Trend", "Link",
                     "Owner"])

    st.subheader("Open incidents")
    if open_here.empty:
        st.success("No open incident on these metrics.")
    else:
        _incident_table(ctx, headers, open_here, key="overview_open_incident")
    resolved = data["resolved"]
    resolved = resolved[resolved["metric"].isin(shown["metric"])].reset_index(drop=True)
    if len(resolved):
        st.subheader("Resolved in the last 7 days")
        _incident_table(ctx, headers, resolved, key="overview_resolved_incident")


def _incident_table(ctx: AppContext, headers: dict, frame: pd.DataFrame, *, key: str) -> None:
    rank = frame["severity"].map({"critical": 4, "high": 3, "medium": 2, "low": 1}).fillna(0)
    frame = frame.assign(_rank=rank).sort_values(["_rank", "score"], ascending=False).reset_index(drop=True)
    titles = {name: h["title"] for name, h in headers.items()}
    units = {name: h["unit"] for name, h in headers.items()}
    grains = {name: h["grain"] for name, h in headers.items()}
    resolved = frame["status"].eq("resolved").any()
    table = pd.DataFrame({
        "Severity": pills(frame["severity"]),
        "Metric": [titles.get(m, m) for m in frame["metric"]],
        "Slice": [slice_text(s) for s in frame["slice"]],
        "Since": [format_timestamp(t, grain=grains.get(m, "day")) for t, m in zip(frame["start_ts"], frame["metric"])],
        "Ended": [format_timestamp(t, grain=grains.get(m, "day")) for t, m in zip(frame["end_ts"], frame["metric"])],
        "Change": [format_relative(c) for c in frame["relative_change"]],
        "Now": [format_value(v, unit=units.get(m, "count")) for v, m in zip(frame["observed"], frame["metric"])],
        "Acknowledged by": frame["acked_by"].fillna(""),
        "Label": frame["label"].fillna("").str.replace("_", " "),
        "Link": [incident_url(ctx.base_url, i) for i in frame["incident_id"]],
        "open": "Open ›",
    })
    columns = ["open", "Severity", "Metric", "Slice", "Since", *(["Ended"] if resolved else []), "Change",
               "Now" if not resolved else "Label", "Acknowledged by", "Link"]
    st.dataframe(table, hide_index=True, key=f"{key}_table", column_config={
        "open": st.column_config.ButtonColumn("", type="tertiary", key=key, on_click=_open_incident,
                                              args=(key, frame)),
        "Severity": severity_column(),
        "Link": st.column_config.LinkColumn("Link", display_text="share ↗", help="Deep link to the incident"),
    }, column_order=columns)
