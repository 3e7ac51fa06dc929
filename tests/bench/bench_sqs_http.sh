#!/usr/bin/env bash
# Benchmark (run by hand, not part of the test suite): SQS source -> http function.
#
#   tests/bench/bench_sqs_http.sh [RECORDS]      (default 50000 messages of 100 bytes)
#
# Scenario (issue 11, "Performance"): a standard queue of fauxqs (tests/services, in memory),
# RECORDS messages of SIZE bytes sent beforehand with SendMessageBatch, an http function ->
# nginx answering 200 at once. Each row runs RUNS times (2), each on a fresh queue filled anew:
#   loop         a plain receive-and-delete loop (bench_sqs_loop.py: ReceiveMessage of 10, then
#                DeleteMessageBatch of what came, one request at a time, Python's http.client
#                with keep-alive): what fauxqs itself serves to one consumer here
#   sluice       `sluice run --until-idle=1`, BatchSize BATCH, MaximumBatchingWindowInSeconds
#                WINDOW (unset: none)
#   sluice-base  the same with BASE_BIN (PREV_BIN is taken as its other name): another build,
#                e.g. the previous commit's, each of its runs right after sluice's
# Figures per run: messages/s over the active time, CPU seconds per million messages (user+sys
# of the process, GNU time), peak RSS. sluice's active time is from its "queue ...: visibility
# timeout" log line to the last message received (the "idle ... (last record read N ms ago),
# stopping" line - N); the loop's from its first request to its last answer. The script checks
# that sluice's exit line says delivered=RECORDS and that the queue is empty afterwards.
#
# The issue's two rows: `tests/bench/bench_sqs_http.sh` and `BATCH=100 WINDOW=1 tests/bench/bench_sqs_http.sh`.
#
# Env: SLUICE_BIN (build/sluice), BASE_BIN or PREV_BIN (unset: no sluice-base row), SQS_PORT
#      (9325), NGINX_PORT (18080), RUN_DIR (a private dir under /tmp), SIZE (100), BATCH (10),
#      WINDOW (unset), RUNS (2), ROWS ("loop sluice"), KEEP=1 keeps the temp dir.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RECORDS="${1:-50000}"
SLUICE_BIN="${SLUICE_BIN:-$ROOT/build/sluice}"
BASE_BIN="${BASE_BIN:-${PREV_BIN:-}}"
SIZE="${SIZE:-100}"
BATCH="${BATCH:-10}"
WINDOW="${WINDOW:-0}"
RUNS="${RUNS:-2}"
ROWS="${ROWS:-loop sluice}"
export SQS_PORT="${SQS_PORT:-9325}"
export NGINX_PORT="${NGINX_PORT:-18080}"
TMP="$(mktemp -d /tmp/bench-sqs.XXXXXX)"
export RUN_DIR="${RUN_DIR:-$TMP/services}"

[ -x "$SLUICE_BIN" ] || { echo "no sluice at $SLUICE_BIN (ninja -C build)" >&2; exit 1; }
/usr/bin/time -f '%e' true >/dev/null 2>&1 ||
    { echo "GNU time (/usr/bin/time) is needed: apt-get install time" >&2; exit 1; }

cleanup() {
    "$ROOT/tests/services/stop.sh" >/dev/null 2>&1 || true
    if [ "${KEEP:-}" = 1 ]; then echo "bench: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

# copies, so that a rebuild during the run cannot change the binaries
cp "$SLUICE_BIN" "$TMP/sluice"
base=()
if [ -n "$BASE_BIN" ]; then
    cp "$BASE_BIN" "$TMP/sluice-base"
    base=(--base "$TMP/sluice-base")
    echo "sluice-base: $BASE_BIN ($(git -C "$(dirname "$BASE_BIN")" describe --always --dirty 2>/dev/null || echo unknown))"
fi
echo "sluice: $SLUICE_BIN ($(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown))"

SERVICES="nginx sqs" "$ROOT/tests/services/start.sh"

/usr/bin/python3 "$ROOT/tests/bench/bench_sqs_loop.py" bench \
    --endpoint "http://127.0.0.1:$SQS_PORT" --url "http://127.0.0.1:$NGINX_PORT/events" \
    --sluice "$TMP/sluice" "${base[@]}" --dir "$TMP" --records "$RECORDS" --size "$SIZE" \
    --batch "$BATCH" --window "$WINDOW" --runs "$RUNS" --rows "$ROWS"
