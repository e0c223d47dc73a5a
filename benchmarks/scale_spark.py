"""`benchmarks/scale.py --engine spark`: the same world and scoring in warehouse mode.

The project gets ``[store] leaves = "spark"`` (Parquet under <workdir>/leaves, a local Spark
session with --master, local[2] by default): backfill writes the leaves to Spark a chunk of
--chunk days at a time (the driver holds one record batch of a chunk, never all leaves), and detect builds the
slices, judges them on the executors and attributes on Spark. The store file keeps incidents,
so the scoring is the DuckDB path's.

Memory is measured per process by polling /proc: the Python driver's peak RSS (VmHWM) apart
from the Spark JVM's (in local mode the JVM is the Spark driver *and* the executors, so its
size says what one machine of the cluster needs, not what the driver process does).

    nice -n 10 .venv/bin/python benchmarks/scale.py --engine spark --sellers 20000 --days 180 --master local[2]

Run as a script, it compares the paths on one world, back to back: the DuckDB path, then warehouse
mode on each --master in turn; per step wall, CPU, driver and JVM peak RSS and the machine's load
average while it ran (the machine is shared: a step under load 6 is not comparable with one under
load 2), and per path the scoring of benchmarks/scale.py. --json writes the same figures.

    nice -n 10 .venv/bin/python benchmarks/scale_spark.py --sellers 20000 --days 60 \
        --masters 'local[2]' 'local[1]' --json scale_spark_20k.json
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

CHUNK_DAYS = 14
CHUNK_ROWS = 1_500_000  # leaf rows per backfill window at most: the source query's aggregate in the driver
# (the rows themselves go to Spark staged a batch at a time, monitor.warehouse.staging)
POLL_SECONDS = 0.2


def config(master: str, memory: str = "2g") -> str:
    """The [store] section of warehouse mode with a local session."""
    return (f'\n[store]\nleaves = "spark"\npath = "leaves"\n[store.options]\nmaster = "{master}"\n'
            f'conf = {{ "spark.driver.memory" = "{memory}", "spark.sql.shuffle.partitions" = "4" }}\n')


@dataclass
class SparkStep:
    name: str
    seconds: float
    cpu_seconds: float  # user + system of the Python driver, the JVM and the Python workers
    max_rss_mb: float  # the Python driver's own peak RSS
    jvm_rss_mb: float  # the Spark JVM's peak RSS (driver and local executors)
    returncode: int
    output: str
    load: float = 0.0  # the machine's 1-minute load average, mean over the step


def _hwm_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def _cpu_seconds(pid: int) -> float:
    """user + system CPU of a live process so far (/proc/PID/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _descendants(pid: int) -> list[int]:
    out, todo = [], _children(pid)
    while todo:
        child = todo.pop()
        out.append(child)
        todo += _children(child)
    return out


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
    loads: list[float] = []
    cpu: dict[int, float] = {}
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            peaks["driver"] = max(peaks["driver"], _hwm_mb(proc.pid))
            for child in _children(proc.pid):
                peaks["jvm"] = max(peaks["jvm"], _hwm_mb(child))
            # the JVM and its Python workers are not reaped by the driver: their CPU is polled
            for child in [proc.pid, *_descendants(proc.pid)]:
                cpu[child] = max(cpu.get(child, 0.0), _cpu_seconds(child))
            loads.append(os.getloadavg()[0])
            done.wait(POLL_SECONDS)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    watcher.join()
    # the driver's own CPU is in `usage`, with that of any child it reaped; the polled sum
    # misses the last poll interval: the larger of the two
    polled = sum(cpu.values())
    step = SparkStep(name, time.perf_counter() - t0, max(usage.ru_utime + usage.ru_stime, polled),
                     peaks["driver"], peaks["jvm"],
                     os.waitstatus_to_exitcode(status), output, sum(loads) / max(len(loads), 1))
    if step.returncode != 0:
        print(f"{name} failed ({step.returncode}):\n{output}", file=sys.stderr)
    return step


def chunk_days(sellers: int) -> int:
    """Backfill window in days: CHUNK_DAYS, fewer when a day has many leaves (3 per seller)."""
    return max(1, min(CHUNK_DAYS, CHUNK_ROWS // max(3 * sellers, 1)))


def steps(monitor: list[str], when: list[str], *, cwd: Path, env: dict, sellers: int = 0) -> list[SparkStep]:
    """backfill (leaves to Spark, chunk_days at a time) and detect, in warehouse mode."""
    shutil.rmtree(cwd / "leaves", ignore_errors=True)  # a previous run's leaves: start from nothing
    return [
        run_step("backfill --no-detect", [*monitor, "backfill", "--start", when[0], "--end", when[1], "--no-detect",
                                          "--chunk", str(chunk_days(sellers))], cwd=cwd, env=env),
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


def _path(name: str, work: Path, steps_: list, attacks: list[dict], end, days: int, scale) -> dict:
    """One path's figures and scoring, as a JSON-able dict."""
    paged, false, evaluated, total = scale.score(work / "store.duckdb", attacks, end, days)
    return {"path": name, "incidents": total, "attacks_paged": sum(paged), "attacks": len(paged),
            "false_paging": false, "evaluated_days": round(evaluated, 1),
            "steps": [{"step": s.name, "wall_s": round(s.seconds, 1), "cpu_s": round(s.cpu_seconds, 1),
                       "driver_peak_rss_mb": round(s.max_rss_mb), "jvm_peak_rss_mb": round(getattr(s, "jvm_rss_mb", 0)),
                       "load": round(getattr(s, "load", 0.0), 1), "ok": s.returncode == 0} for s in steps_]}


def _incident_keys(work: Path) -> list[tuple]:
    import duckdb

    with duckdb.connect(str(work / "store.duckdb"), read_only=True) as con:
        return con.execute("SELECT incident_id, slice, start_ts, direction FROM incidents ORDER BY ALL").fetchall()


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import scale

    parser = argparse.ArgumentParser(description="The DuckDB path and warehouse mode on one world, back to back.")
    parser.add_argument("--sellers", type=int, default=20000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--boost", type=float, default=8.0)
    parser.add_argument("--masters", nargs="+", default=["local[2]"], help="Spark masters, run in this order.")
    parser.add_argument("--no-duckdb", action="store_true", help="Skip the DuckDB path.")
    parser.add_argument("--jvm-memory", default="2g", help="spark.driver.memory of the local session.")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="Write the figures here.")
    args = parser.parse_args(argv)

    import tempfile
    work = Path(args.workdir or tempfile.mkdtemp(prefix="scale-spark-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    end = scale.START + dt.timedelta(days=args.days)
    attacks = scale.choose_attacks(args.sellers, args.days, args.seed, args.boost)
    for a in attacks:
        a["start"] = scale.START + dt.timedelta(days=a["first_day"])
    source = work / "source.duckdb"
    source.unlink(missing_ok=True)
    maker = multiprocessing.get_context("spawn").Process(
        target=scale.generate, args=(source, args.sellers, args.days, args.seed, attacks, args.boost))
    maker.start()
    maker.join()
    if maker.exitcode:
        raise SystemExit(f"generating the world failed ({maker.exitcode})")
    print(f"world: {args.sellers:,} sellers x 3 channels x {args.days} days = {args.sellers * 3 * args.days:,} leaf rows"
          f" ({work}); {os.cpu_count()} cores")
    when = [f"{scale.START:%Y-%m-%d}", f"{end:%Y-%m-%d}"]
    env = dict(os.environ, PYTHONPATH=str(scale.ROOT))
    paths = [("duckdb", None)] * (not args.no_duckdb) + [(f"spark {m}", m) for m in args.masters]
    results, keys = [], {}
    for name, master in paths:
        folder = work / name.replace(" ", "-").replace("[", "").replace("]", "")
        shutil.rmtree(folder, ignore_errors=True)
        (folder / "metrics").mkdir(parents=True)
        (folder / "source.duckdb").symlink_to(source)
        (folder / "metrics" / "fraud_rate.sql").write_text(scale.METRIC_SQL)
        (folder / "monitor.toml").write_text(scale.CONFIG + (config(master, args.jvm_memory) if master else ""))
        monitor = [sys.executable, "-m", "monitor.cli", "--config", str(folder / "monitor.toml"), "--now", when[1]]
        if master:
            done = steps(monitor, when, cwd=folder, env=env, sellers=args.sellers)
        else:
            done = [run_step("backfill --no-detect", [*monitor, "backfill", "--start", when[0], "--end", when[1],
                                                      "--no-detect"], cwd=folder, env=env),
                    run_step("detect", [*monitor, "detect"], cwd=folder, env=env)]
        results.append(_path(name, folder, done, attacks, end, args.days, scale))
        keys[name] = _incident_keys(folder) if all(s.returncode == 0 for s in done) else None
        _print(results[-1])
    first = next(iter(keys.values()), None)
    same = {name: k == first for name, k in keys.items()}
    print("same incidents (ids, slices, starts, directions) as the first path: "
          + ", ".join(f"{n}: {'yes' if v else 'NO'}" for n, v in same.items()))
    if args.json:
        args.json.write_text(json.dumps({"sellers": args.sellers, "days": args.days, "seed": args.seed,
                                         "leaf_rows": args.sellers * 3 * args.days, "paths": results,
                                         "same_incidents": same}, indent=2))
    return 0 if all(s["ok"] for r in results for s in r["steps"]) else 1


def _print(result: dict) -> None:
    print(f"{result['path']}: {result['incidents']} incidents, attacks paged naming the seller "
          f"{result['attacks_paged']}/{result['attacks']}, false paging {result['false_paging']}"
          f" over {result['evaluated_days']} days")
    for s in result["steps"]:
        print(f"  {s['step']:<22} {s['wall_s']:7.1f} s wall {s['cpu_s']:7.1f} s CPU  driver peak {s['driver_peak_rss_mb']:5d} MB"
              f"  JVM peak {s['jvm_peak_rss_mb']:5d} MB  load {s['load']:4.1f}{'' if s['ok'] else '  FAILED'}")
    sys.stdout.flush()


if __name__ == "__main__":
    raise SystemExit(main())
