"""The demo world's change log: our own changes, as the systems that make them would record them.

Two source tables and the event files that read them into ``monitor``:

    rule_changes   the rule engine's audit log (one row per rule change, scoped by the
                   segment columns it applies to; NULL = not narrowed)
    promotions     the marketing calendar (a window, the metrics it is expected to move)

What is in them: the risk-rule change behind ``decline_rule_change`` (rule R-142, 40 min
before the day it takes effect, scoped to PayPal), the planned promotion behind
``holiday_sale`` (expected: orders, coupons and signups rise and must not page), and a
fraud-model rollout in Japan a few hours before the account-takeover wave in Great Britain: a
change that is near an incident in time but not in scope, which linking must not attach to it.
``ground_truth.json`` lists them under ``events`` with the injected incident each belongs to.
"""
from __future__ import annotations

import datetime as dt

import pyarrow as pa

RULE_ID = "R-142"
RULE_LEAD = dt.timedelta(minutes=40)  # deployed the evening before the day it shows
MODEL_LEAD = dt.timedelta(hours=6)
PROMOTION_METRICS = ("orders", "coupon_redemptions", "fake_signups")
URL = "https://changes.example.com"

SCHEMAS = {
    "rule_changes": [("changed_at", "TIMESTAMP"), ("change_id", "VARCHAR"), ("kind", "VARCHAR"),
                     ("description", "VARCHAR"), ("url", "VARCHAR"), ("country", "VARCHAR"),
                     ("payment_method", "VARCHAR")],
    "promotions": [("starts_at", "TIMESTAMP"), ("ends_at", "TIMESTAMP"), ("name", "VARCHAR"),
                   ("url", "VARCHAR"), ("metrics", "VARCHAR")],
}

EVENT_FILES = {
    "risk_changes.sql": """\
/* ---
name: risk_changes
title: Rule and model changes from the risk engine's audit log
owner: risk-oncall
scope: [country, payment_method]   # NULL in a row = the change is not narrowed on that column
--- */
SELECT changed_at AS ts, kind, change_id || ' ' || description AS title, url, country, payment_method
FROM rule_changes
WHERE changed_at >= $start AND changed_at < $end
""",
    "promotions.sql": """\
/* ---
name: promotions
title: Planned promotions from the marketing calendar
owner: growth
kind: promotion                    # an expected kind ([events] expected_kinds): the metrics named do not page
--- */
SELECT starts_at AS ts, ends_at AS end_ts, name AS title, url, metrics
FROM promotions
WHERE ends_at >= $start AND starts_at < $end
""",
}


def change_log(truth: dict) -> dict[str, pa.Table]:
    """The two tables for a world's ground truth (its start and injected incidents)."""
    rows = {e["truth"] or e["id"]: e for e in truth["events"]}
    rule, model, promo = rows["decline_rule_change"], rows["model_rollout_jp"], rows["holiday_sale"]

    def at(text: str) -> dt.datetime:
        return dt.datetime.fromisoformat(text)

    changes = [
        (at(model["ts"]), "M-13", "model", "fraud model v13 rollout", f"{URL}/M-13", "JP", None),
        (at(rule["ts"]), RULE_ID, "rule", "relax risk_rule for PayPal", f"{URL}/{RULE_ID}", None, "paypal"),
    ]
    changes.sort()
    promotions = [(at(promo["ts"]), at(promo["end"]), promo["title"], f"{URL}/summer-sale", ",".join(PROMOTION_METRICS))]
    return {
        "rule_changes": pa.table(list(zip(*changes)) if changes else [[]] * 7,
                                 names=[c for c, _ in SCHEMAS["rule_changes"]]),
        "promotions": pa.table(list(zip(*promotions)), names=[c for c, _ in SCHEMAS["promotions"]]),
    }


def truth_events(incidents: list[dict]) -> list[dict]:
    """The ``events`` of ground_truth.json, from its injected incidents."""
    by_id = {i["id"]: i for i in incidents}
    rule, sale, ato = by_id["decline_rule_change"], by_id["holiday_sale"], by_id["ato_wave"]

    def iso(day: str, shift: dt.timedelta) -> str:
        return (dt.datetime.fromisoformat(day) + shift).isoformat()

    return [
        {"id": "rule_r142", "truth": "decline_rule_change", "kind": "rule",
         "title": f"{RULE_ID} relax risk_rule for PayPal", "ts": iso(rule["start"], -RULE_LEAD), "end": None,
         "scope": {"payment_method": "paypal"}, "metrics": [], "expected": False},
        {"id": "summer_sale", "truth": "holiday_sale", "kind": "promotion", "title": "Summer sale",
         "ts": iso(sale["start"], dt.timedelta(0)), "end": iso(sale["end"], dt.timedelta(0)), "scope": {},
         "metrics": list(PROMOTION_METRICS), "expected": True},
        {"id": "model_rollout_jp", "truth": None, "kind": "model", "title": "M-13 fraud model v13 rollout",
         "ts": iso(ato["start"], -MODEL_LEAD), "end": None, "scope": {"country": "JP"}, "metrics": [],
         "expected": False},
    ]
