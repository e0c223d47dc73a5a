"""'Why it fired': the detector's evidence for an incident, as sentences an on-call can read."""
from __future__ import annotations

from typing import Any

from monitor.format import format_rate, format_relative, format_value, is_missing
from monitor.incident import Incident, Why
from monitor.slices import slice_text

KIND_TEXT = {"level_shift": "a level shift (the series moved to a new level and stayed)",
             "spike": "a spike (short departure from the expected band)",
             "mix_shift": "a traffic-mix shift (traffic moved towards segments with a different rate)"}
SHOWN_ELSEWHERE = {"series", "segment_kind", "slices_tested", "mix", "follows", "observed_count", "expected_count",
                   "window_buckets"}


def why_lines(incident: Incident, header: dict[str, Any]) -> list[str]:
    """Sentences explaining why the detector fired, most important first.

    >>> why_lines(Incident(incident_id="i", metric="m", segment={"country": "BR"}, start_ts=None, end_ts=None,
    ...                    last_ts=None, direction="up", kind="spike", baseline=0.01, observed=0.02,
    ...                    relative_change=1.0, score=6.2, severity="high", status="open",
    ...                    why=Why({"detector": "seasonal_band", "period": 7, "slices_tested": 40})),
    ...           {"unit": "percent"})[0]
    'country=BR went **up** from 1.00% (expected) to 2.00% (+100%): a spike (short departure from the expected band).'
    """
    why = dict(incident.why.params)
    unit = header.get("unit", "count")
    lines = []
    kind = incident.kind or why.get("segment_kind")
    what = slice_text(incident.segment)
    what = "The total" if what == "total" else what
    move = f"{what} went **{incident.direction or '?'}**"
    if not is_missing(incident.baseline) and not is_missing(incident.observed):
        move += (f" from {format_value(incident.baseline, kind=header.get('kind', ''), unit=unit)} (expected) to "
                 f"{format_value(incident.observed, kind=header.get('kind', ''), unit=unit)} "
                 f"({format_relative(incident.relative_change)})")
    lines.append(f"{move}: {KIND_TEXT.get(kind, kind or 'an anomaly')}.")
    if not is_missing(incident.score):
        lines.append(f"Score {float(incident.score):.1f}: how many noise levels (robust standard deviations) "
                     "the observed value is from the expected one; higher is more abnormal.")
    if why.get("mix"):
        lines.append(mix_line(why["mix"]))
    if why.get("follows"):
        lines.append(follows_line(why))
    tested = why.get("slices_tested")
    if tested:
        lines.append(f"Judged among {int(tested)} slices, with a threshold widened for that many tests so "
                     "slices do not raise more false alarms than the total.")
    params = {k: v for k, v in why.items() if k not in SHOWN_ELSEWHERE and v not in (None, "", [], {})}
    if params:
        shown = ", ".join(f"{k.replace('_', ' ')}: `{_short(v)}`" for k, v in sorted(params.items()))
        lines.append(f"Detector settings — {shown}.")
    return lines


def mix_line(mix: dict[str, Any]) -> str:
    """The traffic-mix evidence: what the shares alone imply for the total rate.

    >>> mix_line({"dimension": "country", "implied_relative_change": 0.18, "score": 9.1,
    ...           "segments": [{"value": "NG", "baseline_share": 0.04, "share": 0.08}]})
    'Traffic mix alone implies +18.0% on the expected rate (9.1 noise levels): by country, NG 4.00% → 8.00% of volume.'
    """
    moves = ", ".join(f"{s['value']} {format_rate(s['baseline_share'])} → {format_rate(s['share'])}"
                      for s in mix.get("segments", []))
    text = f"Traffic mix alone implies {format_relative(mix.get('implied_relative_change'))} on the expected rate"
    if not is_missing(mix.get("score")):
        text += f" ({float(mix['score']):.1f} noise levels)"
    return text + (f": by {mix.get('dimension')}, {moves} of volume." if moves else ".")


def follows_line(why: dict[str, Any]) -> str:
    """Which incident of a leading metric pointed at this segment, and the counts that confirmed it.

    >>> follows_line({"follows": {"metric": "fraud_rate", "incident_id": "3f2a9c", "start": "2026-09-05T00:00:00"},
    ...               "observed_count": 19.0, "expected_count": 4.66, "window_buckets": 4})
    "Pointed at by fraud_rate incident 3f2a9c (from 2026-09-05): 19 events in 4 buckets; the segment's own history expects 4.7."
    """
    lead = why["follows"]
    start = str(lead.get("start", ""))[:16].replace("T", " ").removesuffix(" 00:00")  # a day, or an hour
    text = f"Pointed at by {lead.get('metric')} incident {lead.get('incident_id')} (from {start})"
    if not is_missing(why.get("observed_count")) and not is_missing(why.get("expected_count")):
        text += (f": {float(why['observed_count']):.0f} events in {why.get('window_buckets')} buckets; the "
                 f"segment's own history expects {float(why['expected_count']):.1f}")
    return text + "."


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_short(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}={_short(v)}" for k, v in value.items())
    return str(value)
