"""The `monitor` command line (PRODUCT.md Contract 2).

Every MonitorError becomes one sentence on stderr and exit code 1; `--debug`
shows the trace and the evidence (SQL, file, window) the error carries.
"""
from __future__ import annotations

import datetime as dt
import functools
import logging
import sys
import traceback
from pathlib import Path

import click

from monitor.config import ProjectConfig, load_config
from monitor.errors import CatalogError, MonitorError


class Context:
    def __init__(self, config_path: str | None, debug: bool, now: str | None):
        self.config_path = config_path
        self.debug = debug
        self._now = now
        self._config: ProjectConfig | None = None

    @property
    def config(self) -> ProjectConfig:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    @property
    def now(self) -> dt.datetime:
        from monitor.engine import parse_when
        from monitor.store import utcnow

        return parse_when(self._now) if self._now else utcnow()


def handle_errors(fn):
    """Turn errors into one sentence and a non-zero exit at the CLI boundary."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        ctx = click.get_current_context()
        debug = getattr(ctx.find_object(Context), "debug", False)
        try:
            return fn(*args, **kwargs)
        except MonitorError as exc:
            if debug:
                traceback.print_exc()
                if exc.evidence:
                    click.echo(f"--- evidence ---\n{exc.evidence}", err=True)
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)
        except (click.exceptions.Exit, click.ClickException, SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - the boundary: never a raw trace without --debug
            if debug:
                traceback.print_exc()
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            click.echo(f"Error: unexpected {type(exc).__name__}: {first} (run with --debug for the trace).", err=True)
            sys.exit(2)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(), envvar="MONITOR_CONFIG",
              help="Path to monitor.toml (default: found in the current folder or a parent).")
@click.option("--debug", is_flag=True, help="Show tracebacks and the SQL behind errors.")
@click.option("--now", hidden=True, help="Pretend the current UTC time is this (for tests and replays).")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, debug: bool, now: str | None) -> None:
    """Metric monitoring and attribution for risk-control teams."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = Context(config_path, debug, now)


pass_ctx = click.make_pass_decorator(Context)


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
    if problems:
        raise CatalogError(problems)
    click.echo("All metrics OK.")


# -- backfill / run ---------------------------------------------------------------------------
@cli.command()
@click.option("--start", required=True, help="First day (or hour) to compute, e.g. 2026-06-01.")
@click.option("--end", required=True, help="Exclusive end, e.g. 2026-07-01.")
@click.option("--metric", "names", multiple=True, help="Only these metrics (repeatable).")
@click.option("--chunk", type=int, default=None, help="Buckets per query (default 31 days / 168 hours).")
@click.option("--no-detect", is_flag=True, help="Only compute; skip detection afterwards.")
@pass_ctx
@handle_errors
def backfill(ctx: Context, start: str, end: str, names: tuple[str, ...], chunk: int | None, no_detect: bool) -> None:
    """Compute metrics for a past range (idempotent: re-running replaces the windows)."""
    from monitor.engine import parse_when
    from monitor.pipeline import backfill_plan

    start_ts, end_ts = parse_when(start), parse_when(end)
    if end_ts <= start_ts:
        raise MonitorError(f"--end {end} must be after --start {start}.")
    config, catalog = ctx.config, _catalog(ctx)
    metrics = catalog.select(list(names))
    plan = backfill_plan(metrics, start_ts, end_ts, chunk)
    result = _compute_with_progress(config, plan, trigger="backfill")
    _finish(ctx, catalog, result, detect=not no_detect, names=[m.name for m in metrics])


@cli.command()
@click.option("--metric", "names", multiple=True, help="Only these metrics (repeatable).")
@pass_ctx
@handle_errors
def run(ctx: Context, names: tuple[str, ...]) -> None:
    """One cycle now: compute the due windows, then detect, attribute and alert."""
    from monitor.pipeline import run_plan

    config, catalog = ctx.config, _catalog(ctx)
    plan = run_plan(config, catalog, ctx.now, list(names) or None)
    if not plan:
        click.echo("Nothing due: every metric is up to date.")
    result = _compute_with_progress(config, plan, trigger="run")
    _finish(ctx, catalog, result, detect=True, names=list(names) or None)


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


def _compute_with_progress(config: ProjectConfig, plan, *, trigger: str):
    from monitor.pipeline import compute

    if not plan:
        from monitor.pipeline import ComputeResult

        return ComputeResult()
    with click.progressbar(length=len(plan), label=f"{trigger}: {len(plan)} window(s)", file=sys.stderr,
                           item_show_func=lambda item: item) as bar:
        def advance(metric, window):
            bar.update(1, f"{metric.name} {window.start:%Y-%m-%d}")

        return compute(config, plan, trigger=trigger, on_window=advance)


def _finish(ctx: Context, catalog, result, *, detect: bool, names) -> None:
    click.echo(f"computed {result.windows_ok} window(s), {result.rows:,} leaf rows.")
    for metric, window, error in result.failures:
        click.echo(f"failed: {metric} {window}: {error}", err=True)
    if catalog.problems or result.failures:
        sys.exit(1)


def main() -> None:
    cli(prog_name="monitor")


if __name__ == "__main__":
    main()
