"""A small, realistic project for the dashboard tests: metric files, a store with eight weeks of
leaf rows, expected bands, change points and incidents explained by the real attribution.

What happened in this little world (the tests check the dashboard shows it):
- fraud_rate: from 2026-04-20, android orders in BR are fraud three and a half times as
  often as before (an attack): an open incident on the total, on country=BR and on
  country=BR & device_os=android.
- chargeback_rate: from 2026-04-21, card payments in BR charge back more: an open incident
  on country=BR that overlaps the fraud one in time.
- order_count: a promotion lifted US web orders on 2026-03-31..04-02: a resolved incident,
  acknowledged and labelled 'expected'; a dip of MX orders flagged on 2026-04-22..23 was
  nothing (resolved, labelled 'false_alarm').
- Iceland (IS) places about three orders a day: below the privacy floor of 30 events, it is
  never shown on its own.
"""
from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from monitor.catalog import load_catalog
from monitor.config import ProjectConfig, load_config
from monitor.engine import Window
from monitor.incident import Incident, incident_id  # the ids detection writes
from monitor.store import Store, slice_label

START = dt.datetime(2026, 3, 1)
DAYS = 57  # 2026-03-01 .. 2026-04-26
FRAUD_START = dt.datetime(2026, 4, 20)
CHARGEBACK_START = dt.datetime(2026, 4, 21)
PROMO = (dt.datetime(2026, 3, 31), dt.datetime(2026, 4, 3))
MX_DIP = (dt.datetime(2026, 4, 22), dt.datetime(2026, 4, 24))
NOW = START + dt.timedelta(days=DAYS)

COUNTRIES = {"US": 4000, "GB": 1500, "BR": 2500, "DE": 1200, "MX": 800, "IS": 3}
FRAUD_BASE = {"US": 0.006, "GB": 0.005, "BR": 0.012, "DE": 0.004, "MX": 0.010, "IS": 0.01}
CHANNELS = {"web": 0.55, "app": 0.45}
DEVICES = {"ios": 0.40, "android": 0.45, "other": 0.15}
PAYMENTS = {"card": 0.6, "paypal": 0.25, "wallet": 0.15}

METRICS = {
    "fraud_rate": """\
        /* ---
        name: fraud_rate
        title: Confirmed fraud rate
        description: Share of orders later confirmed as fraud.
        owner: risk-oncall
        team: payments-risk
        severity: high
        runbook: https://wiki.example/runbooks/fraud-rate
        kind: ratio
        grain: day
        dimensions: [country, channel, device_os]
        schedule: "0 6 * * *"
        detect:
          direction: up
        --- */
        SELECT date_trunc('day', created_at) AS ts, country, channel, device_os,
               count(*) FILTER (WHERE is_fraud) AS numerator, count(*) AS denominator
        FROM orders WHERE created_at >= $start AND created_at < $end GROUP BY ALL
        """,
    "chargeback_rate": """\
        /* ---
        name: chargeback_rate
        title: Chargeback rate
        owner: disputes
        team: payments-risk
        severity: medium
        kind: ratio
        grain: day
        dimensions: [country, payment_method]
        schedule: "0 6 * * *"
        --- */
        SELECT date_trunc('day', created_at) AS ts, country, payment_method,
               count(*) FILTER (WHERE charged_back) AS numerator, count(*) AS denominator
        FROM orders WHERE created_at >= $start AND created_at < $end GROUP BY ALL
        """,
    "order_count": """\
        /* ---
        name: order_count
        title: Orders
        owner: risk-analytics
        team: growth
        kind: sum
        grain: day
        dimensions: [country, channel]
        schedule: "0 6 * * *"
        --- */
        SELECT date_trunc('day', created_at) AS ts, country, channel, count(*) AS value
        FROM orders WHERE created_at >= $start AND created_at < $end GROUP BY ALL
        """,
}


def build_project(root: Path, *, min_segment_size: int = 30, explain: bool = True) -> ProjectConfig:
    """Write the project into `root` and fill its store; returns the loaded config."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "metrics").mkdir(exist_ok=True)
    for name, text in METRICS.items():
        (root / "metrics" / f"{name}.sql").write_text(textwrap.dedent(text))
    (root / "monitor.toml").write_text(textwrap.dedent(f"""\
        [project]
        name = "risk-demo"

        [dashboard]
        url = "http://127.0.0.1:8501"
        min_segment_size = {min_segment_size}
        """))
    config = load_config(root / "monitor.toml")
    catalog = load_catalog(config.metrics_dir)
    assert not catalog.problems, catalog.problems
    store = Store(config.store_path)
    leaves = make_leaves()
    for name, frame in leaves.items():
        metric = catalog.metrics[name]
        table = pa.Table.from_pandas(frame[["ts", *metric.dimensions, *metric.measures]], preserve_index=False)
        store.write_window(metric, Window(START, NOW), table, trigger="backfill", started_at=NOW, now=NOW)
    for name, frame in leaves.items():
        write_expectations(store, catalog.metrics[name], frame)
    write_incidents(store, catalog, explain=explain)
    return config


def make_leaves(seed: int = 7) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    rows = []
    for day in range(DAYS):
        ts = START + dt.timedelta(days=day)
        weekly = 1.15 if ts.weekday() >= 5 else 1.0
        for country, volume in COUNTRIES.items():
            for channel, c_share in CHANNELS.items():
                promo = 1.6 if (country == "US" and channel == "web" and PROMO[0] <= ts < PROMO[1]) else 1.0
                for device, d_share in DEVICES.items():
                    for payment, p_share in PAYMENTS.items():
                        orders = int(rng.poisson(volume * c_share * d_share * p_share * weekly * promo))
                        fraud_p = FRAUD_BASE[country] * (1.3 if device == "android" else 1.0)
                        if country == "BR" and device == "android" and ts >= FRAUD_START:
                            fraud_p *= 3.5
                        cb_p = 0.004 * (2.8 if country == "BR" and payment == "card" and ts >= CHARGEBACK_START else 1)
                        rows.append((ts, country, channel, device, payment, orders,
                                     int(rng.binomial(orders, min(fraud_p, 1.0))), int(rng.binomial(orders, cb_p))))
    orders = pd.DataFrame(rows, columns=["ts", "country", "channel", "device_os", "payment_method", "orders",
                                         "fraud", "chargebacks"])
    fraud = orders.groupby(["ts", "country", "channel", "device_os"], as_index=False)[["fraud", "orders"]].sum()
    cbs = orders.groupby(["ts", "country", "payment_method"], as_index=False)[["chargebacks", "orders"]].sum()
    counts = orders.groupby(["ts", "country", "channel"], as_index=False)[["orders"]].sum()
    return {
        "fraud_rate": fraud.rename(columns={"fraud": "numerator", "orders": "denominator"}).astype(
            {"numerator": float, "denominator": float}),
        "chargeback_rate": cbs.rename(columns={"chargebacks": "numerator", "orders": "denominator"}).astype(
            {"numerator": float, "denominator": float}),
        "order_count": counts.rename(columns={"orders": "value"}).astype({"value": float}),
    }


def _band(values: pd.Series, volume: pd.Series, kind: str) -> pd.DataFrame:
    """A simple trailing band: median of the previous two weeks, +- 3 robust sigmas."""
    expected = values.shift(1).rolling(14, min_periods=5).median()
    resid = (values - expected).abs()
    sigma = 1.4826 * resid.shift(1).rolling(28, min_periods=5).median()
    if kind == "ratio":
        sigma = np.maximum(sigma.fillna(0.0), np.sqrt(expected.clip(lower=1e-6) * (1 - expected.clip(upper=1)) /
                                                        volume.clip(lower=1)))
    else:
        sigma = np.maximum(sigma.fillna(0.0), np.sqrt(expected.clip(lower=1)))
    lower, upper = expected - 3 * sigma, expected + 3 * sigma
    score = (values - expected) / sigma.replace(0, np.nan)
    return pd.DataFrame({"expected": expected, "lower": lower, "upper": upper, "score": score,
                         "anomalous": (score.abs() > 3).fillna(False)})


def write_expectations(store: Store, metric, leaves: pd.DataFrame) -> None:
    frames = []
    series = [({}, leaves)] + [({d: v}, part) for d in metric.dimensions for v, part in leaves.groupby(d)]
    for segment, part in series:
        grouped = part.groupby("ts")[list(metric.measures)].sum().sort_index()
        if metric.kind == "ratio":
            volume = grouped["denominator"]
            values = grouped["numerator"] / volume.replace(0, np.nan)
        else:
            volume = values = grouped["value"]
        band = _band(values, volume, metric.kind)
        frames.append(pd.DataFrame({"metric": metric.name, "slice": slice_label(segment), "ts": grouped.index,
                                    "observed": values.values, "volume": volume.values}).join(
            band.reset_index(drop=True)))
    frame = pd.concat(frames, ignore_index=True)
    with store.connect() as con:
        con.register("exp", frame)
        con.execute("INSERT INTO expectations SELECT metric, slice, ts, observed, volume, expected, lower, upper,"
                    " score, anomalous FROM exp")
        con.unregister("exp")


def _incident(metric, segment: dict, start: dt.datetime, end: dt.datetime | None, last: dt.datetime,
              baseline: float, observed: float, score: float, *, parent=None, **extra) -> dict:
    label = slice_label(segment)
    why = {"detector": "seasonal_band", "period": 7, "sensitivity": "medium", "threshold": 3.0,
           "baseline_window": "14 days before", "series": label or "total", "segment_kind": "level_shift",
           "slices_tested": 20 if segment else None}
    row = {
        "incident_id": incident_id(metric.name, label, start), "metric": metric.name, "slice": label,
        "slice_json": json.dumps(segment, sort_keys=True), "parent_id": parent, "start_ts": start, "end_ts": end,
        "last_ts": last, "direction": "up" if observed >= baseline else "down", "kind": "level_shift",
        "baseline": baseline, "observed": observed, "relative_change": observed / baseline - 1, "score": score,
        "severity": metric.severity, "status": "open" if end is None else "resolved",
        "resolution": None if end is None else "recovered", "why_json": json.dumps(why), "explanation_json": None,
        "created_at": NOW, "updated_at": NOW, "acked_by": None, "acked_at": None, "label": None,
        "labelled_by": None, "labelled_at": None,
    }
    row.update(extra)
    return row


def write_incidents(store: Store, catalog, *, explain: bool = True) -> list[dict]:
    fraud, cb, orders = (catalog.metrics[n] for n in ("fraud_rate", "chargeback_rate", "order_count"))
    last = NOW - dt.timedelta(days=1)
    total = _incident(fraud, {}, FRAUD_START, None, last, 0.0078, 0.0112, 9.4)
    rows = [
        total,
        _incident(fraud, {"country": "BR"}, FRAUD_START, None, last, 0.0137, 0.0301, 14.2,
                  parent=total["incident_id"]),
        _incident(fraud, {"country": "BR", "device_os": "android"}, FRAUD_START, None, last, 0.0156, 0.0546, 17.9,
                  parent=total["incident_id"]),
        _incident(cb, {"country": "BR"}, CHARGEBACK_START, None, last, 0.0040, 0.0083, 7.1),
        _incident(orders, {}, PROMO[0], PROMO[1], PROMO[1] - dt.timedelta(days=1), 17800.0, 20600.0, 6.3,
                  acked_by="bob", acked_at=PROMO[0] + dt.timedelta(hours=7), label="expected", labelled_by="bob",
                  labelled_at=PROMO[1]),
        _incident(orders, {"country": "MX"}, MX_DIP[0], MX_DIP[1], MX_DIP[1] - dt.timedelta(days=1), 1650.0,
                  1390.0, 4.2, label="false_alarm", labelled_by="carol", labelled_at=MX_DIP[1]),
    ]
    if explain:
        metrics = {m.name: m for m in (fraud, cb, orders)}
        for row in rows:
            row["explanation_json"] = json.dumps(explain_row(store, metrics[row["metric"]], row), sort_keys=True)
    columns = list(rows[0])
    with store.connect() as con:
        con.executemany(f"INSERT INTO incidents ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                        [[r[c] for c in columns] for r in rows])
        cps = [(r["metric"], r["slice"], r["start_ts"]) for r in rows]
        con.executemany("INSERT INTO change_points VALUES (?, ?, ?)", cps)
    return rows


def incident_ids() -> dict[str, str]:
    """Names the tests use for the fixture's incidents."""
    return {
        "fraud_total": incident_id("fraud_rate", "", FRAUD_START),
        "fraud_br": incident_id("fraud_rate", "country=BR", FRAUD_START),
        "fraud_br_android": incident_id("fraud_rate", "country=BR&device_os=android", FRAUD_START),
        "chargeback_br": incident_id("chargeback_rate", "country=BR", CHARGEBACK_START),
        "orders_promo": incident_id("order_count", "", PROMO[0]),
        "orders_mx": incident_id("order_count", "country=MX", MX_DIP[0]),
    }


def explain_row(store: Store, metric, row: dict) -> dict:
    """The incident's attribution by the product's own explain(), as the pipeline stores it."""
    from monitor.attribute.incident_attribution import explain_incident

    return explain_incident(store, metric, Incident.from_row(row)).to_dict()


# -- pytest helpers shared by the dashboard tests -------------------------------------------------
APP = Path(__file__).resolve().parents[1] / "dashboards" / "app.py"
_BUILT: dict[str, ProjectConfig] = {}


def shared_project(base: Path) -> ProjectConfig:
    """The fixture project, built once per test process (read-only use)."""
    if "shared" not in _BUILT:
        _BUILT["shared"] = build_project(base / "dashboard-project")
    return _BUILT["shared"]


def copy_project(config: ProjectConfig, target: Path) -> ProjectConfig:
    """A private copy of a built project, for tests that write (actions)."""
    import shutil

    shutil.copytree(config.root, target)
    return load_config(target / "monitor.toml")


def run_app(config: ProjectConfig, *, timeout: float = 30, **params: str):
    """The app as the browser would run it for `?k=v...`, with MONITOR_CONFIG pointing at `config`.

    The variable stays set for the test's later `at.run()` calls; the autouse
    `no_monitor_config` fixture of conftest.py restores it afterwards.
    """
    import os

    from streamlit.testing.v1 import AppTest

    os.environ["MONITOR_CONFIG"] = str(config.root / "monitor.toml")
    at = AppTest.from_file(str(APP), default_timeout=timeout)
    # Every new AppTest scans all installed packages for custom components (about 1 s); the
    # dashboard has none, so the scan of the first one is reused (AppTest's own cache, per process).
    if _COMPONENTS and hasattr(at, "_bidi_component_manager"):
        at._bidi_component_manager = _COMPONENTS[0]
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    if not _COMPONENTS and getattr(at, "_bidi_component_manager", None) is not None:
        _COMPONENTS.append(at._bidi_component_manager)
    return at


_COMPONENTS: list = []


def texts(at) -> str:
    """Every piece of text the run displayed (markdown, captions, titles, alerts), for searching."""
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def chart_spec(chart) -> dict:
    """The Vega-Lite spec of a chart element."""
    return json.loads(chart.proto.spec)


def chart_data(chart) -> dict[str, pd.DataFrame]:
    """The named data sets a chart element carries (Streamlit ships them as Arrow streams)."""
    import pyarrow as pa

    return {d.name: pa.ipc.open_stream(d.data.data).read_all().to_pandas() for d in chart.proto.datasets}
