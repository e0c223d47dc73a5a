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
