#!/bin/sh
# Installs what building and testing sluice needs on Debian 12, skipping what is there.
# Run as root (or through sudo). Retries while another apt/dpkg holds the lock.
set -eu
pkgs="meson ninja-build pkg-config gcc libc6-dev libuv1-dev libcurl4-openssl-dev libcjson-dev zlib1g-dev
libmicrohttpd-dev librdkafka-dev libcmocka-dev valgrind python3 python3-pytest python3-boto3
nginx-light wrk clang-format curl git ca-certificates kcat awscli libhiredis-dev redis-server
redis-tools"
# libmicrohttpd-dev: the HTTP server of the delivery streams' Firehose API (src/httpd.c).
# python3-boto3: the SDK client the delivery stream tests put records with, beside the AWS CLI.
# libhiredis-dev: the Redis sink's client (0.14.1, with its libuv adapter); redis-server and
# redis-tools: the server the Redis tests run against (tests/services) and redis-cli.
# awscli: Debian's AWS CLI at /usr/bin/aws, the real client the Kinesis tests produce records
# with and the delivery stream tests put records with.
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# Node.js 20 or newer runs the tests' SQS and Kinesis servers (fauxqs, kinesalite); Debian 12's
# own nodejs is 18, so a machine without node gets Debian's and the servers are tried on it.
command -v node >/dev/null 2>&1 || missing="$missing nodejs npm"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "install-deps: need root to install:$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
try=0
until apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing; do
    try=$((try + 1))
    if [ "$try" -ge 10 ]; then
        echo "install-deps: apt-get failed $try times" >&2
        exit 1
    fi
    echo "install-deps: apt-get failed (lock held?), retrying in 5 s" >&2
    sleep 5
done
