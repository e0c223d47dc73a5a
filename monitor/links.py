"""Deep links into the dashboard: one definition for the dashboard, alerts and reports.

Every view is addressed by query parameters, so a link pasted in Slack opens the
same page for everyone::

    >>> incident_url("https://risk.example/dash", "3f2a9c01b7de")
    'https://risk.example/dash/?page=incident&id=3f2a9c01b7de'
    >>> metric_url("https://risk.example/dash", "fraud_rate", {"country": "BR", "device_os": "android"})
    'https://risk.example/dash/?page=metric&metric=fraud_rate&slice=country%3DBR%26device_os%3Dandroid'
    >>> metric_url("", "fraud_rate")
    '?page=metric&metric=fraud_rate'
    >>> metric_url("", "m", {"merchant": "a&b=c"})
    '?page=metric&metric=m&slice=merchant%3Da%2526b%253Dc'
    >>> parse_slice("country=BR&device_os=android")
    {'country': 'BR', 'device_os': 'android'}

Slice labels (escaping included) come from ``monitor.slices``; ``parse_slice`` is re-exported here.
"""
from __future__ import annotations

from urllib.parse import quote, urlencode

from monitor.slices import parse_slice, slice_label

PAGES = ("overview", "metric", "incident")
__all__ = ["PAGES", "incident_url", "metric_url", "overview_url", "parse_slice"]


def _url(base: str, params: dict[str, str]) -> str:
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")}, quote_via=quote, safe="")
    if not base:
        return f"?{query}"
    return f"{base.rstrip('/')}/?{query}"


def incident_url(base: str, incident_id: str) -> str:
    """Link to one incident's page (``?page=incident&id=...``); ``base=""`` gives a relative link."""
    return _url(base, {"page": "incident", "id": incident_id})


def metric_url(base: str, metric: str, slice: dict[str, str] | str | None = None, **extra: str) -> str:
    """Link to a metric, optionally filtered to a slice (a dict or a label like 'country=BR')."""
    label = slice if isinstance(slice, str) else slice_label(slice or {})
    return _url(base, {"page": "metric", "metric": metric, "slice": label, **extra})


def overview_url(base: str, **filters: str) -> str:
    """Link to the overview, e.g. ``overview_url(base, team="payments")``."""
    return _url(base, {"page": "overview", **filters})
