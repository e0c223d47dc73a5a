"""The ``[dashboard]`` section of monitor.toml, declared once as data.

Each setting has a name, a default and a help text; the same table validates the
section (an unknown key is an error that lists the valid ones) and documents it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from monitor.config import ProjectConfig
from monitor.errors import ConfigError
from monitor.settings import Setting


SETTINGS: dict[str, Setting] = {s.name: s for s in [
    Setting("url", "http://localhost:8501", "str",
            "Base URL of the running dashboard; alerts and reports build their links on it."),
    Setting("min_segment_size", 30, "number",
            "Privacy floor: a segment with fewer events than this (denominator for rates, value for "
            "sums) is not shown on its own but grouped as 'other (small segments)'."),
    Setting("cache_seconds", 60, "number", "How long query results are kept before the store is read again."),
    Setting("history_days", 90, "number", "Days of history the metric page shows by default."),
    Setting("host", "127.0.0.1", "str", "Address `monitor dashboard` listens on."),
    Setting("port", 8501, "number", "Port `monitor dashboard` listens on."),
]}


@dataclass(frozen=True)
class DashboardSettings:
    url: str = SETTINGS["url"].default
    min_segment_size: float = SETTINGS["min_segment_size"].default
    cache_seconds: int = SETTINGS["cache_seconds"].default
    history_days: int = SETTINGS["history_days"].default
    host: str = SETTINGS["host"].default
    port: int = SETTINGS["port"].default


def dashboard_settings(config: ProjectConfig) -> DashboardSettings:
    """The validated ``[dashboard]`` section (defaults for what is not set)."""
    section = dict(config.section("dashboard"))
    unknown = sorted(set(section) - set(SETTINGS))
    if unknown:
        raise ConfigError(
            f"{config.root / 'monitor.toml'}: unknown key(s) {unknown} in [dashboard]; "
            f"valid keys are {sorted(SETTINGS)}."
        )
    values: dict[str, Any] = {}
    for name, setting in SETTINGS.items():
        value = section.get(name, setting.default)
        if setting.kind == "str":
            ok = isinstance(value, str) and bool(value.strip())
            expected = "a non-empty string"
        else:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
            expected = "a non-negative number"
        if not ok:
            raise ConfigError(f"[dashboard] {name} = {value!r} is invalid: expected {expected} ({setting.help})")
        values[name] = value
    values["cache_seconds"] = int(values["cache_seconds"])
    values["history_days"] = max(int(values["history_days"]), 7)
    values["port"] = int(values["port"])
    values["min_segment_size"] = float(values["min_segment_size"])
    return DashboardSettings(**values)
