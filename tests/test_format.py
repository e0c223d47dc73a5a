"""monitor/format.py: one style for values, rates, changes, counts, times and missing values,
and the surfaces that print them agreeing on it."""
from __future__ import annotations

import datetime as dt
import doctest
import math

import pandas as pd
import pytest

import monitor.format
from monitor.format import (MISSING, format_change, format_count, format_delta, format_duration, format_number,
                            format_rate, format_relative, format_share, format_timestamp, format_value, is_rate)


def test_doctests():
    result = doctest.testmod(monitor.format)
    assert result.attempted >= 8 and result.failed == 0


@pytest.mark.parametrize("x", [None, float("nan"), math.inf, pd.NaT, pd.NA])
def test_missing_reads_the_same_everywhere(x):
    assert {format_value(x, kind="ratio"), format_value(x, kind="sum"), format_rate(x), format_number(x),
            format_delta(x, kind="ratio"), format_relative(x), format_share(x), format_count(x),
            format_timestamp(x), format_change(x, x)} == {MISSING} == {"n/a"}


@pytest.mark.parametrize("x, text", [(0.0345, "3.45%"), (0.123, "12.3%"), (0.0012, "0.120%"), (0.00005, "0.0050%"),
                                     (0.0, "0.00%"), (-0.02, "-2.00%")])
def test_rates_keep_three_significant_digits(x, text):
    assert format_rate(x) == format_value(x, kind="ratio") == format_value(x, unit="percent") == text


def test_the_kind_and_unit_pick_the_format_in_one_place():
    assert is_rate(kind="ratio") and is_rate(kind="ratio", unit="percent") and is_rate(unit="percent")
    assert not is_rate(kind="sum") and not is_rate(kind="ratio", unit="count")
    assert format_value(0.0345, kind="sum") == "0.0345"  # a sum of small amounts is not a rate
    assert format_value(1234.5, kind="sum", unit="currency") == "1,234.50"
    assert format_value(12345.0, kind="sum", unit="count") == "12,345" == format_count(12345.2)
    assert format_value(7.0) == "7" and format_value(0.254) == "0.254" and format_value(-250.4) == "-250"


def test_changes_relative_and_in_points():
    assert format_relative(0.42) == "+42.0%" and format_relative(-0.031) == "-3.1%"
    assert format_relative(2.5) == "+250%" and format_relative(15) == "+1,500%"
    assert format_delta(0.005, kind="ratio") == "+0.50 pp" and format_delta(0.00001, unit="percent") == "+0.0010 pp"
    assert format_delta(-1204, kind="sum") == "-1,204" and format_delta(0.25) == "+0.25"
    assert format_change(0.42, 0.005, kind="ratio") == "+42.0% (+0.50 pp)"
    assert format_change(0.42, 120, kind="sum") == "+42.0%"
    assert format_change(None, 0.005, kind="ratio") == "+0.50 pp"  # from 0: the absolute change alone


def test_shares_times_and_durations():
    assert [format_share(x) for x in (0.62, 0.07, 0.0, 1.06)] == ["62%", "7.0%", "0%", "106%"]
    day, hour = dt.datetime(2026, 3, 2), dt.datetime(2026, 3, 2, 6, 5)
    assert format_timestamp(day, grain="day") == "2026-03-02" and format_timestamp(day) == "2026-03-02 00:00"
    assert format_timestamp(hour, grain="day") == "2026-03-02 06:05"  # never hides a time of day
    assert format_timestamp(pd.Timestamp(hour), utc=True) == "2026-03-02 06:05 UTC"
    assert format_timestamp(dt.date(2026, 3, 2)) == "2026-03-02"
    assert [format_duration(dt.timedelta(minutes=m)) for m in (45, 330, 26 * 60, 75 * 60)] == [
        "45m", "5h 30m", "26h", "3d 3h"]


def test_surfaces_print_a_rate_alike(tmp_path):
    """The CLI table, `monitor explain`, Slack/console and the report read 0.0345 as 3.45%."""
    from monitor.alert.message import alert_value
    from monitor.attribute.render import render_text
    from monitor.dashboard.formatting import format_value as dashboard_value
    from monitor.report.wording import incident_change
    from tests.test_explain import DIMS, _card_attack
    from monitor.attribute.explain import explain

    assert alert_value({"observed": 0.0345, "metric_kind": "ratio", "unit": "percent"}, "observed") == "3.45%"
    assert dashboard_value(0.0345, unit="percent") == "3.45%"
    text = render_text(explain(_card_attack(), DIMS, "ratio", baseline_label="b"))
    assert " %" not in text and "%" in text
    view = type("V", (), {"relative_change": 0.5, "baseline": 0.023, "observed": 0.0345, "direction": "up"})
    assert incident_change(view, "percent") == "▲ +50.0% (2.30% → 3.45%)"
