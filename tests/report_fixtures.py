"""A small real project for the report tests: metric files, a DuckDB store with leaves, runs and incidents.

Report day D = 2026-03-20. Leaves are written with SQL (deterministic arithmetic,
no randomness); incidents are inserted as rows, one per case the report must
place: new (a total with a slice child), ongoing (open, and resolved after D),
resolved on D, and three it must leave out (ended before D, starts after D).
"""
from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

from monitor.attribute.incident_attribution import explain_incident
from monitor.catalog import load_catalog
from monitor.config import load_config
from monitor.incident import Incident
from monitor.store import Store

D = dt.date(2026, 3, 20)
T0 = dt.datetime(2026, 2, 8)  # day index 0; D is index 40

FRAUD_RATE = """\
/* ---
name: fraud_rate
title: Confirmed fraud rate
owner: risk-oncall
team: payments-risk
kind: ratio
grain: day
dimensions: [country, channel]
schedule: "0 6 * * *"
detect:
  direction: up
--- */
SELECT date_trunc('day', created_at) AS ts, country, channel,
       count(*) FILTER (WHERE is_fraud) AS numerator, count(*) AS denominator
FROM orders WHERE created_at >= $start AND created_at < $end GROUP BY ALL
"""

DECLINE_RATE = """\
/* ---
name: decline_rate
title: Card decline rate
owner: payments-oncall
kind: ratio
grain: hour
dimensions: [country, payment_method]
schedule: "5 * * * *"
--- */
SELECT date_trunc('hour', created_at) AS ts, country, payment_method,
       count(*) FILTER (WHERE declined) AS numerator, count(*) AS denominator
FROM payments WHERE created_at >= $start AND created_at < $end GROUP BY ALL
"""

SIGNUP_COUNT = """\
/* ---
name: signup_count
title: Signups
kind: sum
grain: day
dimensions: [country]
schedule: "0 6 * * *"
--- */
SELECT date_trunc('day', created_at) AS ts, country, count(*) AS value
FROM signups WHERE created_at >= $start AND created_at < $end GROUP BY ALL
"""

BROKEN = """\
/* ---
name: broken_metric
kind: ratio
grain: weekly
dimensions: [country]
schedule: "0 6 * * *"
--- */
SELECT 1
"""

COUNTRIES = "(VALUES ('US', 0), ('GB', 1), ('BR', 2), ('DE', 3)) c(country, ci)"

LEAVES_SQL = [
    # fraud_rate: day grain, 42 days (index 41 = D+1 must never be counted); BR/web jumps on D.
    f"""CREATE TABLE leaves__fraud_rate AS
        SELECT ?::TIMESTAMP + to_days(d::INTEGER) AS ts, country, channel,
               (2 + ci + (d * 7) % 5 + CASE WHEN d = 40 AND country = 'BR' AND channel = 'web' THEN 30 ELSE 0 END
                   + CASE WHEN d = 41 THEN 500 ELSE 0 END)::DOUBLE AS numerator,
               (100 + 10 * ci + 7 * chi + (d * 13) % 17)::DOUBLE AS denominator
        FROM range(0, 42) r(d), {COUNTRIES}, (VALUES ('web', 0), ('app', 1)) ch(channel, chi)""",
    # decline_rate: hour grain, computed up to D 18:00 (the day is incomplete).
    """CREATE TABLE leaves__decline_rate AS
        SELECT ?::TIMESTAMP + to_hours(h::INTEGER) AS ts, country, payment_method,
               (5 + h % 3 + pi + CASE WHEN h >= 40 * 24 + 6 AND country = 'MX' THEN 12 ELSE 0 END)::DOUBLE AS numerator,
               (50 + (h * 7) % 11 + 5 * ci)::DOUBLE AS denominator
        FROM range(5 * 24, 40 * 24 + 18) r(h), (VALUES ('US', 0), ('MX', 1), ('BR', 2)) c(country, ci),
             (VALUES ('card', 0), ('wallet', 1)) p(payment_method, pi)""",
    # signup_count: day grain sum; US spikes on D.
    f"""CREATE TABLE leaves__signup_count AS
        SELECT ?::TIMESTAMP + to_days(d::INTEGER) AS ts, country,
               (200 + 20 * ci + (d * 11) % 23 + CASE WHEN d = 40 AND country = 'US' THEN 150 ELSE 0 END)::DOUBLE AS value
        FROM range(0, 42) r(d), {COUNTRIES}""",
    # old_metric: history in the store, no definition file any more.
    """CREATE TABLE leaves__old_metric AS
        SELECT ?::TIMESTAMP + to_days(d::INTEGER) AS ts, 'US' AS country, (10 + d)::DOUBLE AS value
        FROM range(0, 41) r(d)""",
]


def _ts(day_offset: float) -> dt.datetime:
    """A timestamp relative to the report day D (0 = D 00:00)."""
    return dt.datetime.combine(D, dt.time()) + dt.timedelta(days=day_offset)


EXPLAINED = ("inc-new-total", "inc-new-br")
# incident_id -> (metric, slice, parent, start, end, status, label, expected category or None = not in report)
INCIDENTS = {
    "inc-new-total": ("fraud_rate", "", None, _ts(0), None, "open", None, "new"),
    "inc-new-br": ("fraud_rate", "country=BR", "inc-new-total", _ts(0), None, "open", "true_positive", "new"),
    "inc-new-brweb": ("fraud_rate", "channel=web&country=BR", "inc-new-total", _ts(0), None, "open", None, "new"),
    "inc-ongoing-open": ("decline_rate", "", None, _ts(-3) + dt.timedelta(hours=10), None, "open", None, "ongoing"),
    "inc-ongoing-later": ("signup_count", "country=GB", None, _ts(-5), _ts(2), "resolved", "expected", "ongoing"),
    "inc-resolved": ("signup_count", "", None, _ts(-2), _ts(0), "resolved", "false_alarm", "resolved"),
    "inc-resolved-late": ("decline_rate", "country=MX", None, _ts(-1), _ts(0.5), "resolved", "true_positive", "resolved"),
    "inc-ended-before": ("fraud_rate", "country=US", None, _ts(-6), _ts(-1), "resolved", "false_alarm", None),
    "inc-starts-after": ("fraud_rate", "country=DE", None, _ts(1), None, "open", None, None),
    "inc-old-labelled": ("fraud_rate", "country=US", None, _ts(-20), _ts(-19), "resolved", "true_positive", None),
    "inc-too-old": ("fraud_rate", "", None, _ts(-40), _ts(-39), "resolved", "false_alarm", None),
}


def build_project(root: Path):
    """Write the project and its store; returns the loaded config."""
    (root / "metrics").mkdir(parents=True)
    for name, text in [("fraud_rate", FRAUD_RATE), ("decline_rate", DECLINE_RATE), ("signup_count", SIGNUP_COUNT),
                       ("broken_metric", BROKEN)]:
        (root / "metrics" / f"{name}.sql").write_text(text)
    (root / "monitor.toml").write_text(textwrap.dedent("""\
        [project]
        name = "report-test"
        [report]
        base_url = "https://reports.example.com/risk"
        [dashboard]
        url = "https://dash.example.com"
    """))
    config = load_config(root / "monitor.toml")
    catalog = load_catalog(config.metrics_dir)
    store = Store(config.store_path)
    store.init()
    with store.connect() as con:
        for sql in LEAVES_SQL:
            con.execute(sql, [T0])
        for name, metric in sorted(catalog.metrics.items()):
            digest = "deadbeefdeadbeef" if name == "signup_count" else metric.definition_hash
            con.execute("INSERT INTO metric_definitions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        [name, digest, metric.kind, metric.grain, list(metric.dimensions),
                         json.dumps(metric.header_dict()), str(metric.path), dt.datetime(2026, 3, 1)])
        con.execute("INSERT INTO metric_definitions VALUES ('old_metric', 'abc', 'sum', 'day', ['country'], ?, NULL, ?)",
                    [json.dumps({"title": "Old metric", "kind": "sum", "grain": "day", "unit": "count",
                                 "dimensions": ["country"]}), dt.datetime(2026, 1, 1)])
        runs = [
            ("fraud_rate", T0, _ts(2), "ok", None),
            ("fraud_rate", _ts(-2), _ts(-1), "failed", "Catalog Error: table orders does not exist"),
            ("fraud_rate", _ts(-2), _ts(-1), "ok", None),  # fixes the failure above
            ("signup_count", T0, _ts(2), "ok", None),
            ("old_metric", T0, _ts(1), "ok", None),
            ("decline_rate", T0 + dt.timedelta(days=5), _ts(0) + dt.timedelta(hours=18), "ok", None),
            ("decline_rate", _ts(0) + dt.timedelta(hours=18), _ts(0) + dt.timedelta(hours=19), "failed",
             "Binder Error: column declined not found\nLINE 1: SELECT ..."),
        ]
        for metric, start, end, status, error in runs:
            con.execute("INSERT INTO runs (metric, window_start, window_end, started_at, finished_at, rows, status, "
                        "error, definition_hash, trigger) VALUES (?, ?, ?, ?, ?, 0, ?, ?, 'h', 'run')",
                        [metric, start, end, end + dt.timedelta(hours=6), end + dt.timedelta(hours=6, minutes=1),
                         status, error])
        # Detection's expected band for the fraud_rate total (pooled rate of the 4 weeks before, +-1 pp).
        con.execute("""INSERT INTO expectations
            SELECT 'fraud_rate', '', ts, sum(numerator) / sum(denominator), sum(denominator), 0.045, 0.035, 0.055,
                   0.0, false
            FROM leaves__fraud_rate WHERE ts < ? GROUP BY ts""", [_ts(1)])
        for incident_id, (metric, slice_, parent, start, end, status, label, _) in INCIDENTS.items():
            segment = dict(p.split("=", 1) for p in slice_.split("&")) if slice_ else {}
            explanation = None
            if incident_id in EXPLAINED:  # attributed by the product's own attribution step
                row = {"start_ts": start, "end_ts": end, "last_ts": end or _ts(0), "slice_json": json.dumps(segment)}
                incident = Incident.from_row(row)
                explanation = json.dumps(explain_incident(store, catalog.metrics[metric], incident, con=con).to_dict())
            con.execute(
                "INSERT INTO incidents (incident_id, metric, slice, slice_json, parent_id, start_ts, end_ts, last_ts, "
                "direction, kind, baseline, observed, relative_change, score, severity, status, resolution, why_json, "
                "explanation_json, created_at, updated_at, label) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'up', 'level_shift', 0.04, 0.06, 0.5, ?, ?, ?, ?, '{}', ?, ?, ?, ?)",
                [incident_id, metric, slice_, json.dumps(segment), parent, start, end, end or _ts(0.9),
                 5.0 + len(incident_id) / 10, "high" if parent is None else "medium", status,
                 "recovered" if status == "resolved" else None, explanation, start, start, label])
    return config
