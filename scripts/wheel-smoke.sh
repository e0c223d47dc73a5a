#!/usr/bin/env bash
# The package as a user gets it: build the wheel, install it into a fresh virtualenv outside
# the checkout, and use it from an unrelated folder (init + backfill + detect + incidents,
# the demo, and the dashboard answering on its port). Catches files the code reads at run
# time but the wheel does not ship.
#
# Usage: scripts/wheel-smoke.sh [PYTHON]   (PYTHON: the checkout's venv python, default .venv/bin/python)
# The dependencies are not downloaded again: the fresh venv sees the checkout venv's
# site-packages through a .pth line (its .pth files, e.g. the editable install, stay inert).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${1:-$ROOT/.venv/bin/python}
case "$PY" in /*) ;; *) PY="$ROOT/$PY" ;; esac
WORK=$(mktemp -d "${TMPDIR:-/tmp}/monitor-wheel-smoke.XXXXXX")
DASH_PID=""
cleanup() {
    if [ -n "$DASH_PID" ]; then kill "$DASH_PID" 2>/dev/null || true; wait "$DASH_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
step() { echo "wheel-smoke: $*" >&2; }

step "building the wheel"
# Build from a copy of the tracked files: no build/ or egg-info left in the checkout.
mkdir "$WORK/src"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
    [ -e "$f" ] && printf '%s\0' "$f"; done | tar --null -T - -cf -) | tar -C "$WORK/src" -xf -
"$PY" -m pip wheel --quiet --no-deps --wheel-dir "$WORK/dist" "$WORK/src" >&2
WHEEL=$(ls "$WORK"/dist/monitor-*.whl)
"$PY" - "$WHEEL" <<'EOF'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
needed = ["monitor/sql/schema.sql", "monitor/sql/alerts.sql", "monitor/sql/scheduler.sql", "monitor/sql/events.sql",
          "monitor/dashboard/app/app.py", "monitor/dashboard/app/pages_common.py",
          "monitor/demo/metrics/fraud_rate.sql"]
missing = [n for n in needed if n not in names]
if missing:
    sys.exit(f"wheel-smoke: the wheel lacks {', '.join(missing)}")
EOF

step "installing it into a fresh venv in $WORK"
"$PY" -m venv --without-pip "$WORK/venv"  # the checkout's pip installs into it (--python): faster
VPY="$WORK/venv/bin/python"
"$PY" -m pip --python "$VPY" install --quiet --no-index --no-deps "$WHEEL" >&2
DEPS=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
SITE=$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$DEPS" > "$SITE/zz-monitor-deps.pth"
MON="$WORK/venv/bin/monitor"

cd "$WORK"
where=$("$VPY" -c 'import monitor; print(monitor.__file__)')
case "$where" in "$WORK/venv/"*) ;; *) echo "wheel-smoke: monitor imported from $where, not the wheel" >&2; exit 1 ;; esac
case "$(head -1 "$MON")" in "#!$WORK/venv/"*) ;; *) echo "wheel-smoke: $MON does not run the fresh venv's python" >&2; exit 1 ;; esac

step "init + check + backfill + detect + incidents"
"$MON" init wp >/dev/null
(cd wp && "$MON" check && "$MON" backfill --start 2026-01-01 --end 2026-01-15 --no-detect \
    && "$MON" detect --as-of 2026-01-15 && "$MON" incidents >/dev/null && "$MON" incidents --format json >/dev/null)

step "demo"
"$MON" demo --dir demo --days 45 >/dev/null
"$MON" --config demo/monitor.toml incidents >/dev/null

step "dashboard"
PORT=$("$VPY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$MON" --config demo/monitor.toml dashboard --host 127.0.0.1 --port "$PORT" >"$WORK/dashboard.log" 2>&1 &
DASH_PID=$!
"$VPY" - "$PORT" <<'EOF'
import sys, time, urllib.request
url = f"http://127.0.0.1:{sys.argv[1]}/"
deadline = time.monotonic() + 60
while True:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            if reply.status == 200:
                break
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit(f"wheel-smoke: the dashboard did not answer 200 on {url} within 60 s")
    time.sleep(0.3)
EOF
# The page above is Streamlit's static shell; render the installed app itself once too.
MONITOR_CONFIG="$WORK/demo/monitor.toml" "$VPY" - <<'EOF'
import sys
from streamlit.testing.v1 import AppTest
from monitor.dashboard.cli import APP
at = AppTest.from_file(str(APP), default_timeout=60).run()
if at.exception:
    sys.exit(f"wheel-smoke: the installed dashboard app raised: {at.exception[0].value}")
EOF
kill "$DASH_PID"; wait "$DASH_PID" 2>/dev/null || true; DASH_PID=""
step "ok"
