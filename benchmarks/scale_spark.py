"""`benchmarks/scale.py --engine spark`: the same world and scoring in warehouse mode.

The project gets ``[store] leaves = "spark"`` (Parquet under <workdir>/leaves, a local Spark
session with --master, local[2] by default): backfill writes the leaves to Spark a chunk of
--chunk days at a time (so the driver holds one chunk, never all leaves), and detect builds the
slices, judges them on the executors and attributes on Spark. The store file keeps incidents,
so the scoring is the DuckDB path's.

Memory is measured per process by polling /proc: the Python driver's peak RSS (VmHWM) apart
from the Spark JVM's (in local mode the JVM is the Spark driver *and* the executors, so its
size says what one machine of the cluster needs, not what the driver process does).

    nice -n 10 .venv/bin/python benchmarks/scale.py --engine spark --sellers 20000 --days 180 --master local[2]
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

CHUNK_DAYS = 14
POLL_SECONDS = 0.2


def config(master: str, memory: str = "2g") -> str:
    """The [store] section of warehouse mode with a local session."""
    return (f'\n[store]\nleaves = "spark"\npath = "leaves"\n[store.options]\nmaster = "{master}"\n'
            f'conf = {{ "spark.driver.memory" = "{memory}", "spark.sql.shuffle.partitions" = "4" }}\n')


@dataclass
class SparkStep:
    name: str
    seconds: float
    cpu_seconds: float  # user + system of the Python driver and its waited-for children (the JVM, the workers)
    max_rss_mb: float  # the Python driver's own peak RSS
    jvm_rss_mb: float  # the Spark JVM's peak RSS (driver and local executors)
    returncode: int
    output: str


def _hwm_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def run_step(name: str, argv: list[str], *, cwd: Path, env: dict | None = None) -> SparkStep:
    """One step as its own process, with the driver's and the JVM's peak RSS polled apart."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peaks = {"driver": 0.0, "jvm": 0.0}
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            peaks["driver"] = max(peaks["driver"], _hwm_mb(proc.pid))
            for child in _children(proc.pid):
                peaks["jvm"] = max(peaks["jvm"], _hwm_mb(child))
            done.wait(POLL_SECONDS)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    watcher.join()
    step = SparkStep(name, time.perf_counter() - t0, usage.ru_utime + usage.ru_stime, peaks["driver"], peaks["jvm"],
                     os.waitstatus_to_exitcode(status), output)
    if step.returncode != 0:
        print(f"{name} failed ({step.returncode}):\n{output}", file=sys.stderr)
    return step


def steps(monitor: list[str], when: list[str], *, cwd: Path, env: dict) -> list[SparkStep]:
    """backfill (leaves to Spark, CHUNK_DAYS at a time) and detect, in warehouse mode."""
    shutil.rmtree(cwd / "leaves", ignore_errors=True)  # a previous run's leaves: start from nothing
    return [
        run_step("backfill --no-detect", [*monitor, "backfill", "--start", when[0], "--end", when[1], "--no-detect",
                                          "--chunk", str(CHUNK_DAYS)], cwd=cwd, env=env),
        run_step("detect", [*monitor, "detect"], cwd=cwd, env=env),
    ]


def report(raw_seconds: float, spark_steps: list[SparkStep]) -> None:
    for s in spark_steps:
        if not isinstance(s, SparkStep):  # the raw DuckDB step
            print(f"  {s.name:<22} {s.seconds:7.1f} s wall  {s.cpu_seconds:7.1f} s CPU  peak RSS {s.max_rss_mb:6.0f} MB")
            continue
        print(f"  {s.name:<22} {s.seconds:7.1f} s wall ({s.seconds / raw_seconds:5.2f}x raw)  {s.cpu_seconds:7.1f} s CPU"
              f"  driver peak RSS {s.max_rss_mb:6.0f} MB  Spark JVM peak RSS {s.jvm_rss_mb:6.0f} MB"
              f"{'' if s.returncode == 0 else '  FAILED'}")
