"""The wheel ships every file the code reads at run time (schema, dashboard app, demo metrics).

scripts/wheel-smoke.sh (run by `make test`) installs the wheel and uses it; this test pins the
file list. The files' one home is the top-level sql/, dashboards/ and metrics/; pyproject.toml
maps them into the package (monitor.sql, monitor.dashboard.app, monitor.demo.metrics).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Top-level folder -> (package it ships as, suffix of the files the code reads).
DATA_DIRS = {"sql": ("monitor.sql", ".sql"), "dashboards": ("monitor.dashboard.app", ".py"),
             "metrics": ("monitor.demo.metrics", ".sql")}


def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_runtime_files_resolve_to_their_one_home():
    from monitor.dashboard.cli import APP
    from monitor.demo.project import DEMO_METRICS
    from monitor.store.store import SQL_DIR

    assert Path(str(SQL_DIR)) == ROOT / "sql" and (SQL_DIR / "schema.sql").is_file()
    assert APP == ROOT / "dashboards" / "app.py" and APP.is_file()
    assert Path(str(DEMO_METRICS)) == ROOT / "metrics"
    assert any(p.name.endswith(".sql") for p in DEMO_METRICS.iterdir())


def test_package_list_is_complete():
    """The package list is explicit (the data folders are mapped in), so a new subpackage
    must be added to it or it would be missing from the wheel."""
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "monitor").rglob("__init__.py")}
    mapped = {package for package, _ in DATA_DIRS.values()}
    listed = set(_setuptools()["packages"])
    assert listed == on_disk | mapped, f"pyproject.toml packages: add {sorted(on_disk - listed)}, drop {sorted(listed - on_disk - mapped)}"
    assert _setuptools()["package-dir"] == {package: folder for folder, (package, _) in DATA_DIRS.items()}
    assert not (ROOT / "monitor" / "sql").exists(), "the schema's one home is the top-level sql/"


@pytest.mark.slow
def test_built_wheel_contains_the_runtime_files(tmp_path):
    src = tmp_path / "src"  # a copy, so the build leaves no build/ or egg-info in the checkout
    for folder in ("monitor", *DATA_DIRS):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--wheel-dir", str(tmp_path / "dist"), str(src)], check=True, cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("monitor-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder, (package, suffix) in DATA_DIRS.items():
        inside = package.replace(".", "/")
        expected = {f"{inside}/{p.name}" for p in (ROOT / folder).iterdir() if p.suffix == suffix}
        assert expected, folder
        assert expected <= names, f"missing from the wheel: {sorted(expected - names)}"
