"""Series-level detection: the entry points the product calls for every metric total and
slice. ``detect_series`` judges one series, ``detect_batch`` many series of equal length
at once (the baseline and the change point screen are vectorised across series).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from monitor.detect.options import DetectOptions
from monitor.detect.registry import get_detector
from monitor.detect.results import AnomalySegment, SeriesDetection

__all__ = ["AnomalySegment", "DetectOptions", "SeriesDetection", "detect_batch", "detect_series"]


def _as_2d(data, name: str) -> np.ndarray:
    arr = np.asarray(
        [[np.nan if v is None else v for v in row] for row in data] if _has_none(data) else data,
        dtype=float,
    )
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (series x buckets), got shape {arr.shape}")
    return arr


def _has_none(data) -> bool:
    if isinstance(data, np.ndarray):
        return data.dtype == object
    return any(v is None for row in data for v in (row if hasattr(row, "__iter__") else [row]))


def detect_batch(
    values_2d,
    *,
    denominators_2d=None,
    exclude=None,
    options: DetectOptions | None = None,
    **settings,
) -> list[SeriesDetection]:
    """Detect on each row of ``values_2d`` (numerators for a ratio metric when
    ``denominators_2d`` is given). ``exclude`` is one bool mask for all rows or one per row.
    ``options`` (default ``DetectOptions()``) says how; keyword ``settings`` (``period``,
    ``direction``, ``sensitivity``, ``min_volume``, ``accept_after``, ``detector``) override it."""
    options = replace(options or DetectOptions(), **settings)
    values = _as_2d(values_2d, "values_2d")
    den = None if denominators_2d is None else _as_2d(denominators_2d, "denominators_2d")
    if den is not None and den.shape != values.shape:
        raise ValueError(f"denominators_2d shape {den.shape} differs from values_2d shape {values.shape}")
    n_series, n = values.shape
    fn = get_detector(options.detector)
    batch = options.resolve(n=n, n_series=n_series, exclude=exclude)
    if n_series == 0:
        return []
    return fn(values, denominators=den, options=batch)


def detect_series(
    values,
    *,
    denominators=None,
    exclude=None,
    options: DetectOptions | None = None,
    **settings,
) -> SeriesDetection:
    """Detect anomalies in one series (``values``: sums per bucket, or numerators of a
    ratio metric with ``denominators``). Options as for ``detect_batch``; see
    ``SeriesDetection`` for the result."""
    row = [[np.nan if v is None else v for v in values]]
    den = None if denominators is None else [[np.nan if v is None else v for v in denominators]]
    return detect_batch(
        row,
        denominators_2d=den,
        exclude=None if exclude is None else np.asarray(exclude, dtype=bool)[None, :],
        options=options,
        **settings,
    )[0]
