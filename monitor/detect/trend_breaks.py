"""Best trend with at most a few typed changes, by exhaustive search: for short series.

A short yearly series (20 to 120 points: a debt, a GDP, a count per season) trends, and a
reader marks where the trend *bends or breaks*: the slope changes (a kink, the line stays
continuous), the level jumps, or both. The piecewise-linear search of ``changepoint``
only knows "both" (a new intercept and slope per segment, 2 parameters + location per
change), so a kink costs it one parameter too many, and one smooth polynomial trend
(2 extra coefficients) nearly always beats it on a short series.

Here every change has a type and pays for what it fits, in the same BIC units as the rest
of the selection (log(n) per parameter, the location counted as one):

- ``kink``: (t - c)+ , a slope change, continuous line: 1 parameter + location;
- ``jump``: 1{t >= c}, a level shift, same slope: 1 + location;
- ``break``: both: 2 + location (what the piecewise-linear search fits).

All models with at most ``max_changes`` changes (any positions at least ``min_size``
apart and from the ends, any types) on a line, with AR(1) errors (phi profiled on a grid,
as ``ar1_deviance_design``), are scored exactly. That is cheap for short series: per
phi, one Gram matrix of the quasi-differenced columns [1, t, every jump, every kink, y]
gives every model's residual sum of squares from a small batched solve.
"""
from __future__ import annotations

import math
from itertools import product

import numpy as np

# Parameters per change type (the location is paid on top, as one more).
TYPE_PARAMS = {"kink": 1, "jump": 1, "break": 2}
_TYPES = tuple(TYPE_PARAMS)


def _columns(n: int, positions: np.ndarray) -> np.ndarray:
    """[1, t, jumps at positions..., kinks at positions...], t scaled to [0, 1] (conditioning)."""
    t = np.arange(n, dtype=float) / max(n - 1, 1)
    c = positions / max(n - 1, 1)
    jumps = (t[:, None] >= c[None, :] - 1e-12).astype(float)
    kinks = np.maximum(t[:, None] - c[None, :], 0.0)
    return np.hstack([np.ones((n, 1)), t[:, None], jumps, kinks])


def _specs(n_pos: int, positions: np.ndarray, min_size: int, max_changes: int):
    """Column index sets of every model with 1..max_changes changes, grouped by width:
    {(width, k): (column indices (m, width), change positions (m, k), parameter count (m,))}."""
    groups: dict[tuple[int, int], tuple[list, list, list]] = {}
    jump0, kink0 = 2, 2 + n_pos
    idx = np.arange(n_pos)
    combos = [[(i,) for i in idx]]
    if max_changes >= 2:
        i, j = np.triu_indices(n_pos, k=1)
        ok = positions[j] - positions[i] >= min_size
        combos.append(list(zip(i[ok], j[ok])))
    if max_changes >= 3:
        raise ValueError("max_changes above 2 is not supported (the search is exhaustive)")
    for combo_list in combos:
        if not combo_list:
            continue
        arr = np.array(combo_list)  # (m, k)
        k = arr.shape[1]
        for types in product(_TYPES, repeat=k):
            cols = [np.zeros(len(arr), dtype=int), np.ones(len(arr), dtype=int)]
            for p, ty in enumerate(types):
                if ty in ("jump", "break"):
                    cols.append(jump0 + arr[:, p])
                if ty in ("kink", "break"):
                    cols.append(kink0 + arr[:, p])
            params = sum(TYPE_PARAMS[ty] for ty in types)
            g = groups.setdefault((len(cols), k), ([], [], []))
            g[0].append(np.stack(cols, axis=1))
            g[1].append(positions[arr])
            g[2].append(np.full(len(arr), params))
    return {w: (np.concatenate(a), np.concatenate(b), np.concatenate(c)) for w, (a, b, c) in groups.items()}


def best_typed_changes(
    y: np.ndarray,
    *,
    max_ar: float,
    min_size: int = 3,
    max_changes: int = 2,
    phi_step: float = 0.05,
    floor_var: float = 0.0,
    location_cost: float = 1.0,
) -> tuple[list[int], float, float]:
    """(change positions, criterion, criterion of the line alone) of the best line with at most
    ``max_changes`` typed changes (see the module docstring). The criterion is the AR(1)
    deviance of ``ar1_deviance_design`` (conditional likelihood, variance over its degrees of
    freedom, floored at ``floor_var`` marginal) plus log(n) per change parameter and
    location; the line alone pays nothing, as in ``changepoint._select_ar1``."""
    y = np.asarray(y, dtype=float)
    n = y.size
    logn = math.log(max(n, 2))
    positions = np.arange(min_size, n - min_size + 1)
    phis = np.arange(0.0, max_ar + 1e-9, phi_step)
    M = np.hstack([_columns(n, positions), y[:, None]])
    yi = M.shape[1] - 1
    if positions.size == 0:
        return [], math.inf, math.inf
    specs = _specs(positions.size, positions, min_size, max_changes)
    grams = []
    for phi in phis:
        D = M[1:] - phi * M[:-1]
        grams.append(D.T @ D)
    grams = np.stack(grams)  # (phi, P, P)

    def deviance(cols: np.ndarray) -> np.ndarray:
        """Best deviance over phi of each model (rows of ``cols``)."""
        width = cols.shape[1]
        dof = max(n - 1 - width - 1, 1)
        best = np.full(cols.shape[0], np.inf)
        for f, G in zip(phis, grams):
            S = G[cols[:, :, None], cols[:, None, :]]
            r = G[cols, yi]
            try:
                b = np.linalg.solve(S, r[:, :, None])[:, :, 0]
            except np.linalg.LinAlgError:
                b = np.stack([np.linalg.lstsq(s, v, rcond=None)[0] for s, v in zip(S, r)])
            rss = np.maximum(G[yi, yi] - np.einsum("mk,mk->m", b, r), 0.0)
            var = np.maximum(np.maximum(rss / dof, floor_var * (1.0 - f * f)), 1e-300)
            best = np.minimum(best, (n - 1) * np.log(var))
        return best

    line = float(deviance(np.array([[0, 1]]))[0])
    best_cps: list[int] = []
    best_crit = line
    for cols, pos, params in specs.values():
        crit = deviance(cols) + (params + location_cost * pos.shape[1]) * logn
        i = int(np.argmin(crit))
        if crit[i] < best_crit:
            best_crit, best_cps = float(crit[i]), [int(p) for p in pos[i]]
    return best_cps, best_crit, line
