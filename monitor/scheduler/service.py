"""`monitor serve`: run every metric on its schedule, unattended, for months.

One APScheduler job per metric (its cron, in its timezone). A job is one
*cycle* for one metric, under the store's writer lock:

1. ``as_of`` = the metric's last scheduled fire at or before now (so a catch-up
   after downtime never computes a bucket before the time its schedule says the
   data is ready);
2. the due windows (``pipeline.due_windows``: complete buckets the store has
   not computed, plus the late-data lookback), run in order, one atomic write
   each, by the runner (a child process by default, hard per-window timeout);
3. on failure: recorded in the run log, retried with exponential backoff, and a
   ``metric_failing`` meta-alert for the toolkit's owner; the other metrics'
   jobs are unaffected;
4. stale source (no source rows for N buckets): a ``stale_data`` meta-alert, and
   detection is skipped for that metric instead of reporting a false drop;
5. otherwise ``after_compute([metric], as_of)``: detect, attribute, alert.

All jobs run one at a time on a single worker thread, so the service itself
never has two DuckDB connections open at once. Other jobs: the metric-file
watch (reload without restart, broken edits keep the last good definition),
the alert cycle tick, and the daily report. SIGTERM/SIGINT finish (or, after
``shutdown_grace``, roll back) the window in progress and exit; SIGHUP reloads
the metric files at once.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from apscheduler.executors.pool import ThreadPoolExecutor as APThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.catalog import Metric
from monitor.clock import utc_naive
from monitor.engine import Window
from monitor.catalog.cron import cron_trigger, last_fire_time
from monitor.store.lock import LockTimeout, describe_holder, writer_lock
from monitor.alert import run_alert_cycle
from monitor.alert.meta import MetaAlerts, meta_alert, open_meta_alerts
from monitor.scheduler.runner import RunOutcome, make_runner
from monitor.scheduler.settings import SchedulerSettings, format_seconds, load_settings
from monitor.store.stale import Staleness, staleness
from monitor.scheduler.watch import CatalogChange, CatalogWatcher, dry_run_validator
from monitor.store import Store

log = logging.getLogger(__name__)

UTC = dt.timezone.utc
AfterCompute = Callable[[list[Metric], dt.datetime], Any]
Clock = Callable[[], dt.datetime]
_DEFAULT: Any = object()
# Consecutive cycles that found the writer lock busy before a writer_busy meta-alert.
LOCK_BUSY_ALERT_AFTER = 3


@dataclass
class CycleReport:
    """What one cycle of one metric did (returned by :meth:`SchedulerService.run_metric`)."""

    metric: str
    as_of: dt.datetime | None = None
    planned: list[Window] = field(default_factory=list)
    outcome: RunOutcome | None = None
    skipped: str | None = None  # why nothing ran
    stale: Staleness | None = None
    analyzed: bool = False
    error: str | None = None  # the failure reported for this cycle
    retry_in: float | None = None  # backoff chosen after a failure or a busy lock (seconds)
    retry_scheduled: bool = False  # False outside `serve` (e.g. --once): the next invocation retries

    @property
    def failed(self) -> bool:
        return self.error is not None

    def describe(self) -> str:
        if self.skipped:
            text = f"{self.metric}: skipped ({self.skipped})"
        elif self.error:
            text = f"{self.metric}: FAILED: {self.error}"
        elif not self.planned:
            text = f"{self.metric}: up to date as of {self.as_of:%Y-%m-%d %H:%M}"
        else:
            o = self.outcome
            text = (f"{self.metric}: computed {o.windows_ok}/{len(self.planned)} window(s) "
                    f"[{self.planned[0].start:%Y-%m-%d %H:%M}, {self.planned[-1].end:%Y-%m-%d %H:%M}), "
                    f"{o.rows:,} rows in {o.seconds:.1f} s")
            if o.stopped:
                text += ", stopped for shutdown"
        if self.stale is not None and self.stale.stale:
            text += f"; source stale ({self.stale.empty_buckets} empty bucket(s)), detection paused"
        elif self.analyzed:
            text += "; detected and alerted"
        if self.retry_in is not None and self.retry_scheduled:
            text += f"; retry in {format_seconds(self.retry_in)}"
        return text


def pipeline_after_compute(config, store: Store) -> AfterCompute:
    """Detect, attribute and alert with the pipeline's own functions (what `monitor run` does)."""

    def after_compute(metrics: list[Metric], now: dt.datetime):
        from monitor import pipeline

        result = pipeline.detect_and_attribute(config, metrics, now=now, store=store)
        pipeline.send_alerts(config, store, now=now)
        return result

    return after_compute


class SchedulerService:
    """The scheduler; see the module doc. Everything time-dependent reads ``clock()``."""

    def __init__(self, config, *, clock: Clock = utc_naive, settings: SchedulerSettings | None = None,
                 store: Store | None = None, runner=None, after_compute: AfterCompute | None = _DEFAULT,
                 validate=_DEFAULT, meta: MetaAlerts | None = None):
        self.config = config
        self.clock = clock
        self.settings = settings or load_settings(config)
        self.store = store or Store(config.store_path)
        self.runner = runner or make_runner(self.settings.isolation)
        self.after_compute = pipeline_after_compute(config, self.store) if after_compute is _DEFAULT else after_compute
        self.meta = meta or MetaAlerts(self.store, config, receiver=self.settings.owner_receiver,
                                       repeat=self.settings.meta_repeat)
        validate = dry_run_validator(config.source) if validate is _DEFAULT else validate
        self.watcher = CatalogWatcher(config.metrics_dir, validate=validate)
        self.started_at: dt.datetime | None = None
        self._stop = threading.Event()
        self._hup = threading.Event()
        # Held by whatever works on the store or the jobs (a cycle, a reload, a tick): one at a time,
        # and shutdown waits on it before stopping APScheduler (whose shutdown holds its job-store
        # lock while it waits, so a job touching the scheduler then would deadlock).
        self._busy = threading.RLock()
        self._attempts: dict[str, int] = {}
        self._lock_busy: dict[str, int] = {}
        self._analyzed: set[str] = set()
        self._jobs: dict[str, tuple[str, str]] = {}  # metric -> (schedule, timezone) of its job
        self._scheduler: BackgroundScheduler | None = None
        self._loaded = False
        self._status = "idle"
        self._state_written = 0.0  # monotonic time of the last state-file write

    @property
    def metrics(self) -> dict[str, Metric]:
        """The last good definition of every metric."""
        return self.watcher.metrics

    # -- catalog -------------------------------------------------------------------------------
    def load(self) -> CatalogChange:
        """First load of the metric files; meta-alerts for broken files, stale meta-alerts resolved."""
        change = self.watcher.load()
        self._loaded = True
        now = self.clock()
        self._apply_change(change, now)
        current = {self._subject(p) for p in self.watcher.broken}
        for row in open_meta_alerts(self.store):
            if row["kind"] == "broken_definition" and row["subject"] not in current:
                self.meta.resolve("broken_definition", row["subject"], now, resolution="the file is valid or gone")
            elif row["kind"] in ("metric_failing", "stale_data", "analysis_failing") \
                    and row["subject"] not in self.metrics:
                self.meta.resolve(row["kind"], row["subject"], now, resolution="the metric is no longer defined")
        return change

    def reload(self) -> CatalogChange:
        """Poll the metric files; apply what changed (the watch job and SIGHUP call this)."""
        with self._busy:
            if self._stop.is_set() and self._scheduler is not None:
                return CatalogChange()
            if not self._loaded:
                return self.load()
            try:
                change = self.watcher.poll()
            except Exception as exc:  # noqa: BLE001 - a watch hiccup must not stop the service
                log.warning("could not reload the metric files: %s", exc)
                return CatalogChange()
            if change.changed:
                self._apply_change(change, self.clock())
            return change

    def _apply_change(self, change: CatalogChange, now: dt.datetime) -> None:
        for path, problems in change.broken.items():
            kept = sorted(m.name for m in self.metrics.values() if m.path == path)
            tail = (f"; still running the last good definition of {', '.join(kept)}" if kept
                    else "; it does not run until the file is fixed")
            message = (f"{self._subject(path)} has {len(problems)} problem(s), first: {problems[0]}{tail} "
                       f"(`monitor check` lists them all)")
            self._safe(self.meta.raise_, meta_alert("broken_definition", self._subject(path), message,
                                                    problems=problems, kept=kept), now)
        for path in change.fixed:
            self._safe(self.meta.resolve, "broken_definition", self._subject(path), now,
                       resolution="the file is valid again" if path.exists() else "the file was removed")
        for metric in change.added:
            log.info("metric %s loaded from %s (schedule %r, %s)", metric.name, metric.path, metric.schedule,
                     metric.timezone)
        for old, new in change.updated:
            log.info("metric %s reloaded from %s", new.name, new.path)
            if old.definition_hash != new.definition_hash:
                log.warning("%s: the query, grain, dimensions or timezone changed; new windows use the new "
                            "definition, stored history does not: backfill it with `monitor backfill --metric %s`",
                            new.name, new.name)
        for metric in change.removed:
            log.info("metric %s removed (its file is gone or now defines another metric)", metric.name)
            self._attempts.pop(metric.name, None)
            self._cancel_retry(metric.name)
            for kind in ("metric_failing", "stale_data", "analysis_failing"):
                self._safe(self.meta.resolve, kind, metric.name, now, resolution="the metric was removed")
        if self._scheduler is not None and not self._stop.is_set():
            self._sync_jobs()
            # A new metric catches up now, not at its next fire; so does a failing one just edited.
            now_due = [m.name for m in change.added] + [new.name for _, new in change.updated
                                                         if self._attempts.get(new.name)]
            for name in now_due:
                self._scheduler.add_job(self.run_metric, args=[name], id=f"catchup:{name}", replace_existing=True)
        self.meta.flush(now)

    def _subject(self, path: Path) -> str:
        try:
            return str(Path(path).resolve().relative_to(self.config.root))
        except ValueError:
            return str(path)

    # -- one cycle -----------------------------------------------------------------------------
    def run_metric(self, name: str) -> CycleReport:
        """One cycle for one metric (see the module doc). Never raises: failures are reported."""
        with self._busy:
            return self._run_metric(name)

    def _run_metric(self, name: str) -> CycleReport:
        report = CycleReport(name)
        if self._stop.is_set():
            report.skipped = "shutting down"
            return report
        if not self._loaded:
            self.load()
        metric = self.metrics.get(name)
        if metric is None:
            report.skipped = "not in the catalog (removed, or its file is broken)"
            return report
        now = self.clock()
        try:
            self._safe(self.meta.refresh)
            self._cycle(metric, report, now)
        except Exception as exc:  # noqa: BLE001 - one metric's trouble never stops the service
            log.exception("cycle of %s failed", name)
            self._failed(metric, report, f"{type(exc).__name__}: {exc}", now)
        self.meta.flush(self.clock())
        self._write_state()
        (log.warning if report.failed else log.info)("%s", report.describe())
        return report

    def _cycle(self, metric: Metric, report: CycleReport, now: dt.datetime) -> None:
        from monitor.pipeline import due_windows

        as_of = last_fire_time(metric.schedule, metric.timezone, now)
        if as_of is None:
            report.skipped = f"its schedule {metric.schedule!r} has not fired in the past year"
            return
        report.as_of = as_of
        effective = metric
        if self.settings.lookback > metric.lookback:
            effective = dataclasses.replace(metric, lookback=self.settings.lookback)
        try:
            with writer_lock(self.store.path, wait=self.settings.lock_wait, cancel=self._stop.is_set,
                             purpose=f"monitor serve: {metric.name}") as lock:
                self._lock_acquired(metric.name, now)
                report.planned = due_windows(effective, self.store, as_of)
                if report.planned:
                    report.outcome = self.runner.run(
                        self.config, [(effective, w) for w in report.planned], trigger="serve", store=self.store,
                        clock=self.clock, stop=self._stop, timeout=self.settings.timeout,
                        grace=self.settings.shutdown_grace, lock=lock)
                self._after_run(metric, report, now)
        except LockTimeout as exc:
            self._lock_timeout(metric.name, report, exc, now)

    def _after_run(self, metric: Metric, report: CycleReport, now: dt.datetime) -> None:
        outcome = report.outcome
        if outcome is not None and not outcome.ok:
            real = [f for f in outcome.failures if not f[2].startswith("skipped after")]
            error = outcome.crashed or (f"{real[0][2]}" if real else outcome.failures[0][2])
            self._failed(metric, report, error, now)
            return
        self._succeeded(metric, now)
        if outcome is not None and outcome.stopped:
            return  # shutting down: the rest is done by the next start
        try:
            report.stale = staleness(self.store, metric, report.as_of, settings=self.settings)
        except Exception as exc:  # noqa: BLE001 - cannot tell: judge the metric as usual
            log.warning("could not check %s for a stale source: %s", metric.name, exc)
        if report.stale is not None and report.stale.stale:
            self._safe(self.meta.raise_, meta_alert(
                "stale_data", metric.name, report.stale.message(), empty_buckets=report.stale.empty_buckets,
                last_data=report.stale.last_data, threshold=report.stale.threshold), now)
            return
        self._safe(self.meta.resolve, "stale_data", metric.name, now, resolution="the source has data again")
        computed = outcome is not None and outcome.windows_ok > 0
        if self.after_compute is None or self._stop.is_set() or (not computed and metric.name in self._analyzed):
            return
        try:
            result = self.after_compute([metric], report.as_of)
            failures = dict(getattr(result, "detect_failures", None) or [])
        except Exception as exc:  # noqa: BLE001 - detection trouble is reported, computing goes on
            log.exception("detection/alerting failed for %s", metric.name)
            failures = {metric.name: f"{type(exc).__name__}: {exc}"}
        if metric.name in failures:
            self._safe(self.meta.raise_, meta_alert(
                "analysis_failing", metric.name, f"Detection or alerting failed for {metric.name}: "
                f"{failures[metric.name]}", error=failures[metric.name]), now)
        else:
            report.analyzed = True
            self._analyzed.add(metric.name)
            self._safe(self.meta.resolve, "analysis_failing", metric.name, now,
                       resolution="detection ran successfully")

    def _failed(self, metric: Metric, report: CycleReport, error: str, now: dt.datetime) -> None:
        attempts = self._attempts.get(metric.name, 0) + 1
        self._attempts[metric.name] = attempts
        report.error = error
        report.retry_in, report.retry_scheduled = self._schedule_retry(metric.name, attempts)
        if attempts >= self.settings.failure_alert_after:
            retry = (f"retry in {format_seconds(report.retry_in)}" if report.retry_scheduled
                     else "it runs again at its next scheduled time")
            message = (f"{metric.name} failed {attempts} time(s) in a row: {error}; the other metrics keep "
                       f"running, {retry}")
            self._safe(self.meta.raise_, meta_alert("metric_failing", metric.name, message, error=error,
                                                    attempts=attempts, path=str(metric.path)), now)

    def _succeeded(self, metric: Metric, now: dt.datetime) -> None:
        attempts = self._attempts.pop(metric.name, 0)
        self._cancel_retry(metric.name)
        self._safe(self.meta.resolve, "metric_failing", metric.name, now,
                   resolution=f"{metric.name} ran successfully again" + (
                              f" after {attempts} failed attempt(s)" if attempts else ""))

    def _lock_acquired(self, name: str, now: dt.datetime) -> None:
        if self._lock_busy.pop(name, 0) >= LOCK_BUSY_ALERT_AFTER:
            self._safe(self.meta.resolve, "writer_busy", "store", now, resolution="the writer lock is free again")

    def _lock_timeout(self, name: str, report: CycleReport, exc: LockTimeout, now: dt.datetime) -> None:
        if self._stop.is_set():
            report.skipped = "shutting down"
            return
        busy = self._lock_busy.get(name, 0) + 1
        self._lock_busy[name] = busy
        report.skipped = f"writer lock held by {describe_holder(exc.holder)}"
        report.retry_in, report.retry_scheduled = self._schedule_retry(name, busy)
        if busy >= LOCK_BUSY_ALERT_AFTER:
            self._safe(self.meta.raise_, meta_alert(
                "writer_busy", "store",
                f"The store's writer lock has been held by {describe_holder(exc.holder)} through {busy} "
                f"attempts of {name} (each waiting {format_seconds(self.settings.lock_wait)}); scheduled runs are "
                f"delayed until it is released.", holder=exc.holder), now)

    def _schedule_retry(self, name: str, attempt: int) -> tuple[float, bool]:
        """The backoff delay, and whether a retry job was scheduled (only while serving)."""
        delay = self.settings.backoff(attempt)
        if self._scheduler is None or self._stop.is_set():
            return delay, False
        # APScheduler fires on the wall clock: the delay is relative, so a shifted `clock` is fine.
        run_at = dt.datetime.now(UTC) + dt.timedelta(seconds=delay)
        self._scheduler.add_job(self.run_metric, "date", run_date=run_at, args=[name], id=f"retry:{name}",
                                replace_existing=True)
        return delay, True

    def _cancel_retry(self, name: str) -> None:
        if self._scheduler is not None and not self._stop.is_set():
            try:
                self._scheduler.remove_job(f"retry:{name}")
            except JobLookupError:
                pass

    def catch_up(self) -> list[CycleReport]:
        """One cycle for every metric, in name order (startup, and `serve --once`)."""
        with self._busy:
            if not self._loaded:
                self.load()
            reports = []
            for name in sorted(self.metrics):
                if self._stop.is_set():
                    break
                reports.append(self._run_metric(name))
            return reports

    # -- other jobs ----------------------------------------------------------------------------
    def alert_tick(self) -> None:
        """Run the alert cycle between metric runs (group waits, repeats and delivery retries)."""
        with self._busy:
            if not self._stop.is_set():
                self._alert_tick(run_alert_cycle)

    def _alert_tick(self, run_alert_cycle) -> None:
        self._watched("alerts", "alert cycle", "the alert cycle ran again",
                      lambda now: run_alert_cycle(self.store, self.config, now=now))

    def report_job(self) -> None:
        """Build (and send) the daily report: monitor.report's daily job."""
        with self._busy:
            if not self._stop.is_set():
                self._report_job()

    def _report_job(self) -> None:
        def build(now: dt.datetime) -> None:
            from monitor.report.deliver import daily_report_job

            report = daily_report_job(self.config, now=now)
            log.info("daily report written: %s", getattr(report, "url", report))

        self._watched("daily_report", "daily report", "the report was built", build)
        self.meta.flush(self.clock())

    def _watched(self, subject: str, what: str, resolution: str, job) -> None:
        """Run a side job at the clock's now: a failure raises the "job_failing" meta-alert
        for ``subject``, the next success resolves it."""
        now = self.clock()
        try:
            job(now)
        except Exception as exc:  # noqa: BLE001
            log.warning("%s failed: %s", what, exc)
            self._safe(self.meta.raise_, meta_alert("job_failing", subject,
                                                    f"The {what} failed: {type(exc).__name__}: {exc}"), now)
        else:
            self._safe(self.meta.resolve, "job_failing", subject, now, resolution=resolution)

    def _safe(self, fn, *args, **kwargs):
        """Meta-alert bookkeeping must never turn a handled problem into a crash."""
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            log.warning("could not record a meta-alert: %s", exc)
            return None

    # -- the APScheduler side ------------------------------------------------------------------
    def start(self) -> None:
        """Load the metrics, build the jobs and start them (catch-up first); returns at once."""
        self._stop.clear()
        self.started_at = self.clock()
        if not self._loaded:
            self.load()
        # "default" runs the cycles (and the report) one at a time, queueing what fires meanwhile;
        # "ticks" runs the frequent checks, which skip when a cycle is busy instead of queueing.
        scheduler = BackgroundScheduler(
            timezone=UTC, executors={"default": APThreadPoolExecutor(max_workers=1),
                                     "ticks": APThreadPoolExecutor(max_workers=1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None})
        self._scheduler = scheduler
        self._sync_jobs()
        scheduler.add_job(self._tick, IntervalTrigger(seconds=max(self.settings.poll_interval, 1.0), timezone=UTC),
                          args=[self.reload], id="watch", executor="ticks")
        if self.settings.alert_interval > 0 and _has_module("monitor.alert"):
            scheduler.add_job(self._tick, IntervalTrigger(seconds=self.settings.alert_interval, timezone=UTC),
                              args=[self.alert_tick], id="alerts", executor="ticks")
        report_trigger = self._report_trigger()
        if report_trigger is not None:
            scheduler.add_job(self.report_job, report_trigger, id="report")
        scheduler.add_job(self.catch_up, id="startup")  # no trigger: runs now
        scheduler.start()
        self._write_state("running")
        log.info("serving %d metric(s) from %s; store %s", len(self.metrics), self.config.metrics_dir,
                 self.store.path)

    def _tick(self, fn) -> None:
        """Run a periodic check unless a cycle is in progress (the next tick comes soon enough)."""
        if not self._busy.acquire(blocking=False):
            return
        try:
            fn()
        finally:
            self._busy.release()

    def _report_trigger(self):
        if not self.settings.report or not _has_module("monitor.report.deliver"):
            return None
        try:
            from monitor.report.settings import report_settings

            settings = report_settings(self.config)
            return cron_trigger(settings.cron, settings.timezone)
        except Exception as exc:  # noqa: BLE001 - a broken [report] section must not stop the metrics
            log.warning("no daily report job: %s", exc)
            return None

    def _sync_jobs(self) -> None:
        scheduler = self._scheduler
        wanted = {name: (m.schedule, m.timezone) for name, m in self.metrics.items()}
        for name in list(self._jobs):
            if name not in wanted:
                for prefix in ("metric", "retry", "catchup"):
                    try:
                        scheduler.remove_job(f"{prefix}:{name}")
                    except JobLookupError:
                        pass
                del self._jobs[name]
        for name, spec in wanted.items():
            if self._jobs.get(name) == spec:
                continue
            scheduler.add_job(self.run_metric, cron_trigger(*spec), args=[name], id=f"metric:{name}",
                              name=f"{name} ({spec[0]} {spec[1]})", replace_existing=True)
            self._jobs[name] = spec

    def jobs(self) -> list[dict[str, Any]]:
        """Scheduled jobs and their next run (naive UTC), for status and tests."""
        if self._scheduler is None:
            return []
        out = []
        for job in self._scheduler.get_jobs():
            nxt = job.next_run_time
            out.append({"id": job.id, "next_run": nxt.astimezone(UTC).replace(tzinfo=None) if nxt else None,
                        "trigger": str(job.trigger), "timezone": str(getattr(job.trigger, "timezone", ""))})
        return out

    def request_stop(self) -> None:
        """Ask the service to stop: the window in progress finishes (or rolls back after the grace)."""
        self._stop.set()

    def shutdown(self) -> None:
        """Stop the jobs, waiting for the one in progress; the store is left consistent."""
        self._stop.set()
        if self._scheduler is not None:
            with self._busy:  # the job in progress finishes first; queued ones then see the stop
                scheduler, self._scheduler = self._scheduler, None
            scheduler.shutdown(wait=True)
        self._write_state("stopped")
        log.info("scheduler stopped")

    def serve_forever(self) -> None:
        """Run until SIGTERM/SIGINT (then stop cleanly); SIGHUP reloads the metric files at once."""
        previous = {}

        def on_stop(signum, frame):  # noqa: ARG001
            log.info("received %s: finishing the window in progress, then exiting", signal.Signals(signum).name)
            self._stop.set()

        def on_hup(signum, frame):  # noqa: ARG001
            self._hup.set()

        for sig, handler in ((signal.SIGTERM, on_stop), (signal.SIGINT, on_stop), (signal.SIGHUP, on_hup)):
            previous[sig] = signal.signal(sig, handler)
        try:
            self.start()
            while not self._stop.wait(0.5):
                if self._hup.is_set():
                    self._hup.clear()
                    if self._scheduler is not None:
                        self._scheduler.add_job(self.reload, id="reload-now", replace_existing=True)
                self._write_state("running", only_if_stale=True)
        finally:
            self.shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    # -- the state file `monitor status` reads -------------------------------------------------
    def _write_state(self, status: str | None = None, *, only_if_stale: bool = False) -> None:
        if self.started_at is None:
            return  # not serving (a one-off catch-up): nothing to report as a running service
        path = state_path(self.store.path)
        if only_if_stale and time.monotonic() - self._state_written < 60:
            return
        if status is not None:
            self._status = status
        self._state_written = time.monotonic()
        state = {
            "pid": os.getpid(), "host": socket.gethostname(), "status": self._status,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "heartbeat": self.clock().isoformat(),
            "metrics": sorted(self.metrics),
            "retry_attempts": dict(self._attempts),
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps(state, indent=1))
            os.replace(tmp, path)
        except OSError as exc:
            log.debug("could not write %s: %s", path, exc)


def state_path(store_path: Path | str) -> Path:
    store_path = Path(store_path)
    return store_path.with_name(store_path.name + ".serve.json")


def _has_module(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


__all__ = ["CycleReport", "SchedulerService", "pipeline_after_compute", "state_path"]
