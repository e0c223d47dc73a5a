"""Schedules as times: the last fire at or before now (what a catch-up computes), and the next."""
from __future__ import annotations

import datetime as dt

import pytest

from monitor.scheduler import last_fire_time, next_fire_time


def t(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


@pytest.mark.parametrize("schedule, tz, now, last, nxt", [
    ("0 6 * * *", "UTC", "2026-03-10T07:00", "2026-03-10T06:00", "2026-03-11T06:00"),
    ("0 6 * * *", "UTC", "2026-03-10T06:00", "2026-03-10T06:00", "2026-03-11T06:00"),  # at the fire itself
    ("0 6 * * *", "UTC", "2026-03-10T05:59", "2026-03-09T06:00", "2026-03-10T06:00"),
    ("0 * * * *", "UTC", "2026-03-10T07:30", "2026-03-10T07:00", "2026-03-10T08:00"),
    ("* * * * *", "UTC", "2026-03-10T07:30:10", "2026-03-10T07:30", "2026-03-10T07:31"),
    ("0 0 1 * *", "UTC", "2026-03-10T07:00", "2026-03-01T00:00", "2026-04-01T00:00"),
    ("0 9 * * 1", "UTC", "2026-03-10T07:00", "2026-03-09T09:00", "2026-03-16T09:00"),  # Mondays
    # 06:00 in Berlin is 05:00 UTC in winter and 04:00 UTC from the DST switch on 2026-03-29.
    ("0 6 * * *", "Europe/Berlin", "2026-03-28T12:00", "2026-03-28T05:00", "2026-03-29T04:00"),
    ("0 6 * * *", "Europe/Berlin", "2026-03-29T04:30", "2026-03-29T04:00", "2026-03-30T04:00"),
    ("30 2 * * *", "America/Sao_Paulo", "2026-03-10T07:00", "2026-03-10T05:30", "2026-03-11T05:30"),
])
def test_last_and_next_fire(schedule, tz, now, last, nxt):
    assert last_fire_time(schedule, tz, t(now)) == t(last)
    assert next_fire_time(schedule, tz, t(now)) == t(nxt)


def test_a_schedule_that_never_fired_in_a_year_has_no_last_fire():
    assert last_fire_time("0 0 29 2 *", "UTC", t("2027-03-10T00:00")) is None  # Feb 29 only: 2028
    assert next_fire_time("0 0 29 2 *", "UTC", t("2027-03-10T00:00")) == t("2028-02-29T00:00")


@pytest.mark.parametrize("field, days", [
    ("*", "*"), ("1", "mon"), ("0", "sun"), ("7", "sun"), ("1-5", "mon,tue,wed,thu,fri"),
    ("0,6", "sun,sat"), ("*/2", "sun,tue,thu,sat"), ("MON-FRI", "mon,tue,wed,thu,fri"), ("5-7", "sun,fri,sat"),
])
def test_weekdays_are_read_as_cron_numbers_them(field, days):
    from monitor.catalog.cron import cron_weekdays

    assert cron_weekdays(field) == days
