"""Alertmanager semantics: grouping, repeat, resolve, inhibition, silences, quiet incidents.

The first tests run the whole cycle on a real store file (incidents written by
SQL, messages read back from the outbox); the rules that need many cycles run
the same engine in memory (``Sim``), which keeps them fast.
"""
from __future__ import annotations

import datetime as dt

import pytest
from alert_fixtures import T0, Recorder, Sim, add_incident, config, make_store, resolve, update_incident

from monitor.alert import add_silence, expire_silence, outbox_entries, run_alert_cycle
from monitor.alert.config import parse_alert_config
from monitor.incident import Incident

MIN = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)


@pytest.fixture
def store(tmp_path):
    return make_store(tmp_path)


@pytest.fixture
def ops():
    return Recorder("ops")


def cycle(store, cfg, ops, at):
    return run_alert_cycle(store, cfg, now=at, notifiers={"ops": ops})


# -- on the store ---------------------------------------------------------------------------------
def test_burst_of_slice_incidents_on_one_metric_is_one_message(store, ops):
    for country in ("BR", "MX", "AR"):
        add_incident(store, segment={"country": country})
    add_incident(store, "signup_count", {"country": "US"}, baseline=100, observed=180)
    result = cycle(store, config(), ops, T0)
    messages = ops.take()
    assert len(messages) == 2 == len(result.flush.sent)
    fraud = next(m for m in messages if m["group_labels"] == {"metric": "fraud_rate"})
    assert sorted(a["slice"] for a in fraud["alerts"]) == ["country=AR", "country=BR", "country=MX"]
    assert fraud["reason"] == "new" and fraud["status"] == "firing"
    cycle(store, config(), ops, T0)  # the same cycle again sends nothing new
    assert ops.take() == []
    assert [e.status for e in outbox_entries(store)] == ["sent", "sent"]


def test_ongoing_incident_repeats_after_repeat_interval_not_every_cycle(store, ops):
    cfg = config(repeat_interval="4h")
    add_incident(store)
    for at in (T0, T0 + HOUR, T0 + 3 * HOUR + 59 * MIN):
        cycle(store, cfg, ops, at)
    assert [m["reason"] for m in ops.take()] == ["new"]
    cycle(store, cfg, ops, T0 + 4 * HOUR)
    [repeat] = ops.take()
    assert repeat["reason"] == "repeat" and repeat["summary"].startswith("[STILL FIRING]")


def test_acknowledged_incident_is_not_repeated_but_still_resolves(store, ops):
    cfg = config(repeat_interval="1h")
    incident = add_incident(store)
    cycle(store, cfg, ops, T0)
    assert len(ops.take()) == 1
    update_incident(store, incident, acked_by="ana", acked_at=T0)
    cycle(store, cfg, ops, T0 + 30 * HOUR)
    assert ops.take() == []
    resolve(store, incident, at=T0 + 31 * HOUR)
    cycle(store, cfg, ops, T0 + 31 * HOUR)
    [notice] = ops.take()
    assert notice["status"] == "resolved" and notice["alerts"][0]["quiet"] == "acknowledged by ana"


def test_resolved_notice_then_the_group_is_closed(store, ops):
    incident = add_incident(store)
    cycle(store, config(), ops, T0)
    ops.take()
    resolve(store, incident, at=T0 + HOUR)
    cycle(store, config(), ops, T0 + HOUR)
    [notice] = ops.take()
    assert notice["status"] == "resolved" and notice["reason"] == "resolved"
    assert notice["alerts"][0]["resolution"] == "recovered"
    with store.connect() as con:
        assert con.execute("SELECT count(*) FROM alert_groups").fetchone()[0] == 0
    cycle(store, config(), ops, T0 + 30 * HOUR)
    assert ops.take() == []


def test_total_incident_carries_its_slices_in_one_alert(store, ops):
    total = add_incident(store)
    for country in ("BR", "MX"):
        add_incident(store, segment={"country": country}, parent=total)
    result = cycle(store, config(group_by=["metric", "country"]), ops, T0)
    [message] = ops.take()  # the slices have groups of their own but ride inside the total
    [alert] = message["alerts"]
    assert alert["slice"] == "" and sorted(c["slice"] for c in alert["children"]) == ["country=BR", "country=MX"]
    assert len(result.inhibited) == 2 and message["summary"].endswith("+ 2 slices")


def test_silence_mutes_matching_incidents_until_it_is_expired(store, ops):
    add_incident(store, segment={"country": "BR"})
    add_incident(store, segment={"country": "MX"})
    silence = add_silence(store, matchers=["metric=fraud_rate", "country=~BR|AR"], author="ana",
                          comment="BR carnival promo", now=T0, duration=dt.timedelta(hours=6))
    result = cycle(store, config(), ops, T0)
    [message] = ops.take()
    assert [a["slice"] for a in message["alerts"]] == ["country=MX"] and len(result.silenced) == 1
    expire_silence(store, silence.silence_id, now=T0 + HOUR)
    cycle(store, config(), ops, T0 + HOUR)
    [update] = ops.take()
    assert {a["slice"] for a in update["alerts"]} == {"country=BR", "country=MX"}


def test_disabled_or_missing_alerts_section_does_nothing(store, ops):
    add_incident(store)
    assert not run_alert_cycle(store, parse_alert_config({}), now=T0).enabled
    cfg = parse_alert_config({"enabled": False, "receivers": [{"name": "ops", "type": "console"}]})
    assert not run_alert_cycle(store, cfg, now=T0, notifiers={"ops": ops}).enabled
    assert ops.take() == []


# -- in memory: the same engine, many cycles ------------------------------------------------------
def test_group_by_every_label_sends_one_message_per_incident():
    sim = Sim(config(group_by="..."))
    sim.add(segment={"country": "BR"})
    sim.add(segment={"country": "MX"})
    assert len(sim.step(T0)) == 2


def test_group_wait_collects_incidents_arriving_in_the_next_cycles():
    sim = Sim(config(group_wait="10m"))
    sim.add(segment={"country": "BR"})
    assert sim.step(T0) == []  # the group waits for the rest of the burst
    sim.add(segment={"country": "MX"})
    assert sim.step(T0 + 5 * MIN) == []
    [message] = sim.step(T0 + 10 * MIN)
    assert {a["slice"] for a in message["alerts"]} == {"country=BR", "country=MX"}


def test_new_incident_in_a_notified_group_waits_for_group_interval():
    sim = Sim(config(group_interval="30m"))
    sim.add(segment={"country": "BR"})
    assert len(sim.step(T0)) == 1
    sim.add(segment={"country": "MX"})
    assert sim.step(T0 + 10 * MIN) == []
    [update] = sim.step(T0 + 30 * MIN)
    assert update["reason"] == "update" and len(update["alerts"]) == 2


@pytest.mark.parametrize("human", [{"acked_by": "ana"}, {"label": "false_alarm"}, {"label": "expected"}])
def test_quiet_incidents_do_not_repeat_but_resolve(human):
    sim = Sim(config(repeat_interval="1h"))
    incident = sim.add()
    assert len(sim.step(T0)) == 1
    sim.update(incident, **human)
    assert sim.step(T0 + 2 * HOUR) == [] and sim.step(T0 + 30 * HOUR) == []
    sim.resolve(incident, at=T0 + 31 * HOUR)
    [notice] = sim.step(T0 + 31 * HOUR)
    assert notice["status"] == "resolved" and notice["alerts"][0]["quiet"]


@pytest.mark.parametrize("human", [{"acked_by": "ana"}, {"label": "false_alarm"}, {"label": "expected"}])
def test_incident_marked_before_its_first_alert_never_pages(human):
    sim = Sim(config())
    sim.add(**human)
    assert sim.step(T0) == [] and sim.step(T0 + 48 * HOUR) == []


def test_true_positive_label_changes_nothing():
    sim = Sim(config(repeat_interval="1h"))
    sim.add(label="true_positive")
    assert len(sim.step(T0)) == 1 and len(sim.step(T0 + HOUR)) == 1


def test_quiet_incident_rides_along_when_its_group_sends_for_another_reason():
    sim = Sim(config())
    sim.add(segment={"country": "BR"}, acked_by="ana")
    sim.add(segment={"country": "MX"})
    [message] = sim.step(T0)
    assert {a["slice"]: a["quiet"] for a in message["alerts"]} == {"country=BR": "acknowledged by ana",
                                                                    "country=MX": None}


def test_repeat_is_not_queued_while_an_earlier_message_is_undelivered():
    from monitor.alert.planner import plan_notifications, prepare_alerts
    from alert_fixtures import HEADERS

    sim = Sim(config(repeat_interval="1h"))
    sim.add()
    sim.step(T0)
    [(key, state)] = sim.groups.items()
    alerts = prepare_alerts([Incident.from_row(r) for r in sim.incidents.values()], HEADERS, []).top_level
    assert plan_notifications(alerts, sim.groups, sim.cfg, now=T0 + 2 * HOUR, undelivered={key}).messages == []
    assert len(plan_notifications(alerts, sim.groups, sim.cfg, now=T0 + 2 * HOUR).messages) == 1


def test_send_resolved_false_closes_silently():
    sim = Sim(config(send_resolved=False))
    incident = sim.add()
    sim.step(T0)
    sim.resolve(incident, at=T0 + HOUR)
    assert sim.step(T0 + HOUR) == [] and sim.groups == {}


def test_one_resolved_among_firing_is_an_update_listing_both():
    sim = Sim(config())
    br = sim.add(segment={"country": "BR"})
    sim.add(segment={"country": "MX"})
    sim.step(T0)
    sim.resolve(br, at=T0 + HOUR)
    [update] = sim.step(T0 + HOUR)
    assert update["reason"] == "update" and update["status"] == "firing"
    assert [(a["slice"], a["status"]) for a in update["alerts"]] == [("country=MX", "firing"),
                                                                      ("country=BR", "resolved")]


def test_inhibition_can_be_turned_off():
    sim = Sim(config(inhibit_slices=False))
    total = sim.add()
    sim.add(segment={"country": "BR"}, parent=total)
    [message] = sim.step(T0)
    assert len(message["alerts"]) == 2 and all(not a.get("children") for a in message["alerts"])


def test_new_slice_under_a_notified_total_does_not_page_again():
    sim = Sim(config(repeat_interval="24h"))
    total = sim.add()
    sim.step(T0)
    sim.add(segment={"country": "BR"}, parent=total)
    assert sim.step(T0 + HOUR) == []  # inhibited: it will be in the total's next message
    [repeat] = sim.step(T0 + 24 * HOUR)
    assert [c["slice"] for c in repeat["alerts"][0]["children"]] == ["country=BR"]


def test_slice_alerts_on_its_own_when_its_total_resolves():
    sim = Sim(config())
    total = sim.add()
    sim.add(segment={"country": "BR"}, parent=total)
    sim.step(T0)
    sim.resolve(total, at=T0 + HOUR)
    [update] = sim.step(T0 + HOUR)
    assert [(a["slice"], a["status"]) for a in update["alerts"]] == [("country=BR", "firing"), ("", "resolved")]


def test_silence_ends_by_itself_at_its_expiry():
    sim = Sim(config())
    sim.add()
    sim.silence("metric=fraud_rate", start=T0, end=T0 + 2 * HOUR)
    assert sim.step(T0 + HOUR) == []
    assert len(sim.step(T0 + 2 * HOUR)) == 1


def test_silenced_total_also_hides_its_slices():
    sim = Sim(config())
    total = sim.add()
    sim.add(segment={"country": "BR"}, parent=total)
    sim.silence("metric=fraud_rate", "scope=total", start=T0, end=T0 + 24 * HOUR)
    assert sim.step(T0) == []


def test_incident_silenced_after_its_alert_is_dropped_without_a_resolved_notice():
    sim = Sim(config())
    sim.add(segment={"country": "BR"})
    sim.step(T0)
    sim.silence("country=BR", start=T0 + HOUR, end=T0 + 3 * HOUR)
    assert sim.step(T0 + HOUR) == [] and sim.groups == {}
    [again] = sim.step(T0 + 3 * HOUR)  # still open when the silence ends: alerts as new
    assert again["reason"] == "new"


def test_routes_send_one_incident_to_several_receivers():
    cfg = config([{"name": "ops", "type": "console"}, {"name": "pager", "type": "console"}],
                 route={"receiver": "ops", "routes": [
                     {"match": {"severity": "high"}, "receiver": "pager", "continue": True},
                     {"match": {"team": "payments"}, "receiver": "ops"}]})
    sim = Sim(cfg)
    sim.add()
    sim.add("signup_count", {"country": "US"}, baseline=100, observed=200)
    got = sorted((m["receiver"], m["alerts"][0]["metric"]) for m in sim.step(T0))
    assert got == [("ops", "fraud_rate"), ("ops", "signup_count"), ("pager", "fraud_rate")]


def test_fingerprint_is_stable_per_incident_and_differs_between_episodes():
    from alert_fixtures import incident_row

    def fingerprint(row):
        return Incident.from_row(row).fingerprint

    a = incident_row(segment={"country": "BR"}, start=T0)
    assert fingerprint(a) == fingerprint(dict(a)) == a["incident_id"]
    assert fingerprint(a) != fingerprint(incident_row(segment={"country": "BR"}, start=T0 + HOUR))
    assert fingerprint(a) != fingerprint(incident_row(start=T0))


def test_group_state_keyed_by_the_old_16_character_fingerprints_carries_on(store, ops):
    """Stores written before the fingerprint became the incident id: the notified incident is
    neither announced again nor loses its resolved notice."""
    import hashlib
    import json

    cfg = config(group_wait="0s", repeat_interval="1d")
    inc = add_incident(store, segment={"country": "BR"})
    run_alert_cycle(store, cfg, now=T0, notifiers={"ops": ops})
    assert len(ops.take()) == 1
    old = hashlib.sha256("\x1f".join(["fraud_rate", "country=BR", inc["start_ts"].isoformat()]).encode()).hexdigest()[:16]
    with store.connect() as con:
        con.execute("UPDATE alert_groups SET notified_json = ?", [json.dumps({old: inc["incident_id"]})])
    run_alert_cycle(store, cfg, now=T0 + HOUR, notifiers={"ops": ops})
    assert ops.take() == []  # not "new" again
    resolve(store, inc, at=T0 + 2 * HOUR)
    run_alert_cycle(store, cfg, now=T0 + 2 * HOUR, notifiers={"ops": ops})
    [message] = ops.take()
    assert [(a["incident_id"], a["status"]) for a in message["alerts"]] == [(inc["incident_id"], "resolved")]


def test_fixture_incidents_carry_the_ids_detection_writes():
    from alert_fixtures import incident_id as fixture_id
    from monitor.incident import incident_id

    start = dt.datetime(2026, 3, 1)
    assert fixture_id("fraud_rate", "country=BR", start) == incident_id("fraud_rate", "country=BR", start)
    assert len(fixture_id("fraud_rate", "", start)) == 12
