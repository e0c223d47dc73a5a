"""A distribution incident's before/after histogram: each bucket's share of events in the
incident's first buckets against the baseline the detector used (the buckets just
before it), as grouped bars, so the reader sees where the mass went."""
from __future__ import annotations

import datetime as dt

import altair as alt
import pandas as pd

from monitor.buckets import order_key
from monitor.catalog.metric import DEFAULT_BUCKET
from monitor.dashboard.charts import Figure
from monitor.incident import Incident
from monitor.store import leaves_table

BEFORE_BUCKETS = 28  # the detector's baseline (monitor.detect.kind_runs.WINDOW)
AFTER_BUCKETS = 7  # the first buckets of the incident, as attribution reads them
COLORS = {"before": "#9e9e9e", "during": "#d62728"}


def histogram_frame(con, header: dict, incident: Incident, step: dt.timedelta) -> pd.DataFrame:
    """bucket, period (before | during), share, events; empty without data."""
    bucket = header.get("bucket") or DEFAULT_BUCKET
    start = incident.start_ts
    end = min(incident.end_ts or (incident.last_ts + step), start + AFTER_BUCKETS * step)
    segment = incident.segment
    where = "".join(f' AND "{d}" = ?' for d in segment)
    frame = con.execute(
        f'SELECT CAST("{bucket}" AS VARCHAR) AS bucket, CASE WHEN ts >= ? THEN \'during\' ELSE \'before\' END AS period,'
        f' sum("count") AS events FROM "{leaves_table(header["name"])}" WHERE ts >= ? AND ts < ?{where}'
        " GROUP BY ALL", [start, start - BEFORE_BUCKETS * step, end, *segment.values()]).df()
    if frame.empty:
        return frame.assign(share=pd.Series(dtype=float))
    frame["share"] = frame["events"] / frame.groupby("period")["events"].transform("sum")
    order = sorted(frame["bucket"].unique(), key=order_key)
    frame["rank"] = frame["bucket"].map({b: i for i, b in enumerate(order)})
    return frame.sort_values(["rank", "period"]).reset_index(drop=True)


def histogram_chart(frame: pd.DataFrame, *, title: str, height: int = 260) -> Figure:
    fig = Figure(title=title, height=height)
    data = fig.data("histogram", frame[["bucket", "period", "share", "events", "rank"]])
    fig.add(alt.Chart(data).mark_bar().encode(
        x=alt.X("bucket:N", sort=alt.SortField("rank"), title="bucket", axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("period:N", sort=["before", "during"]),
        y=alt.Y("share:Q", axis=alt.Axis(format="%", title="share of events")),
        color=alt.Color("period:N", scale=alt.Scale(domain=list(COLORS), range=list(COLORS.values())),
                        legend=alt.Legend(title=None, orient="top")),
        tooltip=[alt.Tooltip("bucket:N"), alt.Tooltip("period:N"), alt.Tooltip("share:Q", format=".2%"),
                 alt.Tooltip("events:Q", format=",.0f")]))
    return fig

