"""``monitor dashboard``: serve the Streamlit app (``dashboards/``, shipped in the package as ``monitor.dashboard.app``) for a project."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from importlib import resources
from pathlib import Path

import click

from monitor.errors import MonitorError

# A real file path: `streamlit run` takes a script path, and the package is installed unzipped.
APP = Path(str(resources.files("monitor.dashboard.app") / "app.py"))


def streamlit_command(config_path: Path, *, host: str, port: int, headless: bool = True) -> list[str]:
    """The `streamlit run` command line that serves the dashboard for `config_path`."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", host, "--server.port", str(port),
        "--server.headless", "true" if headless else "false",
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
        "--", "--config", str(config_path),
    ]


def resolve(config_path: str | None, host: str | None, port: int | None):
    """(config file, host, port): options first, then [dashboard] host/port, then defaults."""
    from monitor.config import find_config, load_config
    from monitor.dashboard.settings import dashboard_settings

    path = Path(config_path) if config_path else find_config()
    if path.is_dir():
        path = path / "monitor.toml"
    config = load_config(path)
    settings = dashboard_settings(config)
    if not APP.is_file():
        raise MonitorError(f"The dashboard app {APP} is missing from the installed package; reinstall monitor.")
    return path.resolve(), host or settings.host, port if port is not None else settings.port


@click.command("dashboard")
@click.option("--config", "config_path", type=click.Path(), default=None,
              help="Path to monitor.toml (default: the main --config, $MONITOR_CONFIG or the current folder).")
@click.option("--host", default=None, help="Address to listen on (default: [dashboard] host, else 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default: [dashboard] port, else 8501).")
@click.option("--open-browser", is_flag=True, help="Open a browser tab (headless by default).")
@click.pass_context
def dashboard(ctx: click.Context, config_path: str | None, host: str | None, port: int | None,
              open_browser: bool) -> None:
    """Serve the on-call dashboard (read-only on the store, except acknowledge/label/silence)."""
    parent = getattr(ctx.obj, "config_path", None)  # `monitor --config X dashboard`
    try:
        path, host, port = resolve(config_path or parent, host, port)
    except MonitorError as exc:
        raise click.ClickException(str(exc)) from None
    command = streamlit_command(path, host=host, port=port, headless=not open_browser)
    click.echo(f"Dashboard for {path} on http://{host}:{port} (Ctrl+C to stop)", err=True)
    env = {**os.environ, "MONITOR_CONFIG": str(path)}
    code = run_until_stopped(command, env)
    if code:
        raise SystemExit(code)


def run_until_stopped(command: list[str], env: dict[str, str]) -> int:
    """Run the server; a SIGTERM or Ctrl+C to `monitor dashboard` stops it too (no orphan left)."""
    proc = subprocess.Popen(command, env=env)
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: proc.terminate())
    try:
        while True:
            try:
                return proc.wait()
            except KeyboardInterrupt:
                proc.send_signal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGTERM, previous)
