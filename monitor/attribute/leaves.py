"""Leaf tables: the common input of localize, contributions and explain.

A leaf is one full combination of the dimensions with additive measures (``actual``/``expected``
for a sum metric, ``actual_num``/``actual_den``/``expected_num``/``expected_den`` for a ratio).
Dimension values may be ints or strings; they are compared and returned as ``str``. Duplicate
leaves are merged by summing (the measures are additive by contract).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SUM_COLUMNS = ("actual", "expected")
RATIO_COLUMNS = ("actual_num", "actual_den", "expected_num", "expected_den")
KINDS = ("sum", "ratio")


@dataclass(frozen=True)
class LeafTable:
    """Normalised leaves: integer codes per dimension plus float measures."""

    kind: str
    dimensions: tuple[str, ...]
    codes: np.ndarray  # n_leaves x n_dims, int64; codes[:, j] indexes labels[j]
    labels: tuple[np.ndarray, ...]  # per dimension: str label of each code
    measures: dict[str, np.ndarray]  # column -> float array (n_leaves)

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    def values(self, dimension: str) -> np.ndarray:
        """The str value of ``dimension`` for every leaf."""
        j = self.dimensions.index(dimension)
        return self.labels[j][self.codes[:, j]]

    def segment(self, segment: dict[str, str]) -> np.ndarray:
        """Boolean mask of the leaves inside ``segment`` ({dimension: value})."""
        mask = np.ones(len(self), dtype=bool)
        for dim, value in segment.items():
            j = self.dimensions.index(dim)
            hits = np.nonzero(self.labels[j] == str(value))[0]
            mask &= np.isin(self.codes[:, j], hits)
        return mask

    def before_after(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(num0, den0, num1, den1): for a sum metric den is 1 per leaf."""
        m = self.measures
        if self.kind == "sum":
            ones = np.ones(len(self))
            return m["expected"], ones, m["actual"], ones
        return m["expected_num"], m["expected_den"], m["actual_num"], m["actual_den"]


def measure_columns(kind: str) -> tuple[str, ...]:
    if kind not in KINDS:
        raise ValueError(f"kind must be 'sum' or 'ratio', not {kind!r}")
    return SUM_COLUMNS if kind == "sum" else RATIO_COLUMNS


def normalise_leaves(
    leaves: pd.DataFrame, dimensions: list[str] | tuple[str, ...], kind: str
) -> LeafTable:
    """Validate the columns, factorise dimension values as str and merge duplicate leaves."""
    measures = measure_columns(kind)
    dims = tuple(dimensions)
    if not dims:
        raise ValueError("at least one dimension is needed")
    if len(set(dims)) != len(dims):
        raise ValueError(f"dimensions repeat: {list(dims)}")
    missing = [c for c in (*dims, *measures) if c not in leaves.columns]
    if missing:
        raise ValueError(f"leaves lack column(s) {', '.join(missing)} for kind={kind!r}")
    codes = np.empty((len(leaves), len(dims)), dtype=np.int64)
    labels = []
    for j, dim in enumerate(dims):
        codes[:, j], labels_j = _factorise_as_str(leaves[dim])
        labels.append(labels_j)
    values = {
        col: pd.to_numeric(leaves[col], errors="coerce").fillna(0.0).to_numpy(dtype=float)
        for col in measures
    }
    codes, values = _merge_duplicates(codes=codes, values=values)
    # One canonical order (codes follow the sorted labels, rows follow the codes), so the
    # result cannot depend on the order an engine grouped the rows in: the search breaks
    # ties between equal cells (common with small integer counts) by position.
    order = np.lexsort(codes.T[::-1]) if len(codes) > 1 else np.arange(len(codes))
    codes, values = codes[order], {k: v[order] for k, v in values.items()}
    return LeafTable(kind=kind, dimensions=dims, codes=codes, labels=tuple(labels), measures=values)


def _factorise_as_str(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes of the str form of each value (1 and "1" are the same value)."""
    raw_codes, uniques = pd.factorize(column, sort=False)
    as_str = [str(u) for u in uniques]
    if (raw_codes < 0).any():  # missing values form their own segment, labelled like pandas
        raw_codes = np.where(raw_codes < 0, len(as_str), raw_codes)
        as_str.append("nan")
    merged_codes, merged = pd.factorize(np.asarray(as_str, dtype=object), sort=True)
    return merged_codes[raw_codes].astype(np.int64), np.asarray(merged, dtype=object)


def _merge_duplicates(
    codes: np.ndarray, values: dict[str, np.ndarray]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    if len(codes) < 2:
        return codes, values
    uniques, inverse = np.unique(codes, axis=0, return_inverse=True) if _may_repeat(codes) else (
        codes,
        None,
    )
    if inverse is None or len(uniques) == len(codes):
        return codes, values
    inverse = inverse.ravel()
    merged = {k: np.bincount(inverse, weights=v, minlength=len(uniques)) for k, v in values.items()}
    return uniques.astype(np.int64), merged


def _may_repeat(codes: np.ndarray) -> bool:
    """Cheap duplicate check on a mixed-radix key (falls back to True when the key overflows)."""
    cards = codes.max(axis=0) + 1
    if float(np.prod(cards.astype(float))) >= 2**62:
        return True
    key = np.zeros(len(codes), dtype=np.int64)
    for j, card in enumerate(cards):
        key = key * int(card) + codes[:, j]
    if float(np.prod(cards.astype(float))) <= 8 * len(codes):
        return bool(np.bincount(key).max() > 1)
    return len(np.unique(key)) != len(key)
