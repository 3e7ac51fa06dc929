"""The Kinesis source (issue 10) against kinesalite run by tests/services (SERVICES=kinesis
tests/services/start.sh; AWS_ENDPOINT_URL_KINESIS comes from RUN_DIR/services.env).  Records are
put by the real AWS CLI (/usr/bin/aws, dummy credentials); the function is an http server.

Covered: the event field by field as esm.md §2 has it, and accepted by Powertools for AWS Lambda's
parser (KinesisDataStreamSchema, which requires every field) (eventID shardId:sequenceNumber, data base64
of the bytes put, approximateArrivalTimestamp in float seconds, awsRegion, eventSourceARN,
invokeIdentityArn); TRIM_HORIZON and LATEST; a restart from the checkpoint delivers nothing twice
and loses nothing; SIGKILL mid-stream and a restart deliver every record, in order per shard; a
function that fails and then succeeds gets the same records again; a stream that does not exist
yet is waited for with one log line and read once it is created; a split and a merge during a
run (parents before children, order per key, closed shards not read again after a restart);
filters on the JSON data and a partial batch response by sequenceNumber; a poison record
bisected to the on-failure destination with KinesisBatchInfo while the rest flows;
ParallelizationFactor 10 keeping each key's order; deaggregate: true on a KPL aggregate put by the
CLI (user records as events, a partial batch response naming one, a restart inside the
aggregate), and the aggregate as stored without it.

Skipped without the service or the AWS CLI unless CI=true."""

import base64
import hashlib
import json
import os
import subprocess
import time
import uuid

import shutil

import pytest

from fnserver import Reply
from helpers import (REPO, base_config, destination_docs, file_destination, http_fn, missing,
                     wait_until)

AWS = "/usr/bin/aws"
FN = "/fn"
ACCOUNT = "123456789012"
REGION = "us-east-1"


def _services_env():
    env = {}
    if os.environ.get("AWS_ENDPOINT_URL_KINESIS"):
        env["AWS_ENDPOINT_URL_KINESIS"] = os.environ["AWS_ENDPOINT_URL_KINESIS"]
        return env
    run_dir = os.environ.get("RUN_DIR") or os.environ.get("SERVICES_RUN_DIR") or \
        os.path.join(REPO, "build-services")
    path = os.path.join(run_dir, "services.env")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                k, sep, v = line.strip().partition("=")
                if sep and k == "AWS_ENDPOINT_URL_KINESIS":
                    env[k] = v
    return env


@pytest.fixture
def kinesis():
    if not (os.path.isfile(AWS) and os.access(AWS, os.X_OK)):
        missing("the AWS CLI at %s (apt-get install awscli)" % AWS)
    env = _services_env()
    if not env.get("AWS_ENDPOINT_URL_KINESIS"):
        missing("a Kinesis server (SERVICES=kinesis tests/services/start.sh)")
    return env["AWS_ENDPOINT_URL_KINESIS"]


def aws(endpoint, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
               AWS_DEFAULT_REGION=REGION, AWS_PAGER="", AWS_EC2_METADATA_DISABLED="true",
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    r = subprocess.run([AWS, "--endpoint-url", endpoint, "--output", "json", "kinesis"]
                       + list(args), env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, "aws kinesis %s failed (%d): %s" % (args[0], r.returncode,
                                                                  r.stderr)
    return json.loads(r.stdout) if r.stdout.strip() else {}


def create_stream(endpoint, shards=2):
    name = "s-" + uuid.uuid4().hex[:10]
    aws(endpoint, "create-stream", "--stream-name", name, "--shard-count", str(shards))
    wait_until(lambda: aws(endpoint, "describe-stream-summary", "--stream-name", name)
               ["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE", timeout=30,
               what="stream ACTIVE")
    return name


def put(endpoint, stream, items):
    """items: [(partition key, bytes)], put in that order (one PutRecords call per 500).
    Returns [(shard id, sequence number, key, bytes)] in put order."""
    out = []
    for i in range(0, len(items), 500):
        chunk = items[i:i + 500]
        recs = [{"Data": base64.b64encode(d).decode(), "PartitionKey": k} for k, d in chunk]
        r = aws(endpoint, "put-records", "--stream-name", stream, "--records", json.dumps(recs))
        assert r.get("FailedRecordCount", 0) == 0, r
        for (k, d), res in zip(chunk, r["Records"]):
            out.append((res["ShardId"], res["SequenceNumber"], k, d))
    return out


NODE_DIR = os.path.join(REPO, "tests", "services", "node")


def powertools_accepts(evs):
    """Powertools for AWS Lambda's parser (KinesisDataStreamSchema, as handlers use it) accepts
    every event of evs (installed by tests/services/start.sh with the kinesis service)."""
    if not shutil.which("node") or not os.path.exists(
            os.path.join(NODE_DIR, "node_modules", "@aws-lambda-powertools", "parser")):
        missing("node and @aws-lambda-powertools/parser (SERVICES=kinesis "
                "tests/services/start.sh installs it)")
    r = subprocess.run(["node", os.path.join(NODE_DIR, "powertools-parse.mjs"),
                        "KinesisDataStreamSchema"], input=json.dumps(evs), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def arn(stream):
    return "arn:aws:kinesis:%s:%s:stream/%s" % (REGION, ACCOUNT, stream)


def config(tmp_path, fn, stream, start="TRIM_HORIZON", batch=100, **extra):
    m = {"EventSourceArn": arn(stream), "FunctionName": "hook", "StartingPosition": start,
         "BatchSize": batch, "poll_interval": "100ms"}
    m.update(extra)
    return base_config(tmp_path, {"hook": http_fn(fn.url + FN)}, [m])


def sluice_env(endpoint):
    return {"AWS_ENDPOINT_URL_KINESIS": endpoint, "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test", "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull}


def events(fn, ok_only=True):
    """Every Kinesis record the function received, in arrival order."""
    out = []
    for rq in fn.requests():
        if ok_only and not rq.ok:
            continue
        ev = rq.json if isinstance(rq.json, dict) else {}
        out.extend(ev.get("Records") or [])
    return out


def seqs_by_shard(recs):
    d = {}
    for r in recs:
        shard, seq = r["eventID"].rsplit(":", 1)
        d.setdefault(shard, []).append(int(seq))
    return d


def run_idle(sluice, cfg, endpoint, timeout=60, args=()):
    s = sluice(cfg, args=["--until-idle=1"] + list(args), env_extra=sluice_env(endpoint))
    rc = s.wait(timeout)
    assert rc == 0, "sluice --until-idle exited %s\n%s" % (rc, s.log_tail())
    return s


def test_kinesis_event_shape(kinesis, fn, sluice, tmp_path):
    """Every field of every record as AWS's Kinesis event has it (esm.md §2)."""
    stream = create_stream(kinesis)
    items = [("k%d" % i, d) for i, d in enumerate(
        [b'{"n":1}', b"hello", b"\x00\xff\xfe binary", "caf\u00e9 \u2603".encode(), b"x" * 3000,
         b"plain text"])]
    before = time.time()
    putres = put(kinesis, stream, items)
    after = time.time()
    run_idle(sluice, config(tmp_path, fn, stream, invoke_identity_arn="arn:aws:iam::"
                            + ACCOUNT + ":role/fn-role"), kinesis)
    recs = events(fn)
    assert len(recs) == len(items), recs
    by_id = {r["eventID"]: r for r in recs}
    for shard, seq, key, data in putres:
        r = by_id["%s:%s" % (shard, seq)]
        assert sorted(r) == sorted(["kinesis", "eventSource", "eventVersion", "eventID",
                                    "eventName", "invokeIdentityArn", "awsRegion",
                                    "eventSourceARN"]), r
        k = r["kinesis"]
        assert sorted(k) == sorted(["kinesisSchemaVersion", "partitionKey", "sequenceNumber",
                                    "data", "approximateArrivalTimestamp"]), k
        assert k["kinesisSchemaVersion"] == "1.0"
        assert k["partitionKey"] == key
        assert k["sequenceNumber"] == seq and isinstance(k["sequenceNumber"], str)
        assert k["data"] == base64.b64encode(data).decode()
        ts = k["approximateArrivalTimestamp"]
        assert isinstance(ts, float) and before - 5 <= ts <= after + 5, ts
        assert r["eventSource"] == "aws:kinesis"
        assert r["eventVersion"] == "1.0"
        assert r["eventID"] == shard + ":" + seq
        assert r["eventName"] == "aws:kinesis:record"
        assert r["invokeIdentityArn"] == "arn:aws:iam::%s:role/fn-role" % ACCOUNT
        assert r["awsRegion"] == REGION
        assert r["eventSourceARN"] == arn(stream)
    powertools_accepts([rq.json for rq in fn.requests()])
    # every batch holds one shard's records, in sequence order
    for rq in fn.requests():
        shards = {r["eventID"].rsplit(":", 1)[0] for r in rq.json["Records"]}
        assert len(shards) == 1, shards
        s = [int(r["kinesis"]["sequenceNumber"]) for r in rq.json["Records"]]
        assert s == sorted(s)


def test_kinesis_default_invoke_identity(kinesis, fn, sluice, tmp_path):
    """Without invoke_identity_arn the event still carries one, in the stream's account, and
    Powertools' parser (which requires it) accepts the event."""
    stream = create_stream(kinesis, shards=1)
    put(kinesis, stream, [("a", b"1")])
    run_idle(sluice, config(tmp_path, fn, stream), kinesis)
    recs = events(fn)
    assert len(recs) == 1
    assert recs[0]["invokeIdentityArn"] == "arn:aws:iam::%s:role/sluice" % ACCOUNT
    powertools_accepts([rq.json for rq in fn.requests()])


def test_kinesis_latest_restart_before_any_record(kinesis, fn, sluice, tmp_path):
    """LATEST, stopped before any record came: the start was recorded, so what was put while
    sluice was down is delivered by the next run (not skipped by a second LATEST)."""
    stream = create_stream(kinesis, shards=1)
    put(kinesis, stream, [("old", b"before")])
    time.sleep(1.5)  # past the recorded start's margin for clock skew (1 s): "before" is older
    cfg = config(tmp_path, fn, stream, start="LATEST")
    s = sluice(cfg, args=["--log-level", "debug"], env_extra=sluice_env(kinesis))
    wait_until(lambda: "shard iterator ready" in s.log(), timeout=30, what="iterator", proc=s)
    assert s.stop() == 0
    put(kinesis, stream, [("new", b"while-down")])
    run_idle(sluice, cfg, kinesis)
    assert [base64.b64decode(r["kinesis"]["data"]) for r in events(fn)] == [b"while-down"]


def test_kinesis_latest(kinesis, fn, sluice, tmp_path):
    """LATEST: what was in the stream before the shard iterator is skipped, what comes after
    is delivered."""
    stream = create_stream(kinesis, shards=1)
    put(kinesis, stream, [("old", b"before-1"), ("old", b"before-2")])
    s = sluice(config(tmp_path, fn, stream, start="LATEST"), args=["--log-level", "debug"],
               env_extra=sluice_env(kinesis))
    wait_until(lambda: "shard iterator ready" in s.log(), timeout=30, what="iterator", proc=s)
    put(kinesis, stream, [("new", b"after-1"), ("new", b"after-2")])
    wait_until(lambda: len(events(fn)) >= 2, timeout=30, what="2 records", proc=s)
    time.sleep(0.5)  # a quiet moment in which nothing more may come
    assert [base64.b64decode(r["kinesis"]["data"]) for r in events(fn)] == \
        [b"after-1", b"after-2"]


def test_kinesis_restart_from_checkpoint(kinesis, fn, sluice, tmp_path):
    """A second run resumes after the checkpoint: nothing twice, nothing lost."""
    stream = create_stream(kinesis)
    first = put(kinesis, stream, [("k%d" % i, b"a%d" % i) for i in range(20)])
    cfg = config(tmp_path, fn, stream, batch=7)
    run_idle(sluice, cfg, kinesis)
    assert sorted(r["eventID"] for r in events(fn)) == sorted("%s:%s" % (sh, q)
                                                              for sh, q, _, _ in first)
    fn.clear()
    second = put(kinesis, stream, [("k%d" % i, b"b%d" % i) for i in range(20)])
    run_idle(sluice, cfg, kinesis)
    got = sorted(r["eventID"] for r in events(fn))
    assert got == sorted("%s:%s" % (sh, q) for sh, q, _, _ in second)


def test_kinesis_sigkill_then_restart(kinesis, fn, sluice, tmp_path):
    """SIGKILL while batches are in flight, then a restart: every record is delivered (at least
    once), each shard's records in order within each run."""
    stream = create_stream(kinesis)
    putres = put(kinesis, stream, [("k%d" % (i % 13), b"r%d" % i) for i in range(300)])
    fn.set_default(Reply(200, delay=0.05))
    cfg = config(tmp_path, fn, stream, batch=10)
    s = sluice(cfg, env_extra=sluice_env(kinesis))
    wait_until(lambda: len(events(fn)) >= 60, timeout=60, what="60 records", proc=s)
    s.kill9()
    n_first = len(fn.requests())
    fn.set_default(Reply(200))
    run_idle(sluice, cfg, kinesis)
    got = {r["eventID"] for r in events(fn)}
    want = {"%s:%s" % (sh, q) for sh, q, _, _ in putres}
    assert want - got == set(), "lost %d records" % len(want - got)
    # the second run starts at or after where the first one's checkpoint was, in order
    second = [r for rq in fn.requests()[n_first:] if rq.ok for r in rq.json["Records"]]
    for shard, seqs in seqs_by_shard(second).items():
        assert seqs == sorted(seqs), shard
    repeats = len(events(fn)) - len(want)
    print("\nrecords delivered twice after SIGKILL: %d (batches in flight)" % repeats)


def test_kinesis_function_fails_then_succeeds(kinesis, fn, sluice, tmp_path):
    """A failed invocation is retried with the same records; each record is then delivered
    once with success."""
    stream = create_stream(kinesis, shards=1)
    putres = put(kinesis, stream, [("k", b"v%d" % i) for i in range(5)])
    fn.push(Reply(500), Reply(500))
    run_idle(sluice, config(tmp_path, fn, stream), kinesis)
    reqs = fn.requests()
    assert len(reqs) == 3, [rq.status for rq in reqs]
    ids = ["%s:%s" % (sh, q) for sh, q, _, _ in putres]
    for rq in reqs:
        assert [r["eventID"] for r in rq.json["Records"]] == ids
    assert [r["eventID"] for r in events(fn)] == ids


def test_kinesis_stream_created_later(kinesis, fn, sluice, tmp_path):
    """A stream that does not exist yet: one log line, then it is read once created."""
    stream = "s-" + uuid.uuid4().hex[:10]
    s = sluice(config(tmp_path, fn, stream, shard_refresh_interval="1s"),
               env_extra=sluice_env(kinesis))
    wait_until(lambda: "waiting for it" in s.log(), timeout=30, what="the waiting line", proc=s)
    aws(kinesis, "create-stream", "--stream-name", stream, "--shard-count", "1")
    wait_until(lambda: aws(kinesis, "describe-stream-summary", "--stream-name", stream)
               ["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE", timeout=30,
               what="stream ACTIVE")
    put(kinesis, stream, [("k", b"hello")])
    wait_until(lambda: len(events(fn)) == 1, timeout=30, what="the record", proc=s)
    assert s.log().count("waiting for it") == 1, s.log()


def _wait_active(endpoint, stream):
    wait_until(lambda: aws(endpoint, "describe-stream-summary", "--stream-name", stream)
               ["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE", timeout=30,
               what="stream ACTIVE")


def test_kinesis_split_and_merge(kinesis, fn, sluice, tmp_path):
    """A split and then a merge during a run: every record once, a parent's records before its
    children's, each partition key's records in the order they were put; a restart reads none
    of the closed shards again."""
    stream = create_stream(kinesis, shards=1)
    keys = ["key-%d" % i for i in range(10)]
    n = [0]

    def put_round(count):
        items = []
        for _ in range(count):
            items.append((keys[n[0] % len(keys)], b"%d" % n[0]))
            n[0] += 1
        return put(kinesis, stream, items)

    cfg = config(tmp_path, fn, stream, batch=10, shard_refresh_interval="1s")
    s = sluice(cfg, env_extra=sluice_env(kinesis))
    put_round(30)
    wait_until(lambda: len(events(fn)) >= 30, timeout=30, what="30 records", proc=s)
    aws(kinesis, "split-shard", "--stream-name", stream, "--shard-to-split",
        "shardId-000000000000", "--new-starting-hash-key",
        "170141183460469231731687303715884105728")
    _wait_active(kinesis, stream)
    children = put_round(30)
    assert {sh for sh, _, _, _ in children} == {"shardId-000000000001", "shardId-000000000002"}
    wait_until(lambda: len(events(fn)) >= 60, timeout=30, what="60 records", proc=s)
    aws(kinesis, "merge-shards", "--stream-name", stream, "--shard-to-merge",
        "shardId-000000000001", "--adjacent-shard-to-merge", "shardId-000000000002")
    _wait_active(kinesis, stream)
    merged = put_round(20)
    assert {sh for sh, _, _, _ in merged} == {"shardId-000000000003"}
    wait_until(lambda: len(events(fn)) >= 80, timeout=30, what="80 records", proc=s)
    time.sleep(0.5)  # a quiet moment in which nothing more may come
    recs = events(fn)
    assert len(recs) == 80, len(recs)
    assert len({r["eventID"] for r in recs}) == 80
    order = [r["eventID"].rsplit(":", 1)[0] for r in recs]
    # parents before children: the last record of a parent comes before the first of a child
    last = {sh: max(i for i, x in enumerate(order) if x == sh) for sh in set(order)}
    first = {sh: min(i for i, x in enumerate(order) if x == sh) for sh in set(order)}
    assert last["shardId-000000000000"] < first["shardId-000000000001"]
    assert last["shardId-000000000000"] < first["shardId-000000000002"]
    assert max(last["shardId-000000000001"], last["shardId-000000000002"]) < \
        first["shardId-000000000003"]
    per_key = {}
    for r in recs:
        per_key.setdefault(r["kinesis"]["partitionKey"], []).append(
            int(base64.b64decode(r["kinesis"]["data"])))
    for k, vals in per_key.items():
        assert vals == sorted(vals), (k, vals)
    assert s.stop() == 0

    fn.clear()
    again = run_idle(sluice, cfg, kinesis)
    assert events(fn) == []
    assert again.log().count("the checkpoint says the shard was read to its end") == 3, \
        again.log()


def test_kinesis_filter_and_partial_batch(kinesis, fn, sluice, tmp_path):
    """FilterCriteria match the JSON data; a partial batch response names a record by its
    sequenceNumber and the retry starts at it."""
    stream = create_stream(kinesis, shards=1)
    putres = put(kinesis, stream, [("k", json.dumps({"n": i, "kind": "ab"[i % 2]}).encode())
                                   for i in range(10)])
    kept = [(sh, q) for i, (sh, q, _, _) in enumerate(putres) if i % 2 == 0]
    failed_seq = kept[2][1]
    fn.push(Reply(200, body={"batchItemFailures": [{"itemIdentifier": failed_seq}]}))
    cfg = config(tmp_path, fn, stream, FunctionResponseTypes=["ReportBatchItemFailures"],
                 FilterCriteria={"Filters": [{"Pattern": json.dumps({"data": {"kind": ["a"]}})}]})
    run_idle(sluice, cfg, kinesis)
    reqs = fn.requests()
    assert len(reqs) == 2, [rq.json for rq in reqs]
    assert [r["kinesis"]["sequenceNumber"] for r in reqs[0].json["Records"]] == \
        [q for _, q in kept]
    assert [r["kinesis"]["sequenceNumber"] for r in reqs[1].json["Records"]] == \
        [q for _, q in kept[2:]]


def test_kinesis_poison_record_other_shard_flows(kinesis, fn, sluice, tmp_path):
    """A record the function always fails on one shard: bisected down to itself and written to
    the on-failure destination with KinesisBatchInfo, while the other shard's records flow."""
    stream = create_stream(kinesis, shards=2)
    putres = put(kinesis, stream, [("key-%d" % i, b"poison" if i == 3 else b"ok-%d" % i)
                                   for i in range(24)])
    poison = [(sh, q) for sh, q, _, d in putres if d == b"poison"][0]

    def hook(rq):
        recs = rq.json.get("Records", []) if isinstance(rq.json, dict) else []
        if any(base64.b64decode(r["kinesis"]["data"]) == b"poison" for r in recs):
            return Reply(500)
        return None

    fn.set_hook(hook)
    dlq = tmp_path / "dlq"
    cfg = config(tmp_path, fn, stream, batch=4, BisectBatchOnFunctionError=True,
                 MaximumRetryAttempts=1, DestinationConfig=file_destination(dlq))
    run_idle(sluice, cfg, kinesis)
    got = {r["eventID"] for r in events(fn)}
    want = {"%s:%s" % (sh, q) for sh, q, _, d in putres if d != b"poison"}
    assert got == want
    docs = destination_docs(dlq)
    assert len(docs) == 1, docs
    info = docs[0]["KinesisBatchInfo"]
    assert info["shardId"] == poison[0]
    assert info["startSequenceNumber"] == info["endSequenceNumber"] == poison[1]
    assert info["batchSize"] == 1
    assert info["streamArn"] == arn(stream)


def test_kinesis_parallelization_factor_keeps_key_order(kinesis, fn, sluice, tmp_path):
    """ParallelizationFactor 10 on one shard: batches of different keys run at once, each
    partition key's records arrive in the order they were put."""
    stream = create_stream(kinesis, shards=1)
    put(kinesis, stream, [("key-%d" % (i % 20), b"%d" % i) for i in range(200)])
    fn.set_default(Reply(200, delay=0.02))
    run_idle(sluice, config(tmp_path, fn, stream, batch=5, ParallelizationFactor=10), kinesis)
    recs = events(fn)
    assert len(recs) == 200
    per_key = {}
    for r in recs:
        per_key.setdefault(r["kinesis"]["partitionKey"], []).append(
            int(base64.b64decode(r["kinesis"]["data"])))
    assert len(per_key) == 20
    for k, vals in per_key.items():
        assert vals == sorted(vals), (k, vals)
    assert fn.max_inflight() > 1


def _pb_varint(v):
    out = bytearray()
    while True:
        c = v & 0x7f
        v >>= 7
        out.append(c | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _pb_field(tag, payload):
    return _pb_varint(tag) + _pb_varint(len(payload)) + payload


def kpl_aggregate(keys, users):
    """A KPL aggregated record (wire.md §5) as the KPL writes it: magic, protobuf
    AggregatedRecord (partition key table, records), MD5 of the protobuf.  users: [(key index,
    bytes)]."""
    pb = b"".join(_pb_field(0x0a, k.encode()) for k in keys)
    for ki, data in users:
        pb += _pb_field(0x1a, _pb_varint(0x08) + _pb_varint(ki) + _pb_field(0x1a, data))
    return b"\xf3\x89\x9a\xc2" + pb + hashlib.md5(pb).digest()


def test_kinesis_deaggregate(kinesis, fn, sluice, tmp_path):
    """deaggregate: true splits a KPL aggregate put by the AWS CLI into its user records (eventID
    and itemIdentifier SEQ:SUB, subSequenceNumber, aggregated, the user record's key and data;
    the Powertools schema accepts them); a partial batch response naming a user record resumes
    at it; a restart after a checkpoint inside the aggregate resumes after the last user record
    done.  Without the option the aggregate arrives as stored, as on AWS."""
    stream = create_stream(kinesis, shards=1)
    keys = ["ka", "kb"]
    users = [(i % 2, b"user-%d" % i) for i in range(5)]
    agg = kpl_aggregate(keys, users)
    putres = put(kinesis, stream, [("p", b"before"), ("outer", agg), ("p", b"after")])
    shard, aseq = putres[1][0], putres[1][1]
    want_ids = ["%s:%s" % (shard, putres[0][1])] + \
        ["%s:%s:%d" % (shard, aseq, i) for i in range(5)] + ["%s:%s" % (shard, putres[2][1])]

    # as stored
    run_idle(sluice, config(tmp_path / "plain", fn, stream), kinesis)
    recs = events(fn)
    assert [r["eventID"] for r in recs] == ["%s:%s" % (shard, q) for _, q, _, _ in putres]
    assert base64.b64decode(recs[1]["kinesis"]["data"]) == agg
    fn.clear()

    # deaggregated, with a partial batch response naming user record 2
    fn.push(Reply(200, body={"batchItemFailures": [{"itemIdentifier": "%s:2" % aseq}]}))
    cfg = config(tmp_path / "deagg", fn, stream, deaggregate=True,
                 FunctionResponseTypes=["ReportBatchItemFailures"])
    run_idle(sluice, cfg, kinesis)
    reqs = fn.requests()
    assert len(reqs) == 2, [rq.json for rq in reqs]
    first = reqs[0].json["Records"]
    assert [r["eventID"] for r in first] == want_ids
    powertools_accepts([rq.json for rq in reqs])
    for i, r in enumerate(first[1:6]):
        k = r["kinesis"]
        assert k["sequenceNumber"] == aseq and k["subSequenceNumber"] == i and k["aggregated"]
        assert k["partitionKey"] == keys[users[i][0]]
        assert base64.b64decode(k["data"]) == users[i][1]
    assert "subSequenceNumber" not in first[0]["kinesis"]
    assert [r["eventID"] for r in reqs[1].json["Records"]] == want_ids[3:]
    fn.clear()

    # a restart inside the aggregate: batches of 2, the second fails until SIGKILL
    cfg = config(tmp_path / "restart", fn, stream, batch=2, deaggregate=True)
    fn.push(Reply(200))
    fn.set_default(Reply(500))
    s = sluice(cfg, env_extra=sluice_env(kinesis))
    wait_until(lambda: len(fn.requests()) >= 3, timeout=60, what="the second batch failing",
               proc=s)
    s.kill9()
    assert [r["eventID"] for r in fn.requests()[0].json["Records"]] == want_ids[:2]
    fn.clear()
    fn.set_default(Reply(200))
    run_idle(sluice, cfg, kinesis)
    assert [r["eventID"] for r in events(fn)] == want_ids[2:]
