"""``monitor silence add|list|expire``: a click group the main CLI attaches.

The project config comes from ``--config`` on this group, else from the parent
command (``ctx.obj["config"]`` or an object with a ``.config`` attribute),
else from monitor.toml found the usual way. The current time comes from
``--now`` (hidden, for tests and replays) or the parent's ``now``; it is read
here, at the boundary, and passed down.
"""
from __future__ import annotations

import datetime as dt
import functools
import json

import click

from monitor.alert.config import parse_duration
from monitor.alert.silences import Silence, add_silence, expire_silence, list_silences
from monitor.cli_context import current_user
from monitor.clock import utc_naive
from monitor.config import ProjectConfig, load_config
from monitor.errors import ConfigError, MonitorError
from monitor.store import Store


# -- helpers that take the config (what the commands do, callable without click) ---------------
def store_for(config: ProjectConfig) -> Store:
    return Store(config.store_path)


def silence_add(config: ProjectConfig, *, matchers: list[str], comment: str, author: str, now: dt.datetime,
                duration: str | None = None, until: str | None = None) -> Silence:
    ends_at = _parse_time(until, "--until") if until else None
    delta = None
    if ends_at is None:
        try:
            delta = parse_duration(duration or "2h")
        except ValueError as exc:
            raise ConfigError(f"--duration {duration!r} must be {exc}.") from None
    return add_silence(store_for(config), matchers=matchers, author=author, comment=comment, now=now,
                       duration=delta, ends_at=ends_at)


def silence_list(config: ProjectConfig, *, now: dt.datetime, include_expired: bool = False) -> list[Silence]:
    return list_silences(store_for(config), now=now, include_expired=include_expired)


def silence_expire(config: ProjectConfig, silence_id: str, *, now: dt.datetime) -> Silence:
    return expire_silence(store_for(config), silence_id, now=now)


# -- click ------------------------------------------------------------------------------------
def _errors(fn):
    """MonitorError -> 'Error: <sentence>' and exit code 1, like the main CLI."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except MonitorError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


def _config(ctx: click.Context) -> ProjectConfig:
    path = ctx.meta.get("monitor.alert.config_path")
    if path:
        return load_config(path)
    obj = ctx.find_root().obj
    if isinstance(obj, dict) and obj.get("config") is not None:
        return obj["config"]
    if obj is not None and hasattr(obj, "config"):
        return obj.config
    return load_config(None)


def _now(ctx: click.Context) -> dt.datetime:
    given = ctx.meta.get("monitor.alert.now")
    if given:
        return _parse_time(given, "--now")
    obj = ctx.find_root().obj
    if isinstance(obj, dict) and obj.get("now") is not None:
        return obj["now"]
    if obj is not None and not isinstance(obj, dict) and hasattr(obj, "now"):
        return obj.now
    return utc_naive()


def _parse_time(text: str, option: str) -> dt.datetime:
    try:
        ts = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{option} {text!r} is not a time like 2026-03-04T18:00 (UTC).") from None
    return ts.astimezone(dt.timezone.utc).replace(tzinfo=None) if ts.tzinfo else ts


@click.group("silence")
@click.option("--config", "config_path", type=click.Path(), default=None,
              help="Path to monitor.toml (default: the main command's, or found in this folder or a parent).")
@click.option("--now", hidden=True, help="Pretend the current UTC time is this (tests and replays).")
@click.pass_context
def silence(ctx: click.Context, config_path: str | None, now: str | None) -> None:
    """Mute alerts whose labels match, for a while (add, list, expire)."""
    ctx.meta["monitor.alert.config_path"] = config_path
    ctx.meta["monitor.alert.now"] = now


@silence.command("add")
@click.argument("matchers", nargs=-1)
@click.option("-m", "--matcher", "extra", multiple=True,
              help="Label matcher: name=value, name!=value, name=~regex, name!~regex (repeatable).")
@click.option("-d", "--duration", default=None, help="How long, e.g. 2h, 3d (default 2h).")
@click.option("--until", default=None, help="End time instead of a duration, e.g. 2026-03-05T09:00 (UTC).")
@click.option("-a", "--author", default=None, help="Who adds it (default: your user name).")
@click.option("-c", "--comment", required=True, help="Why: shown to whoever wonders where the alerts went.")
@click.pass_context
@_errors
def add_command(ctx: click.Context, matchers: tuple[str, ...], extra: tuple[str, ...], duration: str | None,
                until: str | None, author: str | None, comment: str) -> None:
    """Add a silence, e.g. `monitor silence add metric=fraud_rate country=BR -d 4h -c "BR promo"`."""
    if duration and until:
        raise ConfigError("Give --duration or --until, not both.")
    made = silence_add(_config(ctx), matchers=[*matchers, *extra], comment=comment,
                       author=author or current_user(), now=_now(ctx), duration=duration, until=until)
    click.echo(f"{made.silence_id}  silences {' '.join(map(str, made.matchers))} until "
               f"{made.ends_at:%Y-%m-%d %H:%M} UTC")


@silence.command("list")
@click.option("--all", "include_expired", is_flag=True, help="Include expired silences.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
@_errors
def list_command(ctx: click.Context, include_expired: bool, fmt: str) -> None:
    """List active and pending silences (with --all, expired ones too)."""
    now = _now(ctx)
    found = silence_list(_config(ctx), now=now, include_expired=include_expired)
    if fmt == "json":
        click.echo(json.dumps([s.to_dict(now) for s in found], indent=2))
        return
    if not found:
        click.echo("No silences." if include_expired else "No active silences.")
        return
    for s in found:
        click.echo(f"{s.silence_id}  {s.state(now):<8} until {s.ends_at:%Y-%m-%d %H:%M} UTC  "
                   f"{' '.join(map(str, s.matchers))}  by {s.author}: {s.comment}")


@silence.command("expire")
@click.argument("silence_ids", nargs=-1, required=True)
@click.pass_context
@_errors
def expire_command(ctx: click.Context, silence_ids: tuple[str, ...]) -> None:
    """End silences now; alerts they muted come back on the next cycle."""
    config, now = _config(ctx), _now(ctx)
    for silence_id in silence_ids:
        done = silence_expire(config, silence_id, now=now)
        click.echo(f"{done.silence_id}  expired at {now:%Y-%m-%d %H:%M} UTC")

