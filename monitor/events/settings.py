"""The ``[events]`` section of monitor.toml, declared once: defaults, validation and docs."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.config import parse_duration
from monitor.errors import ConfigError
from monitor.settings import Setting

SETTINGS: dict[str, Setting] = {s.name: s for s in [
    Setting("folder", "events", "path", "folder of event files (*.sql), relative to monitor.toml"),
    Setting("window", "1d", "duration", "how long before an incident's start an event may be to be linked to it"),
    Setting("after", "6h", "duration", "how long after an incident's estimated start an event may come and still be "
            "linked (at least the incident's first bucket): a change point's start is an estimate"),
    Setting("expected_kinds", ["promotion", "holiday"], "list", "event kinds that are expected changes: inside "
            "their window they keep the metrics they name from paging"),
    Setting("expected_grace", "1d", "duration",
            "an expected incident still open this long after its event's window pages after all"),
    Setting("causes", 3, "int", "how many top causes of an incident are matched against event scopes"),
]}


@dataclass(frozen=True)
class EventSettings:
    folder: Path
    window: dt.timedelta = dt.timedelta(days=1)
    after: dt.timedelta = dt.timedelta(hours=6)
    expected_kinds: tuple[str, ...] = ("promotion", "holiday")
    expected_grace: dt.timedelta = dt.timedelta(days=1)
    causes: int = 3


def load_event_settings(config) -> EventSettings:
    """From a ProjectConfig; an unknown key or a bad value is one sentence naming it."""
    section: dict[str, Any] = dict(config.section("events"))
    unknown = sorted(set(section) - set(SETTINGS))
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in [events]; valid keys are {sorted(SETTINGS)}.")
    values = {k: section.get(k, setting.default) for k, setting in SETTINGS.items()}
    durations = {}
    for key in ("window", "after", "expected_grace"):
        try:
            durations[key] = parse_duration(values[key])
        except ValueError as exc:
            raise ConfigError(f"[events] {key} = {values[key]!r} must be {exc}.") from None
    if durations["window"] <= dt.timedelta(0):
        raise ConfigError("[events] window must be longer than 0, e.g. '1d'.")
    kinds = values["expected_kinds"]
    if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
        raise ConfigError(f"[events] expected_kinds must be a list of kinds, e.g. ['promotion'], got {kinds!r}.")
    causes = values["causes"]
    if not isinstance(causes, int) or isinstance(causes, bool) or not 0 <= causes <= 20:
        raise ConfigError(f"[events] causes must be a whole number from 0 to 20, got {causes!r}.")
    folder = Path(str(values["folder"]))
    return EventSettings(folder=folder if folder.is_absolute() else config.root / folder,
                         window=durations["window"], after=durations["after"], expected_kinds=tuple(kinds),
                         expected_grace=durations["expected_grace"], causes=causes)
