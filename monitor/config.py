"""The project config file (``monitor.toml``): where metrics, source and store live.

Paths are relative to the config file. Sections other than ``project`` and
``source`` belong to later steps of the flow (``detect``, ``alerts``,
``dashboard``, ``report``, ``scheduler``) and are validated by them; an unknown
section is an error so that a typo is not silently ignored.
"""
from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.errors import ConfigError

CONFIG_NAME = "monitor.toml"
KNOWN_SECTIONS = {"project", "source", "store", "detect", "backfill", "alerts", "dashboard", "report", "scheduler",
                  "events"}
VIEW_FORMATS = {".parquet": "read_parquet", ".csv": "read_csv_auto", ".csv.gz": "read_csv_auto"}


@dataclass(frozen=True)
class SourceConfig:
    """The database the metric SQL runs on."""

    database: Path | None  # a DuckDB file; None = in-memory (views only)
    views: dict[str, Path] = field(default_factory=dict)  # name -> Parquet/CSV file or glob
    engine: str = "duckdb"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProjectConfig:
    root: Path
    name: str
    metrics_dir: Path
    store_path: Path
    source: SourceConfig
    sections: dict[str, dict[str, Any]]  # every section as parsed, for later steps

    def section(self, name: str) -> dict[str, Any]:
        return self.sections.get(name, {})


def find_config(start: Path | None = None) -> Path:
    """The config file: $MONITOR_CONFIG, else monitor.toml in start or a parent."""
    env = os.environ.get("MONITOR_CONFIG")
    if env:
        return Path(env)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_NAME).is_file():
            return folder / CONFIG_NAME
    raise ConfigError(
        f"No {CONFIG_NAME} found in {here} or its parents; run `monitor init DIR` "
        "to create a project, or pass --config."
    )


def load_config(path: Path | str | None = None) -> ProjectConfig:
    path = Path(path) if path else find_config()
    if path.is_dir():
        path = path / CONFIG_NAME
    if not path.is_file():
        raise ConfigError(f"Config file {path} does not exist; run `monitor init` to create one.")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc}).") from exc
    unknown = set(data) - KNOWN_SECTIONS
    if unknown:
        raise ConfigError(
            f"{path}: unknown section(s) {sorted(unknown)}; valid sections are {sorted(KNOWN_SECTIONS)}."
        )
    root = path.parent.resolve()
    project = data.get("project", {})
    _only_keys(path, "project", project, {"name", "metrics", "store"})
    source = data.get("source", {})
    _only_keys(path, "source", source, {"database", "views", "engine", "options"})
    views = {}
    for name, file in (source.get("views") or {}).items():
        if not str(name).isidentifier():
            raise ConfigError(f"{path}: view name {name!r} in [source.views] must be an identifier.")
        views[name] = _resolve(root, file)
    database = source.get("database")
    return ProjectConfig(
        root=root,
        name=str(project.get("name", root.name)),
        metrics_dir=_resolve(root, project.get("metrics", "metrics")),
        store_path=_resolve(root, project.get("store", "store.duckdb")),
        source=SourceConfig(
            database=_resolve(root, database) if database else None,
            views=views,
            engine=str(source.get("engine", "duckdb")),
            options=dict(source.get("options", {})),
        ),
        sections=data,
    )


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> dt.timedelta:
    """'90s', '5m', '1h30m', '2d', '1w', or a number of seconds -> timedelta (ValueError otherwise).

    The one reading of durations for every config section ([alerts], [scheduler], ...).
    """
    if isinstance(value, bool):
        raise ValueError("a duration like '5m'")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a duration >= 0")
        return dt.timedelta(seconds=value)
    text = str(value).strip().replace(" ", "")
    if not text or _DURATION.sub("", text):
        raise ValueError("a duration like '30s', '5m', '4h' or '1d'")
    return dt.timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION.findall(text)))


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb|kib|mib|gib|tib)?", re.IGNORECASE)
_UNIT_BYTES = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
# Memory detection may use (DuckDB's memory_limit and the chunks of slices worked through).
DETECT_MEMORY_LIMIT = "1GB"


def parse_size(value: Any) -> int:
    """'1GB', '512MB', '2GiB', or a number of bytes -> bytes (ValueError otherwise)."""
    if isinstance(value, bool):
        raise ValueError("a size like '1GB'")
    if isinstance(value, (int, float)):
        if value <= 0:
            raise ValueError("a size > 0")
        return int(value)
    match = _SIZE.fullmatch(str(value).strip())
    if not match or float(match.group(1)) <= 0:
        raise ValueError("a size like '512MB' or '1GB'")
    return int(float(match.group(1)) * _UNIT_BYTES[(match.group(2) or "b").lower()])


def detect_memory_limit(config: "ProjectConfig | None") -> int:
    """[detect] memory_limit in bytes (default DETECT_MEMORY_LIMIT)."""
    return memory_limit(config, "detect", DETECT_MEMORY_LIMIT)


def memory_limit(config: "ProjectConfig | None", section: str, default: Any) -> int:
    """``[section] memory_limit`` in bytes (``default`` when the key is absent); a bad size
    is a ConfigError naming the file and section."""
    value = (config.section(section) if config is not None else {}).get("memory_limit", default)
    try:
        return parse_size(value)
    except ValueError as exc:
        path = config.root / CONFIG_NAME if config is not None else CONFIG_NAME
        raise ConfigError(f"{path}: [{section}] memory_limit = {value!r}: expected {exc}.") from exc


def _resolve(root: Path, value: str) -> Path:
    p = Path(os.path.expanduser(str(value)))
    return p if p.is_absolute() else root / p


def _only_keys(path: Path, section: str, data: dict, allowed: set[str]) -> None:
    unknown = set(data) - allowed
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {sorted(unknown)} in [{section}]; valid keys are {sorted(allowed)}."
        )
