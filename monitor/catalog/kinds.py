"""SQL over a metric's stored leaves, by kind: the two additive sums whose ratio is the
metric's value. Surfaces (dashboard, report) read every kind through these, so a mean is
sum/count and a distribution's value is its mean bucket value, exactly, for any slice."""
from __future__ import annotations

from monitor.catalog.metric import DEFAULT_BUCKET

# kinds whose value is one sum over another (the others: a plain sum)
RATIO_LIKE = ("ratio", "mean", "distribution")


def parts_sql(kind: str, bucket: str = DEFAULT_BUCKET) -> tuple[str, str]:
    """(numerator, denominator) sums; a sum metric's denominator is NULL."""
    if kind == "ratio":
        return "sum(numerator)", "sum(denominator)"
    if kind == "mean":
        return "sum(value_sum)", "sum(value_count)"
    if kind == "distribution":
        # a bucket label that is not a number counts as 0 (its position is not in SQL)
        return f'sum("count" * coalesce(TRY_CAST("{bucket}" AS DOUBLE), 0))', 'sum("count")'
    return 'sum("value")', "NULL"


def value_sql(kind: str, bucket: str = DEFAULT_BUCKET) -> tuple[str, str]:
    """(value, volume) aggregates: the metric's value per group and its events."""
    num, den = parts_sql(kind, bucket)
    if kind in RATIO_LIKE:
        return f"{num} / nullif({den}, 0)", den
    return num, num
