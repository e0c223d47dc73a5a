"""benchmarks/cycle_replay.py's revision depth: how far back a later cycle changed an earlier
cycle's verdicts (the horizon a resumed judge state would need)."""
from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from cycle_replay import revision_depths  # noqa: E402

DAY = dt.timedelta(days=1)
T = dt.datetime(2026, 9, 1)  # the earlier cycle's end: its newest bucket is T - 1 day


def row(label: str, start_days_back: int, end_days_back: int | None, direction: str = "up") -> dict:
    return {"slice": label, "direction": direction, "start_ts": T - start_days_back * DAY,
            "end_ts": None if end_days_back is None else T - end_days_back * DAY}


def test_the_same_verdicts_are_no_revision_even_when_the_later_cycle_goes_on():
    earlier = [row("", 5, None), row("country=DE", 20, 17)]
    # the later cycle sees one more day: the open incident goes on past T, which is not a revision
    later = [row("", 5, None), row("country=DE", 20, 17)]
    assert revision_depths(earlier, later, T, DAY) == []


def test_a_shift_found_later_is_dated_back_to_its_start():
    earlier = [row("", 30, 28)]
    later = [row("", 30, 28), row("channel=web & country=DE", 6, None, "down")]
    assert revision_depths(earlier, later, T, DAY) == [(6, "channel=web & country=DE", "dated back")]


def test_a_withdrawn_or_shortened_incident_counts_from_its_oldest_changed_bucket():
    earlier = [row("country=FR", 9, None), row("", 3, 1)]
    later = [row("country=FR", 9, 4), row("", 3, 1, "down")]
    got = sorted(revision_depths(earlier, later, T, DAY))
    # FR: buckets T-4 .. T-1 no longer covered (4 back); the total: "up" withdrawn from 3 back,
    # "down" dated back to 3 back
    assert got == [(3, "", "dated back"), (3, "", "withdrawn"), (4, "country=FR", "withdrawn")]


def test_hourly_buckets_count_in_hours():
    hour = dt.timedelta(hours=1)
    earlier: list[dict] = []
    later = [{"slice": "", "direction": "up", "start_ts": T - 30 * hour, "end_ts": T + 5 * hour}]
    assert revision_depths(earlier, later, T, hour) == [(30, "", "dated back")]
