"""The default install has no pyspark: every module of the toolkit, warehouse mode's included,
imports without it, the default store is the DuckDB file, and a warehouse store opens without
starting Spark (the dashboard reads its leaves through DuckDB views). Not marked spark: it runs
in every test run, with pyspark blocked in a child process as if the extra were not installed."""
from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import monitor

ROOT = Path(__file__).resolve().parents[1]


def test_every_module_imports_and_stores_open_without_pyspark(tmp_path):
    modules = sorted(m.name for m in pkgutil.walk_packages(monitor.__path__, "monitor.")
                     if not m.name.startswith("monitor.dashboard.app") and not m.name.endswith("__main__"))  # run on import
    assert "monitor.warehouse.staging" in modules and "monitor.warehouse.slices" in modules
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "monitor.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "ware").mkdir()
    (tmp_path / "ware" / "monitor.toml").write_text("[project]\nname = 'x'\n[store]\nleaves = 'spark'\n")
    code = textwrap.dedent(f"""
        import importlib, sys
        sys.modules["pyspark"] = None  # as if the spark extra were not installed: importing it fails
        for name in {modules!r}:
            importlib.import_module(name)
        from monitor.config import load_config
        from monitor.warehouse import open_store
        plain = open_store(load_config({str(tmp_path / "plain")!r}))
        ware = open_store(load_config({str(tmp_path / "ware")!r}))
        assert type(plain).__name__ == "Store", plain
        assert type(ware).__name__ == "WarehouseStore" and not ware.has_leaves("fraud_rate"), ware
        assert sys.modules["pyspark"] is None and "sqlglot" not in sys.modules
        print("ok", len({modules!r}))
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("ok ")
