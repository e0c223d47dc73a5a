"""What an alert says: Slack Block Kit within Slack's limits, and the console text of the demo."""
from __future__ import annotations

import datetime as dt
import json

from alert_fixtures import EXPLANATION, HEADERS, T0
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.alert.blocks import MAX_BLOCKS, MAX_HEADER, MAX_TEXT, clip, render_blocks, slack_len, validate_blocks
from monitor.alert.console import render_text
from monitor.incident import Incident
from monitor.alert.message import alert_entry, build_message, summarize_explanation
from monitor.alert.routing import incident_labels

DASH = "http://dash.local:8501"


def incident(slice_: dict | None = None, **extra) -> dict:
    slice_ = slice_ or {}
    row = {"incident_id": "inc-" + "-".join(slice_.values()) if slice_ else "inc-total", "metric": "fraud_rate",
           "slice": "&".join(f"{k}={v}" for k, v in sorted(slice_.items())), "slice_json": json.dumps(slice_),
           "start_ts": T0 - dt.timedelta(days=2), "end_ts": None, "last_ts": T0, "direction": "up",
           "kind": "level_shift", "baseline": 0.012, "observed": 0.017, "relative_change": 0.4167, "score": 6.0,
           "severity": "high", "status": "open", "resolution": None,
           "explanation_json": json.dumps(EXPLANATION)}
    row.update(extra)
    return row


def entry(row: dict, header: dict | None = None, children=None) -> dict:
    header = HEADERS["fraud_rate"] if header is None else header
    inc = Incident.from_row(row)
    return alert_entry(inc, header, fingerprint=inc.fingerprint, labels=incident_labels(inc, header), quiet=None,
                       dashboard_url=DASH, top_segments=3, children=children)


def message(alerts: list[dict], resolved: list[dict] = (), reason="new") -> dict:
    return build_message(receiver="risk-slack", group_key="route:{}", group_labels={"metric": "fraud_rate"},
                         reason=reason, firing=alerts, resolved=list(resolved), created_at=T0, dashboard_url=DASH)


def all_text(blocks) -> str:
    out = []
    for b in blocks:
        if "text" in b:
            out.append(b["text"]["text"])
        out += [e["text"] for e in b.get("elements", [])]
    return "\n".join(out)


def test_slack_message_has_what_the_on_call_needs():
    children = [entry(incident({"country": "BR"}, relative_change=1.8))]
    text, blocks = render_blocks(message([entry(incident(), children=children)]))
    assert validate_blocks(blocks) == []
    body = all_text(blocks)
    for needle in ("Confirmed fraud rate of orders", "total", "up +41.7%", "(+0.50 pp)", "level shift",
                   "Since 2026-03-02 06:10 UTC (2d ago)", "baseline *1.20%* → now *1.70%*",  # a day bucket not at midnight shows its time
                   "*What explains it* (vs same weekday, mean of the 4 weeks before)",
                   "• `country=BR` — 62% of the change (1.10% → 3.40%, 12% of traffic, its rate moved)",
                   "*Mix vs rate:* rate: traffic mix did not move; rates inside segments did", "Slices moving under this total (1)",
                   f"<{DASH}/?page=incident&id=inc-total|Open incident>",
                   f"<{DASH}/?page=metric&metric=fraud_rate|Metric chart>",
                   "<https://wiki.example.com/runbooks/fraud-rate|Runbook>", "owner *risk-oncall*", "team *payments*"):
        assert needle in body, needle
    assert blocks[0]["type"] == "header" and text.startswith("[FIRING] Confirmed fraud rate of orders up +41.7%")


def test_an_incident_a_leading_metric_pointed_at_says_which_one():
    why = {"detector": "follows", "follows": {"metric": "fraud_rate", "incident_id": "b77edd667bb0",
                                              "start": "2026-03-02T00:00:00", "segment": {"country": "GB"}}}
    row = incident({"country": "GB", "device_os": "android", "payment_method": "card"}, metric="chargeback_rate",
                   why_json=json.dumps(why))
    alert = entry(row)
    assert alert["follows"] == {"metric": "fraud_rate", "incident_id": "b77edd667bb0", "start_ts": "2026-03-02T00:00:00",
                                "link": f"{DASH}/?page=incident&id=b77edd667bb0"}
    _, blocks = render_blocks(message([alert]))
    assert validate_blocks(blocks) == []
    assert f"*Pointed at by* *fraud_rate* <{DASH}/?page=incident&id=b77edd667bb0|incident b77edd667bb0>" in all_text(blocks)
    assert "follows   fraud_rate incident b77edd667bb0 named this segment" in render_text(message([alert]))
    # an incident of the slice search has none
    plain = entry(incident(why_json=json.dumps({"detector": "default"})))
    assert plain["follows"] is None and "Pointed at by" not in all_text(render_blocks(message([plain]))[1])


def test_slice_labels_are_escaped_for_mrkdwn_and_urls():
    row = incident({"country": "BR", "device_os": "android"})
    _, blocks = render_blocks(message([entry(row)]))
    body = all_text(blocks)
    assert "`country=BR&amp;device_os=android`" in body
    assert "slice=country%3DBR%26device_os%3Dandroid|Metric chart>" in body


def test_sum_metric_shows_counts_and_no_mix_rate_verdict():
    header = HEADERS["signup_count"]
    row = incident({"country": "US"}, metric="signup_count", baseline=1200.0, observed=3400.0, relative_change=1.83)
    _, blocks = render_blocks(message([entry(row, header)]))
    body = all_text(blocks)
    assert "baseline *1,200* → now *3,400*" in body and "Mix vs rate" not in body and "pp)" not in body


def test_missing_or_unreadable_explanation_still_renders():
    for explanation in (None, "", "not json", json.dumps({"unexpected": True}), json.dumps([1, 2])):
        row = incident(explanation_json=explanation)
        assert entry(row)["explanation"] is None
        _, blocks = render_blocks(message([entry(row)]))
        assert validate_blocks(blocks) == [] and "What explains it" not in all_text(blocks)
    assert summarize_explanation(None) is None


def test_explanation_from_the_attribution_package_renders():
    import pandas as pd

    from monitor.attribute.explain import explain

    leaves = pd.DataFrame({"country": ["BR", "MX", "US"], "actual_num": [40.0, 5.0, 10.0],
                           "actual_den": [1000.0, 1000.0, 2000.0], "expected_num": [10.0, 5.0, 10.0],
                           "expected_den": [1000.0, 1000.0, 2000.0]})
    made = explain(leaves, ["country"], "ratio", baseline_label="same weekday last week").to_dict()
    alert = entry(incident(explanation_json=json.dumps(made)))
    summary = alert["explanation"]
    assert summary["segments"][0]["label"] == "country=BR" and summary["verdict"]["verdict"] == "rate"
    assert summary["summary"].startswith("Confirmed fraud rate of orders +")  # the title, not "metric"
    body = all_text(render_blocks(message([alert]))[1])
    assert "• `country=BR` — 100% of the change (1.00% → 4.00%" in body and "*Mix vs rate:* rate" in body


def test_mixed_verdict_says_how_much_is_mix():
    explanation = {**EXPLANATION, "verdict": "mixed", "split": {"dimension": "channel", "mix": 0.002, "rate": 0.003,
                                                                "interaction": 0.0}}
    body = all_text(render_blocks(message([entry(incident(explanation_json=json.dumps(explanation)))]))[1])
    assert "mixed: both the traffic mix and rates inside segments moved (mix 40% of the change, cut by channel)" in body


def test_resolved_message_says_how_it_ended():
    row = incident(status="resolved", resolution="new_normal", end_ts=T0)
    text, blocks = render_blocks(message([], resolved=[entry(row)], reason="resolved"))
    assert text.startswith("[RESOLVED]") and "Accepted as the new normal" in all_text(blocks)
    assert "What explains it" not in all_text(blocks)


def test_huge_message_is_truncated_but_stays_valid():
    long = "x" * 5000
    header = {**HEADERS["fraud_rate"], "title": "🚨" * 400, "owner": long, "runbook": "https://r/" + long}
    children = [entry(incident({"country": f"C{i}"}), header) for i in range(200)]
    explanation = {"causes": [{"segment": {"merchant": long + str(i)}, "explained_share": 0.1} for i in range(30)],
                   "verdict": "mixed", "split": {"dimension": long, "mix": 1.0, "rate": 1.0, "interaction": 0.0},
                   "change": 2.0, "baseline_label": long}
    alerts = [entry(incident({"country": f"K{i}", "channel": long}, explanation_json=json.dumps(explanation)),
                    header, children=children) for i in range(80)]
    text, blocks = render_blocks(message(alerts), max_alerts=100)
    assert validate_blocks(blocks) == []
    assert len(blocks) <= MAX_BLOCKS and slack_len(blocks[0]["text"]["text"]) <= MAX_HEADER
    assert "more incidents" in blocks[-1]["text"]["text"] and slack_len(text) <= 3000


def test_validate_blocks_catches_each_limit():
    assert validate_blocks([{"type": "divider"}] * 51)
    assert validate_blocks([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}])
    assert validate_blocks([{"type": "section", "text": {"type": "mrkdwn", "text": "s" * 3001}}])
    assert validate_blocks([{"type": "section", "text": {"type": "mrkdwn", "text": ""}}])
    assert validate_blocks([{"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}])


@settings(max_examples=150, deadline=None)
@given(text=st.lists(st.sampled_from(list("ab <>&;|`\n") + ["🚨", "é", "&amp;", "<http://x|y>"]),
                    max_size=200).map("".join),
       limit=st.integers(min_value=2, max_value=120))
def test_clip_respects_the_limit_and_never_leaves_half_a_link_or_entity(text, limit):
    out = clip(text, limit)
    assert slack_len(out) <= limit
    if out != text:
        assert out.endswith("…")
        body = out[:-1]
        assert body.rfind("<") <= body.rfind(">") and body.rfind("&") <= body.rfind(";")
        assert body.count("`") % 2 == 0


def test_console_text_is_one_readable_block_per_group():
    children = [entry(incident({"country": "BR"}, relative_change=1.8))]
    msg = message([entry(incident(), children=children)])
    text = render_text(msg)
    lines = text.splitlines()
    assert lines[0].startswith("─") and lines[-1].startswith("─")
    assert lines[1] == msg["summary"]
    for needle in ("● Confirmed fraud rate of orders — total  [high]", "change    up +41.7% (+0.50 pp), level shift",
                   "since     2026-03-02 06:10 UTC (2d ago)", "baseline  1.20%  ->  now 1.70%",
                   "explains  country=BR — 62% of the change (1.10% → 3.40%, 12% of traffic, its rate moved)",
                   "          channel=web — 21% of the change",
                   "mix/rate  rate: traffic mix did not move; rates inside segments did",
                   "slices    1 under this total: country=BR up +180% ", "owner     risk-oncall (team payments)",
                   f"incident  {DASH}/?page=incident&id=inc-total",
                   "runbook   https://wiki.example.com/runbooks/fraud-rate"):
        assert needle in text, needle
    assert len(max(lines, key=len)) < 200


def test_text_limits_count_emoji_as_slack_does():
    assert slack_len("🚨") == 2 and slack_len("é") == 1
    assert slack_len(clip("🚨" * 100, 150)) <= 150
    assert MAX_TEXT == 3000
