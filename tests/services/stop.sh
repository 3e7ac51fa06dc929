#!/usr/bin/env bash
# Stop what start.sh started: read $RUN_DIR/services.pids newest first, SIGTERM each PID whose
# /proc/PID/comm still matches the recorded name (a reused PID is left alone), wait up to
# STOP_TIMEOUT_S (10), SIGKILL the survivors, remove the PID file and Kafka's control FIFO.
# No pkill, no killall.
set -uo pipefail

DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RUN_DIR="${RUN_DIR:-$DIR/run}"
PIDS="$RUN_DIR/services.pids"
STOP_TIMEOUT_S="${STOP_TIMEOUT_S:-10}"

[ -f "$PIDS" ] || exit 0

# ours PID COMM: PID is alive, not a zombie, and still runs COMM
ours() {
    local st
    [ -r "/proc/$1/comm" ] || return 1
    [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] || return 1
    st="$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null)"
    [ "$st" != Z ] && [ "$st" != X ]
}

mapfile -t entries < <(tac "$PIDS")
for e in "${entries[@]}"; do
    read -r name pid comm <<<"$e"
    [ -n "${pid:-}" ] || continue
    if ours "$pid" "$comm"; then
        kill -TERM "$pid" 2>/dev/null && echo "services/stop: $name (pid $pid) TERM" >&2
    fi
done

deadline=$(($(date +%s) + STOP_TIMEOUT_S))
for e in "${entries[@]}"; do
    read -r name pid comm <<<"$e"
    [ -n "${pid:-}" ] || continue
    while ours "$pid" "$comm"; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            kill -KILL "$pid" 2>/dev/null && echo "services/stop: $name (pid $pid) KILL" >&2
            break
        fi
        sleep 0.05
    done
done
rm -f "$PIDS" "$RUN_DIR/services.env"
# kafka: the control FIFO (a writer opening it with no reader would block) and bootstrap file
rm -f "$RUN_DIR/kafka.ctl" "$RUN_DIR/kafka.bootstrap"
exit 0
