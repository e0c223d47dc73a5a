"""The ``[scheduler]`` section of monitor.toml, declared once as data.

``SETTINGS`` feeds validation, defaults and docs/scheduler.md (a test fails if
a setting is not documented there). Every problem in the section is collected
and reported at once, each naming its key.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from monitor.config import parse_duration as shared_parse_duration
from monitor.errors import ConfigError
from monitor.settings import Setting

from monitor.store.stale import DEFAULT_STALE_AFTER, parse_stale_after, stale_threshold  # noqa: F401 (re-exported)

ISOLATIONS = ("process", "inline")


SETTINGS: tuple[Setting, ...] = (
    Setting("owner_receiver", None, "str",
            "Name of the [alerts] receiver that gets meta-alerts (metric failing, broken metric file, stale "
            "source). Unset: meta-alerts are kept in the store, logged and shown by `monitor status` only."),
    Setting("poll_interval", 30.0, "duration",
            "How often the metric files are checked for edits (mtime, size, then content hash)."),
    Setting("timeout", 1800.0, "duration",
            "Hard limit for computing one window (its query and its write); a window over it is killed, rolls "
            "back and counts as a failure of the metric (retried with backoff)."),
    Setting("lock_wait", 600.0, "duration",
            "How long a scheduled run waits for the store's writer lock (held by a backfill or another serve) "
            "before it gives up and retries later."),
    Setting("retry_initial", 60.0, "duration", "First retry delay after a failed run; doubles on each failure."),
    Setting("retry_max", 3600.0, "duration", "Longest retry delay."),
    Setting("failure_alert_after", 1, "int",
            "Consecutive failed runs of a metric before its meta-alert is raised (1 = on the first failure)."),
    Setting("lookback", 0, "int",
            "Late-data lookback for every metric, in buckets: the last N computed buckets are recomputed on each "
            "run. A metric header's `lookback` wins when it is larger."),
    Setting("stale_after", None, "stale",
            "Buckets without any source rows before a metric's source counts as stale (stale-data meta-alert, "
            "detection paused). A number for every metric, or a table by grain and/or metric name, e.g. "
            "{day = 1, hour = 3, coupon_abuse = 0}; 0 disables. Default: day 1, hour 2."),
    Setting("shutdown_grace", 60.0, "duration",
            "On SIGTERM, how long the window in progress may take to finish before it is killed (rolled back)."),
    Setting("isolation", "process", "choice",
            "process: each run happens in a child process (hard timeout, crash isolation); inline: in the "
            "serve process (no hard timeout; for debugging).", choices=ISOLATIONS),
    Setting("report", True, "bool",
            "Run the daily report job (monitor.report) at [report] time in [report] timezone; false = no job."),
    Setting("alert_interval", 60.0, "duration",
            "How often the alert cycle runs between metric runs, so group waits and delivery retries elapse "
            "(0 = only after metric runs)."),
    Setting("meta_repeat", 86400.0, "duration", "Re-send a meta-alert that is still open after this long."),
)
SETTING_NAMES = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class SchedulerSettings:
    owner_receiver: str | None = None
    poll_interval: float = 30.0
    timeout: float = 1800.0
    lock_wait: float = 600.0
    retry_initial: float = 60.0
    retry_max: float = 3600.0
    failure_alert_after: int = 1
    lookback: int = 0
    stale_after: Any = None  # int | dict[str, int] | None
    shutdown_grace: float = 60.0
    isolation: str = "process"
    report: bool = True
    alert_interval: float = 60.0
    meta_repeat: float = 86400.0

    def stale_threshold(self, metric_name: str, grain: str) -> int:
        """Empty buckets before the metric's source is stale (0 = never)."""
        return stale_threshold(self.stale_after, metric_name, grain)

    def backoff(self, attempt: int) -> float:
        """Seconds before retry number `attempt` (1-based): initial, x2, x4 ... capped."""
        return min(self.retry_initial * 2 ** max(attempt - 1, 0), self.retry_max)


def parse_duration(value: Any) -> float:
    """A duration in seconds, read like every other config duration (monitor.config.parse_duration)."""
    return shared_parse_duration(value).total_seconds()


def _parse(setting: Setting, value: Any) -> Any:
    kind = setting.kind
    if kind == "duration":
        return parse_duration(value)
    if kind == "int":
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError("a whole number >= 0")
        return value
    if kind == "str":
        if not isinstance(value, str) or not value:
            raise ValueError("a non-empty string")
        return value
    if kind == "choice":
        if value not in setting.choices:
            raise ValueError(f"one of {', '.join(setting.choices)}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError("true or false")
        return value
    if kind == "stale":
        return parse_stale_after(value)
    raise AssertionError(f"unknown setting kind {kind}")


def parse_settings(section: dict[str, Any], *, source: str = "monitor.toml") -> SchedulerSettings:
    problems = []
    values: dict[str, Any] = {}
    for key in section:
        if key not in SETTING_NAMES:
            problems.append(f"unknown key [scheduler] {key}; valid keys: {', '.join(SETTING_NAMES)}")
    for setting in SETTINGS:
        if setting.name not in section:
            continue
        try:
            values[setting.name] = _parse(setting, section[setting.name])
        except ValueError as exc:
            problems.append(f"[scheduler] {setting.name} must be {exc}, got {section[setting.name]!r}")
    if problems:
        lines = "\n".join(f"  {p}" for p in problems)
        raise ConfigError(f"{len(problems)} problem(s) in the [scheduler] section of {source}:\n{lines}")
    return SchedulerSettings(**values)


def load_settings(config) -> SchedulerSettings:
    return parse_settings(config.section("scheduler"), source=str(config.root / "monitor.toml"))


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
