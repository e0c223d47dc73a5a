"""Store: DuckDB tables of leaf rows, the run log, incidents and what later steps add."""
from monitor.clock import utc_naive
from monitor.store.store import SCHEMA_FILES, SQL_DIR, Store, leaves_table, slice_label

__all__ = ["SCHEMA_FILES", "SQL_DIR", "Store", "leaves_table", "slice_label", "utc_naive"]
