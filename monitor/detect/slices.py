"""The series detection judges, built by the database: the total, every value of every
dimension and (above a volume floor) two-dimension slices, as dense series x bucket arrays.

One GROUPING SETS query aggregates the leaves of the history window into the total and
every one-dimension slice per bucket. Pairs are looked for only among values whose own
volume can reach the pair floor (a pair holds no more than its parents), so 20,000 sellers
do not make 60,000 seller x channel series to sum and drop. The long result (slice id,
bucket, numerator, denominator) crosses to numpy through Arrow and is scattered into dense
series x bucket arrays: no Python or pandas work per slice. Which slices exist follows
the rules the pandas version had (see `build_slices`; tests/test_slices_db.py compares).
"""
from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from functools import cached_property

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from monitor.catalog import Metric
from monitor.detect.screen import MIN_HISTORY, Coded, code_leaves, screen_pairs
from monitor.slices import slice_label
from monitor.store import leaves_table

# Two-dimension slices need this share of the metric's volume (header slice_min_volume overrides).
PAIR_MIN_SHARE = 0.01
MAX_PAIR_SLICES = 400
# Up to this many possible pairs of two dimensions are summed per bucket at once; more are
# first narrowed to those whose volume reaches the floor.
PAIR_DIRECT = 2000
# Memory for the dense arrays of one chunk of screened pairs ([detect] memory_limit overrides).
DEFAULT_BUDGET = 10**9  # the default of [detect] memory_limit, "1GB"
SCATTER_ROWS = 1 << 20  # rows of the long (slice, bucket) result per Arrow batch
# The one-dimension slices of a screened ratio metric summed from its numbered leaves (the
# GROUPING SETS of strings otherwise; tests compare the two)
NUMBERED_SINGLES = True


@dataclass(frozen=True)
class SliceSeries:
    segment: dict[str, str]
    values: np.ndarray  # value (sum) or numerator (ratio) per bucket
    volume: np.ndarray  # value (sum) or denominator (ratio) per bucket
    screened: bool = False  # a pair below the floor, kept because the leaf screen flagged it

    @cached_property  # read per series in every pass (judge, stage, exclusions): 60,000 encodings each
    def label(self) -> str:
        return slice_label(self.segment)


# (values, volume) columns of the leaves per kind; a mean's sum of squares is read as
# values in a second pass (columns=), over the same slices (see monitor.detect.run_kinds)
SERIES_COLUMNS = {"ratio": ("numerator", "denominator"), "sum": ("value", "value"),
                  "mean": ("value_sum", "value_count")}


def build_slices(con: duckdb.DuckDBPyConnection, metric: Metric, *, start: dt.datetime, end: dt.datetime,
                 step: dt.timedelta, budget_bytes: int = DEFAULT_BUDGET,
                 columns: tuple[str, str] | None = None) -> tuple[pd.DatetimeIndex, list[SliceSeries]]:
    """Series of the leaves with start <= ts < end on a dense axis from the first to the
    last stored bucket (empty buckets are 0; a ts off that grid is left out).

    Order and rules: the total; each dimension's values (sorted); then, with
    max_slice_depth 2, two-dimension slices whose mean volume per bucket reaches
    slice_min_volume (or, without it, whose volume is PAIR_MIN_SHARE of the total's), that
    are not their one-dimension parent under a longer name, largest volume first, at most
    MAX_PAIR_SLICES. max_slice_depth 0 keeps the total only. Last, for a ratio metric, the
    pairs below the floor that the leaf screen flags (``monitor.detect.screen``), marked
    ``screened``.
    """
    table = leaves_table(metric.name)
    num, den = columns or SERIES_COLUMNS[metric.kind]
    first, last = con.execute(f'SELECT min(ts), max(ts) FROM "{table}" WHERE ts >= ? AND ts < ?', [start, end]).fetchone()
    if first is None:
        return pd.DatetimeIndex([]), []
    axis = pd.date_range(first, last, freq=pd.Timedelta(step))
    step_us = int(step / dt.timedelta(microseconds=1))
    dims = list(metric.dimensions)
    depth = metric.detect.max_slice_depth
    # the window's leaves on the grid, with their bucket index
    window = (f'SELECT * EXCLUDE (ts), ((epoch_us(ts) - epoch_us(?::TIMESTAMP)) // {step_us})::INTEGER AS __bucket'
              f' FROM "{table}" WHERE ts >= ? AND ts < ? AND (epoch_us(ts) - epoch_us(?::TIMESTAMP)) % {step_us} = 0')
    window_params = [first, start, end, first]
    quoted = [f'"{d}"' for d in dims]
    single_sets = [()] + ([(d,) for d in dims] if depth >= 1 else [])
    pair_sets = list(itertools.combinations(dims, 2)) if depth >= 2 and len(dims) >= 2 else []

    def gid(kept: tuple[str, ...]) -> int:
        """GROUPING(...) of a set: one bit per dimension grouped out, first dimension highest."""
        return sum(1 << (len(dims) - 1 - i) for i, d in enumerate(dims) if d not in kept)

    def select_keys(kept: tuple[str, ...]) -> str:
        return ", ".join(f'w."{d}"' if d in kept else f'NULL::VARCHAR AS "{d}"' for d in dims)

    sets = single_sets + pair_sets
    hits: set[tuple] = set()
    # a ratio metric's pairs are screened over the leaves numbered (monitor.detect.screen): then
    # the one-dimension slices are summed from those numbers by numpy, not by a GROUP BY of
    # strings over the leaves (see _fused_singles)
    screening = bool(pair_sets) and metric.kind == "ratio" and len(axis) > MIN_HISTORY
    fused = NUMBERED_SINGLES and screening
    coded = None
    if fused:
        values_of, nonnegative = _single_totals(con, window, window_params, dims, single_sets, gid, den)
        con.execute("CREATE OR REPLACE TEMP TABLE slice_agg AS SELECT 0::BIGINT AS __gid, "
                    + "".join(f'NULL::VARCHAR AS "{d}", ' for d in dims)
                    + "0::INTEGER AS __bucket, 0::DOUBLE AS __num, 0::DOUBLE AS __den WHERE FALSE")
    else:
        # one pass: the total and every one-dimension slice per bucket
        if len(single_sets) > 1:
            singles = (f'SELECT GROUPING({", ".join(quoted)}) AS __gid, {", ".join(quoted)}, __bucket, sum("{num}") AS __num,'
                       f' sum("{den}") AS __den FROM w GROUP BY GROUPING SETS ('
                       + ", ".join("(" + ", ".join(["__bucket", *map(_q, s)]) + ")" for s in single_sets) + ")")
        else:  # the total only (no dimension, or max_slice_depth 0)
            singles = (f'SELECT {gid(())} AS __gid, {select_keys(()) + "," if dims else ""} __bucket, sum("{num}") AS __num,'
                       f' sum("{den}") AS __den FROM w GROUP BY __bucket')
        con.execute(f"CREATE OR REPLACE TEMP TABLE slice_agg AS WITH w AS ({window}) {singles}", window_params)
    try:
        if pair_sets:
            _add_pairs(con, metric, window, window_params, dims, pair_sets, gid, select_keys, len(axis), num, den,
                       source="slice_totals" if fused else "slice_agg", nonnegative=nonnegative if fused else None)
        if screening:
            # the window's leaves numbered once for every pair of dimensions (monitor.detect.screen)
            coded = code_leaves(con, window, window_params, dims, num=num, den=den,
                                single_gids={d: gid((d,)) for d in dims}, values=values_of if fused else None)
            for pair in pair_sets:
                hits |= _add_screened(con, metric, window, window_params, dims, pair, gid, select_keys,
                                      len(axis), num, den, budget_bytes, coded)
        rank = " ".join(f"WHEN {gid(s)} THEN {i}" for i, s in enumerate(sets))
        # (fused: the one-dimension slices' keys from slice_totals, their sums from the numbered leaves)
        distinct = f'SELECT DISTINCT __gid, {", ".join(quoted + [""])} 0 FROM slice_agg'
        if fused:
            distinct += f' UNION ALL SELECT __gid, {", ".join(quoted + [""])} 0 FROM slice_totals'
        con.execute(f'CREATE OR REPLACE TEMP TABLE slice_keys AS SELECT __gid, {", ".join(quoted + [""])}'
                    f'row_number() OVER (ORDER BY CASE __gid {rank} END, {", ".join(quoted + ["__gid"])}) - 1 AS __sid'
                    f' FROM ({distinct})')
        same = " AND ".join(["a.__gid = k.__gid", *(f'a."{d}" IS NOT DISTINCT FROM k."{d}"' for d in dims)])
        keys = _arrow(con.execute(f'SELECT __gid, {", ".join(quoted + [""])} __sid FROM slice_keys ORDER BY __sid'))
        parents = _parent_ids(con, dims, pair_sets, gid) if pair_sets else np.zeros((0, 2), np.int64)
        n_series = keys.num_rows
        values = np.zeros((n_series, len(axis)))
        volume = np.zeros((n_series, len(axis))) if num != den else values
        # the long result streams in batches into the dense arrays: never whole in memory
        result = con.execute(f"SELECT k.__sid, a.__bucket, a.__num, a.__den FROM slice_agg a JOIN slice_keys k ON {same}")
        # to_arrow_reader from DuckDB 1.4 on, fetch_record_batch (deprecated there) before
        reader = getattr(result, "to_arrow_reader", result.fetch_record_batch)(SCATTER_ROWS)
        for batch in reader:
            sid = _column(batch, "__sid").astype(np.int64)
            bucket = _column(batch, "__bucket").astype(np.int64)
            values[sid, bucket] = _column(batch, "__num")
            if num != den:
                volume[sid, bucket] = _column(batch, "__den")
        del reader
        if fused:
            _fused_singles(con, coded, keys, dims, gid, values, volume)
    finally:
        if coded is not None:
            coded.drop(con)
        for name in ("slice_agg", "slice_keys", "slice_totals"):
            con.execute(f"DROP TABLE IF EXISTS {name}")

    gids = _column(keys, "__gid").astype(np.int64)
    order = np.arange(n_series)
    pair_gids = [gid(p) for p in pair_sets]
    is_pair = np.isin(gids, pair_gids)
    columns = {d: keys.column(d).to_pylist() for d in dims}
    screened = np.zeros(n_series, bool)
    if hits:
        screened[[i for i in np.flatnonzero(is_pair).tolist()
                  if (int(gids[i]), *(columns[d][i] for d in dims)) in hits]] = True
    if is_pair.any():
        order = _kept_pairs(metric, values, volume, is_pair, parents, len(axis), screened)
    return axis, [SliceSeries({d: columns[d][i] for d in dims if columns[d][i] is not None}, values[i], volume[i],
                              bool(screened[i])) for i in order.tolist()]


def _single_totals(con, window: str, params: list, dims: list[str], single_sets, gid,
                   den: str) -> tuple[dict[str, list], bool]:
    """Temp table slice_totals: the total and every value of every dimension (its GROUPING
    id, keys and whole-window `den` as __den), one row each, from one pass over the
    leaves without buckets; and (sorted values per dimension, every `den` >= 0)."""
    quoted = [f'"{d}"' for d in dims]
    con.execute(f'CREATE OR REPLACE TEMP TABLE slice_totals AS SELECT GROUPING({", ".join(quoted)}) AS __gid,'
                f' {", ".join(quoted)}, sum("{den}") AS __den, min("{den}") AS __min FROM ({window}) GROUP BY GROUPING SETS ('
                + ", ".join("(" + ", ".join(map(_q, s)) + ")" for s in single_sets) + ")", params)
    values = {d: [r[0] for r in con.execute(f'SELECT "{d}" FROM slice_totals WHERE __gid = {gid((d,))} ORDER BY 1')
                  .fetchall()] for d in dims}
    low = con.execute(f"SELECT coalesce(min(__min), 0) FROM slice_totals WHERE __gid = {gid(())}").fetchone()[0]
    return values, bool(low >= 0)


def _fused_singles(con, coded: Coded, keys: pa.Table, dims: list[str], gid, values: np.ndarray,
                   volume: np.ndarray) -> None:
    """The total's and the one-dimension slices' sums per bucket, added into their rows of
    `values`/`volume` from the numbered leaves (screen_codes), a batch at a time. A value's
    number is its rank among its dimension's sorted values, and slice_keys numbers a
    dimension's slices in that same order, so its row is the dimension's first row + number."""
    gids = _column(keys, "__gid").astype(np.int64)
    first = {}
    for d in dims:
        rows = np.flatnonzero(gids == gid((d,)))
        first[d] = int(rows[0]) if len(rows) else 0
        if keys.column(d).take(pa.array(rows)).to_pylist() != coded.values[d] or (
                len(rows) and rows[-1] - rows[0] + 1 != len(rows)):
            raise AssertionError(f"slice ids of {d} do not follow its sorted values")  # a broken invariant, not data
    total = int(np.flatnonzero(gids == gid(()))[0])
    n = values.shape[1]
    flat_values, flat_volume = values.reshape(-1), volume.reshape(-1)
    cols = [coded.columns[d] for d in dims]
    result = con.execute(f"SELECT {', '.join(cols)}, __bucket, n, d FROM screen_codes")
    reader = getattr(result, "to_arrow_reader", result.fetch_record_batch)(SCATTER_ROWS)
    for batch in reader:
        bucket = _column(batch, "__bucket").astype(np.int64)
        num, den = _column(batch, "n"), _column(batch, "d")
        values[total] += np.bincount(bucket, weights=num, minlength=n)
        if volume is not values:
            volume[total] += np.bincount(bucket, weights=den, minlength=n)
        for d, col in zip(dims, cols):
            cell = (first[d] + _column(batch, col).astype(np.int64)) * n + bucket
            np.add.at(flat_values, cell, num)
            if volume is not values:
                np.add.at(flat_volume, cell, den)
    del reader


def _add_pairs(con, metric: Metric, window: str, params: list, dims: list[str], pair_sets, gid, select_keys,
               n_buckets: int, num: str, den: str, *, source: str = "slice_agg",
               nonnegative: bool | None = None) -> None:
    """Per-bucket sums of the two-dimension slices whose volume can reach the floor, added
    to slice_agg. With volumes >= 0 a pair holds no more than either parent, so only pairs
    of values whose one-dimension volume reaches the floor are looked at (with 20,000
    sellers and the 1 % floor: none of the seller pairs). The floor here is loose by a
    hair, so rounding cannot drop a pair the exact test on the dense series keeps.
    `source`: the one-dimension slices' volumes (slice_agg per bucket, or slice_totals);
    `nonnegative`: whether every leaf's volume is >= 0, when already known."""
    floor = metric.detect.slice_min_volume
    total_gid = gid(())
    if floor is not None:
        threshold = float(floor) * n_buckets
    else:
        total = con.execute(f"SELECT coalesce(sum(__den), 0) FROM {source} WHERE __gid = {total_gid}").fetchone()[0]
        threshold = PAIR_MIN_SHARE * float(total)
    threshold -= 1e-9 * abs(threshold) + 1e-9
    if nonnegative is None:
        nonnegative = con.execute(f'WITH w AS ({window}) SELECT coalesce(min("{den}"), 0) >= 0 FROM w', params).fetchone()[0]
    single_gids = ", ".join(str(gid((d,))) for d in dims)
    con.execute(f"CREATE OR REPLACE TEMP TABLE pair_parents AS SELECT __gid, {', '.join(map(_q, dims))}"
                f" FROM {source} WHERE __gid IN ({single_gids}) GROUP BY ALL HAVING sum(__den) >= ?", [threshold])
    counts = dict(con.execute("SELECT __gid, count(*) FROM pair_parents GROUP BY ALL").fetchall())
    distinct = dict(con.execute(f"SELECT __gid, count(*) FROM {source} WHERE __gid IN ({single_gids})"
                                f" GROUP BY ALL").fetchall()) if nonnegative else {}
    for pair in pair_sets:
        filters, combinations = [], 1
        for d in pair:
            if nonnegative:
                qualified = counts.get(gid((d,)), 0)
                if qualified < distinct.get(gid((d,)), 0):  # a filter only when it leaves values out
                    filters.append(f'"{d}" IN (SELECT "{d}" FROM pair_parents WHERE __gid = {gid((d,))})')
                combinations *= qualified
            else:
                combinations = PAIR_DIRECT + 1
        if combinations == 0:
            continue  # no value of one of the dimensions carries enough volume
        where = " AND ".join(filters) or "TRUE"
        cols = ", ".join(f'w."{d}"' for d in pair)
        select = f"SELECT {gid(pair)}, {select_keys(pair)}, __bucket, sum(\"{num}\"), sum(\"{den}\") FROM f w"
        if combinations <= PAIR_DIRECT:
            # few possible pairs: all per bucket in one pass, the exact floor applies later
            con.execute(f"INSERT INTO slice_agg WITH f AS (SELECT * FROM ({window}) WHERE {where})"
                        f" {select} GROUP BY {cols}, __bucket", params)
            continue
        # many: first the pairs whose volume reaches the floor, then only those per bucket
        on = " AND ".join(f'c."{d}" = w."{d}"' for d in pair)
        con.execute(
            f"INSERT INTO slice_agg WITH f AS (SELECT * FROM ({window}) WHERE {where}),"
            f' c AS (SELECT {", ".join(map(_q, pair))} FROM f GROUP BY ALL HAVING sum("{den}") >= ?)'
            f" {select} SEMI JOIN c ON {on} GROUP BY {cols}, __bucket", params + [threshold])
    con.execute("DROP TABLE IF EXISTS pair_parents")


def _add_screened(con, metric: Metric, window: str, params: list, dims: list[str], pair, gid, select_keys,
                  n_buckets: int, num: str, den: str, budget_bytes: int, coded: Coded) -> set[tuple]:
    """Per-bucket sums of the pairs of `pair` that the leaf screen flags and the floor left
    out, added to slice_agg; their keys (gid, value per dimension or None)."""
    found = screen_pairs(con, window, params, pair, n_buckets=n_buckets, num=num, den=den,
                         direction=metric.detect.direction, budget_bytes=budget_bytes,
                         single_gids={d: gid((d,)) for d in pair}, coded=coded)
    if not found:
        return set()
    a, b = pair
    number = {d: {v: i for i, v in enumerate(coded.values[d])} for d in pair}
    con.register("screen_hits", pa.table({a: [f[0] for f in found], b: [f[1] for f in found],
                                          "__ia": [number[a][f[0]] for f in found],
                                          "__ib": [number[b][f[1]] for f in found]}))
    try:
        con.execute(f'CREATE OR REPLACE TEMP TABLE screen_new AS SELECT DISTINCT * FROM screen_hits h WHERE NOT EXISTS'
                    f' (SELECT 1 FROM slice_agg s WHERE s.__gid = {gid(pair)} AND s."{a}" = h."{a}" AND s."{b}" = h."{b}")')
    finally:
        con.unregister("screen_hits")
    # their sums from the numbered leaves: no other scan of the window
    keys = ", ".join(f'c."{d}"' if d in pair else f'NULL::VARCHAR AS "{d}"' for d in dims)
    con.execute(f"INSERT INTO slice_agg SELECT {gid(pair)}, {keys}, w.__bucket, sum(w.n), sum(w.d) FROM screen_codes w"
                f" JOIN screen_new c ON w.{coded.columns[a]} = c.__ia AND w.{coded.columns[b]} = c.__ib"
                f' GROUP BY c."{a}", c."{b}", w.__bucket')
    new = con.execute(f'SELECT "{a}", "{b}" FROM screen_new').fetchall()
    con.execute("DROP TABLE IF EXISTS screen_new")
    return {(gid(pair), *(x if d == a else y if d == b else None for d in dims)) for x, y in new}


def _parent_ids(con, dims: list[str], pair_sets, gid) -> np.ndarray:
    """(pair sid, one-dimension parent sid) for both parents of every pair slice."""
    joins = [f'SELECT p.__sid AS __pair, s.__sid AS __parent FROM slice_keys p JOIN slice_keys s'
             f' ON p.__gid = {gid(pair)} AND s.__gid = {gid((d,))} AND s."{d}" = p."{d}"'
             for pair in pair_sets for d in pair]
    rows = _arrow(con.execute(" UNION ALL ".join(joins)))
    return np.column_stack([_column(rows, "__pair"), _column(rows, "__parent")]).astype(np.int64)


def _kept_pairs(metric: Metric, values: np.ndarray, volume: np.ndarray, is_pair: np.ndarray,
                parents: np.ndarray, n_buckets: int, screened: np.ndarray) -> np.ndarray:
    """Series ids in output order: every non-pair slice, then the pairs that pass the
    floor and are not a parent under a longer name, largest volume first (ties keep
    dimension order), at most MAX_PAIR_SLICES, then the screened pairs that are not a
    parent under a longer name."""
    # a pair that holds exactly its one-dimension parent's traffic in every bucket is the
    # same segment under a longer name (card_bin=none & method=paypal when paypal is always
    # card_bin=none): judging it again only doubles incidents
    pair, parent = parents[:, 0], parents[:, 1]
    equal = (values[pair] == values[parent]).all(axis=1) & (volume[pair] == volume[parent]).all(axis=1)
    duplicate = np.zeros(len(is_pair), bool)
    duplicate[pair[equal]] = True
    flagged = np.flatnonzero(screened & ~duplicate)
    ids = np.flatnonzero(is_pair & ~duplicate & ~screened)
    sums = volume[ids].sum(axis=1)
    floor = metric.detect.slice_min_volume
    if floor is not None:
        passes = sums / max(n_buckets, 1) >= floor
    else:
        passes = sums >= PAIR_MIN_SHARE * volume[0].sum()
    ids, sums = ids[passes], sums[passes]
    ids = ids[np.argsort(-sums, kind="stable")][:MAX_PAIR_SLICES]
    return np.concatenate([np.flatnonzero(~is_pair), ids, flagged])


def _q(name: str) -> str:
    return f'"{name}"'


def _arrow(result) -> pa.Table:
    """The result as an Arrow table (DuckDB >= 1.4 hands back a batch reader from .arrow())."""
    out = result.arrow()
    return out.read_all() if isinstance(out, pa.RecordBatchReader) else out


def _column(table, name: str) -> np.ndarray:
    column = table.column(name)
    return column.to_numpy(zero_copy_only=False) if isinstance(column, pa.Array) else column.to_numpy()
