"""Warehouse mode: the leaf rows stay on Spark; slices, detection and attribution run there.

``[store] leaves = "spark"`` in monitor.toml keeps each metric's leaves as Parquet under
``[store] path`` (``LeafWarehouse``), one folder per day, replaced per window atomically. The
DuckDB store file keeps what is small: run log, definitions, incidents, explanations, the
expectations of the series that are shown, change points, alerts. ``open_store(config)`` gives
the store of either mode; nothing here imports pyspark until a Spark session is first needed.
See docs/spark.md.
"""
from __future__ import annotations

import atexit

from typing import Any

from monitor.config import ProjectConfig
from monitor.errors import ConfigError
from monitor.settings import Setting
from monitor.store import Store

LEAVES = ("duckdb", "spark")
SESSION_KEYS = ("master", "remote", "app_name", "conf", "timezone")

SETTINGS: dict[str, Setting] = {s.name: s for s in [
    Setting("leaves", "duckdb", "choice",
            "Where the leaf rows live: \"duckdb\" (in the store file) or \"spark\" (Parquet under `path`, "
            "written and read by Spark; slices, detection and attribution then run on Spark).",
            choices=LEAVES),
    Setting("path", "warehouse", "path",
            "With leaves = \"spark\": the folder (relative to monitor.toml) under which each metric's leaves are "
            "kept, <path>/<metric>/; a file system both the driver and the executors reach (a mounted folder: "
            "URLs such as s3a:// and catalog tables are not supported yet)."),
    Setting("options", {}, "table",
            "With leaves = \"spark\": the Spark session, as in [source.options] (master, remote, app_name, conf, "
            "timezone). Empty: the session of [source.options] when [source] engine = \"spark\", else local[*]."),
]}


def store_settings(config: ProjectConfig) -> dict[str, Any]:
    """The validated ``[store]`` section (defaults for what is not set)."""
    section = dict(config.section("store"))
    unknown = sorted(set(section) - set(SETTINGS))
    if unknown:
        raise ConfigError(f"{config.root / 'monitor.toml'}: unknown key(s) {unknown} in [store]; "
                          f"valid keys are {sorted(SETTINGS)}.")
    values = {name: section.get(name, s.default) for name, s in SETTINGS.items()}
    if values["leaves"] not in LEAVES:
        raise ConfigError(f"[store] leaves = {values['leaves']!r}: expected one of {', '.join(LEAVES)}.")
    if "://" in str(values["path"]):  # would silently become a local folder named "s3a:"
        raise ConfigError(f"[store] path = {values['path']!r}: a URL is not supported yet; use a folder both the "
                          "monitor process and the executors mount (NFS, or the bucket mounted with FUSE).")
    if not isinstance(values["options"], dict) or set(values["options"]) - set(SESSION_KEYS):
        raise ConfigError(f"[store] options: expected a table with keys among {', '.join(SESSION_KEYS)}.")
    engine = (config.section("detect") or {}).get("engine")
    if engine is not None and engine not in LEAVES:
        raise ConfigError(f"[detect] engine = {engine!r}: expected one of {', '.join(LEAVES)}.")
    if engine is not None and engine != values["leaves"]:
        raise ConfigError(f"[detect] engine = {engine!r} but [store] leaves = {values['leaves']!r}: detection "
                          "runs where the leaves are; set both to \"spark\" (or both to \"duckdb\").")
    return values


def open_store(config: ProjectConfig, *, session: Any = None, **store_options: Any) -> Store:
    """The project's store: a plain Store, or in warehouse mode a WarehouseStore on Spark
    (`session`: a SparkSession to use instead of starting one, as in tests). Spark starts only
    when a step needs it: reading (dashboard, report) goes through DuckDB views of the leaves.
    `store_options` go to Store (lock_wait, max_hold)."""
    prefix = warehouse_prefix(config)
    if prefix is None:
        return Store(config.store_path, **store_options)
    from monitor.warehouse.leaves import LeafWarehouse
    from monitor.warehouse.store import WarehouseStore

    opener = session or _session_opener(config, store_settings(config))
    return WarehouseStore(config.store_path, LeafWarehouse(prefix, opener), **store_options)


def warehouse_prefix(config: ProjectConfig):
    """The folder of the leaves in warehouse mode; None when they are in the store file."""
    settings = store_settings(config)
    if settings["leaves"] == "duckdb":
        return None
    from monitor.config import _resolve

    return _resolve(config.root, str(settings["path"]))


def _session_opener(config: ProjectConfig, settings: dict):
    """A function that starts the warehouse's Spark session on first use."""
    options = dict(settings["options"])
    if not options and config.source.engine == "spark":
        options = {k: v for k, v in config.source.options.items() if k in SESSION_KEYS}

    def open_session():
        from monitor.config import SourceConfig
        from monitor.engine.spark_engine import SparkEngine

        engine = SparkEngine(SourceConfig(None, {}, "spark", options), tables_required=False)
        open_session.engine = engine  # kept: the session lives as long as the process
        session = engine.session()
        if engine.remote:
            # Closed while the interpreter still runs. Left to its __del__ at exit, a Spark Connect
            # session that is not pyspark's default one (with a Spark source on Connect, the source
            # engine's came first) closes its gRPC channel during finalization, and that close
            # waits forever for gRPC's own threads, which no longer run (docs/spark.md).
            atexit.register(engine.close)
        return session

    return open_session


def reading_store(store_path, prefix, **store_options: Any) -> Store:
    """A store for readers that know only the paths (the dashboard's cached reads): the leaves
    under `prefix` as DuckDB views, or the plain store when `prefix` is None. It starts no Spark."""
    if prefix is None:
        return Store(store_path, **store_options)
    from monitor.warehouse.leaves import LeafWarehouse
    from monitor.warehouse.store import WarehouseStore

    def no_spark():
        raise ConfigError("This store only reads (the dashboard): open it with open_store(config) to run Spark.")

    return WarehouseStore(store_path, LeafWarehouse(prefix, no_spark), **store_options)
