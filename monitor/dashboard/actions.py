"""What the on-call can do from the dashboard: acknowledge, label, silence.

These are the dashboard's only writes; each opens one short write connection.
Acknowledgements and labels live on the incident row (the alerts and detection
read them: a false alarm is not kept out of the baseline); silences go through
:mod:`monitor.alert.silences`, so `monitor silence list` and the alert cycle see them.
"""
from __future__ import annotations

import datetime as dt

from monitor.dashboard.queries import STORE_LOCK
from monitor.errors import MonitorError
from monitor.incident import Incident
from monitor.store import Store

LABEL_CHOICES = ("true_positive", "false_alarm", "expected")


def acknowledge(store: Store, incident_id: str, *, by: str, now: dt.datetime) -> None:
    """Mark the incident as taken by `by` (someone is on it)."""
    by = _who(by)
    with STORE_LOCK, store.connect() as con:
        _require(con, incident_id)
        con.execute("UPDATE incidents SET acked_by = ?, acked_at = ?, updated_at = ? WHERE incident_id = ?",
                    [by, now, now, incident_id])


def set_label(store: Store, incident_id: str, label: str, *, by: str, now: dt.datetime) -> None:
    """Record the verdict: true_positive, false_alarm or expected."""
    if label not in LABEL_CHOICES:
        raise MonitorError(f"Unknown label {label!r}; choose one of {', '.join(LABEL_CHOICES)}.")
    by = _who(by)
    with STORE_LOCK, store.connect() as con:
        _require(con, incident_id)
        con.execute("UPDATE incidents SET label = ?, labelled_by = ?, labelled_at = ?, updated_at = ?"
                    " WHERE incident_id = ?", [label, by, now, now, incident_id])


def silence_incident(store: Store, incident: Incident, *, scope: str, author: str, comment: str,
                     duration: dt.timedelta, now: dt.datetime):
    """Silence alerts of this incident's series (scope 'slice') or of the whole metric ('metric').

    Returns the :class:`monitor.alert.silences.Silence` created.
    """
    from monitor.alert.matchers import make_matcher
    from monitor.alert.silences import add_silence

    if scope not in ("slice", "metric"):
        raise MonitorError(f"Unknown silence scope {scope!r}; choose 'slice' or 'metric'.")
    matchers = [make_matcher("metric", "=", incident.metric, where="silence")]
    if scope == "slice":
        matchers.append(make_matcher("slice", "=", incident.slice, where="silence"))
    with STORE_LOCK:
        return add_silence(store, matchers=matchers, author=_who(author), comment=comment, now=now,
                           duration=duration)


def _who(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise MonitorError("Say who you are (your name or handle) before acting on an incident.")
    return name


def _require(con, incident_id: str) -> None:
    if not con.execute("SELECT count(*) FROM incidents WHERE incident_id = ?", [incident_id]).fetchone()[0]:
        raise MonitorError(f"No incident with id {incident_id!r} in the store.")
