"""Report: the daily risk-metric report (HTML with inline SVG charts, Markdown) and its chat digest.

    from monitor.report import generate_report
    report = generate_report(config, now=now)          # the last complete day
    report.html_path, report.md_path, report.url, report.digest

The scheduler runs ``daily_report_job(config, now=now)`` at ``[report] time``
(``report_settings(config).cron``): it writes the files and sends the digest.
"""
from monitor.report.deliver import daily_report_job, digest_message, send_digest
from monitor.report.digest import render_digest, render_markdown
from monitor.report.gather import gather_report
from monitor.report.generate import GeneratedReport, generate_report, report_files, resolve_date
from monitor.report.model import ReportData
from monitor.report.page import render_html
from monitor.report.settings import SETTINGS, ReportSettings, default_report_date, report_settings

__all__ = ["GeneratedReport", "ReportData", "ReportSettings", "SETTINGS", "daily_report_job", "default_report_date",
           "digest_message", "gather_report", "generate_report", "render_digest", "render_html", "render_markdown",
           "report_files", "report_settings", "resolve_date", "send_digest"]
