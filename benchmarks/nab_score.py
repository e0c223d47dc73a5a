"""NAB's scoring rules (Lavin & Ahmad 2015), as written in ../shared/data/nab-dev/README.md.

Everything here works on record indices of one file: a window is ``(left, right)``, both
inclusive; a page is the index of the record it is stamped on. ``score_file`` gives one file's
raw score under a profile, ``normalised`` turns raw scores summed over a set of files into
NAB's 0-100 figure (0 = never page, 100 = every window paged at its left edge, no false page).
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    tp: float
    fn: float
    fp: float


PROFILES = {
    "standard": Profile(tp=1.0, fn=1.0, fp=0.11),
    "reward_low_fp": Profile(tp=1.0, fn=1.0, fp=0.22),
    "reward_low_fn": Profile(tp=1.0, fn=2.0, fp=0.11),
}

PROBATION_FRACTION = 0.15
PROBATION_CAP = 750


def sigmoid(y: float) -> float:
    """NAB's scaled sigmoid S(y) = 2 / (1 + exp(5y)) - 1, and -1 once y > 3."""
    if y > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def probation_length(n_records: int) -> int:
    """Records at the start of a file whose pages do not count: 15 %, at most 750."""
    return min(math.floor(PROBATION_FRACTION * n_records), PROBATION_CAP)


@dataclass(frozen=True)
class FileScore:
    score: float  # raw NAB score of the file under one profile
    windows: int
    hit: int  # windows with a counted page inside
    fp_pages: int  # counted pages outside every window
    null: float  # the score of never paging: -fn x windows
    perfect: float  # the score of paging every window at its left edge: tp x windows


def score_file(n_records: int, windows: list[tuple[int, int]], pages, profile: Profile) -> FileScore:
    """Raw NAB score of one file. ``pages``: record indices (duplicates count once, as a
    record is detected or not)."""
    windows = sorted((int(a), int(b)) for a, b in windows)
    for a, b in windows:
        if not 0 <= a <= b < n_records:
            raise ValueError(f"window {(a, b)} is not inside 0..{n_records - 1}")
    probation = probation_length(n_records)
    counted = sorted({int(p) for p in pages if probation <= int(p) < n_records})
    s_left = sigmoid(-1.0)  # a page on a window's left edge scores tp exactly
    best: dict[int, float] = {}
    fp_score, fp_pages = 0.0, 0
    for p in counted:
        inside = next((k for k, (a, b) in enumerate(windows) if a <= p <= b), None)
        if inside is not None:
            a, b = windows[inside]
            if inside not in best:  # the earliest page of a window; later ones add nothing
                y = -(b - p + 1) / (b - a + 1)
                best[inside] = profile.tp * sigmoid(y) / s_left
            continue
        fp_pages += 1
        before = [(a, b) for a, b in windows if b < p]
        if not before:
            fp_score -= profile.fp
            continue
        a, b = before[-1]
        width = b - a + 1
        y = (p - b) / (width - 1) if width > 1 else math.inf
        fp_score += profile.fp * sigmoid(y)
    missed = len(windows) - len(best)
    score = sum(best.values()) + fp_score - profile.fn * missed
    return FileScore(
        score=score,
        windows=len(windows),
        hit=len(best),
        fp_pages=fp_pages,
        null=-profile.fn * len(windows),
        perfect=profile.tp * len(windows),
    )


def normalised(scores: list[FileScore]) -> float:
    """NAB's figure over a set of files: 100 x (sum - null) / (perfect - null)."""
    total = sum(s.score for s in scores)
    null = sum(s.null for s in scores)
    perfect = sum(s.perfect for s in scores)
    if perfect == null:
        return math.nan  # no window in the set: the figure is undefined
    return 100.0 * (total - null) / (perfect - null)
