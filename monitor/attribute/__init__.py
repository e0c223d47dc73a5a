"""Attribute: which segments explain a change; mix versus rate for ratio metrics."""
from monitor.attribute.contributions import Contribution, contributions_by_dimension, ratio_effects
from monitor.attribute.explain import DimensionBreakdown, Explanation, MixRateSplit, RootCause, explain
from monitor.attribute.leaves import LeafTable, normalise_leaves
from monitor.attribute.localize import SearchOptions, localize, localize_table

__all__ = ["Contribution", "DimensionBreakdown", "Explanation", "LeafTable", "MixRateSplit", "RootCause",
           "SearchOptions", "contributions_by_dimension", "explain", "localize", "localize_table", "normalise_leaves",
           "ratio_effects"]
