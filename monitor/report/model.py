"""What a daily report says, as frozen data: gathered once, rendered to HTML and Markdown.

Everything here is a function of the store, the catalog, the config and the
report date (never of the wall clock), so the same inputs give the same report.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from monitor.catalog.metric import DEFAULT_BUCKET

SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}
CATEGORIES = ("new", "ongoing", "resolved")


@dataclass(frozen=True)
class MetricInfo:
    """What the report needs to know about a metric (from the catalog or, failing that, the store)."""

    name: str
    title: str
    kind: str  # ratio | sum | mean | distribution
    grain: str  # hour | day
    unit: str  # percent | count | currency
    dimensions: tuple[str, ...]
    team: str = ""
    owner: str = ""
    direction: str = "both"  # which way is bad (detect.direction)
    in_catalog: bool = True
    bucket: str = DEFAULT_BUCKET  # a distribution's bucket column


@dataclass(frozen=True)
class Change:
    """The day's value against a reference value."""

    reference: float | None
    absolute: float | None  # value - reference (a rate difference for ratio metrics)
    relative: float | None  # (value - reference) / |reference|; None when the reference is 0 or missing

    @classmethod
    def between(cls, value: float | None, reference: float | None) -> "Change":
        if value is None or reference is None:
            return cls(reference, None, None)
        relative = (value - reference) / abs(reference) if reference else None
        return cls(reference, value - reference, relative)


@dataclass(frozen=True)
class Mover:
    """One segment (one dimension = one value) and its effect on its metric's total, day vs baseline.

    ``contribution`` is in the metric's own unit and the contributions of every
    value of a dimension add up to the total's change. For ratio metrics it is
    split into ``rate`` (the segment's own rate moved) and ``mix`` (its share of
    the volume moved, weighted by how far its rate is from the total's).
    """

    metric: str
    dimension: str
    value: str
    before: float | None  # baseline: rate (ratio) or mean daily value (sum)
    after: float | None  # the report day
    share_before: float | None  # share of the denominator (ratio) / of the total (sum)
    share_after: float | None
    contribution: float
    impact: float  # contribution / |baseline total|: the size used to rank movers across metrics
    rate_effect: float | None = None
    mix_effect: float | None = None
    in_incident: bool = False  # an incident of the report day covers this segment

    @property
    def segment(self) -> str:
        return f"{self.dimension}={self.value}"

    @property
    def driver(self) -> str | None:
        if self.rate_effect is None or self.mix_effect is None:
            return None
        return "mix" if abs(self.mix_effect) > abs(self.rate_effect) else "rate"


@dataclass(frozen=True)
class MetricDay:
    metric: MetricInfo
    date: dt.date
    value: float | None
    numerator: float | None
    denominator: float | None
    buckets: int  # buckets with rows on the day
    day_before: Change
    week_before: Change
    baseline: Change
    baseline_days: int  # days of data in the baseline window
    history: tuple[tuple[dt.date, float | None], ...]  # daily values for the sparkline, oldest first
    movers: tuple[Mover, ...] = ()
    incidents: int = 0  # incidents of the report day on this metric (total and slices)

    @property
    def expected_buckets(self) -> int:
        return 24 if self.metric.grain == "hour" else 1


@dataclass(frozen=True)
class SegmentShare:
    label: str
    share: float | None  # part of the total change it explains
    before: float | None
    after: float | None
    change_type: str | None = None  # ratio: "rate" or "mix"


@dataclass(frozen=True)
class ExplanationView:
    """The part of an incident's attribution the report shows."""

    summary: str | None
    verdict: str | None  # ratio: "rate" | "mix" | "mixed"
    mix_share: float | None  # parts of the total change (rate includes the interaction term)
    rate_share: float | None
    segments: tuple[SegmentShare, ...]
    baseline_label: str | None = None
    split_dimension: str | None = None  # the dimension the mix vs rate split is cut along


@dataclass(frozen=True)
class IncidentView:
    incident_id: str
    metric: str
    slice: str  # '' = total
    parent_id: str | None
    category: str  # new | ongoing | resolved (relative to the report day)
    start_ts: dt.datetime
    end_ts: dt.datetime | None
    last_ts: dt.datetime
    direction: str
    kind: str
    baseline: float | None
    observed: float | None
    relative_change: float | None
    score: float
    severity: str
    status: str
    resolution: str | None
    label: str | None
    acked_by: str | None
    explanation: ExplanationView | None
    children: tuple["IncidentView", ...] = ()
    series: tuple[tuple[dt.datetime, float | None], ...] = ()  # the slice's values around the incident
    band: tuple[tuple[dt.datetime, float | None, float | None, float | None], ...] = ()  # ts, expected, lo, hi
    events: tuple[str, ...] = ()  # our own changes linked to it (monitor.events), in words, best first
    expected: str | None = None  # "expected: promotion 'Summer sale' ...": it did not page

    @property
    def where(self) -> str:
        return self.slice or "total"

    @property
    def sort_key(self) -> tuple:
        return (SEVERITY_RANK.get(self.severity, 9), -abs(self.score), self.metric, self.slice, self.incident_id)


@dataclass(frozen=True)
class Freshness:
    metric: str
    computed_until: dt.datetime | None  # end of the latest successful window
    last_success: dt.datetime | None  # when it finished
    complete: bool  # the report day is computed


@dataclass(frozen=True)
class FailedRuns:
    """Failed runs of one metric for windows touching the report day or the 6 days before."""

    metric: str
    failures: int
    unfixed: int  # failures no later successful run covered
    first_window: dt.datetime
    last_window: dt.datetime
    last_error: str


@dataclass(frozen=True)
class StaleDefinition:
    metric: str
    stored_hash: str
    current_hash: str
    updated_at: dt.datetime


@dataclass(frozen=True)
class DataHealth:
    freshness: tuple[Freshness, ...]
    failed_runs: tuple[FailedRuns, ...]
    stale: tuple[StaleDefinition, ...]
    never_computed: tuple[str, ...]  # in the catalog, no history in the store
    not_in_catalog: tuple[str, ...]  # history in the store, no valid definition file
    catalog_problems: tuple[str, ...]

    @property
    def incomplete(self) -> tuple[Freshness, ...]:
        return tuple(f for f in self.freshness if not f.complete)

    @property
    def issues(self) -> int:
        return (len(self.incomplete) + sum(1 for f in self.failed_runs if f.unfixed) + len(self.stale)
                + len(self.never_computed) + len(self.not_in_catalog) + len(self.catalog_problems))


@dataclass(frozen=True)
class MetricQuality:
    metric: str
    incidents: int
    true_positive: int
    false_alarm: int
    expected: int

    @property
    def labelled(self) -> int:
        return self.true_positive + self.false_alarm + self.expected

    @property
    def precision(self) -> float | None:
        """true positives / (true positives + false alarms); 'expected' changes are real, not noise."""
        judged = self.true_positive + self.false_alarm
        return self.true_positive / judged if judged else None


@dataclass(frozen=True)
class NoisyAlert:
    metric: str
    slice: str
    incidents: int
    false_alarm: int
    true_positive: int
    expected: int


@dataclass(frozen=True)
class AlertQuality:
    start: dt.date
    end: dt.date  # inclusive
    metrics: tuple[MetricQuality, ...]
    noisiest: tuple[NoisyAlert, ...]

    @property
    def overall(self) -> MetricQuality:
        return MetricQuality("all", sum(m.incidents for m in self.metrics),
                             sum(m.true_positive for m in self.metrics),
                             sum(m.false_alarm for m in self.metrics),
                             sum(m.expected for m in self.metrics))


@dataclass(frozen=True)
class ReportData:
    title: str
    project: str
    date: dt.date
    baseline_days: int
    metrics: tuple[MetricDay, ...]
    incidents: dict[str, tuple[IncidentView, ...]]  # category -> top-level incidents (children nested)
    movers: tuple[Mover, ...]
    health: DataHealth
    quality: AlertQuality
    dashboard_url: str | None = None  # deep links: {url}/?page=incident&id=... and ?page=metric&...

    def all_incidents(self) -> list[IncidentView]:
        """Every incident of the day, children after their parent."""
        out = []
        for category in CATEGORIES:
            for incident in self.incidents.get(category, ()):
                out.append(incident)
                out.extend(incident.children)
        return out

    def counts(self) -> dict[str, int]:
        return {c: len(self.incidents.get(c, ())) for c in CATEGORIES}
