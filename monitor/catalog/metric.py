"""The frozen objects a metric file is loaded into."""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KINDS = ("ratio", "sum", "mean", "distribution")
GRAINS = ("hour", "day")
DIRECTIONS = ("up", "down", "both")
SENSITIVITIES = ("low", "medium", "high")
SEASONALITIES = ("auto", "weekly", "daily", "none")
SEVERITIES = ("low", "medium", "high", "critical")
UNITS = ("percent", "count", "currency")
# mean: additive parts, so every slice's mean (sum/count) and its standard error are exact;
# distribution: one count per leaf and bucket (the bucket column is a key, see Metric.keys).
MEASURES = {"ratio": ("numerator", "denominator"), "sum": ("value",),
            "mean": ("value_sum", "value_count", "value_sq_sum"), "distribution": ("count",)}
DEFAULT_UNITS = {"ratio": "percent", "sum": "count", "mean": "count", "distribution": "count"}
DEFAULT_BUCKET = "bucket"


@dataclass(frozen=True)
class DetectSettings:
    """How a metric is judged; every field has a default that works untuned."""

    direction: str = "both"
    min_volume: float = 0.0  # per bucket: the denominator (ratio) or the value (sum)
    sensitivity: str | float = "medium"
    seasonality: str = "auto"  # auto = weekly for day grain, daily+weekly for hour grain
    # Per-bucket floor for judging slices, and for keeping a two-dimension slice at all;
    # None = slices use min_volume and two-dimension slices need 1 % of the volume.
    slice_min_volume: float | None = None
    max_slice_depth: int = 2
    accept_after: int | None = None  # buckets until a persisting shift is the new normal
    enabled: bool = True
    # Metrics whose incidents name segments to test here directly (chargebacks follow fraud).
    follows: tuple[str, ...] = ()
    detector: str = "default"  # a key of monitor.registry.DETECTORS


@dataclass(frozen=True)
class Metric:
    """One metric definition: a validated header plus its SQL."""

    name: str
    kind: str
    grain: str
    dimensions: tuple[str, ...]
    schedule: str
    sql: str  # the query body (the file with its header comment removed)
    path: Path
    sql_line: int  # 1-based line in the file where the query starts
    title: str = ""
    description: str = ""
    owner: str = ""
    team: str = ""
    runbook: str = ""
    severity: str = "medium"
    labels: tuple[tuple[str, str], ...] = ()
    timezone: str = "UTC"
    lookback: int = 0
    unit: str = "percent"
    bounded: bool = False
    detect: DetectSettings = field(default_factory=DetectSettings)
    header: str = ""  # the raw YAML, kept for display
    bucket: str = ""  # distribution: the bucket column (a key of every leaf, not a dimension)

    @property
    def measures(self) -> tuple[str, ...]:
        return MEASURES[self.kind]

    @property
    def keys(self) -> tuple[str, ...]:
        """Columns that identify a leaf row: the dimensions, then a distribution's bucket."""
        return (*self.dimensions, self.bucket) if self.bucket else self.dimensions

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    @property
    def display_title(self) -> str:
        return self.title or self.name.replace("_", " ").capitalize()

    @property
    def definition_hash(self) -> str:
        """Hash of what determines the stored numbers (not titles or owners).

        A change here means the stored history was computed by another
        definition and should be backfilled.
        """
        body = re.sub(r"\s+", " ", _strip_sql_comments(self.sql)).strip().rstrip(";").strip()
        payload = json.dumps(
            {"sql": body, "kind": self.kind, "grain": self.grain,
             "dimensions": list(self.dimensions), "timezone": self.timezone,
             **({"bucket": self.bucket} if self.bucket else {})},
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def header_dict(self) -> dict[str, Any]:
        """The settings as plain data (for the store, the dashboard and reports)."""
        return {
            "name": self.name, "title": self.display_title, "description": self.description,
            "owner": self.owner, "team": self.team, "runbook": self.runbook,
            "severity": self.severity, "labels": self.label_map, "kind": self.kind,
            "grain": self.grain, "dimensions": list(self.dimensions), "schedule": self.schedule,
            "timezone": self.timezone, "lookback": self.lookback, "unit": self.unit,
            "bounded": self.bounded, "detect": self.detect.__dict__.copy(),
            **({"bucket": self.bucket} if self.bucket else {}),
        }


def _strip_sql_comments(sql: str) -> str:
    sql = re.sub(r"/\*.*?\*/", " ", sql, flags=re.S)
    return re.sub(r"--[^\n]*", " ", sql)
