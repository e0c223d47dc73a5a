"""The flow, step by step: compute windows -> store -> detect -> attribute -> alert.

A scheduled run, a manual `monitor run` and a backfill all call these same
functions with explicit windows and an explicit `now`.
"""
from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterable

from monitor.catalog import Catalog, Metric, load_catalog
from monitor.clock import utc_naive
from monitor.config import ProjectConfig, detect_memory_limit, memory_limit
from monitor.engine import GRAIN_STEP, Window, floor_to_grain, make_engine, split_windows
from monitor.errors import MonitorError
from monitor.settings import Setting
from monitor.store import Store
from monitor.warehouse import open_store  # the DuckDB file, or leaves on Spark ([store] leaves)
from monitor.store.store import leaves_table

log = logging.getLogger(__name__)

# One query per chunk: far fewer scans of the source than one per bucket, small enough to
# keep a failed chunk cheap to redo. Each chunk is replaced atomically in the store.
DEFAULT_CHUNK = {"day": 31, "hour": 24 * 7}
# A backfill covers long ranges at once, so it uses larger chunks: each query and each
# commit has a fixed cost. At most this many buckets; fewer when a bucket holds many leaf
# rows, so that the windows in flight fit [backfill] memory_limit (200,000 sellers x 3
# channels a day: a year in one query held 8.6 GB). `monitor backfill --chunk N` overrides it.
BACKFILL_CHUNK = {"day": 366, "hour": 24 * 92}
BACKFILL_SETTINGS = (
    Setting("memory_limit", None, "size",
            "Memory a backfill's windows may hold, e.g. \"1GB\": each query's window is sized so that the windows "
            "in flight (one queried, one waiting, one being written) fit it, from the leaf rows per bucket of the "
            "source (one bucket queried first). Default: [detect] memory_limit."),
)
# bytes one leaf row costs while in flight: its Arrow row, the source query's and the store's
# insert buffers (measured: 1.9 GB peak for 10.8 M rows in one window, 8.6 GB for 54 M)
BACKFILL_ROW_BYTES = 160
WINDOWS_IN_FLIGHT = 3
# Without stored history, `run` computes this many buckets so detection has a baseline.
INITIAL_HISTORY = {"day": 56, "hour": 24 * 14}


@dataclass
class ComputeResult:
    windows_ok: int = 0
    rows: int = 0
    failures: list[tuple[str, Window, str]] = field(default_factory=list)  # (metric, window, error)


def compute(config: ProjectConfig, plan: list[tuple[Metric, Window]], *, trigger: str,
            store: Store | None = None, on_window: Callable[[Metric, Window], None] | None = None,
            clock: Callable[[], dt.datetime] = utc_naive, allow_empty: bool = False) -> ComputeResult:
    """Run every (metric, window) of the plan; a failing metric does not stop the others.

    After the first failure of a metric its remaining windows are skipped (they
    would fail the same way) and recorded as failures too.

    The source queries run here while a second thread writes the previous window's
    rows into the store, so reading the source and writing the store overlap (each
    waits on disk and on single-threaded steps at different times). The writer is
    the only user of the store connection and writes in plan order, each window in
    its own transaction, exactly as a sequential loop would.

    An empty result over a window that holds stored rows fails that window unless
    `allow_empty` (see Store.write_window).
    """
    store = store or open_store(config)
    with make_engine(config.source) as engine:
        writer = _WindowWriter(store, trigger, clock, on_window, open_now=bool(plan), allow_empty=allow_empty)
        try:
            for metric, window in plan:
                writer.raise_error()
                started = clock()
                if metric.name in writer.broken:  # a hint only: the writer decides, in order
                    writer.put(metric, window, started, None, None)
                    continue
                try:
                    # warehouse mode may keep a Spark source's rows on Spark (monitor.warehouse)
                    rows = (store.leaf_engine.source_rows(engine, metric, window) if store.leaf_engine is not None
                            else engine.run(metric, window))
                    error = None
                except Exception as exc:  # noqa: BLE001 - one metric's failure must not stop the others
                    rows, error = None, exc
                writer.put(metric, window, started, rows, error)
        except BaseException:
            writer.finish(drop_waiting=True)  # Ctrl-C, SIGTERM: finish the window being written, no more
            raise
        writer.finish()
    writer.raise_error()
    return writer.result


class _WindowWriter:
    """The store side of `compute`: a thread writing checked windows in order."""

    def __init__(self, store: Store, trigger: str, clock: Callable[[], dt.datetime],
                 on_window: Callable[[Metric, Window], None] | None, *, open_now: bool = True,
                 allow_empty: bool = False):
        self.store, self.trigger, self.clock, self.on_window = store, trigger, clock, on_window
        self.allow_empty = allow_empty
        self._open_now = open_now
        self.result = ComputeResult()
        self.broken: dict[str, str] = {}
        self._queue: queue.Queue = queue.Queue(maxsize=1)  # one window waiting, one being written
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="monitor-store-writer", daemon=True)
        self._thread.start()

    def put(self, metric: Metric, window: Window, started: dt.datetime, rows, error: Exception | None) -> None:
        while self._thread.is_alive():
            try:
                self._queue.put((metric, window, started, rows, error), timeout=0.1)
                return
            except queue.Full:
                continue

    def finish(self, *, drop_waiting: bool = False) -> None:
        if drop_waiting:
            self._drain()
        self.put(None, None, None, None, None)  # type: ignore[arg-type]
        self._thread.join()

    def _drain(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return

    def raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _run(self) -> None:
        try:
            with self.store.writer() as session:
                if self._open_now:
                    session.connection()  # open the file while the first query runs
                while True:
                    try:
                        item = self._queue.get(timeout=session.max_hold / 2)
                    except queue.Empty:
                        session.release()  # the next query is slow: readers can have the file meanwhile
                        item = self._queue.get()
                    if item[0] is None:
                        return
                    self._write(session, *item)
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            self._error = exc
            self._drain()

    def _write(self, session, metric: Metric, window: Window, started: dt.datetime, rows, error) -> None:
        result, store = self.result, self.store
        if metric.name in self.broken:
            result.failures.append((metric.name, window, f"skipped after earlier failure: {self.broken[metric.name]}"))
        else:
            try:
                if error is not None:
                    raise error
                result.rows += store.write_window(metric, window, rows, trigger=self.trigger, started_at=started,
                                                  now=self.clock(), session=session,
                                                  allow_empty=self.allow_empty)
                result.windows_ok += 1
            except Exception as exc:  # noqa: BLE001 - one metric's failure must not stop the others
                message = str(exc) if isinstance(exc, MonitorError) else f"{type(exc).__name__}: {exc}"
                log.warning("%s", message)
                self.broken[metric.name] = message
                result.failures.append((metric.name, window, message))
                store.record_failure(metric, window, message, trigger=self.trigger, started_at=started,
                                     now=self.clock(), session=session)
        if self.on_window:
            self.on_window(metric, window)


def backfill_plan(metrics: Iterable[Metric], start: dt.datetime, end: dt.datetime,
                  chunk: int | None = None, *, now: dt.datetime | None = None,
                  config: ProjectConfig | None = None) -> list[tuple[Metric, Window]]:
    """Windows covering [start, end) per metric; with `now`, only buckets complete by then.

    A window recorded as computed is never run again (except for the lookback), so a
    future or partial bucket written now would stay empty or partial for good.
    With `config` (and no `chunk`), each metric's windows are sized from [backfill]
    memory_limit and its rows per bucket (``bucket_rows``).
    """
    plan = []
    budget = backfill_window_rows(config) if config is not None and not chunk else None
    for metric in metrics:
        stop = end if now is None else min(end, complete_until(metric.grain, now))
        size = chunk or BACKFILL_CHUNK[metric.grain]
        if budget is not None and start < stop:
            rows = bucket_rows(config, metric, start, stop)
            if rows:
                size = max(1, min(size, int(budget // rows)))
        for window in split_windows(start, stop, metric.grain, size):
            plan.append((metric, window))
    return plan


def backfill_window_rows(config: ProjectConfig) -> int:
    """Leaf rows one backfill window may hold: [backfill] memory_limit (default: [detect]'s)
    shared by the windows in flight."""
    if config.section("backfill").get("memory_limit") is None:
        limit = detect_memory_limit(config)
    else:
        limit = memory_limit(config, "backfill", None)
    return max(1, limit // (BACKFILL_ROW_BYTES * WINDOWS_IN_FLIGHT))


def bucket_rows(config: ProjectConfig, metric: Metric, start: dt.datetime, stop: dt.datetime) -> int | None:
    """Leaf rows of the metric's busiest bucket among the first and last of [start, stop), by
    querying the source for those two buckets (volumes usually grow, so the last is the
    larger), and among the buckets already stored. None when nothing could be counted: the
    backfill itself then reports what is wrong with the source."""
    step = GRAIN_STEP[metric.grain]
    first, last = floor_to_grain(start, metric.grain), floor_to_grain(stop - step, metric.grain)
    counts = []
    try:
        with make_engine(config.source) as engine:
            for at in sorted({first, last}):
                counts.append(engine.run(metric, Window(at, at + step)).num_rows)
    except Exception as exc:  # noqa: BLE001 - the estimate is a hint; the backfill reports the failure
        log.debug("no row estimate for %s: %s", metric.name, exc)
    store = Store(config.store_path)
    if store.path.exists() and store.has_leaves(metric.name):
        with store.connect(read_only=True) as con:
            counts.append(con.execute(f'SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM '
                                      f'"{leaves_table(metric.name)}" WHERE ts >= ? AND ts < ? GROUP BY ts)',
                                      [start, stop]).fetchone()[0])
    return max(counts) if counts and max(counts) > 0 else None


def complete_until(grain: str, now: dt.datetime) -> dt.datetime:
    """End of the last complete bucket at `now`: the bucket holding `now` is still filling."""
    return floor_to_grain(now, grain)


def due_windows(metric: Metric, store: Store, now: dt.datetime) -> list[Window]:
    """Complete buckets not yet computed, plus the metric's late-data lookback.

    The store is the source of truth for what has run, so after downtime the
    missed buckets come back in order, coalesced into chunks.
    """
    step = GRAIN_STEP[metric.grain]
    end = complete_until(metric.grain, now)
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
    store = store or open_store(config)
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
    events: object | None = None  # monitor.events.cycle.LinkResult: incidents linked to change events
    # (metric, message): stored rows exist but none inside detection's history window at `now`
    outside_window: list[tuple[str, str]] = field(default_factory=list)


def detection_order(metrics: Iterable[Metric]) -> list[Metric]:
    """The metrics in their given order, except that a metric comes after those it follows
    (``detect.follows``): their fresh incidents and explanations point where it looks."""
    metrics = list(metrics)
    by_name = {m.name: m for m in metrics}
    ordered: list[Metric] = []
    placed: set[str] = set()

    def place(metric: Metric, visiting: frozenset[str]) -> None:
        if metric.name in placed:
            return
        for name in metric.detect.follows:
            if name in by_name and name not in visiting:  # a cycle (reported by the catalog) is cut
                place(by_name[name], visiting | {metric.name})
        if metric.name not in placed:
            placed.add(metric.name)
            ordered.append(metric)

    for metric in metrics:
        place(metric, frozenset())
    return ordered


def detect_and_attribute(config: ProjectConfig, metrics: Iterable[Metric], *, now: dt.datetime,
                         store: Store | None = None) -> CycleResult:
    """Detect on every metric, then explain incidents that lack an explanation.

    A metric whose detection fails is reported and the others go on.
    """
    from monitor.attribute.incident_attribution import attribute_incidents
    from monitor.config import detect_memory_limit
    from monitor.detect.run_detection import detect_metric
    from monitor.incident import unexplained

    from monitor.store.stale import is_stale

    store = store or open_store(config)
    result = CycleResult(ComputeResult())
    for metric in detection_order(metrics):
        if store.has_leaves(metric.name) and is_stale(store, metric, now, config=config):
            # No new source rows: a stale-data problem, not a "metric dropped" incident.
            result.stale.append(metric.name)
            continue
        try:
            result.detections[metric.name] = detected = detect_metric(
                store, metric, now=now, memory_limit=detect_memory_limit(config))
            if not detected.series_checked and metric.detect.enabled:
                note = _outside_window(store, metric, now)
                if note:
                    result.outside_window.append((metric.name, note))
            result.explained += attribute_incidents(store, metric, unexplained(store, metric.name))
        except MonitorError as exc:
            result.detect_failures.append((metric.name, str(exc)))
        except Exception as exc:  # noqa: BLE001 - isolate one metric's bug from the rest of the cycle
            log.exception("detection failed for %s", metric.name)
            result.detect_failures.append((metric.name, f"{type(exc).__name__}: {exc}"))
    result.events = _link_events(config, store, now)
    return result


def _link_events(config: ProjectConfig, store: Store, now: dt.datetime):
    """Link incidents to change events (after attribution: links use the top causes)."""
    from monitor.events.cycle import LinkResult, link_project_events

    try:
        return link_project_events(config, store, now=now)
    except MonitorError as exc:  # events are context for the incidents: never stop the cycle
        return LinkResult(problems=[str(exc)])


def _outside_window(store: Store, metric: Metric, now: dt.datetime) -> str | None:
    """Why detection saw nothing although rows are stored, and how to look at them."""
    from monitor.detect.run_detection import HISTORY

    latest = store.latest_bucket(metric)
    if latest is None:
        return None
    after = latest + GRAIN_STEP[metric.grain]
    return (f"stored data lie outside the detection window [{now - HISTORY[metric.grain]:%Y-%m-%d %H:%M}, "
            f"{now:%Y-%m-%d %H:%M}); the latest bucket is {latest:%Y-%m-%d %H:%M}: "
            f"detect as of then with `--as-of {after:%Y-%m-%dT%H:%M}`")


def run_cycle(config: ProjectConfig, catalog: Catalog, *, now: dt.datetime, names: list[str] | None = None,
              trigger: str = "run", store: Store | None = None, alert: bool = True,
              on_window: Callable[[Metric, Window], None] | None = None,
              plan: list[tuple[Metric, Window]] | None = None, allow_empty: bool = False) -> CycleResult:
    """One cycle: compute the due windows (or the given plan), detect, attribute, alert."""
    store = store or open_store(config)
    metrics = catalog.select(names)
    if plan is None:
        plan = [(m, w) for m in metrics for w in due_windows(m, store, now)]
    computed = compute(config, plan, trigger=trigger, store=store, on_window=on_window, allow_empty=allow_empty)
    result = detect_and_attribute(config, metrics, now=now, store=store)
    result.compute = computed
    if alert:
        result.alerts = send_alerts(config, store, now=now)
    return result


def send_alerts(config: ProjectConfig, store: Store, *, now: dt.datetime):
    from monitor.alert import run_alert_cycle

    return run_alert_cycle(store, config, now=now)
