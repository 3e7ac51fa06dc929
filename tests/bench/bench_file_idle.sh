#!/bin/sh
# Benchmark (run by hand, not part of the test suite): what idle files cost.
#
#   tests/bench/bench_file_idle.sh [FILES] [SECONDS]      (default 10000 files, 30 s)
#
# Writes FILES one-line files, runs `sluice run` on a glob of them (StartingPosition LATEST, so
# nothing is delivered; an exec function that is never invoked), waits 15 s for the start-up
# (every file opened and its start recorded), then prints the CPU time (user+sys, from
# /proc/PID/stat) sluice spends over SECONDS with nothing happening, as a share of one core,
# and the descriptors it holds. Needs `ulimit -n` above FILES for a sluice that holds every
# file open.
#
# Env: SLUICE_BIN (default build/sluice), KEEP=1 keeps the temp dir.
set -eu

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="${SLUICE_BIN:-$ROOT/build/sluice}"
N="${1:-10000}"
SECS="${2:-30}"
W="$(mktemp -d /tmp/sluice-bench-idle.XXXXXX)"
trap '[ "${KEEP:-0}" = 1 ] || rm -rf "$W"' EXIT
mkdir -p "$W/files" "$W/state"
i=0
while [ "$i" -lt "$N" ]; do
    echo "line $i" >"$W/files/f$i.log"
    i=$((i + 1))
done
cat >"$W/cfg.json" <<JSON
{"state_dir": "$W/state", "functions": {"sink": {"type": "exec", "command": ["/bin/true"]}},
 "mappings": [{"EventSourceArn": "file://$W/files/*.log", "FunctionName": "sink",
               "StartingPosition": "LATEST"}]}
JSON
"$BIN" run "$W/cfg.json" 2>"$W/log" &
pid=$!
sleep 15
tck=$(getconf CLK_TCK)
t0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
sleep "$SECS"
t1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
fds=$(ls "/proc/$pid/fd" | wc -l)
kill -TERM "$pid"
wait "$pid" || true
awk -v a="$t0" -v b="$t1" -v t="$tck" -v s="$SECS" -v f="$fds" -v n="$N" 'BEGIN {
    printf "%d idle files: %.2f s CPU in %d s = %.2f%% of a core; %d descriptors\n",
           n, (b - a) / t, s, 100 * (b - a) / t / s, f }'
