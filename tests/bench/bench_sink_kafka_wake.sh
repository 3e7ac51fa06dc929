#!/bin/sh
# Benchmark (run by hand, not part of the test suite): how often the kafka:// sink wakes the
# loop while a write waits on a broker that is down (tests/bench/sink_kafka_wake.c).
#
#   tests/bench/bench_sink_kafka_wake.sh [BUILD_DIR] [SECONDS]     (default build, 2 s)
#
# Compiles sink_kafka_wake.c against BUILD_DIR's libsluice.a and the headers of the tree that
# BUILD_DIR belongs to (its parent), so two trees compare side by side, e.g.
#   tests/bench/bench_sink_kafka_wake.sh /work/main/build; tests/bench/bench_sink_kafka_wake.sh
# librdkafka's own log lines about the broker being down go to stderr.
set -eu

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="$(cd "${1:-$ROOT/build}" && pwd)"
SECS="${2:-2}"
TREE="$(dirname "$BUILD")"
W="$(mktemp -d /tmp/sluice-bench-wake.XXXXXX)"
trap 'rm -rf "$W"' EXIT
# shellcheck disable=SC2046
cc -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I"$BUILD" -I"$TREE/src" \
    -I"$TREE/sinks" -I"$TREE/sources" $(pkg-config --cflags libcjson) \
    "$ROOT/tests/bench/sink_kafka_wake.c" "$BUILD/libsluice.a" \
    $(pkg-config --libs libuv libcurl libcjson rdkafka) -lm -o "$W/wake"
"$W/wake" "$SECS" 2>/dev/null
