"""Pick up edits of metric files without a restart, validating them first.

:class:`CatalogWatcher` polls the metrics folder (cheap: a stat of each file;
the content is hashed only when mtime or size moved) and reloads the catalog
when something changed. An edit is accepted only if the file parses and, when
a ``validate`` callback is given, its query dry-runs on the source. A broken
edit keeps the last good definition of that metric running and is reported,
so a typo saved at 05:59 does not silence the 06:00 run.

Files that failed the dry run are validated again on every poll (the source
may just have been unavailable); files with parse errors only when they change.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from monitor.catalog import Catalog, Metric, Problem, load_catalog

log = logging.getLogger(__name__)

Validate = Callable[[list[Metric]], dict[str, list[str]]]  # metrics -> {name: problems}


@dataclass
class CatalogChange:
    """What one poll changed; ``broken`` maps each file with problems to its messages."""

    added: list[Metric] = field(default_factory=list)
    updated: list[tuple[Metric, Metric]] = field(default_factory=list)  # (old, new)
    removed: list[Metric] = field(default_factory=list)
    kept: list[Metric] = field(default_factory=list)  # broken edit: the last good definition still runs
    broken: dict[Path, list[str]] = field(default_factory=dict)
    fixed: list[Path] = field(default_factory=list)  # files broken before, fine (or gone) now

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed or self.kept or self.broken or self.fixed)


class CatalogWatcher:
    """The last good definition of every metric, refreshed by :meth:`poll`."""

    def __init__(self, folder: Path | str, *, validate: Validate | None = None):
        self.folder = Path(folder)
        self.validate = validate
        self.metrics: dict[str, Metric] = {}
        self.broken: dict[Path, list[str]] = {}
        self._stats: dict[Path, tuple[int, int]] = {}
        self._hashes: dict[Path, str] = {}
        self._retry: set[Path] = set()  # files whose dry run failed: validated again each poll
        self._loaded = False

    def load(self) -> CatalogChange:
        """The first load: every parseable metric is taken as is (no dry run)."""
        catalog = load_catalog(self.folder)
        self._snapshot()
        self._loaded = True
        change = CatalogChange(added=[catalog.metrics[n] for n in sorted(catalog.metrics)])
        self.metrics = dict(catalog.metrics)
        change.broken = _by_file(catalog.problems)
        self.broken = dict(change.broken)
        return change

    def poll(self) -> CatalogChange:
        """Reload if any file changed (or awaits re-validation); returns what changed."""
        if not self._loaded:
            return self.load()
        if not self._files_changed() and not self._retry:
            return CatalogChange()
        catalog = load_catalog(self.folder)
        return self._merge(catalog)

    # -- internals ---------------------------------------------------------------------------
    def _files_changed(self) -> bool:
        stats = _stats(self.folder)
        if stats == self._stats:
            return False
        changed = False
        for path in set(stats) | set(self._stats):
            if stats.get(path) == self._stats.get(path):
                continue
            digest = _hash(path) if path in stats else None
            if digest != self._hashes.get(path):
                changed = True
        self._snapshot(stats)
        return changed

    def _snapshot(self, stats: dict[Path, tuple[int, int]] | None = None) -> None:
        self._stats = stats if stats is not None else _stats(self.folder)
        self._hashes = {p: h for p in self._stats if (h := _hash(p)) is not None}

    def _merge(self, catalog: Catalog) -> CatalogChange:
        change = CatalogChange()
        broken = _by_file(catalog.problems)
        candidates = [m for name, m in sorted(catalog.metrics.items()) if self.metrics.get(name) != m]
        rejected = self._validate(candidates)
        self._retry = set()
        for path, problems in rejected.items():
            broken.setdefault(path, []).extend(problems)
            self._retry.add(path)
        new_metrics: dict[str, Metric] = {}
        for name, metric in catalog.metrics.items():
            old = self.metrics.get(name)
            if metric.path in rejected:
                if old is not None:
                    new_metrics[name] = old
                    change.kept.append(old)
                continue
            new_metrics[name] = metric
            if old is None:
                change.added.append(metric)
            elif old != metric:
                change.updated.append((old, metric))
        for name, old in self.metrics.items():
            if name in new_metrics:
                continue
            if old.path in broken and old.path.exists():
                new_metrics[name] = old  # a broken edit: keep running what worked
                change.kept.append(old)
            else:
                change.removed.append(old)  # the file is gone, or now defines another metric
        change.broken = {p: msgs for p, msgs in broken.items() if self.broken.get(p) != msgs}
        change.fixed = [p for p in self.broken if p not in broken]
        self.metrics = new_metrics
        self.broken = broken
        for old in change.kept:
            log.warning("%s: keeping the last good definition of %s; fix the file: %s",
                        old.path, old.name, "; ".join(broken.get(old.path, [])))
        return change

    def _validate(self, metrics: list[Metric]) -> dict[Path, list[str]]:
        if not metrics or self.validate is None:
            return {}
        try:
            by_name = self.validate(metrics)
        except Exception as exc:  # noqa: BLE001 - cannot validate now: reject, and try again next poll
            by_name = {m.name: [f"could not validate the query: {type(exc).__name__}: {exc}"] for m in metrics}
        rejected: dict[Path, list[str]] = {}
        for metric in metrics:
            if by_name.get(metric.name):
                rejected[metric.path] = list(by_name[metric.name])
        return rejected


def dry_run_validator(source) -> Validate:
    """Validate metrics by running each query on an empty window of the source (like `monitor check`)."""

    def validate(metrics: list[Metric]) -> dict[str, list[str]]:
        from monitor.engine import make_engine

        with make_engine(source) as engine:
            return {m.name: engine.dry_run(m) for m in metrics}

    return validate


def _by_file(problems: tuple[Problem, ...] | list[Problem]) -> dict[Path, list[str]]:
    out: dict[Path, list[str]] = {}
    for problem in problems:
        out.setdefault(problem.path, []).append(str(problem))
    return out


def _stats(folder: Path) -> dict[Path, tuple[int, int]]:
    out = {}
    if not folder.is_dir():
        return out
    for path in folder.glob("*.sql"):
        try:
            st = path.stat()
        except OSError:
            continue
        out[path] = (st.st_mtime_ns, st.st_size)
    return out


def _hash(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None
