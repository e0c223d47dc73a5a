"""Screening every two-dimension slice of a ratio metric, cheaply, for the few worth judging.

With 20,000 sellers x 3 channels no seller x channel pair reaches the pair volume floor,
so an attack on one of them hides below it. Here every pair of the dimension pairs the
floor narrowed is tested at once in numpy: for each bucket and window of 1, 2 or 4
buckets, the pair's numerator in the window against what its history predicts.

The prediction pools two sources (a Gamma-Poisson model, so each one's uncertainty counts):
- the pair's own trailing history (up to HISTORY buckets before the window): y events on
  volume vh;
- a pooled rate, the row value's other pairs x the column value's rate (a seller's other
  channels, each scaled by that channel's rate over every seller, tell how risky the seller
  is; times this channel's rate): the log-linear independence model of a two-way table.
  It is a Gamma prior of mean r0 and shape a0 = 1 / (1 / (yo + 0.5) + tau2), yo being the
  events it rests on and tau2 how far pairs stray from the model (measured on the data,
  method of moments over the whole window), so a thin seller or a heterogeneous world
  weakens it.
The window's count is then negative binomial: P(X >= x) = I_q(x, a0 + y) with
q = vw / (vw + a0 / r0 + vh). Without the prior (a0 -> 1, no pooled rate) this is the exact
conditional test of two Poisson counts the screen used before; the pooled rate is what
gives a thin pair power (its own history holds a few events, its seller's other channels
many more).

The threshold is Bonferroni over the tests of ALPHA_PER_30 false candidates per 30
buckets: alpha per test = ALPHA_PER_30 / (pairs x 30 x windows), so false candidates stay
flat as pairs grow (the threshold moves with log(pairs)). Candidates (at most
MAX_CANDIDATES, smallest p first) are then judged by the full detector like any slice.

Pairs are screened in chunks of the row dimension (the one with more values), sized so a
chunk's dense pair x bucket arrays stay within the memory budget; a row value's pairs are
in one chunk, so its pooled rate sees all of them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from scipy.special import betainc

WINDOWS = (1, 2, 4)  # buckets summed: an attack of a few buckets on a thin pair needs them all
HISTORY = 91  # trailing buckets the window is compared with (13 weeks): a thin pair needs a long one
MIN_HISTORY = 21  # buckets of history before a window is tested (3 weekly cycles)
ALPHA_PER_30 = 0.5  # expected false candidates per 30 buckets over every screened pair: half the goal of 1 false page a month
MAX_CANDIDATES = 200
CELL_BYTES = 400  # numpy bytes per pair x bucket cell while screening (arrays and temporaries)
# From this many chunks on, the leaves are sorted by row value once rather than scanned whole
# per chunk (a sort cost about 15 scans at 20,000 sellers)
SORT_CHUNKS = 16
TAU2_MIN = 0.01  # the pooled rate is never trusted beyond a 10 % coefficient of variation
PRIOR_EVENTS = 0.5  # half an event: a row value with no other event pulls its rate towards the column's


@dataclass
class Coded:
    """The window's leaves in the temp table screen_codes, each screened dimension as its
    value's number: one scan of the leaves for every pair of dimensions."""

    values: dict[str, list]  # sorted values per dimension; a value's number is its index
    columns: dict[str, str]  # the column of screen_codes holding each dimension's numbers
    rows: int

    def drop(self, con) -> None:
        con.execute("DROP TABLE IF EXISTS screen_codes")


def code_leaves(con, window: str, params: list, dims, *, num: str, den: str, single_gids: dict[str, int],
                values: dict[str, list] | None = None) -> Coded:
    """The window's leaves numbered (see ``Coded``); the values of each dimension are given
    (`values`: sorted as DuckDB sorts them) or come from the one-dimension slices in
    slice_agg (`single_gids`: their GROUPING ids). Integers group and compare faster than
    strings, and no per-pair scan of the leaves is needed."""
    given, values, columns = values, {}, {}
    for i, d in enumerate(dims):
        values[d] = list(given[d]) if given is not None else [r[0] for r in con.execute(
            f'SELECT DISTINCT "{d}" FROM slice_agg WHERE __gid = {single_gids[d]} ORDER BY 1').fetchall()]
        columns[d] = f"__k{i}"
        con.register(f"screen_{i}", pa.table({d: values[d], "__i": np.arange(len(values[d]), dtype=np.int32)}))
    try:
        keys = ", ".join(f"k{i}.__i AS {columns[d]}" for i, d in enumerate(dims))
        joins = " ".join(f'JOIN screen_{i} k{i} ON k{i}."{d}" = w."{d}"' for i, d in enumerate(dims))
        rows = con.execute(f'CREATE OR REPLACE TEMP TABLE screen_codes AS SELECT {keys}, __bucket, "{num}"::DOUBLE AS n,'
                           f' "{den}"::DOUBLE AS d FROM ({window}) w {joins}', params).fetchone()[0]
    finally:
        for i in range(len(dims)):
            con.unregister(f"screen_{i}")
    return Coded(values, columns, rows)


def screen_pairs(con, window: str, params: list, pair: tuple[str, str], *, n_buckets: int, num: str, den: str,
                 direction: str, budget_bytes: int, single_gids: dict[str, int],
                 coded: Coded | None = None) -> list[tuple[str, str, float]]:
    """(value of pair[0], value of pair[1], p-value) of the pairs whose window count is
    improbable against their prediction, smallest p first. The values of each dimension
    come from the one-dimension slices in slice_agg (`single_gids`: their GROUPING ids).
    `coded`: the window's leaves numbered by ``code_leaves``, shared by a metric's pairs
    (made and dropped here without it)."""
    if n_buckets <= MIN_HISTORY:
        return []
    own = coded is None
    if own:
        coded = code_leaves(con, window, params, pair, num=num, den=den, single_gids=single_gids)
    try:
        return _screen(con, coded, pair, n_buckets=n_buckets, direction=direction, budget_bytes=budget_bytes)
    finally:
        con.execute("DROP VIEW IF EXISTS screen_long")
        con.execute("DROP TABLE IF EXISTS screen_grouped")
        con.execute("DROP TABLE IF EXISTS screen_sorted")
        if own:
            coded.drop(con)


def _screen(con, coded: Coded, pair: tuple[str, str], *, n_buckets: int, direction: str,
            budget_bytes: int) -> list[tuple[str, str, float]]:
    values = coded.values
    # rows: the dimension with more values (sellers), columns: the other (channels)
    a, b = sorted(pair, key=lambda d: -len(values[d]))
    ka, kb = coded.columns[a], coded.columns[b]
    width = len(values[b])
    # a pair that is always one of its values (seller x the seller's country) is that
    # value's own slice, judged already: counted before any per-bucket sums
    n_pairs = con.execute(f"SELECT count(*) FROM (SELECT DISTINCT {ka}, {kb} FROM screen_codes)").fetchone()[0]
    if not n_pairs or n_pairs in (len(values[a]), len(values[b])):
        return []
    source = "screen_codes"
    if 2 * n_pairs * n_buckets < coded.rows:
        # many leaves per pair and bucket (country x channel): summed first, a far smaller table
        con.execute(f"CREATE OR REPLACE TEMP TABLE screen_grouped AS SELECT {ka}, {kb}, __bucket, sum(n) AS n,"
                    f" sum(d) AS d FROM screen_codes GROUP BY ALL")
        source = "screen_grouped"
    # else each leaf is its own row: flag_pairs sums a pair's leaves per bucket (no grouping of
    # 10 M rows that are mostly one leaf per pair already)
    con.execute(f"CREATE OR REPLACE TEMP VIEW screen_long AS SELECT {ka}::BIGINT * {width} + {kb} AS code, __bucket,"
                f" n, d, {ka} AS __row FROM {source}")
    tests = n_pairs * min(30, n_buckets - MIN_HISTORY) * len(WINDOWS)
    alpha = ALPHA_PER_30 / tests / (2 if direction == "both" else 1)
    columns = _column_sums(con, width, n_buckets)
    tau2 = _tau2(con, width)
    chunks = max(1, math.ceil(n_pairs * (n_buckets + 1) * CELL_BYTES / max(budget_bytes, 1)))
    table, n_rows = "screen_long", len(values[a])
    if chunks >= SORT_CHUNKS:
        # each chunk would scan every leaf (200,000 sellers: 45 scans of 54 M rows, most of the
        # detect time): sorted by row value once, a chunk is a range the scan mostly skips
        con.execute("CREATE OR REPLACE TEMP TABLE screen_sorted AS SELECT * FROM screen_long ORDER BY __row")
        table = "screen_sorted"
    found: list[tuple[str, str, float]] = []
    for k in range(chunks):
        if chunks == 1:
            where = ""
        elif table == "screen_sorted":  # a range of row values: all of a row value's pairs, as below
            where = f"WHERE __row >= {k * n_rows // chunks} AND __row < {(k + 1) * n_rows // chunks}"
        else:
            where = f"WHERE __row % {chunks} = {k}"
        got = con.execute(f"SELECT code, __bucket, n, d FROM {table} {where}").fetchnumpy()
        rows = {c: np.asarray(got.pop(c)) for c in ("code", "__bucket", "n", "d")}
        if not len(rows["code"]):
            continue
        hits, p = flag_pairs(rows, n_codes=len(values[a]) * width, width=width, n_buckets=n_buckets,
                             direction=direction, columns=columns, tau2=tau2, alpha=alpha)
        named = [{a: values[a][code // width], b: values[b][code % width]} for code in hits.tolist()]
        found += [(v[pair[0]], v[pair[1]], float(q)) for v, q in zip(named, p)]
    return sorted(found, key=lambda f: f[2])[:MAX_CANDIDATES]


def flag_pairs(rows: dict[str, np.ndarray], *, n_codes: int, width: int, n_buckets: int, direction: str,
               columns: tuple[np.ndarray, np.ndarray], tau2: float, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """(codes, p-values) of the pairs below `alpha` among one chunk's rows ("code", "__bucket",
    "n", "d" arrays; emptied here, so they are freed before the test); a pair's code is row
    value x `width` + column value, `n_codes` the codes possible. The chunk must hold all pairs
    of each of its row values (their pooled rate sees all of them)."""
    codes = rows.pop("code")
    # dense row numbers of the pairs present, without sorting; keys come out sorted, so a row
    # value's pairs are consecutive
    present = np.zeros(n_codes, bool)
    present[codes] = True
    keys = np.flatnonzero(present)
    sid = (np.cumsum(present) - 1)[codes]
    del present, codes
    # a pair's rows of one bucket are summed (its leaves, when the rows are not grouped)
    cell = sid * (n_buckets + 1) + rows.pop("__bucket").astype(np.int64) + 1
    del sid
    size = len(keys) * (n_buckets + 1)
    counts = np.bincount(cell, weights=rows.pop("n"), minlength=size).reshape(len(keys), n_buckets + 1)
    np.cumsum(counts, axis=1, out=counts)
    volume = np.bincount(cell, weights=rows.pop("d"), minlength=size).reshape(len(keys), n_buckets + 1)
    np.cumsum(volume, axis=1, out=volume)
    del cell
    p = _min_p(counts, volume, direction, rows=keys // width, cols=keys % width, columns=columns, tau2=tau2)
    hit = np.flatnonzero(p < alpha)
    return keys[hit], p[hit]


def _column_sums(con, width: int, n_buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative numerator and denominator per column value over every row (columns x
    buckets + 1, a leading zero column)."""
    got = con.execute(f"SELECT code % {width} AS c, __bucket, sum(n), sum(d) FROM screen_long GROUP BY ALL").fetchnumpy()
    c, t = np.asarray(got["c"], np.int64), np.asarray(got["__bucket"], np.int64) + 1
    out = np.zeros((2, width, n_buckets + 1))
    out[0, c, t] = np.asarray(got["sum(n)"], float)
    out[1, c, t] = np.asarray(got["sum(d)"], float)
    return np.cumsum(out[0], axis=1), np.cumsum(out[1], axis=1)


def _tau2(con, width: int) -> float:
    """How far pairs' rates stray from the pooled model (see ``tau2_terms``), from the pairs'
    whole-window totals in screen_long."""
    got = con.execute(f"""
        WITH p AS (SELECT code // {width} AS r, code % {width} AS c, sum(n) AS y, sum(d) AS d FROM screen_long GROUP BY ALL),
             k AS (SELECT c, sum(y) / nullif(sum(d), 0) AS rate FROM p GROUP BY c),
             e AS (SELECT p.r, p.y, p.d * coalesce(k.rate, 0) AS e FROM p JOIN k USING (c)),
             s AS (SELECT r, sum(y) AS ys, sum(e) AS es FROM e GROUP BY r)
        SELECT e.y, e.e, s.ys - e.y AS yo, s.es - e.e AS eo FROM e JOIN s USING (r)""").fetchnumpy()
    return tau2(*tau2_terms(*(np.asarray(got[k], float) for k in ("y", "e", "yo", "eo"))))


def tau2_terms(y: np.ndarray, e: np.ndarray, yo: np.ndarray, eo: np.ndarray) -> tuple[float, float]:
    """(sum of excess, sum of weights) of the method of moments for ``tau2``, per pair: its
    events y, its events at its column's rate e, and the same summed over its row value's
    other pairs (yo, eo). Sums, so they can be added up over partitions."""
    expected = e * (yo + PRIOR_EVENTS) / (eo + PRIOR_EVENTS)
    excess = (y - expected) ** 2 - expected - expected ** 2 / (yo + PRIOR_EVENTS)
    return float(np.sum(excess)), float(np.sum(expected ** 2))


def tau2(excess: float, weight: float) -> float:
    """How far pairs' rates stray from the pooled model, as a squared coefficient of
    variation: method of moments over whole-window totals, net of Poisson noise and of the
    uncertainty of each row value's rate, at least TAU2_MIN."""
    return max(TAU2_MIN, excess / weight) if weight > 0 else 1.0


def _min_p(c: np.ndarray, v: np.ndarray, direction: str, *, rows: np.ndarray | None = None,
           cols: np.ndarray | None = None, columns: tuple[np.ndarray, np.ndarray] | None = None,
           tau2: float = 1.0) -> np.ndarray:
    """Smallest p-value per pair over buckets and windows; c and v are cumulative sums with
    a leading zero column (c[:, t + 1] = counts up to bucket t). `rows` (sorted) and `cols`
    number each pair's row and column value, `columns` the column values' cumulative
    sums (see _column_sums); without them there is no pooled rate (the pair's own history
    only, with one prior event)."""
    n_rows, width = c.shape
    best = np.ones(n_rows)
    pooled = columns is not None
    starts = group = None
    if pooled:
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        group = np.cumsum(np.r_[True, rows[1:] != rows[:-1]]) - 1
    # windows [mid, end) with end - length = mid >= MIN_HISTORY, history [lo, mid): a longer
    # window's history buckets are the first of a shorter one's, so the prediction (shape,
    # scale) is computed once, for the shortest window, and sliced: the same values
    lengths = [length for length in WINDOWS if MIN_HISTORY + length < width]
    prior = _prior(c, v, min(lengths), pooled=pooled, starts=starts, group=group, cols=cols, columns=columns,
                   tau2=tau2) if lengths else None
    for length in lengths:
        first = MIN_HISTORY + length
        ends = slice(first, width)
        mids = slice(MIN_HISTORY, width - length)
        x = c[:, ends] - c[:, mids]
        vw = v[:, ends] - v[:, mids]
        shape, scale = (part[:, :width - length - MIN_HISTORY] for part in prior)
        with np.errstate(divide="ignore", invalid="ignore"):
            q = vw / (vw + scale)
            mean = vw * shape / scale
            # a loose normal pre-screen (negative binomial variance): the exact tail is
            # computed only where it can matter
            z = (x - mean) / np.sqrt(mean * (1 + vw / scale))
        del mean
        tails = []
        if direction in ("up", "both"):
            tails.append(((z > 3.0) & (x > 0), lambda xs, ks, qs: betainc(xs, ks, qs)))  # P(NB >= x)
        if direction in ("down", "both"):
            tails.append((z < -3.0, lambda xs, ks, qs: betainc(ks, xs + 1, 1 - qs)))  # P(NB <= x)
        for sel, tail in tails:
            sel &= (scale > 0) & (vw > 0) & (shape > 0)
            r, k = np.nonzero(sel)
            if len(r):
                np.minimum.at(best, r, tail(x[r, k], shape[r, k], q[r, k]))
    return best


def _prior(c: np.ndarray, v: np.ndarray, length: int, *, pooled: bool, starts, group, cols, columns,
           tau2: float) -> tuple[np.ndarray, np.ndarray]:
    """(shape, scale) of each pair's Gamma prediction for the windows of `length` buckets,
    from its history [lo, mid) (see ``_min_p``)."""
    width = c.shape[1]
    mids = slice(MIN_HISTORY, width - length)
    lo = np.maximum(np.arange(MIN_HISTORY, width - length) - HISTORY, 0)
    y = c[:, mids] - c[:, lo]
    vh = v[:, mids] - v[:, lo]
    with np.errstate(divide="ignore", invalid="ignore"):
        if not pooled:
            return y + 1.0, vh
        cn, cd = columns
        rate = np.nan_to_num((cn[:, mids] - cn[:, lo]) / (cd[:, mids] - cd[:, lo]))[cols]
        e = vh * rate  # events the pair's history would hold at its column's rate
        yo = np.add.reduceat(y, starts, axis=0)[group] - y
        eo = np.add.reduceat(e, starts, axis=0)[group] - e
        r0 = rate * (yo + PRIOR_EVENTS) / (eo + PRIOR_EVENTS)
        a0 = 1.0 / (1.0 / (yo + PRIOR_EVENTS) + tau2)
        del e, eo
        shape = a0 + y
        scale = np.where(r0 > 0, a0 / r0, 0.0) + vh  # prior volume + own volume
    return shape, scale
