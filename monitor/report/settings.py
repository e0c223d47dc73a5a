"""The ``[report]`` section of monitor.toml, declared once as data.

Each setting has a name, a default, a parser and a help text; the same table
validates the section (an unknown key is an error that lists the valid ones),
fills :class:`ReportSettings` and is the reference the docs are written from.
"""
from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from monitor.config import CONFIG_NAME, ProjectConfig
from monitor.errors import ConfigError
from monitor.settings import Setting

DEFAULT_DASHBOARD_URL = "http://localhost:8501"  # the [dashboard] url default
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


def _nonempty(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    return value


def _time(value: Any) -> str:
    if not isinstance(value, str) or not _TIME.match(value):
        raise ValueError('must be a 24-hour time "HH:MM", like "07:00"')
    return value


def _timezone(value: Any) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError("must be an IANA timezone such as UTC or Europe/Berlin") from None
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _count(low: int, high: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"must be a whole number from {low} to {high}")
        return value

    return parse


def _names(value: Any) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
        raise ValueError('must be a list of receiver names, like ["risk-leads"]')
    return tuple(value)


SETTINGS: dict[str, Setting] = {s.name: s for s in [
    Setting("title", "Risk metrics daily report", "str", "Heading of the report and of the Slack digest.",
            parse=_nonempty),
    Setting("out_dir", "reports", "path",
            "Folder the HTML and Markdown files are written to (relative to monitor.toml).", parse=_nonempty),
    Setting("base_url", "", "str",
            "Where the HTML files are published, e.g. https://reports.example.com/risk; the digest links to "
            "<base_url>/<file>. Empty: a file:// link to out_dir.", parse=_str),
    Setting("time", "07:00", "time", "When the scheduler builds and sends the daily report (HH:MM).", parse=_time),
    Setting("timezone", "UTC", "timezone",
            "Timezone of `time` and of the report day (the default date is the last complete day here).",
            parse=_timezone),
    Setting("send", True, "bool", "Send the digest through the alert notifiers when the scheduler builds the report.",
            parse=_bool),
    Setting("receivers", (), "list",
            "Alert receivers the digest goes to (names from [alerts] receivers); empty: the default route's.",
            parse=_names),
    Setting("baseline_days", 28, "int", "Days before the report day that form the baseline.", parse=_count(7, 365)),
    Setting("sparkline_days", 35, "int", "Days of history drawn in each metric's sparkline.", parse=_count(7, 365)),
    Setting("top_movers", 10, "int", "Segment movers listed (biggest effect on their metric's total first).",
            parse=_count(0, 100)),
    Setting("quality_days", 28, "int", "Days of labelled incidents behind the alert-quality section.",
            parse=_count(1, 365)),
    Setting("max_incident_charts", 40, "int",
            "Incidents drawn with a chart (the rest are listed without one, to keep the page light).",
            parse=_count(0, 1000)),
]}


@dataclass(frozen=True)
class ReportSettings:
    title: str = SETTINGS["title"].default
    out_dir: Path = Path(SETTINGS["out_dir"].default)
    base_url: str = SETTINGS["base_url"].default
    time: str = SETTINGS["time"].default
    timezone: str = SETTINGS["timezone"].default
    send: bool = SETTINGS["send"].default
    receivers: tuple[str, ...] = SETTINGS["receivers"].default
    baseline_days: int = SETTINGS["baseline_days"].default
    sparkline_days: int = SETTINGS["sparkline_days"].default
    top_movers: int = SETTINGS["top_movers"].default
    quality_days: int = SETTINGS["quality_days"].default
    max_incident_charts: int = SETTINGS["max_incident_charts"].default
    dashboard_url: str | None = DEFAULT_DASHBOARD_URL  # from [dashboard] url

    @property
    def cron(self) -> str:
        """The daily schedule as a 5-field cron expression (in `timezone`)."""
        hour, minute = self.time.split(":")
        return f"{int(minute)} {int(hour)} * * *"

    def link(self, file: Path) -> str:
        """The URL the digest gives for a written report file."""
        if self.base_url:
            return f"{self.base_url.rstrip('/')}/{file.name}"
        return file.resolve().as_uri()


def report_settings(config: ProjectConfig) -> ReportSettings:
    """The validated ``[report]`` section; every problem is listed in one error."""
    section = dict(config.section("report"))
    where = config.root / CONFIG_NAME
    problems = []
    unknown = sorted(set(section) - set(SETTINGS))
    if unknown:
        problems.append(f"unknown key(s) {unknown} in [report]; valid keys are {sorted(SETTINGS)}")
    values: dict[str, Any] = {}
    for name, setting in SETTINGS.items():
        if name not in section:
            continue
        try:
            values[name] = setting.parse(section[name])
        except ValueError as exc:
            problems.append(f"[report] {name} {exc} ({setting.help})")
    if problems:
        raise ConfigError(f"{where}: " + "; ".join(problems) + ".")
    out_dir = Path(values.pop("out_dir", SETTINGS["out_dir"].default)).expanduser()
    url = config.section("dashboard").get("url", DEFAULT_DASHBOARD_URL)
    return ReportSettings(
        out_dir=out_dir if out_dir.is_absolute() else config.root / out_dir,
        dashboard_url=str(url).rstrip("/") if url else None,
        **values,
    )


def default_report_date(now: dt.datetime, settings: ReportSettings) -> dt.date:
    """The last complete day in the report timezone; `now` is naive UTC (or aware)."""
    aware = now if now.tzinfo else now.replace(tzinfo=dt.timezone.utc)
    local = aware.astimezone(zoneinfo.ZoneInfo(settings.timezone))
    return local.date() - dt.timedelta(days=1)
