"""The Spark session of the spark tests: one local[2] session for the whole run (the `spark`
fixture in conftest.py), which also serves Spark Connect on loopback when pyspark ships its
server. pyspark is imported only when a test asks for the session."""
from __future__ import annotations

import importlib.util
import os
import socket
from pathlib import Path

import pytest

INSTALL = "run scripts/spark-deps.sh (Java from Debian + pip install -e '.[spark]')"


def require_spark() -> None:
    """Skip the calling test module without pyspark or Java (see `require`)."""
    from monitor.engine.spark_engine import _java_available

    require(importable("pyspark"), "pyspark (the spark extra)")
    require(_java_available(), "a Java runtime (java on PATH or JAVA_HOME)")


def require(ok: bool, what: str) -> None:
    """Skip without `what`; under CI (``CI`` set, or ``MONITOR_REQUIRE_SPARK=1``) fail instead, so
    a forgotten ``scripts/spark-deps.sh`` step cannot turn the suite green by skipping Spark tests."""
    if ok:
        return
    if os.environ.get("MONITOR_REQUIRE_SPARK") == "1" or os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{what} is not installed although CI requires the Spark tests; {INSTALL}", pytrace=False)
    pytest.skip(f"{what} is not installed; {INSTALL}", allow_module_level=True)


def importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module blocked in sys.modules
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect_server_jar() -> bool:
    """pyspark >= 4 ships the Spark Connect server; 3.5 would need it downloaded, which we don't."""
    import pyspark

    return any((Path(pyspark.__file__).parent / "jars").glob("spark-connect_*.jar"))


def local_session(warehouse_dir: Path):
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    if connect_server_jar():
        builder = (builder.config("spark.plugins", "org.apache.spark.sql.connect.SparkConnectPlugin")
                   .config("spark.connect.grpc.binding.address", "127.0.0.1")
                   .config("spark.connect.grpc.binding.port", str(free_port())))
    session = (
        builder.master("local[2]").appName("monitor-tests")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.memory", "1g")
        # A short-lived test JVM: the C1 compiler alone and the serial GC start much faster on 2 cores.
        .config("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
        .config("spark.sql.warehouse.dir", str(warehouse_dir))
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session
