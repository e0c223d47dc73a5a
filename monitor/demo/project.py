"""`monitor demo`: build the demo world, then run the whole flow on it."""
from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from monitor.config import ProjectConfig, load_config

# The demo's metric files ship inside the package, beside this module.
DEMO_METRICS = resources.files("monitor.demo.metrics")

DEMO_CONFIG = """\
# The demo project: built by `monitor demo`. Paths are relative to this file.
[project]
name = "demo"
metrics = "metrics"
store = "store.duckdb"

[source]
database = "source.duckdb"

[dashboard]
url = "http://localhost:8501"

[alerts]
group_by = ["metric"]
group_wait = "0s"
group_interval = "5m"
repeat_interval = "4h"

# The demo has no Slack workspace: alerts go to the console and to alerts.log.
[[alerts.receivers]]
name = "console"
type = "console"

[[alerts.receivers]]
name = "file"
type = "file"
path = "alerts.log"

[alerts.route]
receiver = "console"

[[alerts.route.routes]]
receiver = "console"
continue = true

[[alerts.route.routes]]
receiver = "file"
"""


@dataclass
class DemoProject:
    config: ProjectConfig
    world: dict
    start: dt.datetime
    end: dt.datetime


def build_demo_project(folder: Path, *, seed: int = 7, days: int = 120, scale: float = 1.0,
                       start: dt.date = dt.date(2026, 6, 1)) -> DemoProject:
    """A self-contained project folder: source data, metric files (copied, so they can be edited), config."""
    from monitor.demo.world import build_world

    folder.mkdir(parents=True, exist_ok=True)
    for stale in ("store.duckdb", "store.duckdb.wal", "alerts.log"):
        (folder / stale).unlink(missing_ok=True)
    world = build_world(folder / "source.duckdb", seed=seed, days=days, start=start, scale=scale)
    metrics = folder / "metrics"
    if metrics.exists():
        shutil.rmtree(metrics)
    metrics.mkdir()
    for source in DEMO_METRICS.iterdir():
        if source.name.endswith(".sql"):
            (metrics / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    from monitor.demo.changes import EVENT_FILES

    events = folder / "events"  # our own changes, read from the source's change log
    if events.exists():
        shutil.rmtree(events)
    events.mkdir()
    for name, text in EVENT_FILES.items():
        (events / name).write_text(text)
    (folder / "monitor.toml").write_text(DEMO_CONFIG)
    begin = dt.datetime.combine(start, dt.time())
    return DemoProject(load_config(folder / "monitor.toml"), world, begin, begin + dt.timedelta(days=days))


def ground_truth(folder: Path) -> dict:
    return json.loads((folder / "ground_truth.json").read_text())
