#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this after installing packages):
#   1. build/ with --werror and every adapter (-Dkafka=enabled); unit, integration and lint suites
#   2. the unit suite of build/ again under valgrind (meson's valgrind setup; about 70 s)
#   3. build-asan/ with AddressSanitizer + UndefinedBehaviorSanitizer; unit suite
#   4. build-nokafka/ (-Dkafka=disabled, --werror): builds without librdkafka; unit and lint
#      suites (about 15 s)
# Services the tests need (tests/services/start.sh) run for the duration and are stopped on
# exit.  Exits non-zero if any step fails; every step runs even after an earlier failure.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
export SERVICES_RUN_DIR="${SERVICES_RUN_DIR:-$ROOT/build-services}"
failed=()
t_start=$(date +%s)

step() {  # step NAME CMD...: run, time, remember failures
    local name="$1" t0 rc
    shift
    echo "=== $name: $*"
    t0=$(date +%s)
    "$@"
    rc=$?
    echo "=== $name: exit $rc in $(($(date +%s) - t0)) s"
    [ "$rc" -eq 0 ] || failed+=("$name")
    return "$rc"
}

setup() {  # setup DIR ARGS...: configure DIR, or reconfigure it if it exists
    local dir="$1"
    shift
    if [ -f "$dir/build.ninja" ]; then
        meson setup --reconfigure "$dir" "$@"
    else
        meson setup "$dir" "$@"
    fi
}

stop_services() { RUN_DIR="$SERVICES_RUN_DIR" tests/services/stop.sh; }
trap stop_services EXIT
stop_services  # leftovers of an interrupted earlier run
if step services env RUN_DIR="$SERVICES_RUN_DIR" SERVICES="nginx sqs kafka kinesis s3" tests/services/start.sh; then
    set -a
    # shellcheck disable=SC1091
    . "$SERVICES_RUN_DIR/services.env"
    set +a
    # An SDK variable: exported, it would point every AWS client of every test at kinesalite.
    # The Kinesis tests read it from $SERVICES_RUN_DIR/services.env themselves.
    unset AWS_ENDPOINT_URL_KINESIS
fi

if step setup setup build --werror -Dkafka=enabled && step build ninja -C build; then
    step test meson test -C build --suite unit --suite integration --suite lint \
        --print-errorlogs
    step test-valgrind meson test -C build --setup valgrind --suite unit --print-errorlogs
fi

if step setup-asan setup build-asan -Dkafka=enabled -Db_sanitize=address,undefined \
    -Db_lundef=false && step build-asan ninja -C build-asan; then
    step test-asan env UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        meson test -C build-asan --suite unit --print-errorlogs
fi

if step setup-nokafka setup build-nokafka --werror -Dkafka=disabled &&
    step build-nokafka ninja -C build-nokafka; then
    step test-nokafka meson test -C build-nokafka --suite unit --suite lint --print-errorlogs
fi

failure_digest() {  # the failed tests of every meson log, with each one's last lines
    local log
    for log in build/meson-logs/testlog*.json build-asan/meson-logs/testlog*.json \
        build-nokafka/meson-logs/testlog*.json; do
        [ -f "$log" ] || continue
        /usr/bin/python3 - "$log" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    t = json.loads(line)
    if t.get("result") in ("OK", "SKIP", "EXPECTEDFAIL"):
        continue
    print(f"=== {sys.argv[1]}: {t['name']}: {t['result']} (exit {t.get('returncode')}, "
          f"{t.get('duration', 0):.1f} s)")
    out = ((t.get("stdout") or "") + (t.get("stderr") or "")).splitlines()
    for text in out[-60:]:
        print("    " + text)
PY
    done
}

echo "=== total $(($(date +%s) - t_start)) s"
if [ "${#failed[@]}" -ne 0 ]; then
    failure_digest
    echo "=== FAILED: ${failed[*]}"
    exit 1
fi
echo "=== all passed"
