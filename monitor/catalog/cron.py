"""A metric's schedule as times: the last fire at or before `now`, and the next one.

Times in and out are naive UTC (the store's convention); the cron expression
is read in the metric's timezone, so "0 6 * * *" in Europe/Berlin follows
daylight saving time.
"""
from __future__ import annotations

import datetime as dt
import zoneinfo
from functools import lru_cache

from apscheduler.triggers.cron import CronTrigger

from monitor.clock import utc_naive

UTC = dt.timezone.utc
# Look this far back for the previous fire, widening step by step so a minutely cron costs
# at most ~60 iterations and a yearly one still resolves.
_SPANS = (dt.timedelta(hours=1), dt.timedelta(days=1), dt.timedelta(days=8), dt.timedelta(days=32),
          dt.timedelta(days=367))


_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # standard cron numbering: 0 (and 7) = Sunday


@lru_cache(maxsize=512)
def cron_trigger(schedule: str, timezone: str) -> CronTrigger:
    """The APScheduler trigger of a standard 5-field cron expression in `timezone`.

    APScheduler 3 numbers weekdays from Monday (0 = Monday) while cron numbers
    them from Sunday, so "0 9 * * 1" would fire on Tuesdays if passed through;
    the weekday field is rewritten as day names, which both read the same way.
    """
    minute, hour, day, month, weekday = schedule.split()
    return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=cron_weekdays(weekday),
                       timezone=zoneinfo.ZoneInfo(timezone))


def cron_weekdays(field: str) -> str:
    """A cron day-of-week field ('1-5', '0,6', '*/2', 'mon-fri') as APScheduler day names."""
    if field in ("*", "?"):
        return "*"

    def value(token: str) -> int:
        token = token.strip().lower()
        if token.isdigit() and 0 <= int(token) <= 7:
            return int(token)
        if token[:3] in _DAYS:
            return _DAYS.index(token[:3])
        raise ValueError(f"bad day of week {token!r}")

    days: set[int] = set()
    for part in field.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
        if part == "*":
            low, high = 0, 6
        elif "-" in part:
            low, high = (value(x) for x in part.split("-", 1))
        else:
            low = value(part)
            high = 6 if step != 1 else low
        days.update(d % 7 for d in range(low, high + 1, step))
    return ",".join(_DAYS[d] for d in sorted(days))


def _aware(ts: dt.datetime) -> dt.datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)



def next_fire_time(schedule: str, timezone: str, now: dt.datetime) -> dt.datetime | None:
    """First fire strictly after `now` (naive UTC)."""
    trigger = cron_trigger(schedule, timezone)
    nxt = trigger.get_next_fire_time(None, _aware(now) + dt.timedelta(microseconds=1))
    return utc_naive(nxt) if nxt else None


def last_fire_time(schedule: str, timezone: str, now: dt.datetime) -> dt.datetime | None:
    """Latest fire at or before `now` (naive UTC), or None if it did not fire in the past year.

    A scheduled run computes the windows that were complete at its fire time;
    a catch-up after downtime uses the last fire, so a metric scheduled at
    06:00 (because its source lands at 05:00) is never computed at 03:00 from
    a half-loaded source just because `serve` restarted then.
    """
    trigger = cron_trigger(schedule, timezone)
    end = _aware(now)
    for span in _SPANS:
        fire = trigger.get_next_fire_time(None, end - span)
        last = None
        while fire is not None and fire <= end:
            last = fire
            fire = trigger.get_next_fire_time(fire, fire + dt.timedelta(seconds=1))
        if last is not None:
            return utc_naive(last)
    return None
