"""Send the daily digest through the alert notifiers, and the job the scheduler runs each day.

The digest is a notifier-neutral dict (``digest_message``): the text Slack
shows, the link to the HTML, and the counts, for webhooks. Delivery is
delegated to a *sender*: ``sender(config, message, receivers=..., now=...)``.
The default sender is the alert module's; tests and other callers may pass
their own.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Callable

from monitor.alert.send import send_message
from monitor.config import ProjectConfig
from monitor.report.generate import GeneratedReport, generate_report
from monitor.report.settings import report_settings

SCHEMA = "monitor.report/v1"
Sender = Callable[..., Any]


def digest_message(report: GeneratedReport) -> dict[str, Any]:
    data = report.data
    counts = data.counts()
    return {
        "schema": SCHEMA,
        "kind": "daily_report",
        "title": f"{data.title} - {data.date.isoformat()}",
        "summary": report.digest.splitlines()[1] if len(report.digest.splitlines()) > 1 else report.digest.strip(),
        "text": report.digest,
        "url": report.url,
        "date": data.date.isoformat(),
        "project": data.project,
        "incidents": counts,
        "incident_ids": [i.incident_id for i in data.all_incidents()],
        "data_health_issues": data.health.issues,
    }


def send_digest(config: ProjectConfig, report: GeneratedReport, *, now: dt.datetime,
                sender: Sender | None = None) -> Any:
    """Hand the digest to the notifiers ([report] receivers; empty = the default route's)."""
    settings = report_settings(config)
    sender = sender or alert_sender()
    return sender(config, digest_message(report), receivers=settings.receivers, now=now)


def alert_sender() -> Sender:
    """The alert module's function that sends one free-form message to receivers."""
    return send_message


def daily_report_job(config: ProjectConfig, *, now: dt.datetime, sender: Sender | None = None) -> GeneratedReport:
    """What the scheduler runs at [report] time: build the last complete day's report, then send the digest.

    A sender that fails raises (after the files are written), so the scheduler reports the
    failed job.
    """
    report = generate_report(config, now=now)
    if report_settings(config).send:
        send_digest(config, report, now=now, sender=sender)
    return report
