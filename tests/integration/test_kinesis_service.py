"""Smoke test of the Kinesis test service: tests/services/start.sh with SERVICES=kinesis in a
private RUN_DIR and port starts kinesalite 3.3.3 (servers/kinesalite.mjs) bound to 127.0.0.1
only, records its PID and writes KINESIS_PORT and AWS_ENDPOINT_URL_KINESIS to services.env; the
real AWS CLI (/usr/bin/aws, dummy credentials) creates a stream, puts records, lists shards and
reads the records back byte for byte, splits a shard and sees the lineage; stop.sh leaves nothing
running.

Needs Node >= 20 (npm to install the pinned modules on first use) and Debian's awscli at
/usr/bin/aws: skipped without them, failed under CI=true."""

import base64
import json
import os
import random
import shutil
import socket
import subprocess
import time

import pytest

import helpers

SERVICES_DIR = os.path.join(helpers.REPO, "tests", "services")
AWS = "/usr/bin/aws"


def _prereqs():
    if not (os.path.isfile(AWS) and os.access(AWS, os.X_OK)):
        helpers.missing("the AWS CLI at %s (apt-get install awscli)" % AWS)
    if not shutil.which("node"):
        helpers.missing("node >= 20 on PATH (tests/install-deps.sh)")
    major = subprocess.run(["node", "-p", "process.versions.node.split('.')[0]"],
                           capture_output=True, text=True).stdout.strip()
    if not major.isdigit() or int(major) < 20:
        helpers.missing("node >= 20 (found %s)" % major)
    if not os.path.exists(os.path.join(SERVICES_DIR, "node", "node_modules", "kinesalite")) \
            and not shutil.which("npm"):
        helpers.missing("npm, to install tests/services/node (npm ci)")


def _free_port():
    for _ in range(200):
        port = random.randrange(20000, 60000)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    pytest.fail("no free port found")


def _listen_addrs(port):
    """Local addresses listening on TCP port (from /proc/net/tcp and tcp6)."""
    addrs = []
    for name in ("tcp", "tcp6"):
        try:
            with open("/proc/net/" + name) as f:
                rows = f.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            addr, p = local.split(":")
            if state == "0A" and int(p, 16) == port:
                addrs.append(addr)
    return addrs


@pytest.fixture
def kinesis(tmp_path):
    """start.sh with SERVICES=kinesis in tmp_path; yields the settings, env, port and pids;
    stop.sh at teardown."""
    _prereqs()
    run_dir = tmp_path / "run"
    port = _free_port()
    env = dict(os.environ, RUN_DIR=str(run_dir), SERVICES="kinesis", KINESIS_PORT=str(port),
               START_TIMEOUT_S="60")
    env.pop("AWS_ENDPOINT_URL_KINESIS", None)
    t0 = time.monotonic()
    r = subprocess.run([os.path.join(SERVICES_DIR, "start.sh")], env=env, capture_output=True,
                       text=True, timeout=300)
    started_s = time.monotonic() - t0
    try:
        assert r.returncode == 0, "start.sh failed:\n%s%s" % (r.stdout, r.stderr)
        settings = {}
        with open(run_dir / "services.env") as f:
            for line in f:
                k, _, v = line.strip().partition("=")
                settings[k] = v
        with open(run_dir / "services.pids") as f:
            pids = [ln.split() for ln in f if ln.strip()]
        yield {"env": env, "run_dir": run_dir, "port": port, "settings": settings,
               "pids": pids, "start_log": r.stderr, "started_s": started_s}
    finally:
        subprocess.run([os.path.join(SERVICES_DIR, "stop.sh")], env=env, timeout=60)


def _aws(endpoint, *args):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_") or k == "AWS_CA_BUNDLE"}
    env.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
               AWS_DEFAULT_REGION="us-east-1", AWS_PAGER="", AWS_EC2_METADATA_DISABLED="true",
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    r = subprocess.run([AWS, "--endpoint-url", endpoint, "--output", "json", "kinesis"]
                       + list(args), env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, "aws kinesis %s failed (%d): %s" % (args[0], r.returncode,
                                                                  r.stderr)
    return json.loads(r.stdout) if r.stdout.strip() else {}


def _active(endpoint, name):
    s = _aws(endpoint, "describe-stream-summary", "--stream-name", name)
    return s["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE"


def test_kinesis_service_round_trip(kinesis):
    s, port = kinesis["settings"], kinesis["port"]
    print("\nstart.sh (npm ci if needed + start + ready): %.2f s; %s"
          % (kinesis["started_s"], kinesis["start_log"].strip().replace("\n", " | ")))
    endpoint = "http://127.0.0.1:%d" % port
    assert s["KINESIS_PORT"] == str(port)
    assert s["AWS_ENDPOINT_URL_KINESIS"] == endpoint
    assert [p[0] for p in kinesis["pids"]] == ["kinesis"]
    assert kinesis["pids"][0][2] == "node"
    # the recorded PID is the server's own, and it listens on loopback only
    pid = int(kinesis["pids"][0][1])
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        assert b"kinesalite.mjs" in f.read()
    assert _listen_addrs(port) == ["0100007F"], _listen_addrs(port)

    _aws(endpoint, "create-stream", "--stream-name", "smoke", "--shard-count", "2")
    helpers.wait_until(lambda: _active(endpoint, "smoke"), timeout=30, what="stream ACTIVE")

    payloads = [b"hello", b"", b"\x00\xff\xfe binary", "caf\u00e9 \u2603".encode()]
    put = []
    for i, data in enumerate(payloads):
        r = _aws(endpoint, "put-record", "--stream-name", "smoke", "--partition-key", "pk1",
                 "--data", base64.b64encode(data).decode())
        put.append(r)
    shard = put[0]["ShardId"]
    assert all(p["ShardId"] == shard for p in put)  # one key, one shard
    seqs = [p["SequenceNumber"] for p in put]
    assert all(len(q) == 56 and q.isdigit() for q in seqs), seqs
    assert [int(q) for q in seqs] == sorted(int(q) for q in seqs)

    shards = _aws(endpoint, "list-shards", "--stream-name", "smoke")["Shards"]
    assert [x["ShardId"] for x in shards] == ["shardId-000000000000", "shardId-000000000001"]
    assert all("EndingSequenceNumber" not in x["SequenceNumberRange"] for x in shards)

    it = _aws(endpoint, "get-shard-iterator", "--stream-name", "smoke", "--shard-id", shard,
              "--shard-iterator-type", "TRIM_HORIZON")["ShardIterator"]
    got = _aws(endpoint, "get-records", "--shard-iterator", it)
    recs = got["Records"]
    assert [r["SequenceNumber"] for r in recs] == seqs
    assert [base64.b64decode(r["Data"]) for r in recs] == payloads
    assert all(r["PartitionKey"] == "pk1" for r in recs)
    assert got["NextShardIterator"] and got["MillisBehindLatest"] == 0

    # AFTER_SEQUENCE_NUMBER of the second record reads the last two
    it = _aws(endpoint, "get-shard-iterator", "--stream-name", "smoke", "--shard-id", shard,
              "--shard-iterator-type", "AFTER_SEQUENCE_NUMBER",
              "--starting-sequence-number", seqs[1])["ShardIterator"]
    assert [r["SequenceNumber"] for r in
            _aws(endpoint, "get-records", "--shard-iterator", it)["Records"]] == seqs[2:]

    # a split closes the parent and lists two children with ParentShardId
    _aws(endpoint, "split-shard", "--stream-name", "smoke", "--shard-to-split",
         "shardId-000000000000", "--new-starting-hash-key",
         "85070591730234615865843651857942052864")
    helpers.wait_until(lambda: _active(endpoint, "smoke"), timeout=30, what="split done")
    shards = {x["ShardId"]: x for x in
              _aws(endpoint, "list-shards", "--stream-name", "smoke")["Shards"]}
    assert "EndingSequenceNumber" in shards["shardId-000000000000"]["SequenceNumberRange"]
    for child in ("shardId-000000000002", "shardId-000000000003"):
        assert shards[child]["ParentShardId"] == "shardId-000000000000"


def test_kinesis_service_stop_leaves_nothing(kinesis):
    pid = int(kinesis["pids"][0][1])
    assert not helpers.proc_gone(pid)
    r = subprocess.run([os.path.join(SERVICES_DIR, "stop.sh")], env=kinesis["env"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert helpers.proc_gone(pid)
    assert not helpers.port_accepts(kinesis["port"])
    for name in ("services.pids", "services.env"):
        assert not (kinesis["run_dir"] / name).exists(), name
    # the port is free again for the next start
    r = subprocess.run([os.path.join(SERVICES_DIR, "start.sh")], env=kinesis["env"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
