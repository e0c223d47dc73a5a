"""The scheduler: decides *when* windows run; a scheduled run computes the same windows with the
same code as `monitor run` and `monitor backfill`.

Public API:

* :func:`writer_lock` -- one writer per store across processes (``flock`` on ``<store>.lock``).
* :class:`SchedulerService` -- `monitor serve`: jobs from the catalog, catch-up, retries, reloads.
* :func:`is_stale` / :func:`staleness` -- has a metric's source stopped receiving data?
* :func:`meta_alert` / :class:`MetaAlerts` -- problems with the toolkit itself, for its owner.
* :func:`scheduler_status` -- what `monitor status` shows.

Names are imported lazily, so ``from monitor.scheduler import writer_lock`` (used by
``backfill`` and ``run``) does not load APScheduler or the query engine.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "last_fire_time": "monitor.catalog.cron", "next_fire_time": "monitor.catalog.cron",
    "LockTimeout": "monitor.store.lock", "WriterLock": "monitor.store.lock", "lock_path": "monitor.store.lock",
    "read_holder": "monitor.store.lock", "writer_lock": "monitor.store.lock",
    "MetaAlert": "monitor.alert.meta", "MetaAlerts": "monitor.alert.meta", "meta_alert": "monitor.alert.meta",
    "open_meta_alerts": "monitor.alert.meta",
    "InlineRunner": "runner", "ProcessRunner": "runner", "RunOutcome": "runner",
    "CycleReport": "service", "SchedulerService": "service", "pipeline_after_compute": "service",
    "SETTINGS": "settings", "SchedulerSettings": "settings", "load_settings": "settings",
    "Staleness": "monitor.store.stale", "is_stale": "monitor.store.stale", "staleness": "monitor.store.stale",
    "SchedulerStatus": "status", "render_status": "status", "scheduler_status": "status",
    "CatalogChange": "watch", "CatalogWatcher": "watch",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'monitor.scheduler' has no attribute {name!r}")
    value = getattr(importlib.import_module(module if "." in module else f"monitor.scheduler.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
