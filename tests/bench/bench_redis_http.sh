#!/usr/bin/env bash
# Benchmark (run by hand, not part of the test suite): Redis Streams source -> http function.
#
#   tests/bench/bench_redis_http.sh [RECORDS]      (default 500000 entries of 100 bytes)
#
# Scenario (issue 13, "Performance"): one stream on redis-server (tests/services, in memory)
# holding RECORDS entries, each one field "data" of SIZE (100) bytes, added beforehand through
# redis-cli --pipe; BatchSize 1000; an http function -> nginx answering 200 at once. Each row runs
# RUNS times (2), on the same stream:
#   xrange   `redis-cli XRANGE <stream> - +` into /dev/null: what Redis and a plain client do
#            with the same entries (one reply of all of them)
#   sluice   `sluice run --until-idle=1` (a fresh consumer group each run, so it reads the whole
#            stream from its start, TRIM_HORIZON)
#   base     the same with BASE_BIN (another build, e.g. the previous commit's, copied at the
#            start), so two builds are compared in one invocation on the same stream
# Figures per run: records/s over the active time, CPU seconds per million records (user+sys of
# the process, GNU time), peak RSS. sluice's active time is from its "reading stream" log line to
# the last record read (the "idle ... (last record read N ms ago), stopping" line - N); xrange's is
# its wall time. The script checks that sluice's exit line says delivered=RECORDS, and that every
# entry was acknowledged (the group's pending count is 0). The machine may be shared: CPU seconds
# per million records and the peak RSS are the steadier figures.
#
# Env: SLUICE_BIN (build/sluice), REDIS_PORT (6440), NGINX_PORT (18660), RUN_DIR (a private dir
#      under /tmp), SIZE (100), BATCH (1000), RUNS (2), ROWS ("xrange sluice base"), KEEP=1 keeps
#      the temp dir, BASE_BIN (unset: no base row; PREV_BIN is taken as another name for it).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RECORDS="${1:-500000}"
SLUICE_BIN="${SLUICE_BIN:-$ROOT/build/sluice}"
SIZE="${SIZE:-100}"
BATCH="${BATCH:-1000}"
RUNS="${RUNS:-2}"
ROWS="${ROWS:-xrange sluice base}"
BASE_BIN="${BASE_BIN:-${PREV_BIN:-}}"
export REDIS_PORT="${REDIS_PORT:-6440}"
export NGINX_PORT="${NGINX_PORT:-18660}"
export RUN_DIR="${RUN_DIR:-$(mktemp -d /tmp/bench-redis.XXXXXX)}"

[ -x "$SLUICE_BIN" ] || { echo "no sluice at $SLUICE_BIN (ninja -C build)" >&2; exit 1; }
/usr/bin/time -f '%e' true >/dev/null 2>&1 ||
    { echo "GNU time (/usr/bin/time) is needed: apt-get install time" >&2; exit 1; }
command -v redis-cli >/dev/null || { echo "redis-cli is needed: apt-get install redis-tools" >&2; exit 1; }

cleanup() {
    "$ROOT/tests/services/stop.sh" >/dev/null 2>&1 || true
    [ "${KEEP:-}" = 1 ] || rm -rf "$RUN_DIR"
}
trap cleanup EXIT

mkdir -p "$RUN_DIR"
if [ -n "$BASE_BIN" ]; then
    [ -x "$BASE_BIN" ] || { echo "no sluice at BASE_BIN=$BASE_BIN" >&2; exit 1; }
    cp "$BASE_BIN" "$RUN_DIR/sluice-base"
    echo "base: $BASE_BIN (copied at start)" >&2
else
    ROWS="${ROWS//base/}"
fi

SERVICES="nginx redis" "$ROOT/tests/services/start.sh"
RCLI=(redis-cli -h 127.0.0.1 -p "$REDIS_PORT")
URL="http://127.0.0.1:$NGINX_PORT/events"
STREAM="bench-$$-$RANDOM"

# The entries, as RESP on redis-cli --pipe (its summary says how many replies it read).
/usr/bin/python3 - "$STREAM" "$RECORDS" "$SIZE" >"$RUN_DIR/load.resp" <<'PY'
import sys
stream, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = sys.stdout.buffer
s = stream.encode()
head = b"*5\r\n$4\r\nXADD\r\n$%d\r\n%s\r\n$1\r\n*\r\n$4\r\ndata\r\n$%d\r\n" % (len(s), s, size)
for i in range(n):
    v = (b"%010d" % i + b"x" * size)[:size]
    out.write(head + v + b"\r\n")
PY
"${RCLI[@]}" --pipe <"$RUN_DIR/load.resp" | tail -1 >&2
got="$("${RCLI[@]}" XLEN "$STREAM")"
[ "$got" = "$RECORDS" ] || { echo "the stream holds $got entries, want $RECORDS" >&2; exit 1; }

# One row's figures: name, records, active seconds, user, sys, peak KB.
report() {
    awk -v n="$1" -v r="$2" -v a="$3" -v u="$4" -v s="$5" -v m="$6" 'BEGIN {
        printf "%-8s %8d records  %8.0f records/s  %6.2f CPU s/M  %7.1f MB peak RSS  (%.2fs active, %.2f+%.2f CPU s)\n",
               n, r, (a > 0 ? r / a : 0), (u + s) / r * 1e6, m / 1024, a, u, s }'
}

run_xrange() {
    local t="$RUN_DIR/xrange.time"
    local t0 t1
    t0=$(date +%s.%N)
    /usr/bin/time -f '%U %S %M' -o "$t" "${RCLI[@]}" XRANGE "$STREAM" - + >/dev/null
    t1=$(date +%s.%N)
    read -r u s m <"$t"
    report xrange "$RECORDS" "$(echo "$t1 - $t0" | bc)" "$u" "$s" "$m"
}

run_sluice() {
    local name="$1" bin="$2" i="$3"
    local group="bench-$name-$i-$RANDOM"
    local dir="$RUN_DIR/$name-$i"
    mkdir -p "$dir"
    cat >"$dir/cfg.json" <<EOF
{
  "state_dir": "$dir/state",
  "functions": {"sink": {"type": "http", "url": "$URL", "timeout": 30}},
  "mappings": [{
    "EventSourceArn": "redis://127.0.0.1:$REDIS_PORT/0/$STREAM",
    "FunctionName": "sink", "BatchSize": $BATCH, "StartingPosition": "TRIM_HORIZON",
    "consumer_group": "$group"
  }]
}
EOF
    /usr/bin/time -f '%U %S %M' -o "$dir/time" "$bin" run --until-idle=1 --log-format json \
        "$dir/cfg.json" 2>"$dir/log" >/dev/null
    read -r u s m <"$dir/time"
    read -r delivered active < <(/usr/bin/python3 - "$dir/log" <<'PY'
import datetime, json, re, sys
def ts(d):
    return datetime.datetime.strptime(d["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()
start = stop = None
since, delivered = 0.0, -1
for line in open(sys.argv[1]):
    try:
        d = json.loads(line)
    except ValueError:
        continue
    msg = d.get("msg", "")
    if start is None and msg.startswith("reading stream"):
        start = ts(d)
    elif msg.startswith("idle for") and msg.endswith("stopping"):
        stop = ts(d)
        ago = re.search(r"last record read (\d+)ms ago", msg)
        since = float(ago.group(1)) / 1000 if ago else 1.0
    elif msg == "exit" and "delivered" in d:
        delivered = d["delivered"]
print(delivered, (stop - since - start) if start and stop else 0)
PY
    )
    [ "$delivered" = "$RECORDS" ] ||
        { echo "$name: delivered=$delivered, want $RECORDS (log: $dir/log)" >&2; exit 1; }
    local pend
    pend="$("${RCLI[@]}" XPENDING "$STREAM" "$group" | head -1)"
    [ "$pend" = 0 ] || { echo "$name: $pend entries still pending" >&2; exit 1; }
    report "$name" "$RECORDS" "$active" "$u" "$s" "$m"
}

echo "$RECORDS entries of $SIZE bytes in one stream, BatchSize $BATCH, http -> nginx; load: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq 1 "$RUNS"); do
    for row in $ROWS; do
        case "$row" in
        xrange) run_xrange ;;
        sluice) run_sluice sluice "$SLUICE_BIN" "$i" ;;
        base) run_sluice base "$RUN_DIR/sluice-base" "$i" ;;
        esac
    done
done
