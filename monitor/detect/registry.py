"""Detectors, looked up by a string key: a metric header names one (``detect.detector``),
so a new detector is one ``@register("key")`` away.

A detector meets :class:`Detector`: a batch function ``fn(values_2d, *, denominators,
options) -> list[SeriesDetection]`` where ``options`` is a resolved ``BatchOptions``;
``detect_batch`` in ``monitor.detect.series`` dispatches through ``get_detector``. The
registry is ``monitor.registry.DETECTORS``, the shape shared with engines and notifiers;
the built-ins (``monitor.detect.detectors``) are loaded on the first lookup.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

from monitor.registry import DETECTORS, UnknownKeyError

if TYPE_CHECKING:
    from monitor.detect.options import BatchOptions
    from monitor.detect.results import SeriesDetection

__all__ = ["DETECTORS", "Detector", "UnknownKeyError", "get_detector", "register"]


class Detector(Protocol):
    def __call__(self, values: np.ndarray, *, denominators: np.ndarray | None = None,
                 options: "BatchOptions") -> "list[SeriesDetection]": ...


register = DETECTORS.register


def get_detector(name: str) -> Detector:
    """The detector registered as ``name``; UnknownKeyError (a ValueError) listing the valid ones."""
    return DETECTORS.get(name)
