#!/usr/bin/env bash
# Benchmark (run by hand, not part of the test suite): Kinesis source -> http function.
#
#   tests/bench/bench_kinesis_http.sh [RECORDS]      (default 100000 records of 100 bytes)
#
# Scenario (issue 10, "Performance"): a stream of SHARDS (4) shards on kinesalite (tests/services,
# in memory), RECORDS records of SIZE bytes put beforehand with PutRecords (500 a call, keys
# spread over the shards), BatchSize 1000, an http function -> nginx answering 200 at once.
# Each row runs RUNS times (2), on the same stream:
#   loop     a plain GetRecords loop (bench_kinesis_loop.py: ListShards, then per shard
#            GetShardIterator TRIM_HORIZON and GetRecords of Limit 10000 until the shard is
#            drained, the shards in turn, Python's http.client with keep-alive): what kinesalite
#            itself can serve here
#   sluice   `sluice run --until-idle=1` (a fresh state_dir each run, TRIM_HORIZON,
#            poll_interval 200ms)
#   base     the same with BASE_BIN (another build, e.g. the previous commit's, copied at the
#            start), so two builds are compared in one invocation on the same stream
# Figures per run: records/s over the active time, CPU seconds per million records (user+sys
# of the process, GNU time), peak RSS. sluice's active time is from its "reading stream" log
# line to the last record read (the "idle ... (last record read N ms ago), stopping" line - N);
# the loop's from its first request to its last answer. The script checks that sluice's exit
# line says delivered=RECORDS and that the loop read RECORDS.
#
# MODE=trickle instead: one record a second into one shard, poll_interval 200ms, RECORDS of them
# (default here 30): the median and p90 time from PutRecords to the function's invocation.
# MODE=shards: a stream of SHARDS shards (say 1000) holding RECORDS records: all delivered by
# `--until-idle`, and sluice's peak RSS and CPU.
#
# Env: SLUICE_BIN (build/sluice), KINESIS_PORT (4867), NGINX_PORT (18580), RUN_DIR (a private
#      dir under /tmp), SHARDS (4), SIZE (100), BATCH (1000), RUNS (2), ROWS ("loop sluice"),
#      MODE (bench, trickle, shards), KEEP=1 keeps the temp dir, BASE_BIN (unset: no base row;
#      PREV_BIN is taken as another name for it).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
MODE="${MODE:-bench}"
RECORDS="${1:-$([ "$MODE" = trickle ] && echo 30 || echo 100000)}"
SLUICE_BIN="${SLUICE_BIN:-$ROOT/build/sluice}"
SHARDS="${SHARDS:-4}"
SIZE="${SIZE:-100}"
BATCH="${BATCH:-1000}"
RUNS="${RUNS:-2}"
ROWS="${ROWS:-loop sluice base}"
BASE_BIN="${BASE_BIN:-${PREV_BIN:-}}"
export KINESIS_PORT="${KINESIS_PORT:-4867}"
export NGINX_PORT="${NGINX_PORT:-18580}"
export RUN_DIR="${RUN_DIR:-$(mktemp -d /tmp/bench-kinesis.XXXXXX)}"

[ -x "$SLUICE_BIN" ] || { echo "no sluice at $SLUICE_BIN (ninja -C build)" >&2; exit 1; }
/usr/bin/time -f '%e' true >/dev/null 2>&1 ||
    { echo "GNU time (/usr/bin/time) is needed: apt-get install time" >&2; exit 1; }

cleanup() {
    "$ROOT/tests/services/stop.sh" >/dev/null 2>&1 || true
    [ "${KEEP:-}" = 1 ] || rm -rf "$RUN_DIR"
}
trap cleanup EXIT

mkdir -p "$RUN_DIR"
BASE_ARGS=()
if [ -n "$BASE_BIN" ]; then
    [ -x "$BASE_BIN" ] || { echo "no sluice at BASE_BIN=$BASE_BIN" >&2; exit 1; }
    cp "$BASE_BIN" "$RUN_DIR/sluice-base"
    BASE_ARGS=(--base "$RUN_DIR/sluice-base")
    echo "base: $BASE_BIN (copied at start)" >&2
fi

SERVICES="nginx kinesis" "$ROOT/tests/services/start.sh"
ENDPOINT="http://127.0.0.1:$KINESIS_PORT"
URL="http://127.0.0.1:$NGINX_PORT/events"

/usr/bin/python3 "$ROOT/tests/bench/bench_kinesis_loop.py" "$MODE" \
    --endpoint "$ENDPOINT" --url "$URL" --sluice "$SLUICE_BIN" --dir "$RUN_DIR" \
    --records "$RECORDS" --shards "$SHARDS" --size "$SIZE" --batch "$BATCH" --runs "$RUNS" \
    --rows "$ROWS" "${BASE_ARGS[@]}"
