"""Detector registry: detectors are looked up by a string key (metric headers and config
name them), so a new detector is one ``register`` call away.

A detector is a batch function ``fn(values_2d, *, denominators_2d, options) ->
list[SeriesDetection]`` where ``options`` is a validated ``DetectOptions``; ``detect_series``
and ``detect_batch`` in ``monitor.detect.series`` dispatch through ``get_detector``.
"""
from __future__ import annotations

from typing import Callable

DetectorFn = Callable[..., list]

DETECTORS: dict[str, DetectorFn] = {}


def register(name: str) -> Callable[[DetectorFn], DetectorFn]:
    def decorator(fn: DetectorFn) -> DetectorFn:
        if name in DETECTORS and DETECTORS[name] is not fn:
            raise ValueError(f"detector {name!r} is already registered")
        DETECTORS[name] = fn
        return fn

    return decorator


def get_detector(name: str) -> DetectorFn:
    try:
        return DETECTORS[name]
    except KeyError:
        valid = ", ".join(sorted(DETECTORS))
        raise ValueError(f"unknown detector {name!r}; valid detectors are: {valid}") from None


# The built-in detectors register themselves on import; importing them here makes
# ``DETECTORS`` complete for anyone who imports the registry alone.
from monitor.detect import detectors as _builtin  # noqa: E402,F401
