"""Detect: change points and anomalies on every metric total and slice."""
from monitor.detect.changepoint import find_change_points
from monitor.detect.registry import DETECTORS, get_detector, register
from monitor.detect.series import AnomalySegment, SeriesDetection, detect_batch, detect_series

__all__ = ["DETECTORS", "AnomalySegment", "SeriesDetection", "detect_batch", "detect_series",
           "find_change_points", "get_detector", "register"]
