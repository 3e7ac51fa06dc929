#!/usr/bin/env bash
# Benchmark (run by hand, not part of the test suite): Kafka source -> http function.
#
#   tests/bench/bench_kafka_http.sh [RECORDS]       (default 500000 records of 100 bytes)
#
# Scenario (issue 4, "Performance"): a topic of PARTITIONS (12) partitions on librdkafka's mock
# cluster (tests/services, 3 brokers), RECORDS records of SIZE bytes pre-produced round-robin with
# kafka-produce (41,667 a partition: under the mock's 5 MiB retention per partition; the script
# checks every low watermark is 0 and the high watermarks add up to RECORDS), BatchSize 1000,
# an http function -> nginx answering 200 at once.  Each row runs RUNS times (3) in one go:
#   kcat              `kcat -C -e -o beginning` (simple consumer, no group), librdkafka defaults:
#                     the raw rate the broker allows here
#   kcat+sluice-conf  the same with the librdkafka settings sluice's consumer uses that touch
#                     fetching (sources/kafka/kafka_fetch.c: queued.max.messages.kbytes=2048,
#                     queued.min.messages=5000, fetch.wait.max.ms=100) plus RDKAFKA
#   kcat -G           kcat as a group member (balanced consumer, fresh group each run): pays the
#                     same group join as sluice
#   sluice            `sluice run --until-idle=IDLE` (fresh ConsumerGroupId each run, StartingPosition
#                     TRIM_HORIZON, default window 500 ms, "rdkafka": session.timeout.ms=6000 + RDKAFKA)
#   sluice-base       the same with BASE_BIN (another build, e.g. the previous commit's), each of
#                     its runs right after sluice's: before and after in one invocation
#
# Figures per run: records/s over the active time, CPU seconds per million records (user+sys
# of the whole process, from GNU time `/usr/bin/time -f '%U %S %M'`; the kcat rows count kcat
# only, not the reader of its output), peak RSS, and the wall time spent before and after.
# Times come from one wall clock (python's time.time() around the process, sluice's JSON log
# "ts" in ms):
#   kcat rows   the wrapper reads kcat's stdout itself:
#               join = first output byte - start; active = last byte - first byte;
#               shutdown = exit - last byte (EOF detection, close, leaving the group for -G)
#   sluice      join = the first "assigned" log line (the group join ended; the first batch
#               follows within ms) - start;
#               active = the last record fetched - first "assigned": the "idle for IDLE ms
#               (last record read N ms ago), stopping" line's time - N (to within the 100 ms
#               at which --until-idle samples; a binary whose line lacks N: the line - IDLE,
#               as --until-idle counted from the last fetch then); the last partial batch of
#               each partition (41,667 = 41 x 1000 + 667) is invoked when its 500 ms window
#               closes, after that, so the delivery of the last 667 x 12 records can end up to
#               0.5 s later than "active" says;
#               shutdown = exit - the "stopping" line (drain, final commit, leave group, destroy);
#               the idle wait in between is excluded.
# --until-idle counts only from the first fetch after the group joined and every partition was
# answered by the broker, so a small IDLE reads everything however long the join takes (~3 s
# against the mock).  The script checks the exit line's delivered= count.
#
# Env: SLUICE_BIN (build/sluice), KAFKA_BASE_PORT (9592), NGINX_PORT (18380), RUN_DIR (a private
#      dir under /tmp), KAFKA_BUILD_DIR ($RUN_DIR/bin), PARTITIONS (12), SIZE (100), BATCH (1000),
#      WINDOW (unset: the 500 ms default; else MaximumBatchingWindowInSeconds), RUNS (3),
#      BASE_BIN (unset: no sluice-base row), IDLE (1), RDKAFKA (extra librdkafka properties for
#      sluice AND the kcat+sluice-conf row,
#      "k=v k=v"), ROWS ("kcat kcat-conf kcat-group sluice"), PERF=1 (one more sluice run under
#      `perf record -g`, report printed), KEEP=1 keeps the temp dir.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RECORDS="${1:-500000}"
SLUICE_BIN="${SLUICE_BIN:-$ROOT/build/sluice}"
PARTITIONS="${PARTITIONS:-12}"
SIZE="${SIZE:-100}"
BATCH="${BATCH:-1000}"
WINDOW="${WINDOW:-}"
RUNS="${RUNS:-3}"
IDLE="${IDLE:-1}"
RDKAFKA="${RDKAFKA:-}"
ROWS_WANTED="${ROWS:-kcat kcat-conf kcat-group sluice}"
TOPIC=bench
PY=/usr/bin/python3
export KAFKA_BASE_PORT="${KAFKA_BASE_PORT:-9592}"
export NGINX_PORT="${NGINX_PORT:-18380}"

[ -x "$SLUICE_BIN" ] || { echo "bench: no sluice at $SLUICE_BIN (build first)" >&2; exit 1; }
command -v kcat >/dev/null || { echo "bench: kcat missing (apt-get install kcat)" >&2; exit 1; }
/usr/bin/time -f '%e' true >/dev/null 2>&1 ||
    { echo "bench: GNU time missing (apt-get install time)" >&2; exit 1; }

TMP="$(mktemp -d /tmp/sluice-bench-kafka.XXXXXX)"
# a copy, so that a rebuild during the run (others work in this tree) cannot change the binary
cp "$SLUICE_BIN" "$TMP/sluice"
if [ -n "${BASE_BIN:-}" ]; then
    cp "$BASE_BIN" "$TMP/sluice-base"
    BASE_REV="$(git -C "$(dirname "$BASE_BIN")" describe --always --dirty 2>/dev/null || echo unknown)"
fi
SLUICE_REV="${SLUICE_REV:-$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)}"
SLUICE_BIN="$TMP/sluice"
export RUN_DIR="${RUN_DIR:-$TMP/services}"
STARTED=0
cleanup() {
    if [ "$STARTED" = 1 ]; then "$ROOT/tests/services/stop.sh" || true; fi
    if [ "${KEEP:-0}" = 1 ]; then echo "bench: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

STARTED=1
SERVICES="nginx kafka" KAFKA_TOPICS="$TOPIC:$PARTITIONS" "$ROOT/tests/services/start.sh"
set -a
# shellcheck disable=SC1091
. "$RUN_DIR/services.env"
set +a
URL="http://127.0.0.1:$NGINX_PORT/events"
BOOT="$KAFKA_BOOTSTRAP"

# ---- input ------------------------------------------------------------------------------
"$KAFKA_PRODUCE" -b "$BOOT" -t "$TOPIC" -n "$RECORDS" -s "$SIZE"
total=0
for ((p = 0; p < PARTITIONS; p++)); do
    lo=$(kcat -b "$BOOT" -Q -t "$TOPIC:$p:-2" | awk '{ print $NF }')
    hi=$(kcat -b "$BOOT" -Q -t "$TOPIC:$p:-1" | awk '{ print $NF }')
    if [ "$lo" != 0 ]; then
        echo "bench: $TOPIC [$p] low watermark $lo: the mock's retention dropped records" >&2
        exit 1
    fi
    total=$((total + hi))
done
if [ "$total" != "$RECORDS" ]; then
    echo "bench: the topic holds $total records, expected $RECORDS" >&2
    exit 1
fi
echo "bench: $RECORDS records of $SIZE bytes in $TOPIC ($PARTITIONS partitions), low watermarks 0" >&2

# ---- measuring ----------------------------------------------------------------------------
# measure OUT CMD...: run CMD under GNU time with stderr to OUT.err, read its stdout here
# (counting newlines, timestamping the first byte and the read that brings the count to within
# 100 lines of RECORDS: kcat's stdout is a pipe, block-buffered by stdio (4 KiB, ~40 lines), so
# the very last bytes only come with the flush at exit); write to OUT:
#   "start exit first_byte last_byte lines user sys maxrss_kb rc"   (times: time.time())
measure() {
    local out="$1"
    shift
    $PY - "$out" "$RECORDS" "$@" <<'PY'
import os, subprocess, sys, time
out, want, cmd = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
cmd = ["/usr/bin/time", "-f", "%U %S %M", "-o", out + ".time"] + cmd
err = open(out + ".err", "wb")
t0 = time.time()
p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
fd = p.stdout.fileno()
first = last = 0.0
lines = 0
while True:
    b = os.read(fd, 1 << 20)
    if not b:
        break
    now = time.time()
    if not first:
        first = now
    lines += b.count(b"\n")
    if not last and lines >= want - 100:
        last = now
rc = p.wait()
last = last or time.time()
t1 = time.time()
u, s, m = open(out + ".time").read().split()[-3:]
open(out, "w").write("%.6f %.6f %.6f %.6f %d %s %s %s %d\n" % (t0, t1, first, last, lines, u, s, m, rc))
PY
}

ROWS="$TMP/rows"
: >"$ROWS"
# row NAME RECORDS JOIN ACTIVE SHUTDOWN USER SYS MAXRSS_KB
row() { echo "$*" >>"$ROWS"; }

wanted() { case " $ROWS_WANTED " in *" $1 "*) return 0 ;; esac; return 1; }

kcat_conf=(-X queued.max.messages.kbytes=2048 -X queued.min.messages=5000 -X fetch.wait.max.ms=100)
for kv in $RDKAFKA; do kcat_conf+=(-X "$kv"); done

# kcat_row NAME RUN KCAT-ARGS...
kcat_row() {
    local name="$1" run="$2" m
    shift 2
    m="$TMP/m.$name.$run"
    measure "$m" kcat -C -e -q -b "$BOOT" "$@"
    read -r t0 t1 first last lines u s mx rc <"$m"
    if [ "$rc" != 0 ] || [ "$lines" != "$RECORDS" ]; then
        echo "bench: $name run $run: exit $rc, $lines records (expected $RECORDS)" >&2
        tail -n 5 "$m.err" >&2
        return
    fi
    row "$name" "$lines" \
        "$($PY -c "print('%.3f %.3f %.3f' % ($first - $t0, $last - $first, $t1 - $last))")" \
        "$u" "$s" "$mx"
}

for ((r = 1; r <= RUNS; r++)); do
    if wanted kcat; then kcat_row kcat "$r" -o beginning -t "$TOPIC"; fi
    if wanted kcat-conf; then kcat_row kcat+sluice-conf "$r" -o beginning "${kcat_conf[@]}" -t "$TOPIC"; fi
    if wanted kcat-group; then
        kcat_row "kcat_-G" "$r" -G "kcat-$r-$$" -X session.timeout.ms=6000 \
            -X auto.offset.reset=earliest "$TOPIC"
    fi
done

# sluice
sluice_conf() { # sluice_conf FILE GROUP
    local rdk='"session.timeout.ms": "6000"' kv win=""
    for kv in $RDKAFKA; do rdk="$rdk, \"${kv%%=*}\": \"${kv#*=}\""; done
    [ -z "$WINDOW" ] || win="\"MaximumBatchingWindowInSeconds\": $WINDOW,"
    local servers
    servers="\"${BOOT//,/\",\"}\""
    cat >"$1" <<JSON
{
  "state_dir": "$TMP/state.$2",
  "region": "us-east-1",
  "stats_interval": 60,
  "functions": {"nginx": {"type": "http", "url": "$URL", "timeout": 30}},
  "mappings": [
    {"SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [$servers]}},
     "Topics": ["$TOPIC"],
     "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": "$2"},
     "FunctionName": "nginx", "BatchSize": $BATCH, $win
     "StartingPosition": "TRIM_HORIZON",
     "rdkafka": {$rdk}}
  ]
}
JSON
}

# sluice_times M LOG: prints "delivered join active shutdown" from the wrapper's and the log's times
sluice_times() {
    $PY - "$1" "$2" "$IDLE" <<'PY'
import datetime, json, re, sys
m, log, idle = sys.argv[1], sys.argv[2], float(sys.argv[3])
t0, t1 = [float(x) for x in open(m).read().split()[:2]]
def ts(d):
    return datetime.datetime.strptime(d["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()
assigned = stop = None
delivered = -1
for line in open(log):
    try:
        d = json.loads(line)
    except ValueError:
        continue
    msg = d.get("msg", "")
    if assigned is None and msg.endswith("reading from the beginning") or \
            assigned is None and ": assigned" in msg:
        assigned = ts(d)
    elif msg.startswith("idle for") and msg.endswith("stopping"):
        stop = ts(d)
        ago = re.search(r"last record read (\d+)ms ago", msg)
        since = float(ago.group(1)) / 1000 if ago else idle
    elif msg == "exit" and "delivered" in d:
        delivered = d["delivered"]
if assigned is None or stop is None:
    print(delivered, "- - -")
else:
    print(delivered, "%.3f %.3f %.3f" % (assigned - t0, stop - since - assigned, t1 - stop))
PY
}

sluice_bins=(sluice)
[ -z "${BASE_BIN:-}" ] || sluice_bins+=(sluice-base)
if wanted sluice; then
    for ((r = 1; r <= RUNS; r++)); do
        for name in "${sluice_bins[@]}"; do
            g="$name-$r-$$-$(date +%s%N)"
            sluice_conf "$TMP/$name.$r.json" "$g"
            m="$TMP/m.$name.$r"
            measure "$m" "$TMP/$name" run --until-idle="$IDLE" --log-format json --log-level info \
                "$TMP/$name.$r.json"
            read -r _ _ _ _ _ u s mx rc <"$m"
            read -r delivered join active shut < <(sluice_times "$m" "$m.err")
            if [ "$rc" != 0 ] || [ "$delivered" != "$RECORDS" ] || [ "$active" = - ]; then
                echo "bench: $name run $r: exit $rc, delivered=$delivered (expected $RECORDS); log tail:" >&2
                tail -n 5 "$m.err" >&2
                continue
            fi
            row "$name" "$RECORDS" "$join" "$active" "$shut" "$u" "$s" "$mx"
        done
    done
    if [ "${PERF:-0}" = 1 ] && command -v perf >/dev/null; then
        g="sluice-perf-$$-$(date +%s%N)"
        sluice_conf "$TMP/sluice.perf.json" "$g"
        perf record -q -g -o "$TMP/perf.data" "$SLUICE_BIN" run --until-idle="$IDLE" \
            --log-format json "$TMP/sluice.perf.json" 2>"$TMP/perf.sluice.log" || true
        {
            perf report -i "$TMP/perf.data" --no-children --sort dso --stdio -g none 2>/dev/null |
                grep -v '^#' | grep '%' | head -n 8
            echo
            perf report -i "$TMP/perf.data" --no-children --sort dso,sym --stdio -g none \
                2>/dev/null | grep -v '^#' | grep '%' | head -n 30
        } >"$TMP/perf.txt" || true
    fi
fi

# ---- table --------------------------------------------------------------------------------
echo
echo "kafka -> http (nginx 200), $RECORDS x ${SIZE}-byte records, $PARTITIONS partitions," \
    "BatchSize $BATCH, window ${WINDOW:-default}, $(nproc) cores, $(date -u +%FT%TZ)"
[ -z "${BASE_BIN:-}" ] || echo "sluice-base: $BASE_BIN ($BASE_REV, copied at start)"
echo "sluice: $SLUICE_REV (binary copied at start); $(kcat -V 2>&1 | grep -o 'librdkafka [^ ]*' | head -n 1)"
[ -z "$RDKAFKA" ] || echo "extra rdkafka properties (sluice and kcat+sluice-conf): $RDKAFKA"
$PY - "$ROWS" <<'PY'
import collections, sys
print("%-18s %8s %7s %8s %7s %11s %12s %10s" % ("run", "records", "join s", "active s",
      "shut s", "records/s", "CPU s/1M rec", "RSS MB"))
rates = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, n, j, a, sh, u, s, m = line.split()
    n, j, a, sh, cpu, m = int(n), float(j), float(a), float(sh), float(u) + float(s), int(m)
    rate = n / a if a > 0 else float("nan")
    rates[name].append(rate)
    print("%-18s %8d %7.2f %8.2f %7.2f %11.0f %12.3f %10.1f" % (name, n, j, a, sh, rate,
          cpu / n * 1e6, m / 1024))
med = {k: sorted(v)[len(v) // 2] for k, v in rates.items()}
if "sluice" in med and "kcat" in med:
    print("\nsluice / kcat (median records/s): %.0f%%" % (100 * med["sluice"] / med["kcat"]))
PY
echo
echo "targets: sluice >= 70% of kcat's rate, <= 0.8 CPU s per 1M records, peak RSS < 64 MB"
echo "method: active = first..last record (kcat: output bytes; sluice: partitions assigned .."
echo "        last fetch, from the 'stopping' log line); join and shut(down) beside it."
if [ -s "$TMP/perf.txt" ]; then
    echo
    echo "perf (one more sluice run; --no-children --sort dso,sym):"
    cat "$TMP/perf.txt"
fi
