#!/usr/bin/env bash
# Start the services sluice's tests and benchmarks use, in the background, on loopback, and
# wait (with a deadline) until each answers.  Stop them with stop.sh.
#
#   service   default                    what
#   nginx     127.0.0.1:${NGINX_PORT}    nginx-light answering 200 {"ok":true} at once (bench target)
#   sqs       127.0.0.1:${SQS_PORT}      fauxqs 1.9.2 on Node >= 20, in memory: SQS over AWS JSON 1.0
#                                        (servers/fauxqs.mjs; modules pinned in node/, installed
#                                        with `npm ci` when node/node_modules is missing)
#   kinesis   127.0.0.1:${KINESIS_PORT}    kinesalite 3.3.3 on Node >= 20, in memory: Kinesis over JSON 1.1
#                                        (servers/kinesalite.mjs, streams CREATING/UPDATING for
#                                        KINESIS_STATE_MS; modules pinned in node/ as for sqs); has
#                                        ListShards, SplitShard, MergeShards, no ChildShards, no
#                                        ListShards paging, never throttles
#   s3        127.0.0.1:${S3_PORT}         s3rver 3.7.1 on Node >= 20 (modules pinned in node/ as for sqs):
#                                        the S3 REST API, path-style, objects as files under
#                                        $RUN_DIR/s3; accepts only the access key id S3RVER and
#                                        checks no signature (S3_ACCESS_KEY_ID/S3_SECRET_ACCESS_KEY
#                                        in services.env); buckets made with `aws s3api create-bucket`
#   kafka     127.0.0.1:${KAFKA_BASE_PORT}..+N-1  librdkafka's mock cluster as a process
#                                        (servers/kafka-mock.c, KAFKA_BROKERS brokers, built with
#                                        cc + pkg-config rdkafka into KAFKA_BUILD_DIR, rebuilt when
#                                        the source is newer); topics from KAFKA_TOPICS; commands
#                                        through the FIFO $RUN_DIR/kafka.ctl, answered in
#                                        $RUN_DIR/kafka.log (see the top of servers/kafka-mock.c);
#                                        also builds kafka-tools/kafka-produce (needs libcjson)
#   redis     127.0.0.1:${REDIS_PORT}      Debian's redis-server, in memory (no RDB, no AOF), for the
#                                        Redis sink; REDIS_URL and REDIS_PORT in services.env (a test
#                                        that restarts Redis runs a server of its own instead)
#
# Each started server is recorded as "NAME PID COMM" in $RUN_DIR/services.pids (the server's
# own PID, never a wrapper shell's); stop.sh signals a PID only while /proc/PID/comm matches.
# Connection settings go to $RUN_DIR/services.env (source it with `set -a; . FILE; set +a`).
#
# Adding a service: write start_NAME (start the server with
# `cmd &` then `record NAME $! COMM`, then `wait_ready NAME CHECK-CMD...`), append NAME to
# SERVICES' default, and print its settings in write_env.
#
# Environment: SERVICES (default "nginx"; e.g. SERVICES="nginx sqs kafka"), RUN_DIR (default
# tests/services/run), NGINX_PORT (18080), SQS_PORT (9325), KINESIS_PORT (4567),
# KINESIS_STATE_MS (50), S3_PORT (4569), REDIS_PORT (6390), KAFKA_BASE_PORT (9192),
# KAFKA_BROKERS (3), KAFKA_TOPICS ("name:partitions ...", default none), KAFKA_BUILD_DIR
# ($RUN_DIR/bin), START_TIMEOUT_S (30).  Exit 0 only when every service answered; on failure, prints
# the tail of each log, stops what was started and exits 1.
set -euo pipefail

DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RUN_DIR="${RUN_DIR:-$DIR/run}"
PIDS="$RUN_DIR/services.pids"
ENVF="$RUN_DIR/services.env"
SERVICES="${SERVICES:-nginx}"
NGINX_PORT="${NGINX_PORT:-18080}"
SQS_PORT="${SQS_PORT:-9325}"
KINESIS_PORT="${KINESIS_PORT:-4567}"
KINESIS_STATE_MS="${KINESIS_STATE_MS:-50}"
S3_PORT="${S3_PORT:-4569}"
REDIS_PORT="${REDIS_PORT:-6390}"
KAFKA_BASE_PORT="${KAFKA_BASE_PORT:-9192}"
KAFKA_BROKERS="${KAFKA_BROKERS:-3}"
KAFKA_TOPICS="${KAFKA_TOPICS:-}"
KAFKA_BUILD_DIR="${KAFKA_BUILD_DIR:-$RUN_DIR/bin}"
START_TIMEOUT_S="${START_TIMEOUT_S:-30}"

say() { echo "services/start: $*" >&2; }

die() {
    say "$*"
    local f
    for f in "$RUN_DIR"/*.log "$RUN_DIR"/nginx/error.log; do
        [ -s "$f" ] || continue
        echo "--- $f" >&2
        tail -n 20 "$f" >&2
    done
    "$DIR/stop.sh" || true
    exit 1
}

mkdir -p "$RUN_DIR"
if [ -s "$PIDS" ]; then
    say "$PIDS is not empty: services already running? run $DIR/stop.sh first"
    exit 1
fi
: >"$PIDS"

have() { command -v "$1" >/dev/null 2>&1; }
need() { have "$1" || die "missing command '$1'"; }

check_port() {
    local p="$1"
    if ! [[ "$p" =~ ^[0-9]+$ ]] || [ "$p" -lt 1 ] || [ "$p" -gt 65535 ]; then
        die "invalid port '$p'"
    fi
    if port_open "$p"; then die "port $p is already in use"; fi
}

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT
port_open() {
    /usr/bin/python3 - "$1" <<'PY' 2>/dev/null
import socket, sys
s = socket.socket()
s.settimeout(1)
sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
PY
}

# http_ok URL: a POST answered with 2xx
http_ok() {
    if have curl; then
        curl -fsS -m 2 -o /dev/null -X POST -d '{}' "$1"
    else
        /usr/bin/python3 -c 'import sys, urllib.request as u
u.urlopen(u.Request(sys.argv[1], data=b"{}"), timeout=2).read()' "$1"
    fi
}

record() { echo "$1 $2 $3" >>"$PIDS"; }

# wait_ready NAME CMD...: poll CMD every 0.05 s until it succeeds; fail at the deadline or at
# once if the recorded process died
wait_ready() {
    local name="$1" pid t0 deadline
    shift
    pid="$(awk -v n="$name" '$1 == n { p = $2 } END { print p }' "$PIDS")"
    t0="$(date +%s%N)"
    deadline=$(($(date +%s) + START_TIMEOUT_S))
    until "$@" >/dev/null 2>&1; do
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            die "$name (pid $pid) exited during startup"
        fi
        [ "$(date +%s)" -lt "$deadline" ] || die "$name not ready within ${START_TIMEOUT_S}s"
        sleep 0.05
    done
    say "$name ready in $((($(date +%s%N) - t0) / 1000000)) ms"
}

# http_get_ok URL: a GET answered with 2xx
http_get_ok() {
    if have curl; then
        curl -fsS -m 2 -o /dev/null "$1"
    else
        /usr/bin/python3 -c 'import sys, urllib.request as u
u.urlopen(sys.argv[1], timeout=2).read()' "$1"
    fi
}

# ---- nginx: the http function target for benchmarks ------------------------------------
start_nginx() {
    local nginx=""
    if have nginx; then nginx="$(command -v nginx)"; elif [ -x /usr/sbin/nginx ]; then nginx=/usr/sbin/nginx; fi
    [ -n "$nginx" ] || die "nginx not found (apt-get install nginx-light)"
    check_port "$NGINX_PORT"
    local nd="$RUN_DIR/nginx"
    mkdir -p "$nd/tmp"
    cat >"$nd/nginx.conf" <<CONF
worker_processes 1;
daemon off;
master_process off;
pid $nd/nginx.pid;
error_log $nd/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $nd/tmp/body;
    proxy_temp_path $nd/tmp/proxy;
    fastcgi_temp_path $nd/tmp/fastcgi;
    uwsgi_temp_path $nd/tmp/uwsgi;
    scgi_temp_path $nd/tmp/scgi;
    client_max_body_size 16m;
    client_body_buffer_size 16m;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    server {
        listen 127.0.0.1:$NGINX_PORT backlog=1024;
        location / {
            default_type application/json;
            return 200 '{"ok":true}';
        }
    }
}
CONF
    "$nginx" -p "$nd" -c "$nd/nginx.conf" -e "$nd/error.log" >"$RUN_DIR/nginx.log" 2>&1 &
    record nginx $! nginx
    wait_ready nginx http_ok "http://127.0.0.1:$NGINX_PORT/"
}

# ---- node: the npm servers (fauxqs, kinesalite), pinned in node/package-lock.json -----------
# node_modules MODULE: Node >= 20, and node/node_modules installed with `npm ci` from the committed
# lockfile when MODULE is missing from it
node_modules() {
    need node
    local nd="$DIR/node" major
    major="$(node -p 'process.versions.node.split(".")[0]')"
    [ "$major" -ge 20 ] || die "the npm servers need Node >= 20 (found $(node --version))"
    if [ ! -f "$nd/node_modules/$1/package.json" ]; then
        need npm
        say "installing $1 from $nd/package-lock.json (npm ci)"
        (cd "$nd" && npm ci --no-audit --no-fund) >"$RUN_DIR/npm.log" 2>&1 ||
            die "npm ci in $nd failed (see $RUN_DIR/npm.log)"
    fi
}

# ---- sqs: fauxqs, for the SQS sink (on-failure destinations) and the SQS source ----------
start_sqs() {
    node_modules fauxqs
    check_port "$SQS_PORT"
    # node runs as the background job itself, so $! is the server's own PID.
    node "$DIR/servers/fauxqs.mjs" "$SQS_PORT" >"$RUN_DIR/sqs.log" 2>&1 &
    record sqs $! node
    wait_ready sqs http_get_ok "http://127.0.0.1:$SQS_PORT/health"
}

# ---- kinesis: kinesalite, for the Kinesis source ---------------------------------------------
start_kinesis() {
    node_modules kinesalite
    # the parser real handlers use, to check the events the Kinesis tests receive
    node_modules @aws-lambda-powertools/parser
    [[ "$KINESIS_STATE_MS" =~ ^[0-9]+$ ]] || die "invalid KINESIS_STATE_MS '$KINESIS_STATE_MS'"
    check_port "$KINESIS_PORT"
    node "$DIR/servers/kinesalite.mjs" "$KINESIS_PORT" "$KINESIS_STATE_MS" \
        >"$RUN_DIR/kinesis.log" 2>&1 &
    record kinesis $! node
    wait_ready kinesis kinesis_ok "http://127.0.0.1:$KINESIS_PORT/"
}

# kinesis_ok URL: a ListStreams answered with 200.  kinesalite wants a SigV4 Authorization header
# and a date but checks no signature, so a dummy one does.
kinesis_ok() {
    local auth='AWS4-HMAC-SHA256 Credential=test/20200101/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-date, Signature=0'
    if have curl; then
        curl -fsS -m 2 -o /dev/null -X POST -d '{}' \
            -H 'Content-Type: application/x-amz-json-1.1' \
            -H 'X-Amz-Target: Kinesis_20131202.ListStreams' \
            -H 'X-Amz-Date: 20200101T000000Z' -H "Authorization: $auth" "$1"
    else
        /usr/bin/python3 -c 'import sys, urllib.request as u
u.urlopen(u.Request(sys.argv[1], data=b"{}", headers={
    "Content-Type": "application/x-amz-json-1.1",
    "X-Amz-Target": "Kinesis_20131202.ListStreams",
    "X-Amz-Date": "20200101T000000Z", "Authorization": sys.argv[2]}), timeout=2).read()' "$1" "$auth"
    fi
}

# ---- s3: s3rver, for the S3 destination of delivery streams -----------------------------------
start_s3() {
    node_modules s3rver
    # the JavaScript SDK's Firehose client, which the delivery-stream tests drive sluice with
    node_modules @aws-sdk/client-firehose
    check_port "$S3_PORT"
    mkdir -p "$RUN_DIR/s3"
    node "$DIR/node/node_modules/s3rver/bin/s3rver.js" --address 127.0.0.1 --port "$S3_PORT" \
        --directory "$RUN_DIR/s3" --silent >"$RUN_DIR/s3.log" 2>&1 &
    record s3 $! node
    wait_ready s3 http_get_ok "http://127.0.0.1:$S3_PORT/"
}

# ---- redis: redis-server, for the Redis sink -------------------------------------------------
start_redis() {
    local server=""
    if have redis-server; then server="$(command -v redis-server)"; elif [ -x /usr/bin/redis-server ]; then server=/usr/bin/redis-server; fi
    [ -n "$server" ] || die "redis-server not found (apt-get install redis-server)"
    check_port "$REDIS_PORT"
    mkdir -p "$RUN_DIR/redis"
    cat >"$RUN_DIR/redis.conf" <<CONF
port $REDIS_PORT
bind 127.0.0.1
save ""
appendonly no
dir $RUN_DIR/redis
logfile $RUN_DIR/redis.log
daemonize no
CONF
    "$server" "$RUN_DIR/redis.conf" >/dev/null 2>&1 &
    record redis $! redis-server
    wait_ready redis redis_ok
}

# redis_ok: the server answers PING with PONG (RESP over a plain socket: no client needed)
redis_ok() {
    /usr/bin/python3 - "$REDIS_PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.sendall(b"PING\r\n")
sys.exit(0 if s.recv(16).startswith(b"+PONG") else 1)
PY
}

# ---- kafka: librdkafka's mock cluster, a Kafka protocol broker for the Kafka source/sink -----
# build_c OUT SRC PKG...: compile SRC into OUT when OUT is missing or older than SRC (a second
# or two; cached in KAFKA_BUILD_DIR).  Built beside and renamed, so a concurrent start never
# runs a half-written binary.
build_c() {
    local out="$1" src="$2" flags
    shift 2
    [ -x "$out" ] && [ ! "$src" -nt "$out" ] && return 0
    need cc
    need pkg-config
    flags="$(pkg-config --cflags --libs "$@" 2>&1)" ||
        die "pkg-config $*: $flags (apt-get install librdkafka-dev libcjson-dev)"
    mkdir -p "$(dirname "$out")"
    local log
    log="$RUN_DIR/build-$(basename "$out").log"
    # shellcheck disable=SC2086 # flags are words
    cc -std=c11 -O2 -Wall -o "$out.tmp.$$" "$src" $flags -ldl >"$log" 2>&1 ||
        die "building $out failed (see $log)"
    mv -f "$out.tmp.$$" "$out"
    rm -f "$log"
}

kafka_bootstrap() {
    local i list=""
    for ((i = 0; i < KAFKA_BROKERS; i++)); do
        list="${list:+$list,}127.0.0.1:$((KAFKA_BASE_PORT + i))"
    done
    echo "$list"
}

start_kafka() {
    [[ "$KAFKA_BROKERS" =~ ^[1-9][0-9]?$ ]] || die "invalid KAFKA_BROKERS '$KAFKA_BROKERS'"
    local mock="$KAFKA_BUILD_DIR/kafka-mock" prod="$KAFKA_BUILD_DIR/kafka-produce" i t
    build_c "$mock" "$DIR/servers/kafka-mock.c" rdkafka
    build_c "$prod" "$DIR/kafka-tools/kafka-produce.c" rdkafka libcjson
    for ((i = 0; i < KAFKA_BROKERS; i++)); do check_port $((KAFKA_BASE_PORT + i)); done
    # shellcheck disable=SC2206 # KAFKA_TOPICS is a word list
    local topics=($KAFKA_TOPICS)
    for t in "${topics[@]}"; do
        [[ "$t" =~ ^[A-Za-z0-9._-]+:[1-9][0-9]*$ ]] || die "bad KAFKA_TOPICS entry '$t' (want name:partitions)"
    done
    rm -f "$RUN_DIR/kafka.ctl" "$RUN_DIR/kafka.bootstrap"
    "$mock" -b "$KAFKA_BROKERS" -P "$KAFKA_BASE_PORT" -f "$RUN_DIR/kafka.bootstrap" \
        -c "$RUN_DIR/kafka.ctl" "${topics[@]}" >"$RUN_DIR/kafka.log" 2>&1 &
    record kafka $! kafka-mock
    # ready: the bootstrap file is written after every listener is bound; then a real Metadata
    # round trip through the first broker
    wait_ready kafka kafka_ready "$prod" "$(kafka_bootstrap)" "${topics[@]}"
}

# kafka_ready PRODUCER BOOTSTRAP [TOPIC:N ...]: the mock wrote its bootstrap file and answers
# Metadata, listing every broker and topic
kafka_ready() {
    local prod="$1" boot="$2" md t
    shift 2
    [ -s "$RUN_DIR/kafka.bootstrap" ] || return 1
    md="$("$prod" -M -b "$boot" -X socket.connection.setup.timeout.ms=1000 2>/dev/null)" || return 1
    grep -qx "brokers $KAFKA_BROKERS" <<<"$md" || return 1
    for t in "$@"; do grep -qx "topic ${t%%:*} ${t##*:}" <<<"$md" || return 1; done
}

write_env() {
    {
        case " $SERVICES " in *" nginx "*)
            echo "NGINX_URL=http://127.0.0.1:$NGINX_PORT"
            echo "FUNCTION_ENDPOINT=http://127.0.0.1:$NGINX_PORT" ;;
        esac
        case " $SERVICES " in *" sqs "*)
            echo "SQS_ENDPOINT=http://127.0.0.1:$SQS_PORT" ;;
        esac
        case " $SERVICES " in *" kinesis "*)
            echo "KINESIS_PORT=$KINESIS_PORT"
            echo "AWS_ENDPOINT_URL_KINESIS=http://127.0.0.1:$KINESIS_PORT" ;;
        esac
        case " $SERVICES " in *" s3 "*)
            echo "S3_ENDPOINT=http://127.0.0.1:$S3_PORT"
            echo "S3_ACCESS_KEY_ID=S3RVER"
            echo "S3_SECRET_ACCESS_KEY=S3RVER" ;;
        esac
        case " $SERVICES " in *" redis "*)
            echo "REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
            echo "REDIS_PORT=$REDIS_PORT" ;;
        esac
        case " $SERVICES " in *" kafka "*)
            echo "KAFKA_BOOTSTRAP=$(kafka_bootstrap)"
            echo "KAFKA_CTL=$RUN_DIR/kafka.ctl"
            echo "KAFKA_LOG=$RUN_DIR/kafka.log"
            echo "KAFKA_PRODUCE=$KAFKA_BUILD_DIR/kafka-produce" ;;
        esac
    } >"$ENVF.tmp"
    mv "$ENVF.tmp" "$ENVF"
}

for s in $SERVICES; do
    declare -F "start_$s" >/dev/null || die "unknown service '$s'"
    "start_$s"
done
write_env
say "up: $SERVICES (pids in $PIDS, settings in $ENVF)"
