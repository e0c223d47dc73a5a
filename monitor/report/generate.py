"""Build the daily report files: ``report-<date>.html`` and ``report-<date>.md``, plus the chat digest.

``generate_report`` is what ``monitor report`` and the scheduler call. The date
defaults to the last complete day (in ``[report] timezone``) as of ``now``; the
content never depends on ``now``, only on the store, the catalog, the config
and the date, so re-running it gives byte-identical files.
"""
from __future__ import annotations

import datetime as dt
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from monitor.catalog import Catalog
from monitor.config import ProjectConfig
from monitor.errors import MonitorError
from monitor.report import charts
from monitor.report.digest import render_digest, render_markdown
from monitor.report.gather import gather_report
from monitor.report.model import ReportData
from monitor.report.page import render_html
from monitor.report.settings import ReportSettings, default_report_date, report_settings
from monitor.store import Store
from monitor.warehouse import open_store


@dataclass(frozen=True)
class GeneratedReport:
    date: dt.date
    html_path: Path
    md_path: Path
    url: str  # where the HTML is published ([report] base_url), or its file:// URL
    digest: str  # the chat digest (Slack), with the link
    data: ReportData

    @property
    def paths(self) -> tuple[Path, Path]:
        return self.html_path, self.md_path


def report_files(out_dir: Path, date: dt.date) -> tuple[Path, Path]:
    stem = f"report-{date.isoformat()}"
    return out_dir / f"{stem}.html", out_dir / f"{stem}.md"


def generate_report(config: ProjectConfig, *, date: dt.date | str | None = None, out_dir: Path | str | None = None,
                    now: dt.datetime | None = None, store: Store | None = None, catalog: Catalog | None = None,
                    settings: ReportSettings | None = None) -> GeneratedReport:
    """Gather, render and write the report for `date` (default: the last complete day as of `now`)."""
    settings = settings or report_settings(config)
    day = resolve_date(date, now=now, settings=settings)
    folder = Path(out_dir) if out_dir is not None else settings.out_dir
    store = store or open_store(config)  # warehouse mode: the leaves as DuckDB views
    with store.connect(read_only=True):
        pass  # a missing store is reported at once, before the chart start-up below
    warm = threading.Thread(target=charts.warm_up, name="report-chart-warm-up", daemon=True)
    warm.start()  # chart start-up overlaps the store queries
    try:
        data = gather_report(config, date=day, settings=settings, store=store, catalog=catalog)
    finally:
        warm.join()
    html_path, md_path = report_files(folder, day)
    url = settings.link(html_path)
    html = render_html(data)
    markdown = render_markdown(data, html_url=url)
    folder.mkdir(parents=True, exist_ok=True)
    _write(html_path, html)
    _write(md_path, markdown)
    return GeneratedReport(date=day, html_path=html_path, md_path=md_path, url=url,
                           digest=render_digest(data, html_url=url), data=data)


def resolve_date(date: dt.date | str | None, *, now: dt.datetime | None, settings: ReportSettings) -> dt.date:
    if isinstance(date, dt.datetime):
        return date.date()
    if isinstance(date, dt.date):
        return date
    if isinstance(date, str):
        try:
            return dt.date.fromisoformat(date.strip())
        except ValueError:
            raise MonitorError(f"Report date {date!r} is not a date; use YYYY-MM-DD.") from None
    if now is None:
        raise MonitorError("generate_report needs a date or `now` to pick the last complete day.")
    return default_report_date(now, settings)


def _write(path: Path, text: str) -> None:
    """Write through a temporary file and rename, so a published report is never half-written."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
