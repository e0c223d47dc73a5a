"""Run a metric's SQL on Apache Spark: the scale-out engine for sources that outgrow one machine.

The metric file stays DuckDB SQL. SQLGlot translates it to Spark SQL (see
:mod:`monitor.engine.transpile`); the window is bound as Spark named parameters; Spark
does the scan and the GROUP BY on the cluster and only the aggregated leaf rows come back,
as Arrow, through the same :func:`check_result` as the DuckDB engine.

``[source]`` in monitor.toml::

    [source]
    engine = "spark"
    views = { orders = "data/orders.parquet" }          # Parquet (file, folder or glob) or CSV
    [source.options]
    master = "local[2]"                                 # or spark://host:7077, yarn, k8s://...
    # remote = "sc://spark-connect.internal:15002"      # Spark Connect instead of master
    tables = { payment_attempts = "prod.risk.payment_attempts",            # a catalog table
               refunds = { path = "s3a://risk-lake/refunds/", format = "delta" } }
    conf = { "spark.executor.memory" = "8g" }

pyspark and SQLGlot are imported only when the engine opens its session, so the default
install does not need them; without them the error says what to install.
"""
from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa

from monitor.catalog import Metric
from monitor.config import SourceConfig
from monitor.engine.duckdb_engine import check_result, schema_problems
from monitor.engine.transpile import INSTALL_HINT, TranspileError, bind_window, translate
from monitor.engine.windows import Window
from monitor.errors import ConfigError, MetricRunError, first_line
from monitor.registry import ENGINES

OPTION_KEYS = {
    "master": "Spark master URL for a classic session (default local[*]): local[N], spark://host:7077, yarn, k8s://...",
    "remote": "Spark Connect URL, sc://host:15002 (instead of master; needs pip install 'pyspark[connect]')",
    "app_name": "application name shown in the Spark UI (default monitor)",
    "conf": "extra Spark settings, a table of key = value",
    "tables": "table name -> catalog table (\"db.orders\") or { path = ..., format = ..., options = {...} }",
    "timezone": "spark.sql.session.timeZone of the session (default UTC, the toolkit's time base)",
}
TABLE_KEYS = {"table", "path", "format", "options"}
FILE_FORMATS = {".parquet": "parquet", ".csv": "csv", ".csv.gz": "csv", ".json": "json", ".orc": "orc"}
CSV_OPTIONS = {"header": "true", "inferSchema": "true"}
# Sensible defaults for a local session on a small machine; a user's `conf` wins.
# Local mode stays on the loopback interface and opens no web UI port unless asked to.
LOCAL_DEFAULTS = {
    "spark.sql.shuffle.partitions": "4",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
CLUSTER_DEFAULTS = {
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
PROBE = dt.datetime(2000, 1, 1)
CONNECT_TIMEOUT = 15.0  # seconds to open a TCP connection to a Spark Connect server
JAVA_HINT = ("Spark needs a Java 17+ runtime: on Debian/Ubuntu `apt-get install default-jre-headless` "
             "(or run scripts/spark-deps.sh), or set JAVA_HOME")


@ENGINES.register("spark")
class SparkEngine:
    """Run metrics on a Spark session: classic (``master``) or Spark Connect (``remote``).

    ``session``: use this SparkSession instead of building one (tests, notebooks). A classic
    session is forked with ``newSession()`` so the engine's temp views and time zone do not
    leak into it; the caller keeps ownership and ``close()`` never stops it.
    """

    name = "spark"

    def __init__(self, source: SourceConfig, *, session: Any = None, tables_required: bool = True):
        self.source = source
        self.options = dict(source.options)
        unknown = set(self.options) - set(OPTION_KEYS)
        if unknown:
            valid = "; ".join(f"{k}: {v}" for k, v in OPTION_KEYS.items())
            raise ConfigError(
                f"Unknown key(s) {sorted(unknown)} in [source.options] for the Spark engine; valid keys: {valid}.")
        if self.options.get("master") and self.options.get("remote"):
            raise ConfigError("[source.options] names both master and remote; the Spark engine uses one: "
                              "master for a classic session, remote (sc://...) for Spark Connect.")
        if self.options.get("remote"):
            _connect_address(str(self.options["remote"]))  # a malformed URL is a config error now
        if source.database is not None:
            raise ConfigError(
                f"[source] database = {source.database} is a DuckDB file, which Spark cannot read; export its "
                "tables to Parquet (monitor.engine.spark_engine.export_parquet, or DuckDB's "
                "COPY table TO 'file.parquet' (FORMAT parquet)) and list them in [source.views], "
                "or name catalog tables in [source.options.tables]."
            )
        self.tables = self._table_specs()
        if not self.tables and tables_required:  # the warehouse's session reads no source table
            raise ConfigError("The Spark engine has no tables: list Parquet files in [source.views] "
                              "or catalog tables in [source.options.tables].")
        self._given = session
        self._spark: Any = None
        self._stop_context = False
        self._sql: dict[tuple[str, str], tuple[str, frozenset[str]]] = {}
        self._registered: set[str] = set()

    # -- session ------------------------------------------------------------------------------
    @property
    def remote(self) -> str | None:
        return self.options.get("remote") or None

    @property
    def master(self) -> str:
        return str(self.options.get("master") or "local[*]")

    def session(self):
        """The engine's SparkSession, started on first use (tables are registered as queries need them)."""
        if self._spark is None:
            self._spark = self._open()
            self._registered = set()
        return self._spark

    def _open(self):
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:
            raise ConfigError(f"The Spark engine needs pyspark; {INSTALL_HINT}.") from exc
        timezone = str(self.options.get("timezone", "UTC"))
        conf = {str(k): _conf_value(v) for k, v in dict(self.options.get("conf") or {}).items()}
        if self._given is not None:
            spark = self._given if _is_connect(self._given) else self._given.newSession()
        elif self.remote:
            spark = self._open_connect(SparkSession, conf)
        else:
            spark = self._open_classic(SparkSession, conf)
        try:
            spark.conf.set("spark.sql.session.timeZone", timezone)
            for key, value in conf.items():  # also when the session (or its context) already existed
                _set_runtime_conf(spark, key, value)
        except Exception as exc:  # noqa: BLE001 - pyspark raises many types here
            raise ConfigError(f"Spark rejected a setting in [source.options]: {first_line(exc)}") from exc
        return spark

    def _open_connect(self, SparkSession, conf: dict[str, str]):
        # The Connect client retries an unreachable server for minutes; a wrong URL should fail now.
        host, port = _connect_address(self.remote)
        try:
            socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
        except OSError as exc:
            raise ConfigError(f"Cannot reach Spark Connect at {host}:{port} ([source.options] remote = "
                              f"{self.remote!r}): {exc.strerror or exc}.") from exc
        builder = SparkSession.builder.remote(self.remote)
        try:
            # create() opens a new server-side session: its temp views are ours alone.
            return builder.create() if hasattr(builder, "create") else builder.getOrCreate()
        except ImportError as exc:
            raise ConfigError("Spark Connect needs its client libraries: pip install 'pyspark[connect]' "
                              f"({first_line(exc)}).") from exc
        except Exception as exc:  # noqa: BLE001
            raise ConfigError(f"Could not connect to Spark Connect at {self.remote}: {first_line(exc)}") from exc

    def _open_classic(self, SparkSession, conf: dict[str, str]):
        if not _java_available():
            raise ConfigError(f"No Java runtime found for Spark ({self.master}); {JAVA_HINT}.")
        from pyspark import SparkContext

        had_context = SparkContext._active_spark_context is not None
        if had_context:
            # This process already runs Spark (a notebook, a test session): join it as it is. Builder
            # options would be written into that session's conf; ours go to our own session below.
            builder = SparkSession.builder
        else:
            local = self.master.startswith("local")
            defaults = dict(LOCAL_DEFAULTS if local else CLUSTER_DEFAULTS)
            # The driver JVM (this process's child) logs errors only, so a command's output stays readable.
            defaults["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile={_quiet_log_config().as_uri()}"
            if local:
                os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # read by the JVM before any conf
                # local Python workers (warehouse mode's detection) run this interpreter and its packages
                os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            builder = SparkSession.builder.master(self.master).appName(str(self.options.get("app_name", "monitor")))
            for key, value in {**defaults, **conf}.items():
                builder = builder.config(key, value)
        try:
            base = builder.getOrCreate()
        except Exception as exc:  # noqa: BLE001 - JVM start-up failures come as several types
            raise ConfigError(f"Could not start Spark ({self.master}): {first_line(exc)}; {JAVA_HINT}.") from exc
        if not had_context:
            base.sparkContext.setLogLevel("ERROR")
        self._stop_context = not had_context
        # A session of our own (shared SparkContext): temp views and the time zone stay here.
        return base.newSession()

    def close(self) -> None:
        spark, self._spark = self._spark, None
        if spark is None:
            return
        try:
            if self._given is not None:
                if not _is_connect(spark):
                    for name in self._registered:
                        spark.catalog.dropTempView(name)
            elif self.remote:
                spark.stop()
            elif self._stop_context:
                spark.sparkContext.stop()
        except Exception:  # noqa: BLE001 - closing must not hide the error that led here
            pass

    def __enter__(self) -> "SparkEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- tables -------------------------------------------------------------------------------
    def _table_specs(self) -> dict[str, dict[str, Any]]:
        """name -> {"table": ...} or {"path", "format", "options"} from [source.views] and options.tables."""
        specs: dict[str, dict[str, Any]] = {}
        local = not self.remote and self.master.startswith("local")
        for name, path in self.source.views.items():
            specs[name] = {"path": str(path), "format": _format_of(name, str(path)), "options": {}}
            if local and not _glob(str(path)) and not Path(path).exists():
                raise ConfigError(f"View {name}: {path} does not exist; fix [source.views] in monitor.toml.")
        tables = self.options.get("tables") or {}
        if not isinstance(tables, dict):
            raise ConfigError("[source.options] tables must be a table of name = \"catalog.db.table\" entries.")
        for name, value in tables.items():
            if not str(name).isidentifier():
                raise ConfigError(f"Table name {name!r} in [source.options.tables] must be an identifier.")
            if name in specs:
                raise ConfigError(f"{name} is both in [source.views] and [source.options.tables]; keep one.")
            if isinstance(value, str):
                spec = {"table": value} if "/" not in value else {
                    "path": value, "format": _format_of(name, value, default="parquet"), "options": {}}
            elif isinstance(value, dict):
                unknown = set(value) - TABLE_KEYS
                if unknown or ("table" in value) == ("path" in value):
                    raise ConfigError(
                        f"[source.options.tables] {name}: give either table = \"db.table\" or path = \"...\" "
                        f"(with optional format and options); got keys {sorted(value)}."
                    )
                spec = dict(value)
                if "path" in spec:
                    spec["format"] = str(spec.get("format") or _format_of(name, str(spec["path"]), default="parquet"))
                    spec["options"] = {str(k): _conf_value(v) for k, v in dict(spec.get("options") or {}).items()}
            else:
                raise ConfigError(f"[source.options.tables] {name}: expected a table name or a table, got {value!r}.")
            specs[name] = spec
        return specs

    def register_tables(self, names=None) -> None:
        """Make the configured tables (all, or these names) visible to Spark SQL as temp views.

        Done lazily per query: reading a table's schema lists its files, which on an object
        store takes a while, so only the tables a metric reads are touched.
        """
        spark = self.session()
        by_lower = {n.lower(): n for n in self.tables}  # Spark SQL names are case-insensitive
        wanted = [by_lower[n.lower()] for n in (self.tables if names is None else names) if n.lower() in by_lower]
        for name in wanted:
            if name in self._registered:
                continue
            spec = self.tables[name]
            try:
                if "table" in spec:
                    if spec["table"] == name:
                        self._registered.add(name)
                        continue  # already visible under its own name
                    frame = spark.table(spec["table"])
                else:
                    reader = spark.read.format(spec["format"])
                    options = {**(CSV_OPTIONS if spec["format"] == "csv" else {}), **spec.get("options", {})}
                    for key, value in options.items():
                        reader = reader.option(key, value)
                    frame = reader.load(spec["path"])
                frame.createOrReplaceTempView(name)
                self._registered.add(name)
            except ConfigError:
                raise
            except Exception as exc:  # noqa: BLE001 - AnalysisException, Py4JJavaError, gRPC errors
                what = spec.get("table") or spec.get("path")
                raise ConfigError(f"Spark cannot read table {name} ({what}): {first_line(exc)}") from exc

    # -- queries ------------------------------------------------------------------------------
    def spark_sql(self, metric: Metric) -> str:
        """The metric's query as Spark SQL (cached); TranspileError names the construct that can't be."""
        return self._translated(metric)[0]

    def _translated(self, metric: Metric) -> tuple[str, frozenset[str]]:
        key = (metric.name, metric.sql)
        if key not in self._sql:
            self._sql[key] = translate(metric)
        return self._sql[key]

    def execute(self, metric: Metric, window: Window, *, limit: int | None = None) -> pa.Table:
        """The raw result of the metric's SQL for the window as Arrow, unchecked."""
        try:
            return self._arrow(metric, window, limit)
        except SparkQueryError as exc:
            raise MetricRunError(
                f"{metric.name} failed on Spark for {window}: {exc} ({metric.path}:{metric.sql_line})",
                evidence=self._sql.get((metric.name, metric.sql), (metric.sql,))[0],
            ) from exc.__cause__

    def run(self, metric: Metric, window: Window) -> pa.Table:
        """Leaf rows for the window: ts, dimensions as strings, measures as doubles, checked."""
        return check_result(metric, window, self.execute(metric, window))

    def dry_run(self, metric: Metric) -> list[str]:
        """Problems found by translating the query and letting Spark analyse it on an empty window."""
        try:
            table = self._arrow(metric, Window(PROBE, PROBE), 0)
        except TranspileError as exc:
            return [str(exc)]
        except SparkQueryError as exc:
            return [f"{metric.name} ({metric.path}:{metric.sql_line}): Spark rejects the translated query: {exc}"]
        return schema_problems(metric, table.schema)

    def _arrow(self, metric: Metric, window: Window, limit: int | None) -> pa.Table:
        query, tables = self._translated(metric)  # TranspileError names the construct
        spark = self.session()
        self.register_tables(sorted(tables))
        try:
            frame = spark.sql(query, args=bind_window(window.start, window.end))
            if limit is not None:
                frame = frame.limit(limit)  # limit 0: analysed, planned, nothing scanned
            table = _to_arrow(frame)
        except Exception as exc:  # noqa: BLE001 - AnalysisException, ParseException, Py4JJavaError...
            if not _is_spark_error(exc):
                raise
            raise SparkQueryError(_spark_message(exc)) from exc
        return _naive_utc(table)


class SparkQueryError(Exception):
    """Spark refused or failed the translated query; the message is Spark's first line."""


def export_parquet(database: str | Path, folder: str | Path, tables: list[str] | None = None) -> dict[str, Path]:
    """Copy tables of a DuckDB file to ``folder/<table>.parquet`` (for [source.views]); returns name -> path."""
    import duckdb

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    with duckdb.connect(str(database), read_only=True) as con:
        names = tables or [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1").fetchall()]
        for name in names:
            path = folder / f"{name}.parquet"
            literal = str(path).replace("'", "''")
            con.execute(f'COPY (SELECT * FROM "{name}") TO \'{literal}\' (FORMAT parquet, COMPRESSION zstd)')
            out[name] = path
    return out


# -- helpers ----------------------------------------------------------------------------------
def _to_arrow(frame) -> pa.Table:
    if hasattr(frame, "toArrow"):  # Spark >= 4 (classic and Connect)
        return frame.toArrow()
    return pa.Table.from_pandas(frame.toPandas(), preserve_index=False)  # Spark 3.5, Arrow enabled


def _naive_utc(table: pa.Table) -> pa.Table:
    """Timestamps with a zone (Spark's TIMESTAMP, in the UTC session zone) as naive UTC, like DuckDB's."""
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            table = table.set_column(i, field.name, table.column(i).cast(pa.timestamp(field.type.unit)))
    return table


def _format_of(name: str, path: str, default: str | None = None) -> str:
    lower = path.lower().rstrip("/")
    for ext, fmt in FILE_FORMATS.items():
        if lower.endswith(ext):
            return fmt
    if default or Path(path).is_dir():
        return default or "parquet"  # a folder of Parquet files (Spark's own layout)
    raise ConfigError(f"View {name}: {path} is not a Parquet, CSV, JSON or ORC file or a folder of Parquet files.")


def _glob(path: str) -> bool:
    return any(ch in path for ch in "*?[{")


def _conf_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _set_runtime_conf(spark, key: str, value: str) -> None:
    try:
        spark.conf.set(key, value)
    except Exception as exc:  # noqa: BLE001
        if "CANNOT_MODIFY_CONFIG" in str(exc) or "static" in str(exc).lower():
            return  # a static setting belongs to the cluster, not to this session
        raise


def _connect_address(url: str) -> tuple[str, int]:
    """host and port of sc://host[:port][/;params] (Spark Connect's default port is 15002)."""
    if not url.startswith("sc://"):
        raise ConfigError(f"[source.options] remote = {url!r} is not a Spark Connect URL; use sc://host:15002.")
    netloc = url[len("sc://"):].split("/", 1)[0].split(";", 1)[0]
    host, _, port = netloc.rpartition(":") if ":" in netloc.lstrip("[").split("]")[-1] else (netloc, "", "")
    host = host.strip("[]") or "localhost"
    try:
        return host, int(port) if port else 15002
    except ValueError:
        raise ConfigError(f"[source.options] remote = {url!r}: {port!r} is not a port number.") from None


def _is_connect(session) -> bool:
    return type(session).__module__.startswith("pyspark.sql.connect")


def _is_spark_error(exc: Exception) -> bool:
    try:
        from pyspark.errors import PySparkException
    except ImportError:  # pragma: no cover - pyspark < 3.4 is not supported anyway
        PySparkException = ()  # type: ignore[assignment]
    try:
        from py4j.protocol import Py4JError
    except ImportError:  # Spark Connect client without py4j
        Py4JError = ()  # type: ignore[assignment]
    return isinstance(exc, (PySparkException, Py4JError))


QUIET_LOG4J2 = """\
# Written by monitor's Spark engine: the driver logs errors only (set spark.driver.extraJavaOptions to change).
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = stderr
appender.console.type = Console
appender.console.name = stderr
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n
"""


def _quiet_log_config() -> Path:
    user = os.getuid() if hasattr(os, "getuid") else 0
    path = Path(tempfile.gettempdir()) / f"monitor-spark-log4j2-{user}.properties"
    try:
        if not path.exists() or path.read_text() != QUIET_LOG4J2:
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(QUIET_LOG4J2)
            tmp.replace(path)
    except OSError:
        pass  # logging stays Spark's default
    return path


def _java_available() -> bool:
    home = os.environ.get("JAVA_HOME")
    return bool((home and Path(home, "bin", "java").exists()) or shutil.which("java"))


def _spark_message(exc: Exception) -> str:
    """Spark's first line; positions in it refer to the translated SQL, so say so."""
    java = getattr(exc, "java_exception", None)  # a raw Py4JJavaError: its own text is "An error occurred..."
    text = first_line(exc) if java is None else (str(java).strip().splitlines() or [type(exc).__name__])[0]
    return re.sub(r"\(line (\d+), pos (\d+)\)", r"(line \1, pos \2 of the translated Spark SQL)", text)
