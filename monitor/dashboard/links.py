"""Deep links live in `monitor.links` (alerts and reports build the same URLs); re-exported here."""
from monitor.links import PAGES, incident_url, metric_url, overview_url, parse_slice

__all__ = ["PAGES", "incident_url", "metric_url", "overview_url", "parse_slice"]
