"""Screening every two-dimension slice of a ratio metric, cheaply, for the few worth judging.

With 20,000 sellers x 3 channels no seller x channel pair reaches the pair volume floor,
so an attack on one of them hides below it. Here every pair of the dimension pairs the
floor narrowed is tested at once in numpy: for each bucket and window of 1, 2 or 4
buckets, the pair's numerator in the window against the pair's own trailing history
(up to HISTORY buckets before the window), by the exact conditional test of two Poisson
counts: given n = window + history counts, the window's count is Binomial(n, q) with q the
window's share of the denominator. The baseline rate is thus never assumed known, which is
what keeps a pair with a few frauds a month honest.

The threshold is Bonferroni over the tests of ALPHA_PER_30 false candidates per 30
buckets: alpha per test = ALPHA_PER_30 / (pairs x 30 x windows), so false candidates stay
flat as pairs grow (the threshold moves with log(pairs)). Candidates (at most
MAX_CANDIDATES, smallest p first) are then judged by the full detector like any slice.

Pairs are screened in chunks of the first dimension's hash, sized so a chunk's dense
pair x bucket arrays stay within the memory budget.
"""
from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
from scipy.special import betainc

WINDOWS = (1, 2, 4)  # buckets summed: an attack of a few buckets on a thin pair needs them all
HISTORY = 91  # trailing buckets the window is compared with (13 weeks): a thin pair needs a long one
MIN_HISTORY = 21  # buckets of history before a window is tested (3 weekly cycles)
ALPHA_PER_30 = 0.5  # expected false candidates per 30 buckets over every screened pair: half the goal of 1 false page a month
MAX_CANDIDATES = 200
CELL_BYTES = 160  # numpy bytes per pair x bucket cell while screening (arrays and temporaries)


def screen_pairs(con, window: str, params: list, pair: tuple[str, str], *, n_buckets: int, num: str, den: str,
                 direction: str, budget_bytes: int, single_gids: dict[str, int]) -> list[tuple[str, str, float]]:
    """(value of pair[0], value of pair[1], p-value) of the pairs whose window count is
    improbable against their own history, smallest p first. The values of each dimension
    come from the one-dimension slices in slice_agg (`single_gids`: their GROUPING ids)."""
    a, b = pair
    if n_buckets <= MIN_HISTORY:
        return []
    # each dimension's values numbered, so the pairs group by one integer (faster than strings)
    values = {}
    for d in pair:
        values[d] = [r[0] for r in con.execute(
            f'SELECT DISTINCT "{d}" FROM slice_agg WHERE __gid = {single_gids[d]} ORDER BY 1').fetchall()]
        con.register(f"screen_{d}", pa.table({d: values[d], "__i": np.arange(len(values[d]), dtype=np.int64)}))
    try:
        width = len(values[b])
        # a pair that is always one of its values (seller x the seller's country) is that
        # value's own slice, judged already: counted before any per-bucket sums
        n_pairs = con.execute(f'SELECT count(*) FROM (SELECT DISTINCT "{a}", "{b}" FROM ({window}))', params).fetchone()[0]
        if not n_pairs or n_pairs in (len(values[a]), len(values[b])):
            return []
        con.execute(f'CREATE OR REPLACE TEMP TABLE screen_long AS SELECT ka.__i * {width} + kb.__i AS code, __bucket,'
                    f' sum("{num}") AS n, sum("{den}") AS d FROM ({window}) w JOIN "screen_{a}" ka ON ka."{a}" = w."{a}"'
                    f' JOIN "screen_{b}" kb ON kb."{b}" = w."{b}" GROUP BY ALL', params)
        tests = n_pairs * min(30, n_buckets - MIN_HISTORY) * len(WINDOWS)
        alpha = ALPHA_PER_30 / tests / (2 if direction == "both" else 1)
        chunks = max(1, math.ceil(n_pairs * (n_buckets + 1) * CELL_BYTES / max(budget_bytes, 1)))
        found: list[tuple[str, str, float]] = []
        for k in range(chunks):
            where = f"WHERE code % {chunks} = {k}" if chunks > 1 else ""
            long = con.execute(f"SELECT * FROM screen_long {where}").arrow()
            long = long.read_all() if isinstance(long, pa.RecordBatchReader) else long
            if not long.num_rows:
                continue
            codes = long.column("code").to_numpy()
            # dense row numbers of the pairs present, without sorting
            present = np.zeros(len(values[a]) * width, bool)
            present[codes] = True
            keys = np.flatnonzero(present)
            remap = np.cumsum(present) - 1
            sid = remap[codes]
            del present, remap
            bucket = long.column("__bucket").to_numpy().astype(np.int64)
            counts = np.zeros((len(keys), n_buckets + 1))
            counts[sid, bucket + 1] = long.column("n").to_numpy(zero_copy_only=False).astype(float)
            np.cumsum(counts, axis=1, out=counts)
            volume = np.zeros((len(keys), n_buckets + 1))
            volume[sid, bucket + 1] = long.column("d").to_numpy(zero_copy_only=False).astype(float)
            np.cumsum(volume, axis=1, out=volume)
            del long, codes, sid, bucket
            p = _min_p(counts, volume, direction)
            del counts, volume
            found += [(values[a][keys[i] // width], values[b][keys[i] % width], float(p[i]))
                      for i in np.flatnonzero(p < alpha)]
    finally:
        for d in pair:
            con.unregister(f"screen_{d}")
        con.execute("DROP TABLE IF EXISTS screen_long")
    return sorted(found, key=lambda f: f[2])[:MAX_CANDIDATES]


def _min_p(c: np.ndarray, v: np.ndarray, direction: str) -> np.ndarray:
    """Smallest p-value per row over buckets and windows; c and v are cumulative sums with a
    leading zero column (c[:, t + 1] = counts up to bucket t)."""
    n_rows, width = c.shape
    best = np.ones(n_rows)
    for length in WINDOWS:
        # windows [mid, end) with end - length = mid >= MIN_HISTORY, history [lo, mid)
        first = MIN_HISTORY + length
        if first >= width:
            continue
        ends = slice(first, width)
        mids = slice(MIN_HISTORY, width - length)
        x = c[:, ends] - c[:, mids]
        vw = v[:, ends] - v[:, mids]
        lo = np.maximum(np.arange(MIN_HISTORY, width - length) - HISTORY, 0)
        y = c[:, mids] - c[:, lo]
        vh = v[:, mids] - v[:, lo]
        n = x + y
        with np.errstate(divide="ignore", invalid="ignore"):
            q = vw / (vw + vh)
            # a loose normal pre-screen: the exact tail is computed only where it can matter
            z = (x - n * q) / np.sqrt(n * q * (1 - q))
        tails = []
        if direction in ("up", "both"):
            tails.append((z > 3.0, lambda xs, ns, qs: betainc(xs, ns - xs + 1, qs)))  # P(Bin(n, q) >= x)
        if direction in ("down", "both"):
            tails.append((z < -3.0, lambda xs, ns, qs: betainc(ns - xs, xs + 1, 1 - qs)))  # P(Bin(n, q) <= x)
        for sel, tail in tails:
            sel &= (vh > 0) & (vw > 0) & (n > 0)
            rows, cols = np.nonzero(sel)
            if len(rows):
                np.minimum.at(best, rows, tail(x[rows, cols], n[rows, cols], q[rows, cols]))
    return best
