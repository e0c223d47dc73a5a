"""The on-call dashboard's importable parts: store queries, Altair charts, deep links, actions.

The Streamlit app itself lives in the top-level ``dashboards/`` (shipped as ``monitor.dashboard.app``)
and imports this package, never the reverse.
"""
from monitor.dashboard.links import incident_url, metric_url, overview_url, parse_slice
from monitor.dashboard.settings import SETTINGS, DashboardSettings, dashboard_settings

__all__ = ["DashboardSettings", "SETTINGS", "dashboard_settings", "incident_url", "metric_url", "overview_url",
           "parse_slice"]
