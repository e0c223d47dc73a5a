"""The flow, step by step: compute windows -> store -> detect -> attribute -> alert.

A scheduled run, a manual `monitor run` and a backfill all call these same
functions with explicit windows and an explicit `now`.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Callable, Iterable

from monitor.catalog import Catalog, Metric, load_catalog
from monitor.config import ProjectConfig
from monitor.engine import GRAIN_STEP, Window, floor_to_grain, make_engine, split_windows
from monitor.errors import MonitorError
from monitor.store import Store, utcnow

log = logging.getLogger(__name__)

# One query per chunk: far fewer scans of the source than one per bucket, small enough to
# keep a failed chunk cheap to redo. Each chunk is replaced atomically in the store.
DEFAULT_CHUNK = {"day": 31, "hour": 24 * 7}
# Without stored history, `run` computes this many buckets so detection has a baseline.
INITIAL_HISTORY = {"day": 56, "hour": 24 * 14}


@dataclass
class ComputeResult:
    windows_ok: int = 0
    rows: int = 0
    failures: list[tuple[str, Window, str]] = field(default_factory=list)  # (metric, window, error)


def compute(config: ProjectConfig, plan: list[tuple[Metric, Window]], *, trigger: str,
            store: Store | None = None, on_window: Callable[[Metric, Window], None] | None = None,
            clock: Callable[[], dt.datetime] = utcnow) -> ComputeResult:
    """Run every (metric, window) of the plan; a failing metric does not stop the others.

    After the first failure of a metric its remaining windows are skipped (they
    would fail the same way) and recorded as failures too.
    """
    store = store or Store(config.store_path)
    result = ComputeResult()
    broken: dict[str, str] = {}
    with make_engine(config.source) as engine, store.writer() as session:
        for metric, window in plan:
            started = clock()
            if metric.name in broken:
                result.failures.append((metric.name, window, f"skipped after earlier failure: {broken[metric.name]}"))
            else:
                try:
                    rows = engine.run(metric, window)
                    result.rows += store.write_window(metric, window, rows, trigger=trigger, started_at=started,
                                                      now=clock(), session=session)
                    result.windows_ok += 1
                except Exception as exc:  # noqa: BLE001 - one metric's failure must not stop the others
                    message = str(exc) if isinstance(exc, MonitorError) else f"{type(exc).__name__}: {exc}"
                    log.warning("%s", message)
                    broken[metric.name] = message
                    result.failures.append((metric.name, window, message))
                    store.record_failure(metric, window, message, trigger=trigger, started_at=started, now=clock(),
                                         session=session)
            if on_window:
                on_window(metric, window)
    return result


def backfill_plan(metrics: Iterable[Metric], start: dt.datetime, end: dt.datetime,
                  chunk: int | None = None) -> list[tuple[Metric, Window]]:
    plan = []
    for metric in metrics:
        for window in split_windows(start, end, metric.grain, chunk or DEFAULT_CHUNK[metric.grain]):
            plan.append((metric, window))
    return plan


def due_windows(metric: Metric, store: Store, now: dt.datetime) -> list[Window]:
    """Complete buckets not yet computed, plus the metric's late-data lookback.

    The store is the source of truth for what has run, so after downtime the
    missed buckets come back in order, coalesced into chunks.
    """
    step = GRAIN_STEP[metric.grain]
    end = floor_to_grain(now, metric.grain)  # the bucket holding `now` is not complete yet
    done_until = store.computed_until(metric)
    if done_until is None:
        start = end - step * INITIAL_HISTORY[metric.grain]
    else:
        start = min(done_until, end) - step * metric.lookback
    if start >= end:
        return []
    return split_windows(start, end, metric.grain, DEFAULT_CHUNK[metric.grain])


def run_plan(config: ProjectConfig, catalog: Catalog, now: dt.datetime,
             names: list[str] | None = None, store: Store | None = None) -> list[tuple[Metric, Window]]:
    store = store or Store(config.store_path)
    return [(m, w) for m in catalog.select(names) for w in due_windows(m, store, now)]


def load_project_catalog(config: ProjectConfig) -> Catalog:
    return load_catalog(config.metrics_dir)


@dataclass
class CycleResult:
    compute: ComputeResult
    detections: dict[str, "object"] = field(default_factory=dict)  # metric -> DetectionResult
    explained: int = 0
    alerts: object | None = None
    detect_failures: list[tuple[str, str]] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # metrics skipped: their source stopped receiving data


def detect_and_attribute(config: ProjectConfig, metrics: Iterable[Metric], *, now: dt.datetime,
                         store: Store | None = None) -> CycleResult:
    """Detect on every metric, then explain incidents that lack an explanation.

    A metric whose detection fails is reported and the others go on.
    """
    from monitor.attribute.incident_attribution import attribute_incidents
    from monitor.detect.run_detection import detect_metric

    from monitor.scheduler import is_stale

    store = store or Store(config.store_path)
    result = CycleResult(ComputeResult())
    for metric in metrics:
        if store.has_leaves(metric.name) and is_stale(store, metric, now, config=config):
            # No new source rows: a stale-data problem, not a "metric dropped" incident.
            result.stale.append(metric.name)
            continue
        try:
            result.detections[metric.name] = detect_metric(store, metric, now=now)
            result.explained += attribute_incidents(store, metric)
        except MonitorError as exc:
            result.detect_failures.append((metric.name, str(exc)))
        except Exception as exc:  # noqa: BLE001 - isolate one metric's bug from the rest of the cycle
            log.exception("detection failed for %s", metric.name)
            result.detect_failures.append((metric.name, f"{type(exc).__name__}: {exc}"))
    return result


def run_cycle(config: ProjectConfig, catalog: Catalog, *, now: dt.datetime, names: list[str] | None = None,
              trigger: str = "run", store: Store | None = None, alert: bool = True,
              on_window: Callable[[Metric, Window], None] | None = None,
              plan: list[tuple[Metric, Window]] | None = None) -> CycleResult:
    """One cycle: compute the due windows (or the given plan), detect, attribute, alert."""
    store = store or Store(config.store_path)
    metrics = catalog.select(names)
    if plan is None:
        plan = [(m, w) for m in metrics for w in due_windows(m, store, now)]
    computed = compute(config, plan, trigger=trigger, store=store, on_window=on_window)
    result = detect_and_attribute(config, metrics, now=now, store=store)
    result.compute = computed
    if alert:
        result.alerts = send_alerts(config, store, now=now)
    return result


def send_alerts(config: ProjectConfig, store: Store, *, now: dt.datetime):
    from monitor.alert import run_alert_cycle

    return run_alert_cycle(store, config, now=now)
