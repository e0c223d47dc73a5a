"""`monitor serve` and `monitor status` (attached to the main group by monitor.cli)."""
from __future__ import annotations

import json
import logging
import sys

import click

from monitor.cli_context import handle_errors, pass_ctx


@click.command()
@click.option("--once", is_flag=True,
              help="Catch every metric up once (as its schedule allows), then exit: for cron or a smoke test.")
@click.option("--isolation", type=click.Choice(["process", "inline"]), default=None,
              help="Run windows in a child process (default: hard timeout, crash isolation) or inline.")
@pass_ctx
@handle_errors
def serve(ctx, once: bool, isolation: str | None) -> None:
    """Run every metric on its schedule until stopped (SIGTERM/Ctrl-C finish the window in progress).

    Edits of metric files are picked up without a restart (a broken edit keeps
    the last good definition and raises a meta-alert); SIGHUP reloads at once.
    """
    import dataclasses

    from monitor.scheduler.service import SchedulerService
    from monitor.scheduler.settings import load_settings
    from monitor.clock import utc_naive

    config = ctx.config
    settings = load_settings(config)
    if isolation:
        settings = dataclasses.replace(settings, isolation=isolation)
    if logging.getLogger().level > logging.INFO:
        logging.getLogger("monitor.scheduler").setLevel(logging.INFO)  # a service says what it does
    if once:
        at = ctx.now
        service = SchedulerService(config, settings=settings, clock=lambda: at)
        reports = service.catch_up()
        for report in reports:
            click.echo(report.describe())
        for problem in service.watcher.broken.values():
            for line in problem:
                click.echo(f"warning: {line}", err=True)
        if any(r.failed for r in reports):
            sys.exit(1)
        return
    clock = utc_naive
    if ctx.now_given:  # --now shifts the clock (replays, demos); it keeps ticking from there
        offset = ctx.now - utc_naive()
        clock = lambda: utc_naive() + offset  # noqa: E731
    service = SchedulerService(config, settings=settings, clock=clock)
    click.echo(f"monitor serve: {config.metrics_dir} -> {config.store_path} (pid {_pid()}); Ctrl-C to stop.",
               err=True)
    service.serve_forever()
    click.echo("monitor serve: stopped cleanly.", err=True)


@click.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="table for people, json for scripts.")
@pass_ctx
@handle_errors
def status(ctx, fmt: str) -> None:
    """Per metric: last successful window, lag, failures, next run; plus serve, lock and meta-alerts."""
    from monitor.pipeline import load_project_catalog
    from monitor.scheduler.settings import load_settings
    from monitor.scheduler.status import render_status, scheduler_status

    config = ctx.config
    result = scheduler_status(config, load_project_catalog(config), now=ctx.now, settings=load_settings(config))
    if fmt == "json":
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        click.echo(render_status(result))


def _pid() -> int:
    import os

    return os.getpid()


def attach(group: click.Group) -> click.Group:
    """Add `serve` and `status` to a click group (idempotent)."""
    for command in (serve, status):
        if command.name not in group.commands:
            group.add_command(command)
    return group

