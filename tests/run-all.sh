#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this after installing packages):
#   1. build/ with --werror and every adapter (-Dkafka=enabled); unit, integration and lint suites
#   2. the unit suite of build/ again under valgrind (meson's valgrind setup; about 70 s)
#   3. build-asan/ with AddressSanitizer + UndefinedBehaviorSanitizer; unit suite
#   4. build-nokafka/ (-Dkafka=disabled, --werror): builds without librdkafka; unit and lint
#      suites (about 15 s)
# Services the tests need (tests/services/start.sh) run for the duration and are stopped on
# exit.  Exits non-zero if any step fails; every step runs even after an earlier failure, and a
# digest of the failed tests ends the output: for each, cmocka's verdicts and messages (which
# check failed, the assertion or fail_msg text, file:line; a check that never finished), then
# its last lines.
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
if step services env RUN_DIR="$SERVICES_RUN_DIR" SERVICES="nginx sqs kafka kinesis s3 redis" tests/services/start.sh; then
    set -a
    # shellcheck disable=SC1091
    . "$SERVICES_RUN_DIR/services.env"
    set +a
    # An SDK variable: exported, it would point every AWS client of every test at kinesalite.
    # The Kinesis tests read it from $SERVICES_RUN_DIR/services.env themselves.
    unset AWS_ENDPOINT_URL_KINESIS
fi

if step setup setup build --werror -Dkafka=enabled && step build ninja -C build; then
    # Three tests at a time on CI's two cores: the integration files mostly wait (on retries,
    # windows, idle timeouts, services), and each keeps to its own names, state and ports
    # (tests/integration/meson.build); the few that change shared state run alone.
    step test meson test -C build --suite unit --suite integration --suite lint \
        --num-processes "${MESON_TESTTHREADS:-3}" --print-errorlogs
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

failure_digest() {  # the failed tests of every meson log: cmocka's verdicts, then the last lines
    local log
    for log in build/meson-logs/testlog*.json build-asan/meson-logs/testlog*.json \
        build-nokafka/meson-logs/testlog*.json; do
        [ -f "$log" ] || continue
        /usr/bin/python3 - "$log" <<'PY'
import json, re, sys

# cmocka's lines that say which test failed and why: its verdicts ("[  FAILED  ] name",
# "[  ERROR   ] name" for a setup or teardown that failed), the assertion's message
# ("[  ERROR   ] --- 0x2 != 0x3", "--- \"abc\" != \"abd\"", "--- n < 1"), fail_msg's text
# ("ERROR: ..."), where it failed ("[   LINE   ] --- file.c:82: error: Failure!"), and a
# signal or a skipped test. Valgrind's and the program's own lines do not match.
CMOCKA = re.compile(r"^(\[  (FAILED|ERROR)   ?\]|\[   LINE   \]|ERROR: |Test failed with exception|"
                    r"\[  SKIPPED \]|\S+\.c:\d+: error: )")
RUN = re.compile(r"^\[ RUN      \] (\S+)")
DONE = re.compile(r"^\[ +(OK|FAILED|ERROR|SKIPPED) +\] (\S+)$")

for line in open(sys.argv[1]):
    t = json.loads(line)
    if t.get("result") in ("OK", "SKIP", "EXPECTEDFAIL"):
        continue
    print(f"=== {sys.argv[1]}: {t['name']}: {t['result']} (exit {t.get('returncode')}, "
          f"{t.get('duration', 0):.1f} s)")
    # cmocka writes its verdicts to stdout and the reasons to stderr: each stream in its order
    streams = [(t.get("stdout") or "").splitlines(), (t.get("stderr") or "").splitlines()]
    running = None
    said = []
    for out in streams:
        for text in out:
            m = RUN.match(text)
            if m:
                running = m.group(1)
            m = DONE.match(text)
            if m and m.group(2) == running:
                running = None
            if CMOCKA.match(text) and not text.endswith("listed below:") and text not in said:
                said.append(text)
    if said:
        print("  cmocka:")
        for text in said:
            print("    " + text)
    if running:
        print(f"  cmocka: {running} started and never finished (killed, timed out or crashed)")
    print("  last lines:")
    for text in (streams[0] + streams[1])[-60:]:
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
