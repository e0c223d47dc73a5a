"""The scheduler's cycle on a real project: catch-up, lookback, failures, reloads, staleness.

Time is a fake clock passed in; windows run inline (the child-process runner has
its own tests in test_scheduler_process.py); the store and source are real
DuckDB files.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time

import duckdb
import pytest

from monitor.scheduler import (
    InlineRunner, LockTimeout, SchedulerService, SchedulerSettings, is_stale, open_meta_alerts, writer_lock,
)
from monitor.config import load_config
from monitor.store import Store

T0 = dt.datetime(2026, 3, 10, 7, 0)


class Clock:
    def __init__(self, now: dt.datetime):
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += dt.timedelta(**delta)


class Recorder:
    """The after_compute hook: records what detection would have been asked to judge."""

    def __init__(self):
        self.calls: list[tuple[list[str], dt.datetime]] = []

    def __call__(self, metrics, now):
        self.calls.append(([m.name for m in metrics], now))

    def names(self) -> list[str]:
        return [n for names, _ in self.calls for n in names]


def make(project, clock, **settings):
    hook = Recorder()
    service = SchedulerService(project, clock=clock, runner=InlineRunner(), after_compute=hook,
                               settings=SchedulerSettings(**settings))
    return service, hook


def ok_windows(project, metric):
    con = duckdb.connect(str(project.store_path), read_only=True)
    try:
        return con.execute("SELECT window_start, window_end FROM runs WHERE metric = ? AND status = 'ok'"
                           " ORDER BY run_id", [metric]).fetchall()
    finally:
        con.close()


def meta(project, kind=None):
    return {a["key"]: a for a in open_meta_alerts(Store(project.store_path)) if kind is None or a["kind"] == kind}


def day(d: int) -> dt.datetime:
    return dt.datetime(2026, 3, d)


def test_catch_up_runs_missed_windows_in_order_coalesced_and_as_the_schedule_allows(project):
    clock = Clock(T0)
    service, hook = make(project, clock)
    first = service.run_metric("fraud_rate")  # "0 6 * * *": as of 06:00 on the 10th
    assert first.as_of == dt.datetime(2026, 3, 10, 6)
    assert first.planned[-1].end == day(10) and first.outcome.windows_ok == len(first.planned) == 2
    assert hook.calls == [(["fraud_rate"], dt.datetime(2026, 3, 10, 6))]

    clock.now = dt.datetime(2026, 3, 14, 5, 0)  # down since the 10th; the 14th's 06:00 run is not due yet
    report = service.run_metric("fraud_rate")
    assert [(w.start, w.end) for w in report.planned] == [(day(10), day(13))]  # one coalesced chunk
    assert ok_windows(project, "fraud_rate")[-1] == (day(10), day(13))

    clock.now = dt.datetime(2026, 3, 14, 6, 0)
    assert [(w.start, w.end) for w in service.run_metric("fraud_rate").planned] == [(day(13), day(14))]
    assert service.run_metric("fraud_rate").planned == []  # the store says it is done: nothing twice
    starts = [s for s, _ in ok_windows(project, "fraud_rate")]
    assert starts == sorted(starts)
    assert len(hook.calls) == 3  # detection ran after each cycle that computed, not after the empty one


def test_lookback_recomputes_recent_buckets_and_picks_up_late_data(project):
    clock = Clock(T0)
    service, hook = make(project, clock, lookback=2)
    service.run_metric("fraud_rate")
    store = Store(project.store_path)
    metric = service.metrics["fraud_rate"]
    before = store.series(metric, start=day(9), end=day(10))["denominator"].sum()
    con = duckdb.connect(str(project.source.database))  # late rows for the 9th land after it was computed
    con.execute("INSERT INTO orders SELECT 10000000 + i, TIMESTAMP '2026-03-09 12:00', 'BR', 'web', true"
                " FROM range(25) t(i)")
    con.close()
    clock.advance(days=1)
    report = service.run_metric("fraud_rate")
    assert [(w.start, w.end) for w in report.planned] == [(day(8), day(11))]  # 2 buckets back + the new one
    assert store.series(metric, start=day(9), end=day(10))["denominator"].sum() == before + 25
    assert hook.calls[-1] == (["fraud_rate"], dt.datetime(2026, 3, 11, 6))  # open incidents re-judged


def test_a_failing_metric_is_recorded_retried_with_backoff_and_reported_while_others_run(project):
    path = project.metrics_dir / "order_count.sql"
    good = path.read_text()
    path.write_text(good.replace("FROM orders", "FROM missing_table"))
    clock = Clock(T0)
    service, hook = make(project, clock, retry_initial=60, retry_max=200, failure_alert_after=2)
    reports = {r.metric: r for r in service.catch_up()}
    assert not reports["fraud_rate"].failed and reports["fraud_rate"].outcome.windows_ok == 2
    failed = reports["order_count"]
    assert failed.failed and "missing_table" in failed.error and failed.retry_in == 60
    runs = Store(project.store_path).runs("order_count")
    assert list(runs["status"]) == ["failed"] and "missing_table" in runs["error"][0]
    assert meta(project) == {}  # one failure: below failure_alert_after

    second = service.run_metric("order_count")
    assert second.retry_in == 120
    alert = meta(project)["metric_failing:order_count"]
    assert "failed 2 time(s) in a row" in alert["message"] and "missing_table" in alert["message"]
    assert service.run_metric("order_count").retry_in == 200  # capped
    assert meta(project)["metric_failing:order_count"]["occurrences"] == 2  # one open alert, refreshed
    assert hook.names() == ["fraud_rate"]  # nothing to judge for the failing metric

    path.write_text(good)
    change = service.reload()
    assert [new.name for _, new in change.updated] == ["order_count"]
    fixed = service.run_metric("order_count")
    assert not fixed.failed and fixed.outcome.windows_ok == 2
    assert meta(project) == {}  # resolved
    resolved = Store(project.store_path)
    with resolved.connect(read_only=True) as con:
        assert con.execute("SELECT resolution FROM meta_alerts").fetchone()[0].startswith(
            "order_count ran successfully again after 3 failed attempt(s)")


def test_unexpected_errors_in_a_cycle_are_isolated(project):
    class Exploding(InlineRunner):
        def run(self, config, plan, **kwargs):
            if plan[0][0].name == "order_count":
                raise RuntimeError("boom")
            return super().run(config, plan, **kwargs)

    service = SchedulerService(project, clock=Clock(T0), runner=Exploding(), after_compute=None,
                               settings=SchedulerSettings())
    reports = {r.metric: r for r in service.catch_up()}
    assert reports["order_count"].error == "RuntimeError: boom"
    assert not reports["fraud_rate"].failed
    assert "metric_failing:order_count" in meta(project)


def test_edits_are_picked_up_and_a_broken_edit_keeps_the_last_good_definition(project):
    clock = Clock(T0)
    service, _ = make(project, clock)
    service.load()
    path = project.metrics_dir / "fraud_rate.sql"
    good_text, good = path.read_text(), service.metrics["fraud_rate"]

    path.write_text(good_text.replace("kind: ratio", "kind: avg"))  # bad header
    change = service.reload()
    assert [m.name for m in change.kept] == ["fraud_rate"] and service.metrics["fraud_rate"] is good
    alert = meta(project)["broken_definition:metrics/fraud_rate.sql"]
    assert "fraud_rate.sql:5: kind: must be one of ratio, sum" in alert["message"]
    assert "still running the last good definition of fraud_rate" in alert["message"]
    assert service.run_metric("fraud_rate").outcome.windows_ok == 2  # the old definition still runs

    path.write_text(good_text.replace("count(*) AS denominator", "count(no_such_column) AS denominator"))
    service.reload()  # parses, but the dry run on the source fails: rejected too
    assert service.metrics["fraud_rate"] is good
    assert "no_such_column" in meta(project)["broken_definition:metrics/fraud_rate.sql"]["message"]

    path.write_text(good_text.replace("title: Fraud rate", "title: Fraud rate of orders"))
    change = service.reload()
    assert service.metrics["fraud_rate"].title == "Fraud rate of orders"
    assert change.fixed == [path] and meta(project) == {}

    (project.metrics_dir / "chargebacks.sql").write_text(
        path.read_text().replace("name: fraud_rate", "name: chargebacks"))
    path.unlink()
    change = service.reload()
    assert [m.name for m in change.added] == ["chargebacks"] and [m.name for m in change.removed] == ["fraud_rate"]
    assert sorted(service.metrics) == ["chargebacks", "order_count"]
    assert service.run_metric("fraud_rate").skipped.startswith("not in the catalog")
    assert service.reload().changed is False  # nothing changed: nothing re-read


def test_a_new_broken_file_is_reported_and_the_report_resolves_when_it_is_removed(project):
    service, _ = make(project, Clock(T0))
    service.load()
    broken = project.metrics_dir / "broken.sql"
    broken.write_text("SELECT 1")
    service.reload()
    assert "it does not run until the file is fixed" in meta(project)["broken_definition:metrics/broken.sql"]["message"]
    broken.unlink()
    assert service.reload().fixed == [broken]
    assert meta(project) == {}


def test_a_stale_source_raises_a_meta_alert_and_pauses_detection_instead_of_a_drop(project):
    clock = Clock(dt.datetime(2026, 3, 23, 7, 0))  # the source has orders up to the 20th only: 21st, 22nd empty
    service, hook = make(project, clock)
    report = service.run_metric("fraud_rate")
    assert report.stale.stale and report.stale.empty_buckets == 2 and report.stale.last_data == day(20)
    assert hook.calls == []  # no detection: the "drop" is a broken feed
    alert = meta(project)["stale_data:fraud_rate"]
    assert "no source rows for the last 2 computed day(s)" in alert["message"]
    metric = service.metrics["fraud_rate"]
    store = Store(project.store_path)
    assert is_stale(store, metric, clock.now) is True
    assert is_stale(store, metric, clock.now, after=3) is False
    assert is_stale(store, metric, clock.now, config=dataclasses.replace(
        project, sections={**project.sections, "scheduler": {"stale_after": {"fraud_rate": 0}}})) is False

    con = duckdb.connect(str(project.source.database))  # the feed is back
    con.execute("INSERT INTO orders SELECT 20000000 + i, TIMESTAMP '2026-03-23 10:00', 'US', 'app', false"
                " FROM range(40) t(i)")
    con.close()
    clock.advance(days=1)
    report = service.run_metric("fraud_rate")
    assert not report.stale.stale and hook.names() == ["fraud_rate"]
    assert meta(project) == {}


def test_a_busy_writer_lock_skips_the_cycle_and_retries(project):
    held, release = threading.Event(), threading.Event()

    def hold():
        with writer_lock(project.store_path, wait=1, purpose="monitor backfill"):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(5)
    try:
        service, _ = make(project, Clock(T0), lock_wait=0.1, retry_initial=30)
        report = service.run_metric("fraud_rate")
        assert "writer lock held by" in report.skipped and "monitor backfill" in report.skipped
        assert report.retry_in == 30 and report.planned == []
    finally:
        release.set()
        thread.join()
    assert service.run_metric("fraud_rate").outcome.windows_ok == 2


def test_jobs_follow_the_catalog_with_each_metric_timezone_and_failures_get_a_retry_job(project):
    path = project.metrics_dir / "order_count.sql"
    path.write_text(path.read_text().replace('schedule: "0 * * * *"', 'schedule: "0 6 * * *"\ntimezone: Europe/Berlin')
                    .replace("FROM orders", "FROM missing_table"))
    service, _ = make(project, Clock(T0), retry_initial=600)
    service.start()  # the startup catch-up runs in the background
    try:
        jobs = {j["id"]: j for j in service.jobs()}
        assert {"metric:fraud_rate", "metric:order_count", "watch"} <= set(jobs)
        assert jobs["metric:fraud_rate"]["next_run"].hour == 6 and jobs["metric:fraud_rate"]["timezone"] == "UTC"
        assert jobs["metric:order_count"]["next_run"].hour in (4, 5)  # 06:00 Berlin: 05:00 (CET) / 04:00 UTC
        assert jobs["metric:order_count"]["timezone"] == "Europe/Berlin"
        assert jobs["report"]["next_run"].time() == dt.time(7, 0)  # [report] time, default 07:00 UTC
        deadline = time.monotonic() + 60
        while "retry:order_count" not in {j["id"] for j in service.jobs()}:
            assert time.monotonic() < deadline, "no retry job after the failed startup run"
            time.sleep(0.1)
        retry = next(j for j in service.jobs() if j["id"] == "retry:order_count")
        wait = (retry["next_run"] - dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)).total_seconds()
        assert 500 < wait <= 600
        (project.metrics_dir / "fraud_rate.sql").unlink()
        service.reload()
        assert "metric:fraud_rate" not in {j["id"] for j in service.jobs()}
    finally:
        service.shutdown()
    assert service.jobs() == []


def test_settings_are_validated_all_at_once(project):
    from monitor.errors import ConfigError
    from monitor.scheduler.settings import parse_settings

    with pytest.raises(ConfigError) as err:
        parse_settings({"timeout": "soon", "isolation": "thread", "stale_after": {"day": -1}, "colour": 1})
    text = str(err.value)
    assert "4 problem(s)" in text and "[scheduler] timeout must be a duration" in text
    assert "unknown key [scheduler] colour" in text and "one of process, inline" in text
    settings = parse_settings({"timeout": "1h30m", "stale_after": {"hour": 3, "coupon_abuse": 0}})
    assert settings.timeout == 5400
    assert settings.stale_threshold("x", "hour") == 3 and settings.stale_threshold("x", "day") == 1
    assert settings.stale_threshold("coupon_abuse", "hour") == 0
    assert [settings.backoff(n) for n in (1, 2, 3, 10)] == [60, 120, 240, 3600]
    with pytest.raises(LockTimeout):  # the lock error is a MonitorError: one sentence at the CLI
        raise LockTimeout("x")


def test_sighup_reloads_and_sigterm_stops_serve_forever(project):
    """The signal path in this process: SIGHUP reloads the metric files, SIGTERM stops cleanly."""
    import json
    import os
    import signal

    from monitor.scheduler.service import state_path

    service, hook = make(project, Clock(T0), poll_interval=3600)  # only SIGHUP can pick the edit up
    errors, before = [], signal.getsignal(signal.SIGTERM)

    def drive():
        try:
            deadline = time.monotonic() + 60
            while len(hook.calls) < 2:  # (not the store: a second connection here would clash with serve's)
                assert time.monotonic() < deadline, "startup catch-up did not finish"
                time.sleep(0.1)
            (project.metrics_dir / "extra.sql").write_text(
                (project.metrics_dir / "order_count.sql").read_text().replace("name: order_count", "name: extra"))
            os.kill(os.getpid(), signal.SIGHUP)
            while "extra" not in service.metrics:
                assert time.monotonic() < deadline, "SIGHUP did not reload"
                time.sleep(0.1)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            errors.append(exc)
        finally:
            if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None):
                os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=drive)
    thread.start()
    service.serve_forever()
    thread.join()
    assert not errors, errors
    assert "extra" in service.metrics
    state = json.loads(state_path(project.store_path).read_text())
    assert state["status"] == "stopped" and state["pid"] == os.getpid()
    assert signal.getsignal(signal.SIGTERM) == before  # handlers restored
    assert len(ok_windows(project, "order_count")) == 2


@pytest.mark.slow
def test_the_daily_report_job_builds_the_last_complete_day(project):
    toml = project.root / "monitor.toml"
    toml.write_text(toml.read_text() + '[report]\nsend = false\nout_dir = "out"\n')
    config = load_config(toml)
    service = SchedulerService(config, clock=Clock(T0), runner=InlineRunner(), after_compute=None)
    service.catch_up()
    service.report_job()
    assert sorted(p.name for p in (project.root / "out").iterdir()) == ["report-2026-03-09.html",
                                                                        "report-2026-03-09.md"]
    assert meta(project) == {}


def test_a_failing_side_job_raises_a_meta_alert_and_its_next_success_resolves_it(project):
    clock = Clock(T0)
    service, _ = make(project, clock)

    def broken(store, config, *, now):
        raise RuntimeError("outbox table locked")

    service._alert_tick(broken)
    [alert] = meta(project, "job_failing").values()
    assert alert["subject"] == "alerts"
    assert alert["message"] == "The alert cycle failed: RuntimeError: outbox table locked"
    clock.advance(minutes=1)
    service._alert_tick(lambda store, config, *, now: None)
    assert meta(project, "job_failing") == {}
