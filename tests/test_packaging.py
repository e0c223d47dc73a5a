"""The wheel ships every file the code reads at run time (schema, dashboard app, demo metrics).

scripts/wheel-smoke.sh (run by `make test`) installs the wheel and uses it; this test pins
the file list and that each such file has one home, inside the package.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Folders whose files the installed package reads, relative to the repository root.
DATA_DIRS = {"monitor/sql": ".sql", "monitor/dashboard/app": ".py", "monitor/demo/metrics": ".sql"}


def test_runtime_files_resolve_inside_the_package():
    from monitor.dashboard.cli import APP
    from monitor.demo.project import DEMO_METRICS
    from monitor.store.store import SQL_DIR

    package = ROOT / "monitor"
    assert Path(str(SQL_DIR)).is_relative_to(package) and (SQL_DIR / "schema.sql").is_file()
    assert APP.is_relative_to(package) and APP.is_file()
    assert any(p.name.endswith(".sql") for p in DEMO_METRICS.iterdir())


def test_each_file_has_one_home():
    """The old top-level copies are gone, so they cannot drift from the packaged ones."""
    for old in ("sql", "dashboards", "metrics"):
        assert not (ROOT / old).exists(), f"{old}/ is back at the top level; its files live under monitor/ now"


@pytest.mark.slow
def test_built_wheel_contains_the_runtime_files(tmp_path):
    src = tmp_path / "src"  # a copy, so the build leaves no build/ or egg-info in the checkout
    shutil.copytree(ROOT / "monitor", src / "monitor", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--wheel-dir", str(tmp_path / "dist"), str(src)], check=True, cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("monitor-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder, suffix in DATA_DIRS.items():
        expected = {p.relative_to(ROOT).as_posix() for p in (ROOT / folder).iterdir() if p.suffix == suffix}
        assert expected, folder
        assert expected <= names, f"missing from the wheel: {sorted(expected - names)}"
