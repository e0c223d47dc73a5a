"""What every `monitor` command shares: the context (config, clock) and the error boundary.

Kept apart from `monitor.cli` so that the commands of later steps (report, scheduler...)
can import it without importing the main command group.
"""
from __future__ import annotations

import datetime as dt
import functools
import getpass
import sys
import traceback

import click

from monitor.config import ProjectConfig, load_config
from monitor.errors import MonitorError


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
    def now_given(self) -> bool:
        """True when --as-of (or the hidden --now) pinned the clock (tests, replays)."""
        return bool(self._now)

    def pin_now(self, text: str) -> None:
        from monitor.engine import parse_when

        parse_when(text)  # a bad value fails here, as one sentence
        self._now = text

    @property
    def now(self) -> dt.datetime:
        from monitor.engine import parse_when
        from monitor.clock import utc_naive

        return parse_when(self._now) if self._now else utc_naive()


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


pass_ctx = click.make_pass_decorator(Context)


def as_of_option(fn):
    """`--as-of TIME` on a command: it runs as of that past time (replays detection, listings, reports)."""

    def pin(ctx: click.Context, param, value: str | None):
        if value is not None:
            try:
                ctx.find_object(Context).pin_now(value)
            except MonitorError as exc:
                raise click.BadParameter(str(exc)) from None
        return value

    return click.option("--as-of", metavar="TIME", expose_value=False, callback=pin,
                        help="Run as of this UTC time (YYYY-MM-DD or YYYY-MM-DDTHH:MM), as if it were now.")(fn)


def current_user() -> str:
    """Who ran the command, recorded as a silence's or an event's author."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
