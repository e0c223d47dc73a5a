"""What an engine registered in ``monitor.registry.ENGINES`` provides."""
from __future__ import annotations

from typing import Protocol

import pyarrow as pa

from monitor.catalog import Metric
from monitor.config import SourceConfig
from monitor.engine.windows import Window


class Engine(Protocol):
    """Built from the ``[source]`` section; runs one metric's SQL for one half-open window."""

    name: str

    def __init__(self, source: SourceConfig) -> None: ...

    def run(self, metric: Metric, window: Window) -> pa.Table:
        """The checked result rows (ts, dimensions, measures) of the window."""

    def dry_run(self, metric: Metric) -> list[str]:
        """Problems found by running the query on an empty window (empty list: fine)."""

    def close(self) -> None: ...
