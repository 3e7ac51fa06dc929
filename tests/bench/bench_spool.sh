#!/bin/sh
# Benchmark (run by hand, not part of the test suite): the delivery streams' spool
# (tests/bench/bench_spool.c). In one run, on the same disk:
#   baseline  write(2) + fdatasync of 500 x 1 KiB per batch to one plain file;
#   append/N  sl_spool_append of 500 x 1 KiB records per batch, N batches in flight
#             (N = 1, then 8: group commit shares an fdatasync among them);
#   fill      a spool of SPOOL_MB (default 1024) left on disk;
#   open/drain a fresh process opens that spool, reads and releases every record: its peak RSS
#             is what a restart with that much spooled costs (target: under 128 MB for 1 GB).
#
#   tests/bench/bench_spool.sh [BUILD_DIR] [MB] [SPOOL_MB]      (defaults: build, 256, 1024)
#
# Compiles bench_spool.c against BUILD_DIR's libsluice.a and the headers of BUILD_DIR's tree.
# The work directory is under ${TMPDIR:-/tmp} (SPOOL_MB of free space needed), removed after.
set -eu

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BUILD="$(cd "${1:-$ROOT/build}" && pwd)"
MB="${2:-256}"
SPOOL_MB="${3:-1024}"
TREE="$(dirname "$BUILD")"
W="$(mktemp -d "${TMPDIR:-/tmp}/sluice-bench-spool.XXXXXX")"
trap 'rm -rf "$W"' EXIT
# shellcheck disable=SC2046
cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I"$BUILD" -I"$TREE/src" \
    "$ROOT/tests/bench/bench_spool.c" "$BUILD/libsluice.a" \
    $(pkg-config --libs libuv libcurl libcjson) $(pkg-config --libs rdkafka 2>/dev/null || true) \
    -lm -lpthread -o "$W/bench"
echo "1 KiB records, batches of 500, each batch durable (fdatasync) before it counts"
"$W/bench" baseline "$W" "$MB"
"$W/bench" append "$W/s1" "$MB" 1
"$W/bench" append "$W/s8" "$MB" 8
rm -rf "$W/s1" "$W/s8"
"$W/bench" fill "$W/big" "$SPOOL_MB"
du -sh "$W/big" | sed 's/^/spool on disk: /'
"$W/bench" drain "$W/big"
