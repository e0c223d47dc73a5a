"""Attribute stored incidents: build before/after leaves from the store, explain, save.

The baseline for attribution is stated with every explanation: the same
buckets one to four weeks earlier (same weekday, same hour), averaged, so weekly
seasonality cancels out and one odd week does not dominate.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from typing import Iterable, Protocol

import numpy as np
import pandas as pd

from monitor.catalog import Metric
from monitor.engine import GRAIN_STEP
from monitor.slices import slice_label
from monitor.store import Store, leaves_table

BASELINE_WEEKS = 4
BASELINE_LABEL = "same weekday{hour}, mean of the {weeks} weeks before"
# The first buckets of an incident say what changed; later ones add cost, not insight.
MAX_WINDOW_BUCKETS = {"day": 7, "hour": 24}
WHOLE_SLICE = 0.999  # share of a slice's volume above which a cause is the slice itself
SPECIFIC_Z = 2.0  # inside a slice, a ratio cause's rate must move this many sd more than the rest's


def incident_leaves(store: Store, metric: Metric, *, start: dt.datetime, end: dt.datetime,
                    segment: dict[str, str], con=None) -> tuple[pd.DataFrame, list[str]]:
    """Per-leaf actual and expected measures for [start, end), inside `segment`.

    Returns the leaves (columns per PRODUCT.md Contract 3) and the dimensions
    left to attribute over (the metric's dimensions minus those the segment fixes).
    """
    dims = [d for d in metric.dimensions if d not in segment]
    week = dt.timedelta(days=7)
    before = " OR ".join(f"(ts >= ? AND ts < ?)" for _ in range(BASELINE_WEEKS))
    before_params = [x for k in range(1, BASELINE_WEEKS + 1) for x in (start - k * week, end - k * week)]
    sel_dims = ", ".join(f'"{d}"' for d in dims)
    where = " AND ".join([f"ts >= ? AND ts < ?", *(f'"{d}" = ?' for d in segment)])
    measures = metric.measures
    actual = ", ".join(f'sum("{m}") FILTER (WHERE ts >= ? AND ts < ?) AS a_{m}' for m in measures)
    expected = ", ".join(f'sum("{m}") FILTER (WHERE {before}) AS b_{m}' for m in measures)
    # rows per baseline week (a row in two overlapping weeks counts in the first), in the same
    # pass: a second scan of the leaves for them cost more than this query (0.5 of 0.9 s at 20k sellers)
    week_index = " ".join(f"WHEN ts >= ? AND ts < ? THEN {k}" for k in range(BASELINE_WEEKS))
    rows = ", ".join(f"count(*) FILTER (WHERE CASE {week_index} END = {k}) AS __week{k}" for k in range(BASELINE_WEEKS))
    group = f"GROUP BY {sel_dims}" if dims else ""
    sql = (f'SELECT {sel_dims + "," if dims else ""} {actual}, {expected}, {rows} FROM "{leaves_table(metric.name)}" '
           f"WHERE {where} {group}")
    params = [p for _ in measures for p in (start, end)] + [p for _ in measures for p in before_params]
    params += before_params * BASELINE_WEEKS
    params += [start - BASELINE_WEEKS * week, end, *segment.values()]
    if store.leaf_engine is not None:  # warehouse mode (monitor.warehouse): the same queries, run on Spark
        con = store.leaf_engine.leaf_queries(metric, start=start - BASELINE_WEEKS * week, end=end)
    if con is None:
        with store.connect(read_only=True) as own:
            frame = own.execute(sql, params).df()
    else:
        frame = con.execute(sql, params).df()
    frame = frame.fillna(0.0)  # the row order does not matter: normalise_leaves puts rows in one order
    divisor = max(_weeks_with_data(frame), 1)
    if metric.kind in ("ratio", "mean"):
        num, den = ("value_sum", "value_count") if metric.kind == "mean" else ("numerator", "denominator")
        out = pd.DataFrame({
            "actual_num": frame[f"a_{num}"], "actual_den": frame[f"a_{den}"],
            "expected_num": frame[f"b_{num}"] / divisor, "expected_den": frame[f"b_{den}"] / divisor})
    else:
        out = pd.DataFrame({"actual": frame["a_value"], "expected": frame["b_value"] / divisor})
    for d in dims:
        out.insert(len(out.columns) - (4 if metric.kind in ("ratio", "mean") else 2), d, frame[d].astype(str))
    return out[[*dims, *[c for c in out.columns if c not in dims]]], dims


def _weeks_with_data(frame: pd.DataFrame) -> int:
    """How many of the baseline weeks have any rows in the segment (early history has fewer),
    from the query's row counts per week."""
    return sum(int(frame[f"__week{k}"].sum() > 0) for k in range(BASELINE_WEEKS))


class Episode(Protocol):
    """What attribution needs of an incident (``monitor.incident.Incident`` has it; the incident
    model sits above this package, so it is not imported here)."""

    incident_id: str
    start_ts: dt.datetime
    end_ts: dt.datetime | None
    last_ts: dt.datetime
    segment: dict[str, str]


def explain_incident(store: Store, metric: Metric, incident: Episode, *, con=None):
    from monitor.attribute.explain import explain

    if metric.kind == "distribution":
        from monitor.attribute.distribution import explain_distribution_incident

        return explain_distribution_incident(
            store, metric, incident, weeks=BASELINE_WEEKS, max_buckets=MAX_WINDOW_BUCKETS[metric.grain], con=con,
            label=BASELINE_LABEL.format(hour=" and hour" if metric.grain == "hour" else "", weeks=BASELINE_WEEKS))
    step = GRAIN_STEP[metric.grain]
    start = incident.start_ts
    end = incident.end_ts or (incident.last_ts + step)
    end = min(end, start + step * MAX_WINDOW_BUCKETS[metric.grain])
    segment = incident.segment
    leaves, dims = incident_leaves(store, metric, start=start, end=end, segment=segment, con=con)
    label = BASELINE_LABEL.format(hour=" and hour" if metric.grain == "hour" else "", weeks=BASELINE_WEEKS)
    if not dims:
        # The slice fixes every dimension: nothing is left to split. Explain it as one segment
        # for the totals, then drop that stand-in dimension: the slice itself is the cause.
        leaves.insert(0, "segment", slice_label(segment))
        whole = explain(leaves, ["segment"], metric.kind, baseline_label=label, metric_label=metric.display_title)
        return dataclasses.replace(whole, dimensions=(), causes=())
    explanation = explain(leaves, dims, metric.kind, baseline_label=label, metric_label=metric.display_title)
    if segment:
        # Inside a slice, a "cause" holding all of the slice's traffic (paypal is always
        # card_bin=none) only restates the slice under a longer name.
        kept = tuple(c for c in explanation.causes if c.size is None or c.size < WHOLE_SLICE)
        if metric.kind == "ratio":
            # a part of the slice whose rate moved no more than the rest of the slice (web
            # inside gift_cards when every channel moved alike) does not localise anything
            kept = tuple(c for c in kept if _specific(c, leaves, explanation.change or 0.0))
        explanation = dataclasses.replace(explanation, causes=kept)
    return explanation


def _specific(cause, leaves: pd.DataFrame, change: float) -> bool:
    """Inside a ratio slice: False when the rest of the slice clearly moved too (in the
    direction of the change) and the cause's rate did not move significantly more. When the
    whole slice moved alike (every channel of gift_cards), any part of it "explains" its
    share of the change without localising anything; with few events the test keeps what
    localisation found. Binomial noise on both sides of both differences; the baseline
    counts are per-week means, which makes it conservative."""
    member = np.ones(len(leaves), dtype=bool)
    for dim, value in cause.segment.items():
        member &= (leaves[dim] == value).to_numpy()
    cols = ["actual_num", "actual_den", "expected_num", "expected_den"]
    inside = leaves.loc[member, cols].sum()
    rest = leaves.loc[~member, cols].sum()
    if min(inside["actual_den"], inside["expected_den"], rest["actual_den"], rest["expected_den"]) <= 0:
        return True  # nothing to compare against: keep what localisation found

    def moved(part) -> tuple[float, float]:
        r1, r0 = part["actual_num"] / part["actual_den"], part["expected_num"] / part["expected_den"]
        return r1 - r0, r1 * (1 - r1) / part["actual_den"] + r0 * (1 - r0) / part["expected_den"]

    d_in, v_in = moved(inside)
    d_rest, v_rest = moved(rest)
    sign = 1.0 if change >= 0 else -1.0
    if v_rest == 0 or sign * d_rest < SPECIFIC_Z * math.sqrt(v_rest):
        return True  # the rest did not clearly move: nothing says the slice moved as a whole
    sd = math.sqrt(v_in + v_rest)
    return sign * (d_in - d_rest) >= SPECIFIC_Z * sd


def attribute_incidents(store: Store, metric: Metric, incidents: Iterable[Episode]) -> int:
    """Explain and store the explanations of these incidents of the metric (the pipeline passes
    those without one: ``monitor.incident.unexplained``); returns how many."""
    with store.connect(read_only=True) as con:
        explanations = {i.incident_id: explain_incident(store, metric, i, con=con) for i in incidents}
    if not explanations:
        return 0
    with store.connect() as con:
        con.executemany("UPDATE incidents SET explanation_json = ? WHERE incident_id = ?",
                        [(json.dumps(e.to_dict(), sort_keys=True), i) for i, e in explanations.items()])
    return len(explanations)
