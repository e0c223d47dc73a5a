"""`monitor event add/list/delete`: one-off change events in the store.

Events from systems (rule engine, model registry, promotion calendar) belong in event files
under ``events/``; this is for the change someone makes by hand ("rolled back model v12").
"""
from __future__ import annotations

import json

import click

from monitor.cli_context import Context, current_user, handle_errors, pass_ctx


@click.group()
def event() -> None:
    """Change events (our own rules, models, promotions) linked to incidents."""


@event.command("add")
@click.option("--kind", required=True, help="rule, model, promotion, holiday, deploy, ...")
@click.option("--title", required=True, help="What changed, e.g. \"R-142 tighten BIN velocity\".")
@click.option("--scope", "scope", multiple=True, help="dimension=value the change is limited to (repeatable).")
@click.option("--at", "at", help="When it happened (UTC, default now).")
@click.option("--until", help="End of its window (a promotion), exclusive.")
@click.option("--metric", "metrics", multiple=True, help="Only link incidents of this metric (repeatable).")
@click.option("--url", help="Link to the change (ticket, deploy, rule).")
@click.option("--expected/--not-expected", default=None,
              help="Expected change: the named metrics do not page inside its window (default: by kind, "
                   "[events] expected_kinds).")
@click.option("--author", default=None, help="Who made it (default: the current user).")
@pass_ctx
@handle_errors
def add(ctx: Context, kind: str, title: str, scope: tuple[str, ...], at: str | None, until: str | None,
        metrics: tuple[str, ...], url: str | None, expected: bool | None, author: str | None) -> None:
    """Record a one-off event; the next cycle links incidents to it."""
    from monitor.engine import parse_when
    from monitor.events.describe import event_phrase
    from monitor.events.model import parse_scope
    from monitor.events.settings import load_event_settings
    from monitor.events.store import add_event
    from monitor.store import Store

    settings = load_event_settings(ctx.config)
    if expected is None:
        expected = kind in settings.expected_kinds and until is not None and bool(metrics)
    created = add_event(Store(ctx.config.store_path), kind=kind, title=title, scope=parse_scope(scope),
                        at=parse_when(at) if at else ctx.now, until=parse_when(until) if until else None,
                        metrics=metrics, url=url, expected=expected, author=author or current_user(), now=ctx.now)
    note = " (expected: the named metrics do not page inside its window)" if created.expected else ""
    click.echo(f"added {created.event_id}: {event_phrase(created.to_dict())}{note}")


@event.command("list")
@click.option("--since", help="Only events on or after this time.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@pass_ctx
@handle_errors
def list_(ctx: Context, since: str | None, fmt: str) -> None:
    """Events in the store (from event files as of the last cycle, and `event add`)."""
    from monitor.engine import parse_when
    from monitor.events.store import list_events
    from monitor.store import Store

    events = list_events(Store(ctx.config.store_path), since=parse_when(since) if since else None)
    if fmt == "json":
        click.echo(json.dumps([e.to_dict() for e in events], indent=2, default=str))
        return
    if not events:
        click.echo("No events.")
        return
    rows = [["id", "at", "until", "kind", "title", "scope", "metrics", "source"]]
    for e in events:
        rows.append([e.event_id, f"{e.ts:%Y-%m-%d %H:%M}", f"{e.end_ts:%Y-%m-%d %H:%M}" if e.end_ts else "-",
                     e.kind + (" (expected)" if e.expected else ""), e.title, e.scope_label or "(everywhere)",
                     ",".join(e.metrics) or "any", e.source])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


@event.command("delete")
@click.argument("event_id")
@pass_ctx
@handle_errors
def delete(ctx: Context, event_id: str) -> None:
    """Delete an event added with `monitor event add`."""
    from monitor.events.store import delete_event
    from monitor.store import Store

    delete_event(Store(ctx.config.store_path), event_id)
    click.echo(f"deleted {event_id}")

