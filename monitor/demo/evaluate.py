"""Score detection and attribution on the demo world against its ground truth.

Used by `monitor demo` (the summary), by the tests and by the benchmarks, so
the figures in notes come from one definition:
- an injected rate/mix incident is *detected* when an incident on one of its
  metrics (the total, or a slice consistent with the injected segment) starts
  within one bucket of the injected start, in the injected direction (one found
  later on the same day is reported with its delay, as not detected);
- its *attribution* is right when the top root cause of the earliest such
  incident is exactly the injected segment (restricted to the metric's
  dimensions), and a mix incident is explained as mix;
- a *false* incident is a paging incident (a total, or a slice not under a
  total) that overlaps no injected event of its metric.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from monitor.catalog import Metric
from monitor.engine import GRAIN_STEP
from monitor.incident import Incident, read_incidents
from monitor.slices import slice_text
from monitor.store import Store

# Effects linger after an injected incident ends (rolling baselines, late refunds).
AFTER_END_GRACE = dt.timedelta(days=3)


@dataclass
class TruthOutcome:
    truth_id: str
    metric: str
    detected: bool
    delay_buckets: float | None
    incident_id: str | None
    top_cause: dict | None
    expected_cause: dict
    attribution_ok: bool | None
    verdict: str | None = None


@dataclass
class Evaluation:
    outcomes: list[TruthOutcome] = field(default_factory=list)
    false_incidents: dict[str, int] = field(default_factory=dict)  # metric -> count
    clean_days: dict[str, float] = field(default_factory=dict)
    rate_on_volume_event: list[str] = field(default_factory=list)  # rate incidents during a volume-only event

    @property
    def detected(self) -> int:
        return sum(o.detected for o in self.outcomes)

    @property
    def attributed(self) -> int:
        return sum(bool(o.attribution_ok) for o in self.outcomes)

    def false_per_90_clean_days(self) -> dict[str, float]:
        return {m: self.false_incidents.get(m, 0) * 90.0 / max(self.clean_days.get(m, 0), 1e-9)
                for m in self.clean_days}

    def to_dict(self) -> dict:
        return {
            "detected": self.detected, "attributed": self.attributed, "injected": len(self.outcomes),
            "outcomes": [o.__dict__ for o in self.outcomes], "false_incidents": self.false_incidents,
            "false_per_90_clean_days": self.false_per_90_clean_days(),
            "rate_incidents_on_volume_events": self.rate_on_volume_event,
        }


def _day(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def _consistent(slice_segment: dict, truth_segment: dict) -> bool:
    """A slice is consistent with the truth when they agree on every dimension both fix."""
    return all(truth_segment.get(k, v) == v for k, v in slice_segment.items()) and bool(
        set(slice_segment) & set(truth_segment))


def evaluate(store: Store, metrics: dict[str, Metric], truth: dict) -> Evaluation:
    with store.connect(read_only=True) as con:
        incidents = read_incidents(con, order="start_ts, incident_id")
    world_start, world_end = _day(truth["start"]), _day(truth["end"])
    result = Evaluation()
    events = truth["incidents"]
    for event in events:
        if event["type"] not in ("rate", "mix", "distribution"):
            continue
        for name in event["metrics"]:
            if name not in metrics:
                continue
            result.outcomes.append(_score_event(event, metrics[name], incidents))
    for name, metric in metrics.items():
        step = GRAIN_STEP[metric.grain]
        mine = [i for i in incidents if i.metric == name]
        spans = [(_day(e["start"]) - step, (_day(e["end"]) or world_end) + AFTER_END_GRACE)
                 for e in events if name in e["metrics"] or name in e.get("visible_on", [])]
        false = 0
        for i in mine:
            if not (i.is_total or i.parent_id is None):
                continue  # rides inside a total's page
            # overlap, not "starts inside": a detection whose estimated start is a little
            # early (a change-point estimate) still pages for the injected event
            end = world_end if i.end_ts is None else i.end_ts
            if not any(i.start_ts < b and a < max(end, i.start_ts + step) for a, b in spans):
                false += 1
        result.false_incidents[name] = false
        covered = sum(((min(b, world_end) - max(a, world_start)).total_seconds() / 86400 for a, b in spans), 0.0)
        result.clean_days[name] = (world_end - world_start).total_seconds() / 86400 - covered
        for event in events:
            if event["type"] == "volume" and metric.kind == "ratio":
                a, b = _day(event["start"]), _day(event["end"]) or world_end
                result.rate_on_volume_event += [f"{name}:{i.incident_id}" for i in mine
                                                if i.is_total and a <= i.start_ts < b]
    return result


def _score_event(event: dict, metric: Metric, incidents: list[Incident]) -> TruthOutcome:
    step = GRAIN_STEP[metric.grain]
    start = _day(event["start"])
    expected = {k: v for k, v in event["segment"].items() if k in metric.dimensions}
    mine = [i for i in incidents if i.metric == metric.name and i.direction == event["direction"]]
    window_lo, window_hi = start - step, start + max(step, dt.timedelta(days=1)) + step
    relevant = [i for i in mine if window_lo <= i.start_ts <= window_hi
                and (i.is_total or _consistent(i.segment, expected))]
    if not relevant:
        return TruthOutcome(event["id"], metric.name, False, None, None, None, expected, None)
    # Detection: the earliest relevant incident (the total or a consistent slice): a slice
    # incident alerts on its own until a total incident starts and takes it in.
    ordered = sorted(relevant, key=lambda i: (i.start_ts, i.slice))
    first = [i for i in ordered if i.start_ts == ordered[0].start_ts]
    chosen = next((i for i in first if i.is_total), None) or next((i for i in first if i.parent_id is None), first[0])
    delay = (chosen.start_ts - start) / step
    # Attribution: what the on-call reads, i.e. the total incident running at the injected
    # start (it may have begun a little earlier), else the incident chosen above.
    running = [i for i in mine if i.is_total and i.start_ts <= start + step and (i.end_ts is None or i.end_ts > start)]
    explained = max(running, key=lambda i: i.start_ts) if running else chosen
    top, verdict = _top_cause(explained)
    if event["type"] == "mix":
        ok = verdict == "mix"
    else:
        ok = top == expected
    # Found later than one bucket (within the day searched): reported with its delay, not detected.
    detected = abs(delay) <= 1
    return TruthOutcome(event["id"], metric.name, detected, float(delay), chosen.incident_id, top, expected,
                        ok if detected else None, verdict)


def _top_cause(incident: Incident) -> tuple[dict | None, str | None]:
    """The segment the on-call reads first (the incident's slice narrowed by its top cause), and the verdict."""
    e = incident.explanation
    if e is None:
        return None, None
    top = None
    if e.causes:
        top = dict(incident.segment)
        top.update(e.causes[0].segment)
    elif incident.segment:
        top = dict(incident.segment)
    return top, e.verdict


def leading_signals(evaluation: Evaluation, truth: dict, metrics: dict[str, Metric]) -> list[str]:
    """'model_score moved in country=GB&... on 2026-08-31, 4 days before fraud_rate' for each
    detected distribution event whose segment a later detected rate event shares: the score
    saw the attack before the labels did."""
    starts = {e["id"]: e for e in truth["incidents"]}
    lines = []
    for lead in (o for o in evaluation.outcomes if o.detected and starts[o.truth_id]["type"] == "distribution"):
        segment = starts[lead.truth_id]["segment"]
        lead_day = _day(starts[lead.truth_id]["start"]) + GRAIN_STEP[metrics[lead.metric].grain] * (lead.delay_buckets or 0.0)
        for late in evaluation.outcomes:
            event = starts[late.truth_id]
            if late.detected and event["type"] == "rate" and event["segment"] == segment:
                late_day = _day(event["start"]) + GRAIN_STEP[metrics[late.metric].grain] * (late.delay_buckets or 0.0)
                if late_day > lead_day:
                    label = slice_text(segment)
                    lines.append(f"{lead.metric} moved in {label} on {lead_day:%Y-%m-%d}, "
                                 f"{(late_day - lead_day) / dt.timedelta(days=1):g} days before {late.metric} did")
    return lines

