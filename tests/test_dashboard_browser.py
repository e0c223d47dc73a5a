"""The dashboard served by `streamlit run`, opened in Debian's headless Chromium through a deep link."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from dashboard_fixtures import build_project, incident_ids
from monitor.dashboard.cli import streamlit_command
from monitor.dashboard.links import incident_url

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"streamlit did not answer on {url} within {timeout:.0f} s")


@pytest.fixture
def served(tmp_path: Path):
    """The fixture project's dashboard on an ephemeral loopback port; stopped afterwards."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/system-deps.sh` (installs Debian's chromium)")
    config = build_project(tmp_path / "project")
    port = _free_port()
    command = streamlit_command(config.root / "monitor.toml", host="127.0.0.1", port=port)
    env = {**os.environ, "MONITOR_CONFIG": str(config.root / "monitor.toml"),
           "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    log = tmp_path / "streamlit.log"
    with log.open("w") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _open(page, url: str, ready_text: str) -> None:
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_text(ready_text, exact=False).first.wait_for(timeout=30_000)
    # Streamlit shows a "running" status widget until the script has finished, and skeletons
    # until the lazily loaded widgets (charts, tables) are drawn.
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"], [data-testid=\"stSkeleton\"]')",
        timeout=30_000)
    page.wait_for_timeout(500)


def test_incident_deep_link_shows_attribution(served: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    ids = incident_ids()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 2400})
            _open(page, incident_url(served, ids["fraud_br"]), "Which segments explain it")
            assert page.locator('[data-testid="stException"]').count() == 0
            assert page.get_by_role("heading", name="Confirmed fraud rate up").count() == 1
            assert page.get_by_text("Root-cause segments").count() == 1
            assert page.get_by_text("is explained by", exact=False).count() == 1
            # the incident's series, the waterfall and the rate-vs-mix split, each drawn by Vega
            drawn = page.locator('[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg')
            assert drawn.count() >= 3
            page.screenshot(path=str(tmp_path / "incident.png"), full_page=True)

            # Drill down: the root cause opens the metric page filtered to it, in the URL too.
            page.get_by_role("button", name="Show segment").click()
            page.wait_for_url("**page=metric**", timeout=15_000)
            assert "slice=country%3DBR%26device_os%3Dandroid" in page.url
            _open(page, page.url, "Incidents in this period")
            assert page.locator('[data-testid="stException"]').count() == 0
            page.screenshot(path=str(tmp_path / "metric.png"), full_page=True)

            _open(page, served + "/", "Metrics, most urgent first")
            assert page.locator('[data-testid="stException"]').count() == 0
            page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)
        finally:
            browser.close()
    keep = os.environ.get("MONITOR_SCREENSHOTS")
    if keep:
        for name in ("incident.png", "metric.png", "overview.png"):
            shutil.copy(tmp_path / name, Path(keep) / name)
    assert (tmp_path / "incident.png").stat().st_size > 10_000
