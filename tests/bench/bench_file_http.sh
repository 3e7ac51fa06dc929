#!/usr/bin/env bash
# Benchmark (run by hand, not part of the test suite): file source -> http function.
#
#   tests/bench/bench_file_http.sh [LINES]          (default 1000000 lines of 100 bytes)
#
# nginx (started through tests/services) answers 200 at once.  For each row it prints
# records/s, CPU seconds per million records (user+sys of that process and its children) and
# peak RSS, measured with GNU time (`/usr/bin/time -f '%U %S %M'`, or python's
# getrusage(RUSAGE_CHILDREN) without it) plus a monotonic clock for elapsed time:
#   cat            read-side baseline: `cat FILE > /dev/null`
#   wrk b=N        send-side baseline: wrk, 1 thread, 1 keep-alive connection, POSTing a body
#                  the size of a BatchSize-N event for DURATION s; records/s = requests/s x N
#   sluice b=N     `sluice run --until-idle=IDLE` from TRIM_HORIZON, http function -> nginx
# sluice's wall time: --until-idle exits at least IDLE seconds after the last record was fetched
# (once nothing is in flight), and its stopping line says how long ago that was, so active time
# = elapsed - that (elapsed - IDLE for a binary whose line does not say).  The last batch's
# invocation takes well under a millisecond against nginx, so the error is that small; CPU and RSS are
# whole-process figures (including the idle second, during which sluice is asleep).
#
# Env: SLUICE_BIN (default build/sluice), NGINX_PORT (18080), DURATION (5, for wrk),
#      IDLE (1), KEEP=1 keeps the temp dir, BATCHES ("100 1000"), PREV_BIN (a previous build
#      of sluice, measured beside SLUICE_BIN in the same run as "prev" rows), ROUNDS (1: how
#      many times the sluice rows are repeated, alternating the two binaries).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LINES="${1:-1000000}"
SLUICE_BIN="${SLUICE_BIN:-$ROOT/build/sluice}"
DURATION="${DURATION:-5}"
IDLE="${IDLE:-1}"
BATCHES="${BATCHES:-100 1000}"
PREV_BIN="${PREV_BIN:-}"
ROUNDS="${ROUNDS:-1}"
export NGINX_PORT="${NGINX_PORT:-18080}"
PY=/usr/bin/python3

[ -x "$SLUICE_BIN" ] || { echo "bench: no sluice at $SLUICE_BIN (build first)" >&2; exit 1; }
[ -z "$PREV_BIN" ] || [ -x "$PREV_BIN" ] || { echo "bench: no sluice at $PREV_BIN" >&2; exit 1; }
command -v wrk >/dev/null || { echo "bench: wrk missing (apt-get install wrk)" >&2; exit 1; }

TMP="$(mktemp -d /tmp/sluice-bench.XXXXXX)"
export RUN_DIR="$TMP/services"
cleanup() {
    "$ROOT/tests/services/stop.sh" || true
    if [ "${KEEP:-0}" = 1 ]; then echo "bench: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

SERVICES=nginx "$ROOT/tests/services/start.sh"
URL="http://127.0.0.1:$NGINX_PORT/events"

# ---- input: LINES lines of exactly 100 bytes (+ newline) -------------------------------
DATA="$TMP/data/input.log"
mkdir -p "$TMP/data"
$PY - "$DATA" "$LINES" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    chunk = []
    for i in range(n):
        head = '{"i":%d,"msg":"' % i
        chunk.append(head + "x" * (100 - len(head) - 2) + '"}\n')
        if len(chunk) == 10000:
            f.write("".join(chunk)); chunk = []
    f.write("".join(chunk))
PY
echo "bench: $LINES lines, $(stat -c %s "$DATA") bytes in $DATA" >&2

# ---- measuring ------------------------------------------------------------------------
# measure OUT CMD...: run CMD (stdout to /dev/null); write "elapsed user sys maxrss_kb" to OUT.
# user, sys and peak RSS come from GNU time (`/usr/bin/time -f '%U %S %M'`); without it, from
# python's getrusage(RUSAGE_CHILDREN) (then peak RSS is at least python's own ~10 MB, since
# the child starts as a copy of python).  Elapsed always comes from a monotonic clock: GNU
# time's %e has a 10 ms resolution, too coarse for the cat row.
GNU_TIME=""
if /usr/bin/time -f '%e' true >/dev/null 2>&1; then GNU_TIME=/usr/bin/time; fi
measure() {
    local out="$1"
    shift
    $PY - "$out" "$GNU_TIME" "$@" <<'PY'
import resource, subprocess, sys, time
out, gnu, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
if gnu:
    cmd = [gnu, "-f", "%U %S %M", "-o", out + ".time"] + cmd
t0 = time.monotonic()
rc = subprocess.call(cmd, stdout=subprocess.DEVNULL)
el = time.monotonic() - t0
if gnu:
    u, s, m = open(out + ".time").read().split()[-3:]
else:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    u, s, m = ru.ru_utime, ru.ru_stime, ru.ru_maxrss
open(out, "w").write("%.4f %s %s %s\n" % (el, u, s, m))
sys.exit(rc)
PY
}

ROWS="$TMP/rows"
: >"$ROWS"
# row NAME RECORDS ACTIVE_SECONDS USER SYS MAXRSS_KB
row() { echo "$*" >>"$ROWS"; }

# read side
sync
cat "$DATA" >/dev/null  # warm the page cache so every row reads from memory
measure "$TMP/m.cat" cat "$DATA"
read -r e u s m <"$TMP/m.cat"
row cat "$LINES" "$e" "$u" "$s" "$m"

# send side: one event body of BatchSize N, built like sluice's (base64 data, same keys)
mkbody() {
    $PY - "$DATA" "$1" "$2" <<'PY'
import base64, sys
path, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
recs = []
with open(path, "rb") as f:
    off = 0
    for _ in range(n):
        ln = f.readline()
        body = ln.rstrip(b"\n")
        recs.append('{"kinesis":{"kinesisSchemaVersion":"1.0","partitionKey":"%s","sequenceNumber":"%d","data":"%s","approximateArrivalTimestamp":1700000000.123},"eventSource":"sluice:file","eventVersion":"1.0","eventID":"%s:1700000000123456:%d","eventName":"sluice:file:record","eventSourceARN":"file://%s","awsRegion":"us-east-1"}'
                    % (path, off, base64.b64encode(body).decode(), path, off, path))
        off += len(ln)
open(out, "w").write('{"Records":[' + ",".join(recs) + "]}")
PY
}
for b in $BATCHES; do
    mkbody "$b" "$TMP/body.$b"
    cat >"$TMP/post.$b.lua" <<LUA
local f = assert(io.open("$TMP/body.$b", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
LUA
    # shellcheck disable=SC2016  # $1..$4 are sh -c's positional parameters
    measure "$TMP/m.wrk.$b" sh -c 'exec wrk -t1 -c1 -d"$1" -s "$2" "$3" >"$4"' wrk \
        "${DURATION}s" "$TMP/post.$b.lua" "$URL" "$TMP/wrk.$b.out"
    reqs=$(awk '/requests in/ { print $1 }' "$TMP/wrk.$b.out")
    read -r e u s m <"$TMP/m.wrk.$b"
    row "wrk_b=$b($(stat -c %s "$TMP/body.$b")B)" "$((reqs * b))" "$e" "$u" "$s" "$m"
done

# sluice: run_sluice NAME BIN BATCH
run_sluice() {
    local name="$1" bin="$2" b="$3"
    local st="$TMP/state.$name.$b"
    rm -rf "$st"
    cat >"$TMP/bench.$b.json" <<JSON
{
  "state_dir": "$st",
  "region": "us-east-1",
  "stats_interval": 60,
  "functions": {"nginx": {"type": "http", "url": "$URL", "timeout": 30}},
  "mappings": [
    {"EventSourceArn": "file://$DATA", "FunctionName": "nginx", "BatchSize": $b,
     "MaximumBatchingWindowInSeconds": 0, "StartingPosition": "TRIM_HORIZON"}
  ]
}
JSON
    local rc=0
    measure "$TMP/m.$name.$b" "$bin" run --until-idle="$IDLE" --log-level info \
        "$TMP/bench.$b.json" 2>"$TMP/$name.$b.log" || rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "bench: $name b=$b exited $rc; log tail:" >&2
        tail -n 20 "$TMP/$name.$b.log" >&2
        return 0
    fi
    # the exit stats line ("... exit fetched=N delivered=N ...") must account for every line
    local delivered
    delivered=$(grep -o 'delivered=[0-9]*' "$TMP/$name.$b.log" | tail -n 1 | cut -d= -f2)
    if [ "${delivered:-?}" != "$LINES" ]; then
        echo "bench: WARNING $name b=$b reports delivered=${delivered:-?}, expected $LINES" >&2
    fi
    local e u s m active
    read -r e u s m <"$TMP/m.$name.$b"
    # the stopping line says how long ago the last record was read ("last record read Nms
    # ago"); active time ends there. A binary whose line lacks it: elapsed - IDLE.
    local ago
    ago=$(grep -o 'last record read [0-9]*ms ago' "$TMP/$name.$b.log" | tail -n 1 | grep -o '[0-9]*' || true)
    if [ -n "$ago" ]; then
        active=$($PY -c "print('%.4f' % ($e - $ago / 1000.0))")
    else
        active=$($PY -c "print('%.4f' % ($e - $IDLE))")
    fi
    if $PY -c "import sys; sys.exit(0 if $e < $IDLE else 1)"; then
        echo "bench: $name b=$b exited after ${e}s, before its ${IDLE}s idle wait" >&2
    fi
    row "${name}_b=$b" "$LINES" "$active" "$u" "$s" "$m"
}
# With PREV_BIN, each round runs the previous binary and then this one, batch size by batch
# size, so both see the same machine and page cache.
for ((round = 1; round <= ROUNDS; round++)); do
    for b in $BATCHES; do
        if [ -n "$PREV_BIN" ]; then
            run_sluice prev "$PREV_BIN" "$b"
        fi
        run_sluice sluice "$SLUICE_BIN" "$b"
    done
done

# ---- table --------------------------------------------------------------------------------
echo
echo "file -> http (nginx 200), $LINES x 100-byte lines, $(nproc) cores, $(date -u +%FT%TZ)"
$PY - "$ROWS" <<'PY'
import sys
print("%-26s %10s %9s %13s %16s %12s" % ("run", "records", "active s", "records/s",
                                          "CPU s / 1M rec", "peak RSS MB"))
for line in open(sys.argv[1]):
    name, n, e, u, s, m = line.split()
    n, e, cpu, m = int(n), float(e), float(u) + float(s), int(m)
    if e <= 0:
        print("%-26s %10d %9s  (exited before its idle wait: no measurement)" % (name, n, "-"))
        continue
    rate = n / e
    per_m = cpu / n * 1e6 if n else 0.0
    print("%-26s %10d %9.2f %13.0f %16.3f %12.1f" % (name, n, e, rate, per_m, m / 1024))
PY
echo
echo "target: sluice b=1000 >= 1,000,000 records/s, peak RSS < 64 MB"
echo "method: active s for sluice = elapsed - the time since the last record was read (the"
echo "        'stopping' line; elapsed - $IDLE s of --until-idle for a binary without it); wrk runs ${DURATION} s."
