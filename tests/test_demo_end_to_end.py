"""`monitor demo` end to end: world -> backfill -> detect -> explain -> alerts -> report,
scored against the world's ground truth."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner

from monitor.cli import cli
from monitor.config import load_config

# Injected rate incidents on daily metrics: found within one bucket, top segment exactly right.
# These pin the default seed (7). How often each is found over other seeds, and the false
# incident rates, are measured by benchmarks/demo_detection.py (ATO wave: 3 of 7 seeds).
DAILY_RATE_INCIDENTS = [
    ("card_testing", "payment_decline_rate"), ("coupon_abuse", "coupon_redemptions"),
    ("refund_ring", "refund_rate"), ("decline_rule_change", "payment_decline_rate"),
    ("ato_wave", "fraud_rate"), ("fake_signup_burst", "fake_signups"),
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("e2e") / "demo"
    result = CliRunner().invoke(cli, ["demo", "--dir", str(folder)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return folder, result.output, json.loads((folder / "evaluation.json").read_text())


@pytest.mark.slow
def test_demo_finds_and_explains_the_injected_incidents(demo):
    folder, output, scored = demo
    outcomes = {(o["truth_id"], o["metric"]): o for o in scored["outcomes"]}
    for key in DAILY_RATE_INCIDENTS:
        outcome = outcomes[key]
        assert outcome["detected"] and abs(outcome["delay_buckets"]) <= 1, outcome
        assert outcome["attribution_ok"], outcome
    hourly = outcomes[("card_testing", "payment_decline_rate_hourly")]
    assert hourly["detected"] and abs(hourly["delay_buckets"]) <= 1 and hourly["attribution_ok"], hourly
    # the hourly rule change is found on payment_method=paypal, but its change point lands at
    # 21:00 the evening before (night hours are thin), more than one bucket early
    starts = _paging_starts(folder, "payment_decline_rate_hourly", "payment_method=paypal")
    assert any(abs(s - dt.datetime(2026, 8, 26)) <= dt.timedelta(hours=6) for s in starts), starts
    # The pure traffic-mix shift is found on its first day from the shares (the totals move
    # only 1.2-1.6 sd) and explained as mix, not as any segment's rate change.
    for metric in ("fraud_rate", "chargeback_rate"):
        mix = outcomes[("traffic_mix_shift", metric)]
        assert mix["detected"] and mix["delay_buckets"] == 0 and mix["verdict"] == "mix", mix
    assert scored["rate_incidents_on_volume_events"] == []  # the holiday spike is not a rate incident
    # Regression guards at today's level, not the goal (see the closing note for the rates).
    assert sum(scored["false_incidents"].values()) <= 2, scored["false_incidents"]
    assert scored["false_incidents"]["payment_decline_rate_hourly"] == 0, scored["false_incidents"]
    # The burst still running at the end is alerted on the console and in alerts.log.
    assert "[FIRING]" in output and "channel=web&country=IN" in output
    assert "channel=web&country=IN" in (folder / "alerts.log").read_text()


@pytest.mark.slow
def test_demo_links_the_rule_change_and_the_promotion_does_not_page(demo):
    from monitor.events.store import links_for
    from monitor.store import Store

    folder, output, scored = demo
    assert "rule 'R-142 relax risk_rule for PayPal' on payment_method=paypal: linked to" in output
    assert "model 'M-13 fraud model v13 rollout' on country=JP: linked to no incident" in output
    store = Store(load_config(folder / "monitor.toml").store_path)
    outcome = next(o for o in scored["outcomes"] if (o["truth_id"], o["metric"]) == ("decline_rule_change",
                                                                                       "payment_decline_rate"))
    [link] = links_for(store, [outcome["incident_id"]])[outcome["incident_id"]]
    assert (link["kind"], link["title"], link["scope"]) == ("rule", "R-142 relax risk_rule for PayPal",
                                                            {"payment_method": "paypal"})
    with store.connect(read_only=True) as con:
        totals = con.execute("SELECT metric, incident_id FROM incidents WHERE slice = '' AND metric IN "
                             "('orders', 'coupon_redemptions', 'fake_signups') AND start_ts = '2026-08-19'").fetchall()
    assert sorted(m for m, _ in totals) == ["coupon_redemptions", "fake_signups", "orders"]
    links = links_for(store, [i for _, i in totals])
    assert all([(l["title"], l["expected_here"]) for l in links[i]] == [("Summer sale", True)] for _, i in totals)


def _paging_starts(folder, metric: str, slice_: str) -> list[dt.datetime]:
    from monitor.store import Store

    config = load_config(folder / "monitor.toml")
    with Store(config.store_path).connect(read_only=True) as con:
        rows = con.execute("SELECT start_ts FROM incidents WHERE metric = ? AND slice = ?", [metric, slice_]).fetchall()
    return [r[0] for r in rows]


@pytest.mark.slow
def test_daily_report_names_every_detected_injected_incident_on_its_day(demo, tmp_path):
    from monitor.report import generate_report
    from monitor.store import Store

    folder, _, scored = demo
    config = load_config(folder / "monitor.toml")
    with Store(config.store_path).connect(read_only=True) as con:
        starts = dict(con.execute("SELECT incident_id, start_ts FROM incidents").fetchall())
    detected = [o for o in scored["outcomes"] if o["detected"]]
    assert len(detected) >= 8
    for outcome in detected:
        day = starts[outcome["incident_id"]].date()
        report = generate_report(config, date=day, out_dir=tmp_path, now=dt.datetime(2026, 10, 1))
        html = report.html_path.read_text()
        assert f'data-incident="{outcome["incident_id"]}"' in html, (outcome["truth_id"], day)
