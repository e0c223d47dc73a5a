"""A small daily decline-rate world for detection tests: countries x payment methods, volumes
falling off by country, a 5 % rate, and optionally C03 & card at 20 % over some days."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa

METRIC = """\
/* ---
name: decline_rate
kind: ratio
grain: day
dimensions: [country, method]
schedule: "0 6 * * *"
--- */
SELECT ts, country, method, numerator, denominator FROM t WHERE ts >= $start AND ts < $end
"""
START = dt.datetime(2026, 1, 5)
METHODS = ("card", "paypal", "bnpl")


def countries(n: int) -> list[str]:
    return [f"C{i:02d}" for i in range(n)]


def decline_leaves(*, days: int, n_countries: int, seed: int, attack: tuple[int, int] | None,
                   keep: range | None = None) -> pa.Table:
    """Leaf rows of days [0, days); `keep`: only these days, with the draws of the whole world
    (a day's rows are the same whichever days are asked for)."""
    rng = np.random.default_rng(seed)
    day, c, m = (a.ravel() for a in np.meshgrid(np.arange(days), np.arange(n_countries), np.arange(len(METHODS)),
                                                indexing="ij"))
    den = rng.poisson(3000.0 / (1 + c) * np.array([0.5, 0.3, 0.2])[m])
    rate = np.full(den.shape, 0.05)
    if attack:
        rate[(c == 3) & (m == 0) & (day >= attack[0]) & (day < attack[1])] = 0.2
    num = rng.binomial(den, rate)
    rows = np.isin(day, np.asarray(keep)) if keep is not None else np.ones(day.size, bool)
    return pa.Table.from_pandas(pd.DataFrame({
        "ts": [START + dt.timedelta(days=int(d)) for d in day[rows]],
        "country": np.array(countries(n_countries))[c[rows]], "method": np.array(METHODS)[m[rows]],
        "numerator": num[rows].astype(float), "denominator": den[rows].astype(float)}), preserve_index=False)
