"""The `monitor` command line (PRODUCT.md Contract 2).

Every MonitorError becomes one sentence on stderr and exit code 1; `--debug`
shows the trace and the evidence (SQL, file, window) the error carries.
"""
from __future__ import annotations

import contextlib
import json
import logging
import sys
from pathlib import Path

import click

from monitor.cli_context import Context, as_of_option, handle_errors, pass_ctx
from monitor.config import ProjectConfig
from monitor.errors import CatalogError, MonitorError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(), envvar="MONITOR_CONFIG",
              help="Path to monitor.toml (default: found in the current folder or a parent).")
@click.option("--debug", is_flag=True, help="Show tracebacks and the SQL behind errors.")
@click.option("--now", hidden=True, help="Pretend the current UTC time is this, for every command (tests).")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, debug: bool, now: str | None) -> None:
    """Metric monitoring and attribution for risk-control teams."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = Context(config_path, debug, now)


# -- init -------------------------------------------------------------------------------------
@cli.command()
@click.argument("folder", type=click.Path(file_okay=False), default=".")
@handle_errors
def init(folder: str) -> None:
    """Scaffold a project: config, a sample source, a sample metric and a README."""
    from monitor.scaffold import scaffold_project

    created = scaffold_project(Path(folder))
    for path in created:
        click.echo(f"created {path}")
    click.echo(f"Next: cd {folder} && monitor check && monitor backfill --start 2026-01-01 --end 2026-01-15")


# -- check ------------------------------------------------------------------------------------
@cli.command()
@click.option("--no-dry-run", is_flag=True, help="Only validate the files; do not run the queries.")
@pass_ctx
@handle_errors
def check(ctx: Context, no_dry_run: bool) -> None:
    """Validate every metric file and dry-run each query on the source."""
    from monitor.engine import make_engine
    from monitor.pipeline import load_project_catalog

    config = ctx.config
    catalog = load_project_catalog(config)
    problems = [str(p) for p in catalog.problems]
    if not no_dry_run and catalog.metrics:
        with make_engine(config.source) as engine:
            for metric in catalog.select(None):
                problems.extend(engine.dry_run(metric))
    _warn_stale(config, list(catalog.metrics.values()))
    click.echo(f"{len(catalog.files)} metric file(s), {len(catalog.metrics)} valid.")
    from monitor.events.check import check_event_files

    event_files, event_problems = check_event_files(config, set(catalog.metrics), dry_run=not no_dry_run)
    if event_files:
        click.echo(f"{event_files} event file(s).")
    problems += event_problems
    if problems:
        raise CatalogError(problems)
    click.echo("All metrics OK." + (" All event files OK." if event_files else ""))


# -- backfill / run ---------------------------------------------------------------------------
@cli.command()
@click.option("--start", required=True, help="First day (or hour) to compute, e.g. 2026-06-01.")
@click.option("--end", required=True, help="Exclusive end, e.g. 2026-07-01.")
@click.option("--metric", "names", multiple=True, help="Only these metrics (repeatable).")
@click.option("--chunk", type=int, default=None, help="Buckets per query (default: at most 366 days / 2208 hours, fewer as [backfill] memory_limit needs).")
@click.option("--no-detect", is_flag=True, help="Only compute; skip detection afterwards.")
@click.option("--allow-empty", is_flag=True, help="Store empty results even over windows that hold rows "
              "(by default refused: an emptied source must not wipe history).")
@pass_ctx
@handle_errors
def backfill(ctx: Context, start: str, end: str, names: tuple[str, ...], chunk: int | None, no_detect: bool,
             allow_empty: bool) -> None:
    """Compute metrics for a past range (idempotent: re-running replaces the windows)."""
    from monitor.engine import parse_when
    from monitor.pipeline import backfill_plan, complete_until

    start_ts, end_ts = parse_when(start), parse_when(end)
    if end_ts <= start_ts:
        raise MonitorError(f"--end {end} must be after --start {start}.")
    config, catalog = ctx.config, _catalog(ctx)
    metrics = catalog.select(list(names))
    now = ctx.now
    plan = backfill_plan(metrics, start_ts, end_ts, chunk, now=now, config=config)
    cut = min((complete_until(m.grain, now) for m in metrics), default=end_ts)
    if metrics and not plan:
        raise MonitorError(f"--start {start} is in the future (now {now:%Y-%m-%d %H:%M} UTC): no complete bucket "
                           "to compute; `monitor run` computes buckets once they are complete.")
    if cut < end_ts:
        click.echo(f"note: --end {end} is in the future; computing complete buckets only, up to {cut:%Y-%m-%d %H:%M} "
                   "(the bucket holding now is not complete; `monitor run` computes later ones when due).", err=True)
    with _writer(config, "monitor backfill"):
        result = _compute_with_progress(config, plan, trigger="backfill", allow_empty=allow_empty)
        _finish(ctx, catalog, result, detect=not no_detect, names=[m.name for m in metrics])


@cli.command()
@click.option("--metric", "names", multiple=True, help="Only these metrics (repeatable).")
@click.option("--no-alerts", is_flag=True, help="Detect and explain, but send nothing.")
@click.option("--allow-empty", is_flag=True, help="Store empty results even over windows that hold rows.")
@as_of_option
@pass_ctx
@handle_errors
def run(ctx: Context, names: tuple[str, ...], no_alerts: bool, allow_empty: bool) -> None:
    """One cycle now: compute the due windows, then detect, attribute and alert."""
    from monitor.pipeline import run_cycle, run_plan

    config, catalog = ctx.config, _catalog(ctx)
    with _writer(config, "monitor run"):
        plan = run_plan(config, catalog, ctx.now, list(names) or None)
        if not plan:
            click.echo("Nothing due: every metric is up to date.")
        with _progress(len(plan), "run") as advance:
            cycle = run_cycle(config, catalog, now=ctx.now, names=list(names) or None, trigger="run",
                              alert=not no_alerts, on_window=advance, plan=plan, allow_empty=allow_empty)
    _report_cycle(cycle)
    lost = getattr(cycle.alerts, "lost", None) or []  # failed for good: a cron wrapper must notice
    for line in lost:
        click.echo(f"alert lost: {line}", err=True)
    if catalog.problems or cycle.compute.failures or cycle.detect_failures or lost:
        sys.exit(1)


@cli.command()
@click.option("--metric", "names", multiple=True, help="Only these metrics (repeatable).")
@as_of_option
@pass_ctx
@handle_errors
def detect(ctx: Context, names: tuple[str, ...]) -> None:
    """Detect change points and anomalies on stored data, then explain new incidents."""
    from monitor.pipeline import detect_and_attribute

    catalog = _catalog(ctx)
    with _writer(ctx.config, "monitor detect"):
        cycle = detect_and_attribute(ctx.config, catalog.select(list(names)), now=ctx.now)
    _report_cycle(cycle)
    if cycle.detect_failures:
        sys.exit(1)


@cli.command()
@click.option("--dir", "folder", type=click.Path(file_okay=False), default="demo", show_default=True,
              help="Folder for the demo project (source, store, metrics, alerts).")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--days", type=int, default=120, show_default=True)
@click.option("--scale", type=float, default=1.0, show_default=True, help="Volume multiplier.")
@pass_ctx
@handle_errors
def demo(ctx: Context, folder: str, seed: int, days: int, scale: float) -> None:
    """Build the demo risk world and run everything on it: backfill, detect, explain, alert."""
    import time

    from monitor.demo.evaluate import evaluate
    from monitor.demo.project import build_demo_project
    from monitor.pipeline import backfill_plan, detect_and_attribute, load_project_catalog, send_alerts
    from monitor.store import Store

    t0 = time.perf_counter()
    project = build_demo_project(Path(folder), seed=seed, days=days, scale=scale)
    rows = sum(project.world.get("rows", {}).values())
    click.echo(f"demo world: {rows:,} source rows, {project.start:%Y-%m-%d} to {project.end:%Y-%m-%d} "
               f"({time.perf_counter() - t0:.1f}s) in {folder}/source.duckdb")
    config = project.config
    catalog = load_project_catalog(config)
    if catalog.problems:
        raise CatalogError([str(p) for p in catalog.problems])
    plan = backfill_plan(catalog.select(None), project.start, project.end)
    result = _compute_with_progress(config, plan, trigger="demo")
    if result.failures:
        raise MonitorError(f"demo backfill failed: {result.failures[0][0]}: {result.failures[0][2]}")
    click.echo(f"backfilled {len(catalog.metrics)} metrics: {result.windows_ok} windows, {result.rows:,} leaf rows.")
    cycle = detect_and_attribute(config, catalog.select(None), now=project.end)
    _report_cycle(cycle, computed=False)
    store = Store(config.store_path)
    truth = json.loads((Path(folder) / "ground_truth.json").read_text())
    scored = evaluate(store, catalog.metrics, truth)
    click.echo("")
    click.echo(f"injected incidents detected: {scored.detected}/{len(scored.outcomes)}, "
               f"top segment right: {scored.attributed}/{len(scored.outcomes)}")
    for o in scored.outcomes:
        mark = ("ok " if o.attribution_ok else "det") if o.detected else ("late" if o.delay_buckets is not None else "MISS")
        cause = "&".join(f"{k}={v}" for k, v in (o.top_cause or {}).items()) or "-"
        delay = f"{o.delay_buckets:+.0f}" if o.delay_buckets is not None else "  "
        click.echo(f"  [{mark:4}] {o.truth_id:<22} {o.metric:<28} delay {delay:>3}  top: {cause}"
                   + (f"  ({o.verdict})" if o.verdict else ""))
    from monitor.demo.evaluate import leading_signals

    for line in leading_signals(scored, truth, catalog.metrics):
        click.echo(f"  leading signal: {line}")
    false = scored.false_incidents
    click.echo(f"false paging incidents: {sum(false.values())} "
               f"({', '.join(f'{m}={n}' for m, n in sorted(false.items()) if n) or 'none'})")
    (Path(folder) / "evaluation.json").write_text(json.dumps(scored.to_dict(), indent=2, default=str))
    from monitor.events.summary import event_lines

    lines = event_lines(store)
    if lines:
        click.echo("\nOur own changes (events/) and the incidents linked to them:")
        for line in lines:
            click.echo(f"  {line}")
    click.echo("\nAlerts the demo would send (console receiver; also in alerts.log):")
    send_alerts(config, store, now=project.end)
    click.echo(f"\nNext: monitor --config {folder}/monitor.toml incidents")


@cli.command()
@click.option("--since", help="Only incidents active on or after this date.")
@click.option("--metric", "names", multiple=True, help="Only these metrics (repeatable).")
@click.option("--status", type=click.Choice(["open", "resolved", "all"]), default="all", show_default=True)
@click.option("--slices/--no-slices", default=True, help="Include slice incidents under a total.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@as_of_option
@pass_ctx
@handle_errors
def incidents(ctx: Context, since: str | None, names: tuple[str, ...], status: str, slices: bool, fmt: str) -> None:
    """List incidents (json includes the attribution)."""
    from monitor.incidents import list_incidents, metric_kinds, render_table

    rows = list_incidents(ctx.config, since=since, metrics=list(names), status="all", slices=slices)
    if ctx.now_given:
        rows = [r.as_of(ctx.now) for r in rows if r.start_ts < ctx.now]
    if status != "all":
        rows = [r for r in rows if r.status == status]
    if fmt == "json":
        click.echo(json.dumps([r.to_json() for r in rows], indent=2, default=str))
    else:
        click.echo(render_table(rows, metric_kinds(ctx.config)))


@cli.command()
@click.argument("incident_id")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@as_of_option
@pass_ctx
@handle_errors
def explain(ctx: Context, incident_id: str, fmt: str) -> None:
    """Print one incident's attribution: which segments explain it, mix versus rate."""
    import dataclasses

    from monitor.incidents import get_incident, metric_kinds, render_explanation

    incident = get_incident(ctx.config, incident_id)
    if ctx.now_given:
        if incident.start_ts >= ctx.now:
            raise MonitorError(f"Incident {incident.incident_id} starts at {incident.start_ts:%Y-%m-%d %H:%M}, "
                               f"after --as-of {ctx.now:%Y-%m-%d %H:%M}.")
        incident = incident.as_of(ctx.now)
    from monitor.events.store import links_for
    from monitor.store import Store

    links = links_for(Store(ctx.config.store_path), [incident.incident_id]).get(incident.incident_id, [])
    incident = dataclasses.replace(incident, events=tuple(links))
    if fmt == "json":
        click.echo(json.dumps({**incident.to_json(), "events": list(links)}, indent=2, default=str))
    else:
        click.echo(render_explanation(incident, metric_kinds(ctx.config)))


def _catalog(ctx: Context):
    """The valid metrics; broken files are reported but do not stop the others."""
    from monitor.pipeline import load_project_catalog

    catalog = load_project_catalog(ctx.config)
    for problem in catalog.problems:
        click.echo(f"warning: {problem} (this metric is skipped)", err=True)
    _warn_stale(ctx.config, list(catalog.metrics.values()))
    return catalog


def _warn_stale(config: ProjectConfig, metrics) -> None:
    from monitor.store import Store

    for metric, stored in Store(config.store_path).stale_metrics(metrics):
        click.echo(
            f"warning: {metric.name} changed since its history was computed ({stored['updated_at']:%Y-%m-%d %H:%M}); "
            f"stored rows are stale: run `monitor backfill --metric {metric.name} --start <first day> --end <today>`.",
            err=True,
        )


def _writer(config: ProjectConfig, purpose: str):
    """One writer per store across processes (a running `serve`, another backfill)."""
    from monitor.scheduler import writer_lock

    return writer_lock(config.store_path, wait=30, purpose=purpose)


@contextlib.contextmanager
def _progress(total: int, label: str):
    """A progress bar on stderr; yields the callback compute() calls per window."""
    if not total:
        yield None
        return
    with click.progressbar(length=total, label=f"{label}: {total} window(s)", file=sys.stderr,
                           item_show_func=lambda item: item) as bar:
        yield lambda metric, window: bar.update(1, f"{metric.name} {window.start:%Y-%m-%d}")


def _compute_with_progress(config: ProjectConfig, plan, *, trigger: str, allow_empty: bool = False):
    from monitor.pipeline import compute

    with _progress(len(plan), trigger) as advance:
        return compute(config, plan, trigger=trigger, on_window=advance, allow_empty=allow_empty)


def _finish(ctx: Context, catalog, result, *, detect: bool, names) -> None:
    click.echo(f"computed {result.windows_ok} window(s), {result.rows:,} leaf rows.")
    for metric, window, error in result.failures:
        click.echo(f"failed: {metric} {window}: {error}", err=True)
    failed = bool(catalog.problems or result.failures)
    if detect:
        from monitor.pipeline import detect_and_attribute

        cycle = detect_and_attribute(ctx.config, catalog.select(names), now=ctx.now)
        _report_cycle(cycle, computed=False)
        failed = failed or bool(cycle.detect_failures)
    if failed:
        sys.exit(1)


def _report_cycle(cycle, *, computed: bool = True) -> None:
    if computed:
        click.echo(f"computed {cycle.compute.windows_ok} window(s), {cycle.compute.rows:,} leaf rows.")
        for metric, window, error in cycle.compute.failures:
            click.echo(f"failed: {metric} {window}: {error}", err=True)
    series = sum(d.series_checked for d in cycle.detections.values())
    incidents = sum(len(d.incidents) for d in cycle.detections.values())
    open_ = sum(len(d.open_incidents) for d in cycle.detections.values())
    click.echo(f"detected on {len(cycle.detections)} metric(s), {series:,} series: "
               f"{incidents} incident(s), {open_} open; {cycle.explained} newly explained.")
    for metric, error in cycle.detect_failures:
        click.echo(f"detection failed: {metric}: {error}", err=True)
    for metric in cycle.stale:
        click.echo(f"warning: {metric}: no new source rows lately (stale data); detection skipped.", err=True)
    events = getattr(cycle, "events", None)
    if events is not None:
        if events.links:
            click.echo(f"linked {events.links} incident-event pair(s) from {events.events} event(s)"
                       + (f"; {events.expected} incident(s) expected, not paging." if events.expected else "."))
        for problem in events.problems:
            click.echo(f"warning: events: {problem}", err=True)
    for metric, note in cycle.outside_window:
        click.echo(f"warning: {metric}: {note}.", err=True)


def _attach_step_commands() -> None:
    """Commands that belong to later steps of the flow live with them."""
    from monitor.alert.cli import silence
    from monitor.dashboard.cli import dashboard
    from monitor.events.cli import event
    from monitor.report.cli import report
    from monitor.scheduler.cli import attach

    cli.add_command(silence)
    cli.add_command(report)
    cli.add_command(dashboard)
    cli.add_command(event)
    attach(cli)


_attach_step_commands()


def main() -> None:
    cli(prog_name="monitor")


if __name__ == "__main__":
    main()
