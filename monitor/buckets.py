"""A distribution metric's buckets: their order, their numeric values, and which of them
gained or lost mass. Shared by detection, attribution and the dashboard."""
from __future__ import annotations

import numpy as np

PSEUDO = 0.5  # baseline count added to every bin (Jeffreys), so an empty bin has a share
TOP_MOVED = 5  # bins listed as gaining and losing mass in an incident


def order_key(label: str):
    """Numeric labels in numeric order, then the others alphabetically."""
    try:
        return (0, float(label), "")
    except ValueError:
        return (1, 0.0, label)


def bucket_values(labels: list[str]) -> np.ndarray:
    """Numeric value of each bucket label (its position when labels are not numbers)."""
    try:
        return np.array([float(x) for x in labels])
    except ValueError:
        return np.arange(len(labels), dtype=float)


def moved_buckets(before: np.ndarray, after: np.ndarray, labels: list[str], top: int = TOP_MOVED) -> dict:
    """Which bins gained and lost mass between two count vectors, as shares (JSON-safe)."""
    before = np.asarray(before, float)
    after = np.asarray(after, float)
    p0 = before / max(before.sum(), 1e-12)
    p1 = after / max(after.sum(), 1e-12)
    d = p1 - p0
    order = np.argsort(-d)
    row = lambda i: {"bucket": labels[i], "before": round(float(p0[i]), 5), "after": round(float(p1[i]), 5)}  # noqa: E731
    k = len(labels)
    q0 = (before + PSEUDO) / (before.sum() + PSEUDO * k)
    q1 = (after + PSEUDO) / (after.sum() + PSEUDO * k)
    return {"gained": [row(i) for i in order[:top] if d[i] > 0],
            "lost": [row(i) for i in order[::-1][:top] if d[i] < 0],
            "psi": round(float(((q1 - q0) * np.log(q1 / q0)).sum()), 5)}
