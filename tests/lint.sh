#!/bin/sh
# Lint: formatting, banned calls, every test file registered in meson, the generated OPTIONS.md.
# Usage: lint.sh SOURCE_ROOT SLUICE_BIN [options|no-options]; no-options (a build that leaves an
# adapter out, whose `sluice options` lacks that adapter's table) skips the OPTIONS.md diff.
set -u
root=$1
bin=$2
options=${3:-options}
cd "$root" || exit 1
fail=0
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find src sources sinks tests -name '*.[ch]')
if command -v clang-format >/dev/null 2>&1; then
    for f in $files; do
        if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
            echo "lint: $f is not formatted (clang-format -i $f)"
            fail=1
        fi
    done
else
    echo "lint: clang-format not found"
    fail=1
fi
banned='\b(strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi|atol)\s*\('
if grep -nE "$banned" $files; then
    echo "lint: banned call above (use snprintf, strtoll, strtok_r, ...)"
    fail=1
fi
raw=$(grep -nE '\b(malloc|calloc|realloc|strdup|free)\s*\(' $(echo "$files" | tr ' ' '\n' | grep -v '^src/alloc.c$' | grep -v '^tests/') | grep -vE 'sl_(malloc|calloc|realloc|strdup|free)|curl_free|cJSON_free|freeReplyObject|_free\(' || true)
if [ -n "$raw" ]; then
    echo "$raw"
    echo "lint: raw allocation outside src/alloc.c (use sl_malloc and friends)"
    fail=1
fi
# meson.build names every unit test, and tests/integration/meson.build every integration file
# (meson itself refuses a name whose file is missing).
for f in tests/unit/test_*.c; do
    name=$(basename "$f" .c)
    name=${name#test_}
    if ! grep -q "'$name'" meson.build; then
        echo "lint: $f is not in meson.build's unit_tests"
        fail=1
    fi
done
for f in tests/integration/test_*.py; do
    name=$(basename "$f" .py)
    name=$(echo "${name#test_}" | tr _ -)
    if ! grep -q "^ *'$name': [0-9]" tests/integration/meson.build; then
        echo "lint: $f is not in tests/integration/meson.build's integration_tests"
        fail=1
    fi
done
if [ "$options" = no-options ]; then
    echo "lint: config/OPTIONS.md not compared: this build leaves an adapter out"
elif ! "$bin" options --markdown | diff -u config/OPTIONS.md - ; then
    echo "lint: config/OPTIONS.md is stale: run '$bin options --markdown > config/OPTIONS.md'"
    fail=1
fi
exit $fail
