"""Engine: run a metric's SQL for one half-open window on a source."""
from monitor.config import SourceConfig
from monitor.engine.duckdb_engine import DuckDBEngine, check_result, schema_problems
from monitor.engine.spark_engine import SparkEngine  # pyspark itself is imported only when used
from monitor.engine.windows import GRAIN_STEP, Window, ceil_to_grain, floor_to_grain, parse_when, split_windows
from monitor.engine.protocol import Engine
from monitor.registry import ENGINES


def make_engine(source: SourceConfig) -> Engine:
    """The engine the source config names; unknown names list the valid ones."""
    return ENGINES.get(source.engine, where=" in [source]")(source)


__all__ = ["DuckDBEngine", "ENGINES", "Engine", "SparkEngine", "GRAIN_STEP", "Window", "ceil_to_grain", "check_result",
           "floor_to_grain", "make_engine", "parse_when", "schema_problems", "split_windows"]
