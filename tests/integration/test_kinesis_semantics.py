"""The Kinesis source's failure handling and windows (issue 10 items 3 and 5, esm.md §4 and §6)
against kinesalite, with records put by the real AWS CLI (/usr/bin/aws): tumbling windows (the
state carried from one invocation to the next of its window, one final invocation per window,
window bounds, each shard its own window; a split closes the parent's window at once),
MaximumRecordAgeInSeconds (old records skipped to an SQS destination with RecordAgeExceeded and
their KinesisBatchInfo; a failing record retried until it expires), MaximumRetryAttempts
exhausted (N+1 invocations, then AWS's invocation record, field by field, read back from the SQS
server), BisectBatchOnFunctionError isolating one bad record, a partial batch response naming
several records (the retry resumes at the lowest sequence number; exhausted, the rest goes to
the destination with functionError null), and StartingPosition AT_TIMESTAMP (and a restart
resuming after the checkpoint, not at the timestamp again).

Arrival times: these tests run their own kinesalite (tests/services/servers/kinesalite.mjs on a
free port, in memory) whose clock they set through KINESALITE_CLOCK_FILE while they create the
stream and put records, so records carry chosen ApproximateArrivalTimestamps (minutes old, in
chosen windows) without waiting for them; the clock is the real one again before sluice starts.
The SQS destination is the fauxqs of tests/services (SERVICES=sqs, SQS_ENDPOINT).

Skipped without node and tests/services/node's modules, the AWS CLI, or the SQS server, unless
CI=true."""

import base64
import datetime
import json
import os
import shutil
import subprocess
import time
import uuid

import pytest

from fnserver import Reply
from helpers import (REPO, base_config, destination_docs, file_destination, http_fn, missing,
                     wait_until)

AWS = "/usr/bin/aws"
FN = "/fn"
ACCOUNT = "123456789012"
REGION = "us-east-1"
SERVICES_DIR = os.path.join(REPO, "tests", "services")
RBIF = ["ReportBatchItemFailures"]
# ExplicitHashKeys that land in shard 0 and shard 1 of a two-shard stream
HASH = ["0", str(2 ** 127 + 1)]


# ---- a kinesalite of our own, with a clock the tests set ----------------------------------------


class Kinesalite:
    def __init__(self, tmp):
        self.clock = os.path.join(str(tmp), "clock")
        self.out = os.path.join(str(tmp), "kinesalite.out")
        self.proc = None
        self.endpoint = None

    def start(self):
        open(self.clock, "w").close()
        env = dict(os.environ, KINESALITE_CLOCK_FILE=self.clock)
        with open(self.out, "wb") as out:
            self.proc = subprocess.Popen(
                ["node", os.path.join(SERVICES_DIR, "servers", "kinesalite.mjs"), "0", "20"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env)

        def listening():
            with open(self.out) as f:
                for ln in f:
                    if "listening on " in ln:
                        return ln.split("listening on ", 1)[1].strip()
            assert self.proc.poll() is None, "kinesalite exited: " + open(self.out).read()
            return None

        self.endpoint = wait_until(listening, timeout=30, what="kinesalite listening")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def at(self, epoch_ms):
        """kinesalite's clock stands at epoch_ms (until the next call)."""
        with open(self.clock, "w") as f:
            f.write("%d" % epoch_ms)

    def real(self):
        open(self.clock, "w").close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not (os.path.isfile(AWS) and os.access(AWS, os.X_OK)):
        missing("the AWS CLI at %s (apt-get install awscli)" % AWS)
    if not shutil.which("node") or not os.path.exists(
            os.path.join(SERVICES_DIR, "node", "node_modules", "kinesalite", "package.json")):
        missing("node and kinesalite (SERVICES=kinesis tests/services/start.sh installs it)")
    k = Kinesalite(tmp_path_factory.mktemp("kinesalite")).start()
    yield k
    k.stop()


@pytest.fixture
def kin(server):
    server.real()
    yield server
    server.real()


def services_value(name):
    """name from the environment, else from the services.env of tests/services."""
    if os.environ.get(name):
        return os.environ[name]
    run_dir = os.environ.get("SERVICES_RUN_DIR") or os.environ.get("RUN_DIR") or \
        os.path.join(REPO, "build-services")
    try:
        with open(os.path.join(run_dir, "services.env")) as f:
            for line in f:
                k, sep, v = line.strip().partition("=")
                if sep and k == name:
                    return v
    except OSError:
        pass
    return None


@pytest.fixture
def sqs():
    ep = services_value("SQS_ENDPOINT")
    if not ep:
        missing("an SQS server (SERVICES=sqs tests/services/start.sh)")
    return ep


def sqs_call(ep, op, body):
    import urllib.request
    rq = urllib.request.Request(ep.rstrip("/") + "/", data=json.dumps(body).encode(),
                                method="POST",
                                headers={"X-Amz-Target": "AmazonSQS." + op,
                                         "Content-Type": "application/x-amz-json-1.0"})
    with urllib.request.urlopen(rq, timeout=10) as r:
        raw = r.read()
    return json.loads(raw) if raw else {}


def sqs_queue(ep):
    return sqs_call(ep, "CreateQueue", {"QueueName": "kin-dlq-" + uuid.uuid4().hex[:10]})[
        "QueueUrl"]


def sqs_drain(ep, url, want, timeout=20):
    """Receives (and deletes) messages until `want` came or `timeout` passed; their bodies as
    JSON."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        r = sqs_call(ep, "ReceiveMessage", {"QueueUrl": url, "MaxNumberOfMessages": 10,
                                            "WaitTimeSeconds": 1})
        for m in r.get("Messages") or []:
            got.append(json.loads(m["Body"]))
            sqs_call(ep, "DeleteMessage", {"QueueUrl": url, "ReceiptHandle": m["ReceiptHandle"]})
    return got


# ---- the stream, the CLI, sluice ----------------------------------------------------------------


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


def create_stream(kin, shards=1, at_ms=None):
    """A new stream, created while kinesalite's clock stands at at_ms (real time: None)."""
    name = "s-" + uuid.uuid4().hex[:10]
    if at_ms is not None:
        kin.at(at_ms)
    aws(kin.endpoint, "create-stream", "--stream-name", name, "--shard-count", str(shards))
    wait_until(lambda: aws(kin.endpoint, "describe-stream-summary", "--stream-name", name)
               ["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE", timeout=30,
               what="stream ACTIVE")
    return name


def put(kin, stream, items, at_ms=None, check=True):
    """items: [(half of the hash key range, bytes)] put in one PutRecords call (at_ms:
    kinesalite's clock for it); check: that half is shard 0 or 1 (no reshard yet). Returns
    [(shard id, sequence number, bytes)] in put order."""
    if at_ms is not None:
        kin.at(at_ms)
    recs = [{"Data": base64.b64encode(d).decode(), "PartitionKey": "k%d" % i,
             "ExplicitHashKey": HASH[sh]} for i, (sh, d) in enumerate(items)]
    r = aws(kin.endpoint, "put-records", "--stream-name", stream, "--records", json.dumps(recs))
    assert r.get("FailedRecordCount", 0) == 0, r
    out = [(res["ShardId"], res["SequenceNumber"], d) for (_, d), res in zip(items, r["Records"])]
    for (sh, _), (shard, _, _) in zip(items, out):
        assert not check or shard == "shardId-%012d" % sh, out
    return out


def arn(stream):
    return "arn:aws:kinesis:%s:%s:stream/%s" % (REGION, ACCOUNT, stream)


def config(tmp_path, fn, stream, batch=10, start="TRIM_HORIZON", **extra):
    m = {"EventSourceArn": arn(stream), "FunctionName": "hook", "StartingPosition": start,
         "BatchSize": batch, "poll_interval": "50ms"}
    m.update(extra)
    return base_config(tmp_path, {"hook": http_fn(fn.url + FN)}, [m])


def run_idle(sluice, cfg, kin, timeout=60):
    kin.real()
    s = sluice(cfg, args=["--until-idle=1"], env_extra={
        "AWS_ENDPOINT_URL_KINESIS": kin.endpoint, "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test", "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull})
    rc = s.wait(timeout)
    assert rc == 0, "sluice --until-idle exited %s\n%s" % (rc, s.log_tail())
    return s


def ids(rq):
    return [r["eventID"] for r in (rq.json or {}).get("Records", [])]


def data(rq):
    return [base64.b64decode(r["kinesis"]["data"]) for r in (rq.json or {}).get("Records", [])]


def eid(rec):
    shard, seq, _ = rec
    return "%s:%s" % (shard, seq)


def iso_ms(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def iso_s(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


def check_record(doc, stream, recs, first_ms, last_ms, condition, invoke_count=None,
                 status=None, function_error="absent"):
    """One on-failure invocation record as esm.md §4.4 has it for a stream to SQS: exactly
    requestContext, responseContext (not for RecordAgeExceeded), version, timestamp and
    KinesisBatchInfo, the last naming the shard, the first and last records (sequence numbers,
    arrival times), their count and the stream's ARN."""
    want_keys = ["KinesisBatchInfo", "requestContext", "timestamp", "version"]
    if condition != "RecordAgeExceeded":
        want_keys.append("responseContext")
    assert sorted(doc) == sorted(want_keys), doc
    rq = doc["requestContext"]
    assert sorted(rq) == ["approximateInvokeCount", "condition", "functionArn", "requestId"], rq
    assert rq["condition"] == condition, rq
    assert len(rq["requestId"]) == 36 and rq["requestId"].count("-") == 4, rq
    assert rq["functionArn"].startswith("arn:aws:lambda:%s:" % REGION), rq
    if invoke_count is not None:
        assert rq["approximateInvokeCount"] == invoke_count, rq
    if condition != "RecordAgeExceeded":
        rc = doc["responseContext"]
        assert sorted(rc) == ["executedVersion", "functionError", "statusCode"], rc
        assert rc["executedVersion"] == "$LATEST", rc
        if status is not None:
            assert rc["statusCode"] == status, rc
        if function_error != "absent":
            assert rc["functionError"] == function_error, rc
    assert doc["version"] == "1.0", doc
    assert abs(datetime.datetime.strptime(doc["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp() - time.time()) < 600, doc["timestamp"]
    assert doc["KinesisBatchInfo"] == {
        "shardId": recs[0][0],
        "startSequenceNumber": recs[0][1],
        "endSequenceNumber": recs[-1][1],
        "approximateArrivalOfFirstRecord": iso_ms(first_ms),
        "approximateArrivalOfLastRecord": iso_ms(last_ms),
        "batchSize": len(recs),
        "streamArn": arn(stream),
    }, doc["KinesisBatchInfo"]


# ---- tumbling windows ---------------------------------------------------------------------------


def summing_hook(rq):
    """Adds the batch's numbers to the state it got and answers the new state."""
    ev = rq.json or {}
    state = dict(ev.get("state") or {})
    for n in data(rq):
        state["sum"] = state.get("sum", 0) + int(n)
        state["count"] = state.get("count", 0) + 1
    return Reply(200, body={"state": state})


def test_kinesis_tumbling_windows_per_shard(kin, fn, sluice, tmp_path):
    """Two shards, each with records in two 60 s windows: per shard, every invocation of a
    window gets the state the previous one answered ({} first), the window ends with one
    invocation isFinalInvokeForWindow without records, carrying the window's whole state; the
    next window starts afresh. Window bounds are aligned to 60 s, and each event names its
    shard and the stream."""
    base = (int(time.time()) // 60 - 10) * 60 * 1000  # ten minutes ago, on a window boundary
    stream = create_stream(kin, shards=2, at_ms=base - 30000)
    w1 = put(kin, stream, [(0, b"1"), (1, b"10"), (0, b"2"), (1, b"20"), (0, b"3"), (1, b"30")],
             at_ms=base + 5000)
    w2 = put(kin, stream, [(0, b"4"), (1, b"40"), (0, b"5"), (1, b"50")], at_ms=base + 65000)
    fn.set_hook(summing_hook)
    run_idle(sluice, config(tmp_path, fn, stream, batch=2, TumblingWindowInSeconds=60), kin)
    w1_bounds = {"start": iso_s(base), "end": iso_s(base + 60000)}
    w2_bounds = {"start": iso_s(base + 60000), "end": iso_s(base + 120000)}
    for sh, (a, b, c, d, e) in (("shardId-000000000000", (1, 2, 3, 4, 5)),
                                ("shardId-000000000001", (10, 20, 30, 40, 50))):
        evs = [rq.json for rq in fn.requests() if (rq.json or {}).get("shardId") == sh]
        got = [([int(base64.b64decode(r["kinesis"]["data"])) for r in ev["Records"]],
                ev["isFinalInvokeForWindow"], ev["state"], ev["window"]) for ev in evs]
        assert got == [
            ([a, b], False, {}, w1_bounds),
            ([c], False, {"sum": a + b, "count": 2}, w1_bounds),
            ([], True, {"sum": a + b + c, "count": 3}, w1_bounds),
            ([d, e], False, {}, w2_bounds),
            ([], True, {"sum": d + e, "count": 2}, w2_bounds),
        ], (sh, got)
        for ev in evs:
            assert ev["eventSourceARN"] == arn(stream), ev
            assert ev["isWindowTerminatedEarly"] is False, ev
            assert all(r["eventID"].startswith(sh + ":") for r in ev["Records"]), ev
    assert len(fn.requests()) == 10, [rq.json for rq in fn.requests()]
    assert sorted(i for rq in fn.requests() for i in ids(rq)) == sorted(map(eid, w1 + w2))


# ---- MaximumRecordAgeInSeconds ------------------------------------------------------------------


def test_kinesis_record_age_to_sqs_destination(kin, fn, sluice, tmp_path, sqs):
    """Records past MaximumRecordAgeInSeconds are never invoked: they go to the SQS destination
    as one RecordAgeExceeded record (no responseContext) whose KinesisBatchInfo names them;
    the fresh records after them are delivered; a restart reads none of them again."""
    now = int(time.time() * 1000)
    stream = create_stream(kin, at_ms=now - 300000)
    old = put(kin, stream, [(0, b"old-0")], at_ms=now - 200000)
    old += put(kin, stream, [(0, b"old-1"), (0, b"old-2")], at_ms=now - 199500)
    kin.real()
    fresh = put(kin, stream, [(0, b"fresh-0"), (0, b"fresh-1")])
    qurl = sqs_queue(sqs)
    cfg = config(tmp_path, fn, stream, MaximumRecordAgeInSeconds=60, MaximumRetryAttempts=-1,
                 DestinationConfig={"OnFailure": {"Destination": qurl}})
    run_idle(sluice, cfg, kin)
    assert [i for rq in fn.requests() for i in ids(rq)] == list(map(eid, fresh)), \
        fn.requests()
    docs = sqs_drain(sqs, qurl, 1)
    assert len(docs) == 1, docs
    check_record(docs[0], stream, old, now - 200000, now - 199500, "RecordAgeExceeded")
    fn.clear()
    run_idle(sluice, cfg, kin)
    assert fn.requests() == []
    assert sqs_drain(sqs, qurl, 1, timeout=1) == []


def test_kinesis_record_expires_while_retrying(kin, fn, sluice, tmp_path):
    """MaximumRetryAttempts -1 retries a failing batch until its records pass
    MaximumRecordAgeInSeconds (checked before each attempt): then they go to the destination as
    RecordAgeExceeded, the function sees them no more, and the record after them flows."""
    stream = create_stream(kin, at_ms=int(time.time() * 1000) - 60000)
    born = int(time.time() * 1000) - 55000  # expires 5 s from now
    aging = put(kin, stream, [(0, b"aging")], at_ms=born)
    kin.real()
    fresh = put(kin, stream, [(0, b"fresh")])
    fn.set_hook(lambda rq: Reply(500) if b"aging" in data(rq) else None)
    dlq = tmp_path / "dlq"
    cfg = config(tmp_path, fn, stream, batch=1, MaximumRecordAgeInSeconds=60,
                 MaximumRetryAttempts=-1, DestinationConfig=file_destination(dlq))
    run_idle(sluice, cfg, kin, timeout=30)
    docs = destination_docs(dlq)
    assert len(docs) == 1, docs
    assert docs[0]["requestContext"]["condition"] == "RecordAgeExceeded", docs[0]
    assert "responseContext" not in docs[0], docs[0]
    info = docs[0]["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["batchSize"]) == (aging[0][1], 1), info
    tries = [rq for rq in fn.requests() if ids(rq) == [eid(aging[0])]]
    assert len(tries) >= 2, tries
    assert all(rq.time < (born + 60000) / 1000 + 0.5 for rq in tries), \
        "invoked after the record expired: %r" % [rq.time - born / 1000 for rq in tries]
    assert [i for rq in fn.requests() if rq.ok for i in ids(rq)] == [eid(fresh[0])]


# ---- MaximumRetryAttempts -----------------------------------------------------------------------


def test_kinesis_retries_exhausted_to_sqs_destination(kin, fn, sluice, tmp_path, sqs):
    """A batch the function always fails is invoked MaximumRetryAttempts + 1 times, then goes
    to the SQS destination as AWS's invocation record (RetryAttemptsExhausted, the last
    response, KinesisBatchInfo of the batch); the checkpoint moves past it and the next batch
    of the shard is delivered."""
    now = int(time.time() * 1000)
    stream = create_stream(kin, at_ms=now - 60000)
    recs = put(kin, stream, [(0, b"a0")], at_ms=now - 50000)
    recs += put(kin, stream, [(0, b"bad"), (0, b"a2"), (0, b"a3"), (0, b"a4")], at_ms=now - 49000)
    fn.set_hook(lambda rq: Reply(500, body={"errorMessage": "bad"}) if b"bad" in data(rq)
                else None)
    qurl = sqs_queue(sqs)
    cfg = config(tmp_path, fn, stream, batch=3, MaximumRetryAttempts=2,
                 DestinationConfig={"OnFailure": {"Destination": qurl}})
    run_idle(sluice, cfg, kin)
    got = [ids(rq) for rq in fn.requests()]
    first = list(map(eid, recs[:3]))
    assert got == [first, first, first, list(map(eid, recs[3:]))], got
    docs = sqs_drain(sqs, qurl, 1)
    assert len(docs) == 1, docs
    check_record(docs[0], stream, recs[:3], now - 50000, now - 49000, "RetryAttemptsExhausted",
                 invoke_count=3, status=500, function_error="Unhandled")


# ---- BisectBatchOnFunctionError -----------------------------------------------------------------


def test_kinesis_bisect_isolates_one_bad_record(kin, fn, sluice, tmp_path):
    """A batch of 8 with one bad record is halved on each failure (in order, splitting uses no
    attempts) until the bad record is alone; it alone goes to the destination after its
    MaximumRetryAttempts + 1 invocations, every other record is delivered exactly once."""
    now = int(time.time() * 1000)
    stream = create_stream(kin, at_ms=now - 60000)
    recs = put(kin, stream, [(0, b"r%d" % i if i != 4 else b"bad") for i in range(8)],
               at_ms=now - 40000)
    fn.set_hook(lambda rq: Reply(500) if b"bad" in data(rq) else None)
    dlq = tmp_path / "dlq"
    cfg = config(tmp_path, fn, stream, batch=8, MaximumRetryAttempts=1,
                 BisectBatchOnFunctionError=True, DestinationConfig=file_destination(dlq))
    run_idle(sluice, cfg, kin)
    E = [eid(r) for r in recs]
    got = [ids(rq) for rq in fn.requests()]
    assert got == [E, E[:4], E[4:], E[4:6], E[4:5], E[4:5], E[5:6], E[6:]], got
    ok = [i for rq in fn.requests() if rq.ok for i in ids(rq)]
    assert ok == E[:4] + E[5:], ok
    docs = destination_docs(dlq)
    assert len(docs) == 1, docs
    assert docs[0]["requestContext"]["approximateInvokeCount"] == 2, docs[0]
    info = docs[0]["KinesisBatchInfo"]
    assert (info["shardId"], info["startSequenceNumber"], info["endSequenceNumber"],
            info["batchSize"]) == (recs[4][0], recs[4][1], recs[4][1], 1), info
    assert info["approximateArrivalOfFirstRecord"] == iso_ms(now - 40000), info


# ---- partial batch responses --------------------------------------------------------------------


def test_kinesis_partial_batch_lowest_then_exhausted(kin, fn, sluice, tmp_path):
    """A partial batch response naming several records, out of order: the retry resumes at the
    lowest sequence number named. When the retries run out, the records from the lowest one
    the last response named go to the destination, with functionError null; the checkpoint
    moves past them."""
    now = int(time.time() * 1000)
    stream = create_stream(kin, at_ms=now - 60000)
    recs = put(kin, stream, [(0, b"p%d" % i) for i in range(6)], at_ms=now - 30000)
    seq = [q for _, q, _ in recs]

    def fail(*idx):
        return Reply(200, body={"batchItemFailures": [{"itemIdentifier": seq[i]} for i in idx]})

    fn.push(fail(4, 2), fail(5, 3))
    dlq = tmp_path / "dlq"
    cfg = config(tmp_path, fn, stream, MaximumRetryAttempts=1, FunctionResponseTypes=RBIF,
                 DestinationConfig=file_destination(dlq))
    run_idle(sluice, cfg, kin)
    E = [eid(r) for r in recs]
    got = [ids(rq) for rq in fn.requests()]
    assert got == [E, E[2:]], got
    docs = destination_docs(dlq)
    assert len(docs) == 1, docs
    assert docs[0]["responseContext"]["functionError"] is None, docs[0]
    assert docs[0]["requestContext"]["approximateInvokeCount"] == 2, docs[0]
    info = docs[0]["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == \
        (seq[3], seq[5], 3), info


# ---- AT_TIMESTAMP -------------------------------------------------------------------------------


def test_kinesis_at_timestamp_then_checkpoint(kin, fn, sluice, tmp_path):
    """StartingPosition AT_TIMESTAMP: on each shard, the records that arrived at or after
    StartingPositionTimestamp are delivered, the earlier ones not; a restart resumes after the
    checkpoint (what came later), not at the timestamp again."""
    now = int(time.time() * 1000)
    stream = create_stream(kin, shards=2, at_ms=now - 300000)
    put(kin, stream, [(0, b"early-0"), (1, b"early-1")], at_ms=now - 200000)
    late = put(kin, stream, [(0, b"late-0"), (1, b"late-1"), (0, b"late-2")], at_ms=now - 100000)
    cfg = config(tmp_path, fn, stream, start="AT_TIMESTAMP",
                 StartingPositionTimestamp=(now - 150000) // 1000)
    run_idle(sluice, cfg, kin)
    assert sorted(i for rq in fn.requests() if rq.ok for i in ids(rq)) == \
        sorted(map(eid, late)), [ids(rq) for rq in fn.requests()]
    fn.clear()
    kin.real()
    later = put(kin, stream, [(0, b"later-0"), (1, b"later-1")])
    run_idle(sluice, cfg, kin)
    assert sorted(i for rq in fn.requests() for i in ids(rq)) == sorted(map(eid, later)), \
        [ids(rq) for rq in fn.requests()]


def test_kinesis_window_closes_when_its_shard_ends(kin, fn, sluice, tmp_path):
    """A split ends the parent shard in the middle of a 900 s window: its window closes at once
    (the final invocation with its state), and the children start with windows and state of
    their own (esm.md §6: resharding closes the window)."""
    stream = create_stream(kin, shards=1)
    put(kin, stream, [(0, b"1"), (0, b"2")])
    fn.set_hook(summing_hook)
    cfg = config(tmp_path, fn, stream, TumblingWindowInSeconds=900, shard_refresh_interval="1s")
    kin.real()
    s = sluice(cfg, env_extra={
        "AWS_ENDPOINT_URL_KINESIS": kin.endpoint, "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test", "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull})
    wait_until(lambda: len(fn.requests()) >= 1, timeout=30, what="the first batch", proc=s)
    aws(kin.endpoint, "split-shard", "--stream-name", stream, "--shard-to-split",
        "shardId-000000000000", "--new-starting-hash-key", str(2 ** 127))
    wait_until(lambda: aws(kin.endpoint, "describe-stream-summary", "--stream-name", stream)
               ["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE", timeout=30,
               what="split done")
    kids = put(kin, stream, [(0, b"10"), (1, b"20")], check=False)
    kid_shards = sorted({sh for sh, _, _ in kids})

    def kid_events():
        return [rq.json for rq in fn.requests()
                if (rq.json or {}).get("shardId") in kid_shards and rq.json["Records"]]

    wait_until(lambda: len(kid_events()) >= 2, timeout=30, what="the children's records",
               proc=s)
    parent = [rq.json for rq in fn.requests()
              if (rq.json or {}).get("shardId") == "shardId-000000000000"]
    assert [(len(e["Records"]), e["isFinalInvokeForWindow"], e["state"]) for e in parent] == [
        (2, False, {}), (0, True, {"sum": 3, "count": 2})], parent
    for e in kid_events():
        assert e["state"] == {} and not e["isFinalInvokeForWindow"], e
    assert s.stop() == 0
