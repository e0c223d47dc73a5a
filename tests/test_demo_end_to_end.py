"""`monitor demo` end to end: world -> backfill -> detect -> explain -> alerts, scored against ground truth."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from monitor.cli import cli

# Injected rate incidents on daily metrics: found within one bucket, top segment exactly right.
DAILY_RATE_INCIDENTS = [
    ("card_testing", "payment_decline_rate"), ("coupon_abuse", "coupon_redemptions"),
    ("refund_ring", "refund_rate"), ("decline_rule_change", "payment_decline_rate"),
    ("ato_wave", "fraud_rate"), ("fake_signup_burst", "fake_signups"),
]


@pytest.mark.slow
def test_demo_finds_and_explains_the_injected_incidents(tmp_path):
    folder = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--dir", str(folder)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    scored = json.loads((folder / "evaluation.json").read_text())
    outcomes = {(o["truth_id"], o["metric"]): o for o in scored["outcomes"]}
    for key in DAILY_RATE_INCIDENTS:
        outcome = outcomes[key]
        assert outcome["detected"] and abs(outcome["delay_buckets"]) <= 1, outcome
        assert outcome["attribution_ok"], outcome
    for key in [("card_testing", "payment_decline_rate_hourly"), ("decline_rule_change", "payment_decline_rate_hourly")]:
        hourly = outcomes[key]
        assert hourly["detected"] and abs(hourly["delay_buckets"]) <= 1 and hourly["attribution_ok"], hourly
    # The pure traffic-mix shift is explained as mix, not as any segment's rate change.
    mix = outcomes[("traffic_mix_shift", "fraud_rate")]
    assert mix["detected"] and mix["verdict"] == "mix", mix
    assert scored["rate_incidents_on_volume_events"] == []  # the holiday spike is not a rate incident
    # Regression guards at today's level, not the goal (see the closing note for the rates).
    assert sum(scored["false_incidents"].values()) <= 5, scored["false_incidents"]
    assert scored["false_incidents"]["payment_decline_rate_hourly"] <= 2, scored["false_incidents"]
    # The burst still running at the end is alerted on the console and in alerts.log.
    assert "[FIRING]" in result.output and "channel=web&country=IN" in result.output
    assert "channel=web&country=IN" in (folder / "alerts.log").read_text()
