"""find_batch's rows with gaps, standardised together, give what the 1-D search gives each."""
import numpy as np

from monitor.detect.changepoint import find_change_points
from monitor.detect.shifts import MIN_SIZE, find_batch


def test_gap_rows_match_the_one_series_search():
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(300, 120))
    rows[::3, 60:] += rng.uniform(1, 4, size=(100, 1))  # a level shift in a third of them
    rows[::7, 30:] *= 0  # some flat stretches
    rows[5] = 2.0  # a flat row
    gaps = rng.random(rows.shape) < rng.uniform(0.0, 0.6, size=(300, 1))
    gaps[:40] = False  # complete rows too
    gaps[40:45, 6:] = True  # too few points to search
    desea = np.where(gaps, np.nan, rows)
    got = find_batch(desea)
    expected = [find_change_points(r, model="mean", period=None, min_size=MIN_SIZE)
                for r in desea[40:]]
    assert got.points[40:] == expected
    assert sum(map(len, expected)) > 50  # the test sees real change points
    with_gaps = np.flatnonzero(gaps.any(axis=1))
    with_gaps = with_gaps[with_gaps >= 45]
    assert not got.screened[40:45].any() and got.screened[with_gaps].all()
