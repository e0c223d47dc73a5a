"""Series-level detection: the entry points the product calls for every metric total and
slice. ``detect_series`` judges one series, ``detect_batch`` many series of equal length
at once (the baseline and the change point screen are vectorised across series).
"""
from __future__ import annotations

import numpy as np

from monitor.detect.options import make_options
from monitor.detect.registry import get_detector
from monitor.detect.results import AnomalySegment, SeriesDetection

__all__ = ["AnomalySegment", "SeriesDetection", "detect_batch", "detect_series"]


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
    period=7,
    direction: str = "both",
    sensitivity="medium",
    min_volume: float = 0.0,
    exclude=None,
    accept_after: int = 14,
    detector: str = "default",
) -> list[SeriesDetection]:
    """Detect on each row of ``values_2d`` (numerators for a ratio metric when
    ``denominators_2d`` is given). ``exclude`` is one bool mask for all rows or one per row."""
    values = _as_2d(values_2d, "values_2d")
    den = None if denominators_2d is None else _as_2d(denominators_2d, "denominators_2d")
    if den is not None and den.shape != values.shape:
        raise ValueError(f"denominators_2d shape {den.shape} differs from values_2d shape {values.shape}")
    n_series, n = values.shape
    fn = get_detector(detector)
    options = make_options(
        n=n,
        n_series=n_series,
        period=period,
        direction=direction,
        sensitivity=sensitivity,
        min_volume=min_volume,
        exclude=exclude,
        accept_after=accept_after,
        detector=detector,
    )
    if n_series == 0:
        return []
    return fn(values, denominators=den, options=options)


def detect_series(
    values,
    *,
    denominators=None,
    period=7,
    direction: str = "both",
    sensitivity="medium",
    min_volume: float = 0.0,
    exclude=None,
    accept_after: int = 14,
    detector: str = "default",
) -> SeriesDetection:
    """Detect anomalies in one series (``values``: sums per bucket, or numerators of a
    ratio metric with ``denominators``). See ``SeriesDetection`` for the result."""
    row = [[np.nan if v is None else v for v in values]]
    den = None if denominators is None else [[np.nan if v is None else v for v in denominators]]
    return detect_batch(
        row,
        denominators_2d=den,
        period=period,
        direction=direction,
        sensitivity=sensitivity,
        min_volume=min_volume,
        exclude=None if exclude is None else np.asarray(exclude, dtype=bool)[None, :],
        accept_after=accept_after,
        detector=detector,
    )[0]
