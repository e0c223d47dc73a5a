#!/usr/bin/env bash
# What the Spark engine and its tests need, installed only when missing (safe to re-run):
#   1. a Java 17+ runtime, from Debian's registry (default-jre-headless), never a JDK download;
#   2. the project's `spark` extra (pyspark + SQLGlot) and the Spark Connect client libraries
#      (grpcio, zstandard, ...) into the virtualenv, from PyPI.
# Usage: scripts/spark-deps.sh [PYTHON]   (default: .venv/bin/python; the Makefile passes $(PY))
# Needs root (as on CI and the dev machines) only when Java has to be installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${1:-${PY:-.venv/bin/python}}"

java_major() {
  local java="java"
  [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ] && java="$JAVA_HOME/bin/java"
  command -v "$java" >/dev/null 2>&1 || { echo 0; return; }
  # `java -version` prints e.g.: openjdk version "17.0.15" 2025-04-15  (or "1.8.0_402" for Java 8)
  "$java" -version 2>&1 | awk -F'"' '/version/ { split($2, v, "."); print (v[1] == "1" ? v[2] : v[1]); exit }'
}

if [ "$(java_major)" -lt 17 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "spark-deps: Spark needs Java 17+; install it with: apt-get install default-jre-headless (needs root)" >&2
    exit 1
  fi
  echo "spark-deps: installing a Java runtime (default-jre-headless) from Debian" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends default-jre-headless >/dev/null
  if [ "$(java_major)" -lt 17 ]; then
    echo "spark-deps: Debian's default-jre-headless here is Java $(java_major); Spark 4 needs 17+" >&2
    exit 1
  fi
fi

if [ ! -x "$PY" ]; then
  echo "spark-deps: no Python at $PY; create the virtualenv first (make venv)" >&2
  exit 1
fi
if "$PY" - <<'EOF' 2>/dev/null
import importlib.metadata as md, importlib.util as iu, sys
def version(name):
    return tuple(int(x) for x in md.version(name).split(".")[:2] if x.isdigit())
ok = (3, 5) <= version("pyspark") < (5, 0) and version("sqlglot") >= (25,)
ok = ok and all(iu.find_spec(m) for m in ("pyspark", "sqlglot", "grpc", "grpc_status", "zstandard", "google.protobuf"))
sys.exit(0 if ok else 1)
EOF
then
  exit 0  # already there
fi
echo "spark-deps: installing the spark extra (pyspark, sqlglot) and the Spark Connect client" >&2
# -e '.[spark]' keeps pyproject.toml the one place that names the versions; the second line adds
# the Connect client (a no-op once the extra itself says pyspark[connect]).
"$PY" -m pip install --quiet -e '.[spark]'
"$PY" -m pip install --quiet 'pyspark[connect]>=3.5,<5'
