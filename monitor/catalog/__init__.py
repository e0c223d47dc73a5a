"""Catalog: load and validate metric definition files (PRODUCT.md Contract 1)."""
from monitor.catalog.loader import HEADER_KEYS, Catalog, Problem, load_catalog, load_metric_file, parse_metric
from monitor.catalog.metric import DetectSettings, Metric

__all__ = ["Catalog", "DetectSettings", "HEADER_KEYS", "Metric", "Problem", "load_catalog",
           "load_metric_file", "parse_metric"]
