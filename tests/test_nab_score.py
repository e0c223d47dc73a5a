"""NAB's scoring rules on small hand-computed cases (benchmarks/nab_score.py).

S(y) = 2 / (1 + exp(5y)) - 1 = tanh(-5y/2), so the hand values below are tanh's.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from nab_score import PROFILES, normalised, probation_length, score_file, sigmoid  # noqa: E402

STD = PROFILES["standard"]
N = 1000  # probation: the first 150 records
WINDOW = [(400, 499)]  # 100 records wide


def test_sigmoid_values():
    assert sigmoid(-1.0) == pytest.approx(0.98661430)  # tanh(2.5)
    assert sigmoid(0.0) == pytest.approx(0.0)
    assert sigmoid(3.0) == pytest.approx(-0.99999939)  # tanh(-7.5): still the formula at 3
    assert sigmoid(3.0001) == -1.0


def test_true_positive_scores_by_how_early_it_came():
    left = score_file(N, WINDOW, [400], STD)
    assert left.score == pytest.approx(1.0)  # y = -100/100 = -1: exactly tp
    assert left.hit == 1 and left.fp_pages == 0
    # y = -(499 - 450 + 1)/100 = -0.5: tanh(1.25)/tanh(2.5)
    assert score_file(N, WINDOW, [450], STD).score == pytest.approx(0.85979257)
    # the right edge: y = -1/100: tanh(0.025)/tanh(2.5)
    assert score_file(N, WINDOW, [499], STD).score == pytest.approx(0.02533391)


def test_only_the_earliest_page_of_a_window_counts():
    assert score_file(N, WINDOW, [499, 450, 460], STD).score == pytest.approx(0.85979257)


def test_missed_window_costs_fn_weight():
    assert score_file(N, WINDOW, [], STD).score == pytest.approx(-1.0)
    low_fn = score_file(N, WINDOW, [], PROFILES["reward_low_fn"])
    assert low_fn.score == pytest.approx(-2.0)
    assert low_fn.null == -2.0 and low_fn.perfect == 1.0


def test_false_page_after_a_window_costs_little_then_full():
    # 50 records after the right end: y = 50/99, S = -tanh(2.5 * 50/99)
    s = score_file(N, WINDOW, [400, 549], STD)
    assert s.fp_pages == 1
    assert s.score == pytest.approx(1.0 - 0.11 * 0.85178653)
    # y = 297/99 = 3 exactly: the formula still applies; one more record and it is -1
    assert score_file(N, WINDOW, [400, 796], STD).score == pytest.approx(1.0 - 0.11 * 0.99999939)
    assert score_file(N, WINDOW, [400, 797], STD).score == pytest.approx(1.0 - 0.11)
    assert score_file(N, WINDOW, [400, 797], PROFILES["reward_low_fp"]).score == pytest.approx(1.0 - 0.22)


def test_false_page_with_no_window_before_costs_full_fp_weight():
    s = score_file(N, WINDOW, [200], STD)
    assert s.score == pytest.approx(-1.0 - 0.11)  # the window is missed too
    assert s.fp_pages == 1 and s.hit == 0
    # with two windows, a page between them is judged against the first one
    two = score_file(N, [(300, 349), (600, 649)], [300, 600, 360], STD)
    assert two.score == pytest.approx(2.0 - 0.11 * 0.50888539)  # y = 11/49: tanh(2.5 * 11/49)


def test_probation_pages_do_not_count():
    assert probation_length(1000) == 150
    assert probation_length(10_000) == 750  # 15 % capped at 750 records
    assert score_file(N, WINDOW, [149], STD).score == pytest.approx(-1.0)
    assert score_file(N, WINDOW, [150], STD).score == pytest.approx(-1.0 - 0.11)
    big = score_file(10_000, [(5000, 5099)], [749, 750], STD)
    assert big.fp_pages == 1


def test_normalisation_over_a_set_of_files():
    hit = score_file(N, WINDOW, [400], STD)  # +1
    missed = score_file(N, WINDOW, [200], STD)  # -1 - 0.11
    # null -2, perfect 2: 100 x (-0.11 + 2) / 4
    assert normalised([hit, missed]) == pytest.approx(47.25)
    assert normalised([score_file(N, WINDOW, [], STD)]) == pytest.approx(0.0)
    assert normalised([hit]) == pytest.approx(100.0)


def test_window_outside_the_file_is_an_error():
    with pytest.raises(ValueError):
        score_file(100, [(90, 120)], [], STD)


# ---------------------------------------------------------------- the replay's protocol (benchmarks/nab.py)
def _write(tmp_path, name, rows):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("timestamp,value\n" + "".join(f"{t},{v}\n" for t, v in rows))


def test_hourly_aggregation_stamps_and_windows(tmp_path):
    import numpy as np
    from nab import load_series

    # 20-minute records over hours 00, 01 and 03 (02 empty): 3 records an hour
    rows = [(f"2020-01-01 {h:02d}:{m:02d}:00", h * 10 + m // 20) for h in (0, 1, 3) for m in (0, 20, 40)]
    _write(tmp_path, "realKnownCause/nyc_taxi.csv", rows)
    _write(tmp_path, "realTraffic/speed.csv", rows)
    window = [["2020-01-01 00:40:00", "2020-01-01 01:20:00"]]
    summed = load_series(tmp_path, "realKnownCause/nyc_taxi.csv", window)
    averaged = load_series(tmp_path, "realTraffic/speed.csv", window)
    assert summed.how == "sum" and averaged.how == "mean"
    np.testing.assert_allclose(summed.hourly, [3, 33, np.nan, 93])
    np.testing.assert_allclose(averaged.hourly, [1, 11, np.nan, 31])
    # a page at the end of hour 00 lands on 01:00 (record 3); end of 01 and 02 on 03:00
    # (record 6); after hour 03 there is no record
    assert summed.stamp.tolist() == [3, 6, 6, -1]
    assert summed.windows == [(2, 4)]


def test_pages_are_rising_edges_stamped_after_the_hour(tmp_path):
    import numpy as np
    from nab import Trace, evaluate, load_series, page_hours

    assert page_hours(np.array([True, True, False, True, False])).tolist() == [0, 3]
    rows = [(f"2020-01-01 {h:02d}:00:00", 1.0) for h in range(6)]
    _write(tmp_path, "realTraffic/x.csv", rows)
    s = load_series(tmp_path, "realTraffic/x.csv", [["2020-01-01 02:00:00", "2020-01-01 03:00:00"]])
    n = s.hourly.size
    is_open = np.array([False, True, True, False, True, False])
    tr = Trace(is_open, np.zeros(n, int), np.zeros(n, int), np.ones(n, int), np.ones(n) * 5,
               np.zeros(n), np.zeros(n), np.ones(n))
    r = evaluate(s, tr)
    # open at hour 1 -> record 2 (inside the window); open again at hour 4 -> record 5 (outside)
    assert [(p["hour"], p["record"], p["in_window"]) for p in r.pages] == [(1, 2, True), (4, 5, False)]
    assert r.outside() == 1 and r.scores["standard"].hit == 1


def test_pages_outside_windows_are_counted_by_cause():
    from nab import Result

    def page(hour, direction="up", in_window=False):
        return {"hour": hour, "direction": direction, "in_window": in_window}

    pages = [page(10), page(100, in_window=True), page(110), page(120, "down"), page(200), page(300, "down"),
             page(330, "down")]
    r = Result("x", "sum", 1, 400, 17.0, [], pages, {}, 0.0)
    # 10: cold start; 110: 10 h after the in-window page, same direction; 120: other direction
    # 10 h after 110; 200, 300: alone; 330: 30 h after 300, so alone too
    assert r.causes() == {"first 60 h": 1, "a day after a page, same dir": 1, "a day after a page, other dir": 1,
                          "alone": 3}
