"""The slice aggregation of ``monitor.detect.slices`` on Spark: the same dense series from leaves
kept in the warehouse.

The steps and rules are those of ``build_slices`` (tests/test_spark_warehouse.py compares the two
on the demo world): one GROUPING SETS query for the total and every one-dimension slice per
bucket; two-dimension slices among values whose volume can reach the floor; for a ratio metric,
the leaf screen of every pair (``monitor.detect.screen._min_p``, run on the executors per chunk
of pairs). The long (slice, bucket, sums) rows stay on Spark as one checkpointed table keyed by
the series' position; the driver gets the series' labels, and the arrays only of the total and
the pairs (whose floor and duplicate test ``monitor.detect.slices._kept_pairs`` applies, reading
their parents too). Every other slice is a ``monitor.warehouse.remote.RemoteSlice``: judged on
the executors (``monitor.warehouse.judge``), read by the driver only when it has an incident.
"""
from __future__ import annotations

import datetime as dt
import itertools
import math
import uuid

import numpy as np
import pandas as pd

from monitor.catalog import Metric
from monitor.detect import screen as screen_mod
from monitor.detect.slices import DEFAULT_BUDGET, PAIR_DIRECT, PAIR_MIN_SHARE, SERIES_COLUMNS, SliceSeries, \
    _kept_pairs
from monitor.warehouse.checkpoint import local_checkpoint
from monitor.warehouse.leaves import LeafWarehouse, ntz
from monitor.warehouse.remote import RemoteSlice, SliceTable

# Pairs screened per executor task at least: fewer tasks than this would idle the cluster.
MIN_SCREEN_TASKS = 2


def build_slices_spark(warehouse: LeafWarehouse, metric: Metric, *, start: dt.datetime, end: dt.datetime,
                       step: dt.timedelta, budget_bytes: int = DEFAULT_BUDGET,
                       columns: tuple[str, str] | None = None) -> tuple[pd.DatetimeIndex, list[SliceSeries]]:
    """What ``monitor.detect.slices.build_slices`` returns, aggregated on Spark (`columns`: the
    (values, volume) leaf columns, as there)."""
    from pyspark.sql import functions as F

    spark = warehouse.spark
    leaves = warehouse.frame(metric, start=start, end=end)
    if leaves is None:
        return pd.DatetimeIndex([]), []
    first, last = leaves.agg(F.min("ts"), F.max("ts")).collect()[0]
    if first is None:
        return pd.DatetimeIndex([]), []
    axis = pd.date_range(first, last, freq=pd.Timedelta(step))
    step_us = int(step / dt.timedelta(microseconds=1))
    num, den = columns or SERIES_COLUMNS[metric.kind]
    dims = list(metric.dimensions)
    depth = metric.detect.max_slice_depth
    offset = F.unix_micros(F.col("ts").cast("timestamp")) - F.unix_micros(ntz(first).cast("timestamp"))
    window = (leaves.where(offset % step_us == 0)
              .select(*dims, num, *([den] if den != num else []), (offset / step_us).cast("int").alias("__bucket")))
    window = local_checkpoint(window)  # read once; every later query starts here
    single_sets = [()] + ([(d,) for d in dims] if depth >= 1 else [])
    pair_sets = list(itertools.combinations(dims, 2)) if depth >= 2 and len(dims) >= 2 else []
    tag = uuid.uuid4().hex[:12]

    def gid(kept: tuple[str, ...]) -> int:
        return sum(1 << (len(dims) - 1 - i) for i, d in enumerate(dims) if d not in kept)

    def keyed(frame, kept: tuple[str, ...]):
        """(gid, every dimension, __bucket, __num, __den) of a per-bucket sum over `kept`."""
        return frame.groupBy(*kept, "__bucket").agg(F.sum(num).alias("__num"), F.sum(den).alias("__den")).select(
            F.lit(gid(kept)).cast("int").alias("__gid"),
            *(F.col(d) if d in kept else F.lit(None).cast("string").alias(d) for d in dims),
            "__bucket", "__num", "__den")

    if len(single_sets) > 1:
        name = f"slice_w_{tag}"
        window.createOrReplaceTempView(name)
        sets = ", ".join("(" + ", ".join(["__bucket", *(f"`{d}`" for d in s)]) + ")" for s in single_sets)
        singles = spark.sql(
            # Spark's grouping_id takes every grouping column; __bucket, always grouped, adds a 0 bit on top
            f"SELECT CAST(grouping_id(__bucket, {', '.join(f'`{d}`' for d in dims)}) AS INT) AS __gid,"
            f" {', '.join(f'`{d}`' for d in dims)}, __bucket, sum(`{num}`) AS __num, sum(`{den}`) AS __den"
            f" FROM {name} GROUP BY GROUPING SETS ({sets})")
    else:
        singles = keyed(window, ())
    parts = [local_checkpoint(singles)]
    hits: set[tuple] = set()
    if pair_sets:
        pairs = _pairs(window, parts[0], metric, dims, pair_sets, gid, keyed, len(axis), num, den)
        parts += list(pairs.values())
        if metric.kind == "ratio" and len(axis) > screen_mod.MIN_HISTORY:
            # every dimension's values, sorted, in one small collect (the screen numbers them)
            ones = (parts[0].where(F.col("__gid").isin([gid((d,)) for d in dims])).select("__gid", *dims)
                    .distinct().toPandas())
            values = {d: sorted(ones.loc[ones["__gid"] == gid((d,)), d].tolist()) for d in dims}
            for pair in pair_sets:
                added, found = _screened(spark, window, pairs.get(pair), values, metric, dims, pair, gid, keyed,
                                         len(axis), num, den, budget_bytes)
                parts += added
                hits |= found
    long = parts[0]
    for part in parts[1:]:
        long = long.unionByName(part)
    out = _assemble(spark, metric, axis, long, dims, single_sets + pair_sets, pair_sets, gid, hits,
                    two=num != den)
    if len(single_sets) > 1:
        spark.catalog.dropTempView(f"slice_w_{tag}")
    return out


def _pairs(window, singles, metric: Metric, dims, pair_sets, gid, keyed, n_buckets: int, num: str, den: str) -> dict:
    """Per-bucket sums of the two-dimension slices whose volume can reach the floor (the
    branches and the loose floor of ``monitor.detect.slices._add_pairs``)."""
    from pyspark.sql import functions as F

    floor = metric.detect.slice_min_volume
    if floor is not None:
        threshold = float(floor) * n_buckets
    else:
        total = singles.where(F.col("__gid") == gid(())).agg(F.sum("__den")).collect()[0][0] or 0.0
        threshold = PAIR_MIN_SHARE * float(total)
    threshold -= 1e-9 * abs(threshold) + 1e-9
    low = window.agg(F.min(den)).collect()[0][0]
    nonnegative = (low if low is not None else 0) >= 0
    single_gids = [gid((d,)) for d in dims]
    ones = singles.where(F.col("__gid").isin(single_gids))
    parents = local_checkpoint(ones.groupBy("__gid", *dims).agg(F.sum("__den").alias("__v"))
                               .where(F.col("__v") >= threshold).drop("__v"))
    counts = {r[0]: r[1] for r in parents.groupBy("__gid").count().collect()}
    # rows per gid, as the DuckDB version counts them (a filter is then nearly always applied;
    # it never changes which pairs can pass the floor)
    distinct = {r[0]: r[1] for r in ones.groupBy("__gid").count().collect()} if nonnegative else {}
    out = {}
    for pair in pair_sets:
        filtered, combinations = window, 1
        for d in pair:
            if nonnegative:
                qualified = counts.get(gid((d,)), 0)
                if qualified < distinct.get(gid((d,)), 0):
                    allowed = parents.where(F.col("__gid") == gid((d,))).select(d)
                    filtered = filtered.join(allowed, on=d, how="left_semi")
                combinations *= qualified
            else:
                combinations = PAIR_DIRECT + 1
        if combinations == 0:
            continue
        if combinations > PAIR_DIRECT:
            heavy = (filtered.groupBy(*pair).agg(F.sum(den).alias("__v")).where(F.col("__v") >= threshold)
                     .drop("__v"))
            filtered = filtered.join(heavy, on=list(pair), how="left_semi")
        out[pair] = local_checkpoint(keyed(filtered, pair))
    return out


def _screened(spark, window, summed, values: dict, metric: Metric, dims, pair, gid, keyed, n_buckets: int,
              num: str, den: str, budget_bytes: int):
    """The leaf screen of ``monitor.detect.screen.screen_pairs`` with its numpy test on the
    executors; returns (per-bucket sums of the flagged pairs not already summed, their keys).
    `summed`: the pair's per-bucket sums from the floor (None if none), `values`: each
    dimension's values, sorted."""
    from pyspark.sql import functions as F

    # rows: the dimension with more values (sellers), columns: the other, as screen_pairs
    a, b = sorted(pair, key=lambda d: -len(values[d]))
    width = len(values[b])
    n_pairs = window.select(a, b).distinct().count()
    if not n_pairs or n_pairs in (len(values[a]), len(values[b])):
        return [], set()
    index = {d: spark.createDataFrame(pd.DataFrame({d: values[d], f"__i_{d}": np.arange(len(values[d]), dtype=np.int64)}))
             for d in pair}
    long = (window.join(F.broadcast(index[a]), on=a).join(F.broadcast(index[b]), on=b)
            .groupBy((F.col(f"__i_{a}") * width + F.col(f"__i_{b}")).alias("code"), "__bucket")
            .agg(F.sum(num).cast("double").alias("n"), F.sum(den).cast("double").alias("d"))).persist()
    try:
        return _flag(spark, window, long, summed, values, metric, dims, pair, (a, b), gid, keyed, n_pairs, n_buckets,
                     budget_bytes)
    finally:
        long.unpersist()


def _parallelism(spark) -> int:
    """The cluster's task slots: SparkContext.defaultParallelism on a classic session; a Spark
    Connect session has no SparkContext, so there the server's spark.default.parallelism if set."""
    try:
        return spark.sparkContext.defaultParallelism
    except Exception:  # noqa: BLE001 - Connect: PySparkAttributeError (JVM_ATTRIBUTE_NOT_SUPPORTED)
        pass
    try:
        return int(spark.conf.get("spark.default.parallelism", None) or MIN_SCREEN_TASKS)
    except Exception:  # noqa: BLE001 - a server that does not expose it
        return MIN_SCREEN_TASKS


def _flag(spark, window, long, summed, values, metric, dims, pair, ab, gid, keyed, n_pairs, n_buckets, budget_bytes):
    from pyspark.sql import functions as F

    a, b = ab
    width = len(values[b])
    columns, t2 = _pooled(long, width, n_buckets)
    tests = n_pairs * min(30, n_buckets - screen_mod.MIN_HISTORY) * len(screen_mod.WINDOWS)
    direction = metric.detect.direction
    alpha = screen_mod.ALPHA_PER_30 / tests / (2 if direction == "both" else 1)
    # as many chunks as the memory budget asks for on one executor, and enough to use them all
    chunks = max(math.ceil(n_pairs * (n_buckets + 1) * screen_mod.CELL_BYTES / max(budget_bytes, 1)),
                 _parallelism(spark), MIN_SCREEN_TASKS)

    n_codes = len(values[a]) * width

    def judge(frame: pd.DataFrame) -> pd.DataFrame:
        from monitor.detect.screen import flag_pairs

        rows = {c: frame[c].to_numpy() for c in ("code", "__bucket", "n", "d")}
        hits, p = flag_pairs(rows, n_codes=n_codes, width=width, n_buckets=n_buckets, direction=direction,
                             columns=columns, tau2=t2, alpha=alpha)
        return pd.DataFrame({"code": hits.astype(np.int64), "p": p.astype(float)})

    # a row value's pairs in one chunk, so its pooled rate sees all of them (as screen_pairs)
    flagged = (long.withColumn("__chunk", F.expr(f"(code div {width}) % {chunks}")).groupBy("__chunk")
               .applyInPandas(judge, schema="code long, p double").toPandas())
    # smallest p first; ties in code order, as the DuckDB version finds them within a chunk
    flagged = flagged.sort_values(["p", "code"], kind="stable").head(screen_mod.MAX_CANDIDATES)
    if flagged.empty:
        return [], set()
    codes = flagged["code"].to_numpy(np.int64)
    found = pd.DataFrame({a: [values[a][c // width] for c in codes], b: [values[b][c % width] for c in codes]})
    have = set() if summed is None else {(r[0], r[1]) for r in summed.select(a, b).distinct().collect()}
    new = found[[(x, y) not in have for x, y in zip(found[a], found[b])]].drop_duplicates()
    if new.empty:
        return [], set()
    chosen = spark.createDataFrame(new)
    added = local_checkpoint(keyed(window.join(F.broadcast(chosen), on=[a, b], how="left_semi"), pair))
    keys = {(gid(pair), *(x if d == a else y if d == b else None for d in dims)) for x, y in zip(new[a], new[b])}
    return [added], keys


def _pooled(long, width: int, n_buckets: int) -> tuple[tuple[np.ndarray, np.ndarray], float]:
    """The pooled part of the screen's prediction on Spark: the column values' cumulative sums
    (``screen._column_sums``) and how far pairs stray from the pooled model (``screen._tau2``,
    its terms summed per partition with ``screen.tau2_terms``)."""
    from pyspark.sql import functions as F

    from monitor.detect.screen import tau2, tau2_terms

    got = (long.groupBy((F.col("code") % width).alias("c"), "__bucket")
           .agg(F.sum("n").alias("n"), F.sum("d").alias("d")).toPandas())
    out = np.zeros((2, width, n_buckets + 1))
    c, t = got["c"].to_numpy(np.int64), got["__bucket"].to_numpy(np.int64) + 1
    out[0, c, t], out[1, c, t] = got["n"].to_numpy(float), got["d"].to_numpy(float)
    columns = (np.cumsum(out[0], axis=1), np.cumsum(out[1], axis=1))

    p = long.groupBy(F.expr(f"code div {width}").alias("r"), (F.col("code") % width).alias("c")).agg(
        F.sum("n").alias("y"), F.sum("d").alias("d"))
    k = p.groupBy("c").agg(F.when(F.sum("d") != 0, F.sum("y") / F.sum("d")).alias("rate"))
    e = p.join(F.broadcast(k), on="c").select("r", "y", (F.col("d") * F.coalesce(F.col("rate"), F.lit(0.0))).alias("e"))
    s = e.groupBy("r").agg(F.sum("y").alias("ys"), F.sum("e").alias("es"))
    terms = e.join(s, on="r").select("y", "e", (F.col("ys") - F.col("y")).alias("yo"), (F.col("es") - F.col("e")).alias("eo"))

    def partial(frames):
        excess = weight = 0.0
        for f in frames:
            x, w = tau2_terms(*(f[col].to_numpy(float) for col in ("y", "e", "yo", "eo")))
            excess, weight = excess + x, weight + w
        yield pd.DataFrame({"excess": [excess], "weight": [weight]})

    sums = terms.mapInPandas(partial, schema="excess double, weight double").toPandas()
    return columns, tau2(float(sums["excess"].sum()), float(sums["weight"].sum()))


def _assemble(spark, metric: Metric, axis: pd.DatetimeIndex, long, dims, sets, pair_sets, gid,
              hits: set[tuple], *, two: bool) -> tuple[pd.DatetimeIndex, list]:
    """The series in ``build_slices``'s order: the total and the kept pairs whole on the driver,
    every other slice a ``RemoteSlice`` whose rows stay in one checkpointed Spark table
    (`two`: values and volume are two columns, as a ratio's or a mean's)."""
    n = len(axis)
    rank = {gid(s): i for i, s in enumerate(sets)}
    keys = long.select("__gid", *dims).distinct().toPandas()  # one row per series: labels, no buckets
    keys = keys.assign(__rank=keys["__gid"].map(rank)).sort_values(
        ["__rank", *dims, "__gid"], na_position="last", kind="stable").reset_index(drop=True)
    gids = keys["__gid"].to_numpy(np.int64)
    columns = {d: [None if pd.isna(v) else v for v in keys[d].tolist()] for d in dims}
    del keys
    pair_gids = [gid(p) for p in pair_sets]
    is_pair = np.isin(gids, pair_gids)
    screened = np.zeros(len(gids), bool)
    if hits:
        screened[[i for i in np.flatnonzero(is_pair).tolist()
                  if (int(gids[i]), *(columns[d][i] for d in dims)) in hits]] = True
    if is_pair.any():
        # the pair floor and the duplicate test read the pairs, their parents and the total
        parents = _parent_links(gids, columns, dims, pair_sets, gid)
        local = np.unique(np.concatenate([[0], np.flatnonzero(is_pair), parents[:, 1]]))
        values, volume = _dense(spark, long, gids, columns, dims, local, n, two)
        compact = np.full(len(gids), -1, np.int64)
        compact[local] = np.arange(len(local))
        picked = local[_kept_pairs(metric, values, volume, is_pair[local],
                                   compact[parents] if len(parents) else parents, n, screened[local])]
        kept = picked[is_pair[picked]]
        order = np.concatenate([np.flatnonzero(~is_pair), kept])
        held = {int(i): (values[compact[i]], volume[compact[i]]) for i in [0, *kept.tolist()]}
        del values, volume
    else:
        order = np.arange(len(gids))
        values, volume = _dense(spark, long, gids, columns, dims, np.array([0]), n, two)
        held = {0: (values[0], volume[0])}
    table = SliceTable(local_checkpoint(_keyed(spark, long, gids, columns, dims, order)), n, ratio=two)
    series = []
    for pos, sid in enumerate(order.tolist()):
        segment = {d: columns[d][sid] for d in dims if columns[d][sid] is not None}
        if sid in held:
            series.append(SliceSeries(segment, *held[sid], bool(screened[sid])))
        else:
            series.append(RemoteSlice(segment, table, pos))
    return axis, series


def _parent_links(gids: np.ndarray, columns: dict, dims, pair_sets, gid) -> np.ndarray:
    """(pair id, one-dimension parent id) for both parents of every pair slice."""
    links = []
    for pair in pair_sets:
        for d in pair:
            single = {columns[d][i]: i for i in np.flatnonzero(gids == gid((d,))).tolist()}
            links += [(i, single[columns[d][i]]) for i in np.flatnonzero(gids == gid(pair)).tolist()
                      if columns[d][i] in single]
    return np.array(links, np.int64).reshape(-1, 2)


def _keyed(spark, long, gids: np.ndarray, columns: dict, dims, ids: np.ndarray):
    """(pos, __bucket, __num, __den) of the series ``ids`` (pos: index in `ids`)."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    schema = T.StructType([T.StructField("k_gid", T.IntegerType()),
                           *(T.StructField(f"k_{d}", T.StringType()) for d in dims),
                           T.StructField("pos", T.LongType())])
    wanted = pd.DataFrame({"k_gid": gids[ids].astype(np.int32),
                           **{f"k_{d}": pd.Series([columns[d][i] for i in ids.tolist()], dtype=object) for d in dims},
                           "pos": np.arange(len(ids), dtype=np.int64)})
    keyed = spark.createDataFrame(wanted, schema=schema)
    on = (F.col("__gid") == F.col("k_gid"))
    for d in dims:  # a grouped-out dimension is NULL on both sides
        on = on & F.col(d).eqNullSafe(F.col(f"k_{d}"))
    return long.join(F.broadcast(keyed), on=on).select("pos", "__bucket", "__num", "__den")


def _dense(spark, long, gids, columns, dims, ids: np.ndarray, n: int, ratio: bool):
    """(values, volume) arrays of the series ``ids``, rows in that order."""
    rows = _keyed(spark, long, gids, columns, dims, ids).toPandas()
    values = np.zeros((len(ids), n))
    volume = np.zeros((len(ids), n)) if ratio else values
    pos, bucket = rows["pos"].to_numpy(np.int64), rows["__bucket"].to_numpy(np.int64)
    values[pos, bucket] = rows["__num"].to_numpy(float)
    if ratio:
        volume[pos, bucket] = rows["__den"].to_numpy(float)
    return values, volume
