"""Every `monitor` command starts a process, the alert cycle's and the report's included:
importing the CLI and judging an explanation's evidence must not pull in scipy.stats (~0.4 s
of imports, 40 % of the CLI's start); scipy.special has the same functions. Nor must a
detection (the judge's Student-t table, the hourly threshold; ruptures: see
tests/test_changepoint_pelt.py)."""
from __future__ import annotations

import subprocess
import sys
import textwrap


def test_cli_and_attribution_evidence_do_not_import_scipy_stats():
    code = textwrap.dedent("""
        import sys
        import monitor.cli  # noqa: F401
        import monitor.alert.cycle  # noqa: F401
        from monitor.attribute import count_evidence
        count_evidence.threshold(1500)
        print("scipy.stats" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_evidence_threshold_is_chi2_isf():
    from scipy.stats import chi2

    from monitor.attribute import count_evidence

    for n in (1, 30, 1500, 200_000):
        assert count_evidence.threshold(n) == chi2.isf(count_evidence.FAMILY_ALPHA / n, 1)


def test_a_detection_does_not_import_scipy_stats():
    code = textwrap.dedent("""
        import sys
        import numpy as np
        import monitor.pipeline  # noqa: F401
        from monitor.detect.options import DetectOptions
        from monitor.detect.series import detect_batch
        x = np.random.default_rng(0).poisson(100, (4, 24 * 30)).astype(float)
        x[1, 500:] *= 3  # a shift, so a change-point search runs
        detect_batch(x, options=DetectOptions(period=(24, 168)))
        detect_batch(x[:, ::24], options=DetectOptions(period=7))
        print("scipy.stats" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_band_widening_and_hourly_threshold_are_scipy_stats_values():
    import numpy as np
    from scipy.stats import norm, t

    from monitor.detect import rules, tails

    for threshold in (3.0, 4.0, 4.69, 5.2, 38.6):  # 38.6: a tail probability of 0, an infinite factor
        df = np.arange(tails.MAX_DF + 1, dtype=float)
        df[0] = 1.0
        expected = np.maximum(t.isf(tails._norm_sf(threshold), df) / threshold, 1.0)
        assert np.array_equal(tails._t_table(threshold), expected)
        assert rules.per_day_threshold(threshold, 24) == norm.isf(norm.sf(threshold) / 24)
