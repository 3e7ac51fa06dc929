#!/usr/bin/env bash
# Benchmark (run by hand, not part of the test suite): a delivery stream's ingest and delivery.
#
#   tests/bench/bench_firehose.sh [CALLS]     (default 2000 calls of 500 x 1 KiB: 1.02 GB)
#
# Scenario (issue 12, "Performance"): build/fh_load (tests/bench/fh_load.c) sends Firehose's
# PutRecordBatch of 500 records of 1,024 bytes over CONNS keep-alive connections on loopback,
# CALLS calls in all, sending again (after a backoff, as the SDKs do) every record refused with
# ServiceUnavailableException, so backpressure shows as time, not as loss. Rows, in one run:
#   null     fh_load against its own plain 200 responder (`fh_load serve`): what the load
#            generator reaches on this machine, the ceiling of the sluice rows
#   sluice   `sluice run` with one delivery stream to an S3 file:// destination in a temp dir,
#            BufferingHints SizeInMBs 64 / IntervalInSeconds 60, CompressionFormat GZIP when the
#            binary accepts it (`sluice validate` says; else UNCOMPRESSED, and the table says so)
#   prev     the same with PREV_BIN (another build), run just before sluice
# Figures: records/s and MB/s (10^6 bytes of record payload) accepted, over fh_load's time from
# its first call to its last answer; records/s and MB/s delivered end to end, from the first call
# until sluice exits after SIGTERM (sent once fh_load is done: that writes the last, partial
# buffer, so the time includes every object written); CPU ms per MB (user+sys of the server
# process over its whole life, over the MB accepted) and its peak RSS (ru_maxrss from wait4);
# the load generator's own CPU seconds. Afterwards every object is read back (gunzipped when it
# is gzip) and must hold exactly the accepted records' bytes and lines: a record lost, a call
# refused, sluice exiting non-zero or DEADLINE passing fails the run (exit 1).
#
# MODE=spool measures peak RSS with the spool holding SPOOL_MB (1024) MB: the destination cannot
# be written (its BucketARN directory is under a regular file, which stops even root), fh_load
# puts SPOOL_MB of records within SPOOL_DEADLINE (120) s, and the row gives what was accepted,
# the bytes in state_dir, sluice's peak RSS (target: under 128 MB) and its CPU per MB accepted.
# It is meaningful only with the durable spool wired into delivery streams; a binary holding its
# buffers in memory refuses puts beyond them (twice SizeInMBs plus a call), so fh_load's deadline
# passes and the run fails, saying so.
#
# Env: SLUICE_BIN (build/sluice), FH_LOAD (build/fh_load; `ninja -C build` builds it), PREV_BIN,
#      CONNS (4), DEADLINE (300 s for each row's load and for its drain), MODE (deliver|spool),
#      SPOOL_MB (1024), SPOOL_DEADLINE (120), ROUNDS (1: how many times the rows are repeated,
#      in turn), COMPRESSION (the CompressionFormats to try, first accepted wins: "GZIP
#      UNCOMPRESSED"), DATA (words: records of words and numbers, about as compressible as logs;
#      random: characters drawn uniformly, the worst case for GZIP), KEEP=1 keeps the temp dir.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CALLS="${1:-2000}"
SLUICE_BIN="${SLUICE_BIN:-$ROOT/build/sluice}"
FH_LOAD="${FH_LOAD:-$ROOT/build/fh_load}"
PREV_BIN="${PREV_BIN:-}"
CONNS="${CONNS:-4}"
DEADLINE="${DEADLINE:-300}"
MODE="${MODE:-deliver}"
SPOOL_MB="${SPOOL_MB:-1024}"
SPOOL_DEADLINE="${SPOOL_DEADLINE:-120}"
ROUNDS="${ROUNDS:-1}"
COMPRESSION="${COMPRESSION:-GZIP UNCOMPRESSED}"
DATA="${DATA:-words}"
RECORDS=500
SIZE=1024
SPOOL_CALLS=$(((SPOOL_MB * 1048576 + RECORDS * SIZE - 1) / (RECORDS * SIZE)))
PY=/usr/bin/python3

[ -x "$SLUICE_BIN" ] || { echo "bench: no sluice at $SLUICE_BIN (ninja -C build)" >&2; exit 1; }
[ -x "$FH_LOAD" ] || { echo "bench: no fh_load at $FH_LOAD (ninja -C build)" >&2; exit 1; }
[ -z "$PREV_BIN" ] || [ -x "$PREV_BIN" ] || { echo "bench: no sluice at $PREV_BIN" >&2; exit 1; }
case "$MODE" in deliver | spool) ;; *) echo "bench: MODE is deliver or spool" >&2; exit 1 ;; esac
case "$DATA" in words | random) ;; *) echo "bench: DATA is words or random" >&2; exit 1 ;; esac

TMP="$(mktemp -d /tmp/sluice-bench-fh.XXXXXX)"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill -KILL "$SERVER_PID" 2>/dev/null || true; fi
    if [ "${KEEP:-0}" = 1 ]; then echo "bench: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

# copies, so that a rebuild during the run cannot change the binaries
cp "$SLUICE_BIN" "$TMP/sluice"
cp "$FH_LOAD" "$TMP/fh_load"
[ -z "$PREV_BIN" ] || cp "$PREV_BIN" "$TMP/prev"
# the commit of the tree a binary was built in (its build directory's parent), as far as git says
built_from() { git -C "$(dirname "$1")" describe --always --dirty 2>/dev/null || echo unknown; }
echo "sluice: $SLUICE_BIN ($(built_from "$SLUICE_BIN"))"
[ -z "$PREV_BIN" ] || echo "prev: $PREV_BIN ($(built_from "$PREV_BIN"))"

FAILED=0
fail() {
    echo "bench: FAIL: $*" >&2
    FAILED=1
}
now() { date +%s.%N; }

# ---- the server under measure ---------------------------------------------------------------
# start_server NAME CMD...: start CMD (stdout NAME.out, stderr NAME.log) under a python parent
# that forwards SIGTERM to it and, at its exit, writes "rc user sys maxrss_kb" to NAME.rusage
# (wait4: the child's own figures). Sets SERVER_PID (the parent) and CHILD_PID.
start_server() {
    local name="$1"
    shift
    rm -f "$TMP/$name.pid" "$TMP/$name.rusage"
    $PY - "$TMP/$name.rusage" "$TMP/$name.pid" "$@" >"$TMP/$name.out" 2>"$TMP/$name.log" <<'PY' &
import os, signal, subprocess, sys
out, pidfile, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
p = subprocess.Popen(cmd)
open(pidfile + ".tmp", "w").write("%d\n" % p.pid)
os.rename(pidfile + ".tmp", pidfile)
signal.signal(signal.SIGTERM, lambda s, f: p.send_signal(signal.SIGTERM))
_, status, ru = os.wait4(p.pid, 0)
rc = os.waitstatus_to_exitcode(status)
open(out, "w").write("%d %.3f %.3f %d\n" % (rc, ru.ru_utime, ru.ru_stime, ru.ru_maxrss))
PY
    SERVER_PID=$!
    local t0
    t0=$(now)
    until [ -s "$TMP/$name.pid" ]; do
        sleep 0.02
        if $PY -c "import sys; sys.exit(0 if $(now) - $t0 > 10 else 1)"; then
            fail "$name did not start"
            return 1
        fi
    done
    CHILD_PID=$(cat "$TMP/$name.pid")
}

# wait_port NAME FILE: the port the server says in FILE ("port N"), within 10 s (else 1).
wait_port() {
    local name="$1" file="$2" t0 port=""
    t0=$(now)
    while [ -z "$port" ]; do
        port=$(grep -o 'port [0-9]*' "$file" 2>/dev/null | head -n 1 | cut -d' ' -f2 || true)
        [ -n "$port" ] && break
        if ! kill -0 "$SERVER_PID" 2>/dev/null ||
            $PY -c "import sys; sys.exit(0 if $(now) - $t0 > 10 else 1)"; then
            return 1
        fi
        sleep 0.02
    done
    echo "$port"
}

no_port() {
    fail "$1 did not say its port within 10 s; log tail: $(tail -n 20 "$TMP/$1.log")"
    kill -KILL "$CHILD_PID" 2>/dev/null || true
    wait "$SERVER_PID" || true
    SERVER_PID=""
}

# stop_server NAME: SIGTERM, then wait for the exit within DEADLINE s (else SIGKILL and fail).
stop_server() {
    local name="$1" t0
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    t0=$(now)
    while kill -0 "$SERVER_PID" 2>/dev/null; do
        if $PY -c "import sys; sys.exit(0 if $(now) - $t0 > $DEADLINE else 1)"; then
            fail "$name still running ${DEADLINE} s after SIGTERM: killed"
            kill -KILL "$CHILD_PID" 2>/dev/null || true
            break
        fi
        sleep 0.05
    done
    wait "$SERVER_PID" || true
    SERVER_PID=""
}

# ---- the configuration --------------------------------------------------------------------
# config NAME BIN BUCKET_DIR: writes NAME.json and says its compression: GZIP when BIN accepts
# it, else UNCOMPRESSED (1 when BIN refuses both: NAME.validate says why).
config() {
    local name="$1" bin="$2" bucket="$3" comp drain="${DEADLINE}s" quota quotas=("")
    # MODE=spool: a quota above SPOOL_MB (spool_max_bytes, default 1 GiB) where the binary has it
    if [ "$MODE" = spool ]; then
        drain=1s
        quotas=("\"spool_max_bytes\": \"$((SPOOL_MB * 2))MiB\"," "")
    fi
    for quota in "${quotas[@]}"; do
        for comp in $COMPRESSION; do
            cat >"$TMP/$name.json" <<JSON
{
  "state_dir": "$TMP/$name.state",$quota
  "listen": "127.0.0.1:0",
  "stats_interval": "60s",
  "drain_timeout": "$drain",
  "delivery_streams": [{
    "DeliveryStreamName": "bench",
    "DeliveryStreamType": "DirectPut",
    "ExtendedS3DestinationConfiguration": {
      "BucketARN": "file://$bucket",
      "Prefix": "bench/",
      "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 60},
      "CompressionFormat": "$comp"
    }
  }]
}
JSON
            if "$bin" validate "$TMP/$name.json" >/dev/null 2>"$TMP/$name.validate"; then
                echo "$comp"
                return 0
            fi
        done
    done
    return 1
}

ROWS="$TMP/rows"
: >"$ROWS"

# load NAME PORT CALLS LOAD_DEADLINE: fh_load against PORT; its line goes to NAME.load.
load() {
    local name="$1" port="$2" calls="$3" dl="$4" rc=0
    local random=()
    [ "$DATA" = words ] || random=(--random)
    "$TMP/fh_load" put "$port" "${random[@]}" --conns "$CONNS" --calls "$calls" --records "$RECORDS" \
        --size "$SIZE" --stream bench --deadline "$dl" >"$TMP/$name.load" || rc=$?
    [ "$rc" = 0 ] || fail "$name: fh_load exited $rc ($(cat "$TMP/$name.load"))"
    return 0
}
field() { grep -o "$1=[0-9.]*" "$2" | head -n 1 | cut -d= -f2; }

# the objects under BUCKET: "objects bytes lines temporaries bytes_on_disk", gzip ones read
# uncompressed
count_objects() {
    $PY - "$1" <<'PY'
import gzip, os, sys
objs = nbytes = lines = tmps = disk = 0
for d, _, files in os.walk(sys.argv[1]):
    for f in files:
        path = os.path.join(d, f)
        if f.startswith("."):
            tmps += 1
            continue
        objs += 1
        disk += os.path.getsize(path)
        with open(path, "rb") as fh:
            gz = fh.read(2) == b"\x1f\x8b"
        with (gzip.open if gz else open)(path, "rb") as fh:
            while True:
                chunk = fh.read(1 << 20)
                if not chunk:
                    break
                nbytes += len(chunk)
                lines += chunk.count(b"\n")
print(objs, nbytes, lines, tmps, disk)
PY
}

run_null() {
    start_server null "$TMP/fh_load" serve 0 || return 0
    local port
    port=$(wait_port null "$TMP/null.out") || { no_port null; return 0; }
    local t0 t1
    t0=$(now)
    load null "$port" "$CALLS" "$DEADLINE"
    t1=$(now)
    stop_server null
    local rc u s m
    read -r rc u s m <"$TMP/null.rusage"
    echo "null - $(cat "$TMP/null.load") delivered_s=- server_cpu=$($PY -c "print($u + $s)") rss_kb=$m" >>"$ROWS"
}

run_sluice() {
    local name="$1" bin="$2" bucket="$TMP/$1.bucket" comp
    rm -rf "$bucket" "$TMP/$name.state" "$TMP/$name.notadir"
    if [ "$MODE" = spool ]; then
        : >"$TMP/$name.notadir"
        bucket="$TMP/$name.notadir/bucket"
    fi
    if ! comp=$(config "$name" "$bin" "$bucket"); then
        fail "$name: the configuration is refused: $(cat "$TMP/$name.validate")"
        return 0
    fi
    if grep -q spool_max_bytes "$TMP/$name.json"; then
        echo "$name: spool_max_bytes $((SPOOL_MB * 2))MiB"
    elif [ "$MODE" = spool ]; then
        echo "$name: no spool_max_bytes option (no spool in this binary?)"
    fi
    start_server "$name" "$bin" run --log-level info "$TMP/$name.json" || return 0
    local port
    port=$(wait_port "$name" "$TMP/$name.log") || { no_port "$name"; return 0; }
    local calls="$CALLS" dl="$DEADLINE"
    if [ "$MODE" = spool ]; then
        calls=$SPOOL_CALLS
        dl="$SPOOL_DEADLINE"
    fi
    local t0 t1 spooled=0
    t0=$(now)
    load "$name" "$port" "$calls" "$dl"
    if [ "$MODE" = spool ]; then
        spooled=$(du -sb "$TMP/$name.state" 2>/dev/null | cut -f1 || echo 0)
    fi
    stop_server "$name"
    t1=$(now)
    local rc u s m
    read -r rc u s m <"$TMP/$name.rusage"
    local accepted
    accepted=$(field accepted "$TMP/$name.load")
    if [ "$MODE" = deliver ]; then
        [ "$rc" = 0 ] || fail "$name exited $rc; log tail: $(tail -n 5 "$TMP/$name.log")"
        local objs bytes lines tmps disk
        read -r objs bytes lines tmps disk < <(count_objects "$bucket")
        echo "$name: $objs objects, $bytes bytes of records in $disk bytes on disk"
        if [ "$bytes" != "$((accepted * SIZE))" ] || [ "$lines" != "$accepted" ]; then
            fail "$name: $accepted records accepted, $lines lines / $bytes bytes in $objs objects"
        fi
        [ "$tmps" = 0 ] || fail "$name: $tmps temporary files left in $bucket"
    fi
    echo "$name $comp $(cat "$TMP/$name.load") delivered_s=$($PY -c "print($t1 - $t0)") server_cpu=$($PY -c "print($u + $s)") rss_kb=$m spooled=$spooled" >>"$ROWS"
}

# the null row is the ceiling of the delivered figures; in MODE=spool nothing is delivered
# With PREV_BIN, each round runs the previous binary and then this one, so both see the same
# machine (the disk is what varies most from minute to minute).
for ((round = 1; round <= ROUNDS; round++)); do
    [ "$MODE" = spool ] || run_null
    [ -z "$PREV_BIN" ] || run_sluice prev "$TMP/prev"
    run_sluice sluice "$TMP/sluice"
done

# ---- table ----------------------------------------------------------------------------------
echo
[ "$MODE" = deliver ] || CALLS=$SPOOL_CALLS
echo "PutRecordBatch $RECORDS x $SIZE B ($DATA), $CONNS connections, $CALLS calls, MODE=$MODE, $(nproc) cores, $(date -u +%FT%TZ)"
$PY - "$ROWS" "$MODE" <<'PY'
import sys
rows, mode = sys.argv[1], sys.argv[2]
def kv(parts):
    return dict(p.split("=", 1) for p in parts if "=" in p)
if mode == "deliver":
    print("%-7s %-12s %11s %9s %11s %9s %10s %10s %11s %9s" % (
        "run", "compression", "acc rec/s", "acc MB/s", "dlv rec/s", "dlv MB/s", "throttled",
        "CPU ms/MB", "peak RSS MB", "gen CPU s"))
else:
    print("%-7s %-12s %12s %11s %13s %11s %10s %10s" % (
        "run", "compression", "MB accepted", "throttled", "MB in state", "peak RSS MB", "load s",
        "CPU ms/MB"))
for line in open(rows):
    parts = line.split()
    name, comp, f = parts[0], parts[1], kv(parts[2:])
    acc, secs = int(f["accepted"]), float(f["seconds"])
    mb = acc * 1024 / 1e6
    cpu = float(f["server_cpu"])
    rss = int(f["rss_kb"]) / 1024
    if mode == "deliver":
        d = f["delivered_s"]
        dlv = ("%11.0f %9.1f" % (acc / float(d), mb / float(d))) if d != "-" else "%11s %9s" % ("-", "-")
        print("%-7s %-12s %11.0f %9.1f %s %9s %10.2f %11.1f %9s" % (
            name, comp, acc / secs, mb / secs, dlv, f["throttled"], cpu * 1000 / mb if mb else 0,
            rss, f["cpu_s"]))
    else:
        print("%-7s %-12s %12.0f %11s %13.0f %11.1f %10.1f %10.2f" % (
            name, comp, mb, f["throttled"], int(f.get("spooled", 0)) / 1e6, rss, secs,
            cpu * 1000 / mb if mb else 0))
PY
echo
if [ "$MODE" = deliver ]; then
    echo "target: sluice >= 100 MB/s accepted and delivered"
    echo "method: accepted over fh_load's time; delivered from the first call to sluice's exit"
    echo "        after SIGTERM (the last buffer written, every object read back and counted);"
    echo "        CPU and peak RSS of the server process over its whole life (wait4)."
else
    echo "target: peak RSS < 128 MB with $SPOOL_MB MB spooled (a destination that cannot be written)"
    echo "note:   meaningful only with the durable spool in delivery streams; a binary buffering"
    echo "        in memory refuses puts beyond its buffers and fh_load's deadline passes."
fi
if [ "$FAILED" != 0 ]; then
    echo "bench: FAILED (see above)" >&2
    exit 1
fi
