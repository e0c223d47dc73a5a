"""Every `monitor` command starts a process, the alert cycle's and the report's included:
importing the CLI and judging an explanation's evidence must not pull in scipy.stats (~0.4 s
of imports, 40 % of the CLI's start); scipy.special has the same functions. (A detection
imports it anyway, through the judge's Student-t table in tails.py; not through ruptures,
see tests/test_changepoint_pelt.py.)"""
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
