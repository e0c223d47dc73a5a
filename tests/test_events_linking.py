"""Linking incidents to change events: scope match on total, slice and cause; the time window's edges;
expected events quiet only what starts inside their window and scope."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from monitor.events.expected import expected_reason
from monitor.events.linking import link_incidents, scope_match, incident_segments
from monitor.events.model import Event
from monitor.attribute.explain import Explanation, RootCause
from monitor.incident import Incident

DAY, HOUR = dt.timedelta(days=1), dt.timedelta(hours=1)
S = dt.datetime(2026, 8, 26)  # the incident's start (a day bucket)
STEPS = {"decline_rate": DAY, "decline_hourly": HOUR, "orders": DAY}


def incident(segment=None, *, metric="decline_rate", start=S, causes=(), parent=None, iid=None, status="open"):
    explanation = Explanation(kind="ratio", baseline_label="", metric_label=metric, before=None, after=None,
                              change=None, relative_change=None, dimensions=(), split=None, verdict=None,
                              causes=tuple(RootCause(segment=c, explained_share=0.5, size=None, before=None,
                                                     after=None) for c in causes)) if causes else None
    return Incident(incident_id=iid or f"{metric}|{json.dumps(segment or {})}|{start}", metric=metric,
                    segment=dict(segment or {}), start_ts=start, end_ts=None, last_ts=start, direction="up",
                    kind="level_shift", baseline=None, observed=None, relative_change=None, score=1.0,
                    severity="high", status=status, explanation=explanation, parent_id=parent)


def event(scope=None, *, at=S - 3 * HOUR, until=None, metrics=(), expected=False, eid="ev-1", kind="rule"):
    return Event(event_id=eid, source="cli", kind=kind, title="R-142 relax risk_rule", ts=at, end_ts=until,
                 scope=dict(scope or {}), metrics=tuple(metrics), expected=expected)


def link(incidents, events, window=DAY, after=dt.timedelta(0)):
    return link_incidents(incidents, events, steps=STEPS, window=window, after=after)


# -- scope ---------------------------------------------------------------------------------------------
def test_scope_matches_the_slice_itself_best():
    [l] = link([incident({"payment_method": "paypal"})], [event({"payment_method": "paypal"})])
    assert (l.scope_match, l.matched) == ("slice", {"payment_method": "paypal"})
    assert l.score == pytest.approx(1.0 * (1 - 0.5 * 3 / 24))


def test_scope_matches_a_total_through_its_top_cause():
    total = incident({}, causes=[{"country": "BR"}, {"payment_method": "paypal"}])
    [l] = link([total], [event({"payment_method": "paypal"})])
    assert (l.scope_match, l.matched) == ("cause", {"payment_method": "paypal"})
    assert l.score < 1.0


def test_a_total_without_a_matching_cause_and_a_conflicting_slice_are_not_linked():
    total = incident({}, causes=[{"payment_method": "card"}])
    other_slice = incident({"payment_method": "card"}, iid="card")
    assert link([total, other_slice], [event({"payment_method": "paypal"})]) == []


def test_a_slice_and_a_cause_combine_and_must_agree_on_every_shared_dimension():
    segs = incident_segments(incident({"country": "BR"}, causes=[{"payment_method": "card"}]), causes=3)
    assert scope_match({"country": "BR", "payment_method": "card"}, segs)[1:] == (
        "cause", {"country": "BR", "payment_method": "card"})
    assert scope_match({"country": "US", "payment_method": "card"}, segs) is None
    score, how, _ = scope_match({"country": "BR", "device_os": "ios"}, segs)  # half the scope confirmed
    assert (how, score) == ("slice", 0.5)


def test_an_unscoped_event_links_everywhere_with_a_lower_score_and_metrics_restrict_it():
    incidents = [incident({}), incident({}, metric="orders")]
    links = link(incidents, [event({}, metrics=["orders"])])
    assert [(l.incident_id.split("|")[0], l.scope_match) for l in links] == [("orders", "everywhere")]
    assert links[0].score <= 0.5


def test_a_total_carries_the_link_of_the_slice_under_it():
    total = incident({}, start=S - 2 * DAY, iid="total")
    child = incident({"payment_method": "paypal"}, parent="total", iid="child")
    links = {l.incident_id: l for l in link([total, child], [event({"payment_method": "paypal"})])}
    assert set(links) == {"total", "child"}
    assert links["total"].scope_match == "slice below" and links["total"].score < links["child"].score


# -- time window edges -----------------------------------------------------------------------------------
@pytest.mark.parametrize("lag,linked", [
    (DAY, True),                              # exactly the window before: in
    (DAY + dt.timedelta(seconds=1), False),   # a second more: out
    (dt.timedelta(0), True),                  # at the start
    (-(DAY - dt.timedelta(seconds=1)), True),  # inside the incident's first bucket
    (-DAY, False),                            # at the end of the first bucket: after the change began
])
def test_window_edges_for_a_day_bucket(lag, linked):
    assert bool(link([incident({"payment_method": "paypal"})], [event({"payment_method": "paypal"}, at=S - lag)])) is linked


def test_after_lets_an_event_follow_an_estimated_start_and_the_bucket_is_the_minimum():
    hourly = incident({"payment_method": "paypal"}, metric="decline_hourly")
    late = event({"payment_method": "paypal"}, at=S + 2 * HOUR + dt.timedelta(minutes=20))
    assert link([hourly], [late]) == []
    [l] = link([hourly], [late], after=6 * HOUR)
    assert l.lag == -(2 * HOUR + dt.timedelta(minutes=20)) and l.score == pytest.approx(1.0)
    assert link([hourly], [event({"payment_method": "paypal"}, at=S + 6 * HOUR)], after=6 * HOUR) == []


def test_closer_events_score_higher_and_the_window_is_configurable():
    inc = incident({"payment_method": "paypal"})
    near, far = event({"payment_method": "paypal"}, at=S - HOUR, eid="near"), event(
        {"payment_method": "paypal"}, at=S - 20 * HOUR, eid="far")
    links = link([inc], [far, near])
    assert [l.event_id for l in links] == ["near", "far"] and links[0].score > links[1].score
    assert [l.event_id for l in link([inc], [far, near], window=6 * HOUR)] == ["near"]


# -- expected events ---------------------------------------------------------------------------------------
def promo(**kw):
    kw.setdefault("at", S - DAY)
    kw.setdefault("until", S + 2 * DAY)
    return event(kw.pop("scope", {}), metrics=kw.pop("metrics", ["orders"]), expected=True, kind="promotion",
                 eid="promo", **kw)


def links_as_read(incident_row, links, events):
    """What monitor.events.store.read_links returns for one incident."""
    by_id = {e.event_id: e for e in events}
    return [{**by_id[l.event_id].to_dict(), "expected_here": l.expected, "score": l.score,
             "lag_seconds": l.lag.total_seconds(), "during": l.during} for l in links]


@pytest.mark.parametrize("start,metric,scope,segment,quiet", [
    (S, "orders", {}, {}, True),                                    # inside the window, a named metric
    (S - DAY, "orders", {}, {}, True),                              # at the window's first instant
    (S - DAY - DAY, "orders", {}, {}, False),                       # a bucket before the window
    (S + 2 * DAY, "orders", {}, {}, False),                         # at its (exclusive) end
    (S, "decline_rate", {}, {}, False),                             # a metric it does not name
    (S, "orders", {"country": "BR"}, {"country": "BR"}, True),      # in scope
    (S, "orders", {"country": "BR"}, {"country": "US"}, False),     # out of scope
    (S, "orders", {"country": "BR", "channel": "app"}, {"country": "BR", "channel": "app", "seller": "X"}, True),
    # overlapping the scope is not lying inside it: a seller attack during a BR & app promotion pages
    (S, "orders", {"country": "BR", "channel": "app"}, {"country": "BR", "seller": "X"}, False),
    (S, "orders", {"country": "BR", "channel": "app"}, {"country": "BR"}, False),
])
def test_an_expected_event_quiets_only_inside_its_window_and_scope(start, metric, scope, segment, quiet):
    inc = incident(segment, metric=metric, start=start)
    events = [promo(scope=scope)]
    links = link([inc], events, window=DAY)
    reason = expected_reason(inc, links_as_read(inc, links, events), now=start + DAY, grace=DAY)
    assert (reason is not None) is quiet
    if quiet:
        assert reason.startswith("expected: promotion")


def test_an_expected_incident_still_open_after_the_window_and_grace_pages_again():
    inc = incident({}, metric="orders", start=S)
    events = [promo()]
    read = links_as_read(inc, link([inc], events), events)
    end = S + 2 * DAY
    assert expected_reason(inc, read, now=end + DAY - dt.timedelta(seconds=1), grace=DAY) is not None
    assert expected_reason(inc, read, now=end + DAY, grace=DAY) is None
    assert expected_reason(dataclasses.replace(inc, status="resolved"), read, now=end + 5 * DAY, grace=DAY) is not None


def test_describe_doctests():
    import doctest

    import monitor.events.describe

    result = doctest.testmod(monitor.events.describe)
    assert result.attempted >= 2 and result.failed == 0


def test_every_events_setting_is_documented():
    from pathlib import Path

    from monitor.events.settings import SETTINGS

    doc = (Path(__file__).resolve().parents[1] / "docs" / "events.md").read_text()
    assert [k for k in SETTINGS if f"| `{k}` |" not in doc] == []
