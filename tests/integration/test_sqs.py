"""The SQS source against fauxqs (tests/services/start.sh with SERVICES including sqs): the event
a function receives, deletes only after success, partial batch responses, redrive to a DLQ
after function errors, FIFO order per group, and a SIGKILL mid-stream that loses nothing.
Messages are sent by the small AWS JSON 1.0 client below (fauxqs speaks JSON 1.0 only)."""

import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
import uuid

import pytest

from fnserver import Reply
from helpers import REPO, base_config, http_fn, missing, wait_until

NODE_DIR = os.path.join(REPO, "tests", "services", "node")


def powertools_accepts(evs):
    """Powertools for AWS Lambda's parser (SqsSchema, as handlers use it) accepts every event of
    evs. tests/services/node/powertools-parse.mjs comes with the Kinesis source's tests; a tree
    without it yet checks the rest of the test only (said on stdout)."""
    script = os.path.join(NODE_DIR, "powertools-parse.mjs")
    if not os.path.exists(script):
        print("powertools-parse.mjs not in this tree: SqsSchema not checked")
        return
    if not shutil.which("node") or not os.path.exists(
            os.path.join(NODE_DIR, "node_modules", "@aws-lambda-powertools", "parser")):
        missing("node and @aws-lambda-powertools/parser (tests/services/start.sh installs it)")
    r = subprocess.run(["node", script, "SqsSchema"], input=json.dumps(evs), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def sqs_endpoint():
    ep = os.environ.get("SQS_ENDPOINT")
    if not ep:
        missing("SQS_ENDPOINT (tests/services/start.sh with SERVICES including sqs)")
    return ep


def sqs_call(op, body, timeout=10):
    rq = urllib.request.Request(sqs_endpoint().rstrip("/") + "/", data=json.dumps(body).encode(),
                                method="POST",
                                headers={"X-Amz-Target": "AmazonSQS." + op,
                                         "Content-Type": "application/x-amz-json-1.0"})
    with urllib.request.urlopen(rq, timeout=timeout) as r:
        raw = r.read()
    return json.loads(raw) if raw else {}


def make_queue(prefix="src", fifo=False, **attrs):
    name = "%s-%s%s" % (prefix, uuid.uuid4().hex[:10], ".fifo" if fifo else "")
    a = {k: str(v) for k, v in attrs.items()}
    if fifo:
        a.update({"FifoQueue": "true", "ContentBasedDeduplication": "true"})
    return sqs_call("CreateQueue", {"QueueName": name, "Attributes": a})["QueueUrl"]


def queue_arn(url):
    acct, name = url.rstrip("/").split("/")[-2:]
    return "arn:aws:sqs:us-east-1:%s:%s" % (acct, name)


def send(url, bodies, group=None, attrs=None):
    """SendMessageBatch in tens; returns the MessageIds in send order."""
    ids = []
    for i in range(0, len(bodies), 10):
        entries = []
        for k, b in enumerate(bodies[i:i + 10]):
            e = {"Id": str(k), "MessageBody": b}
            if group is not None:
                e["MessageGroupId"] = group
            if attrs:
                e["MessageAttributes"] = attrs
            entries.append(e)
        r = sqs_call("SendMessageBatch", {"QueueUrl": url, "Entries": entries})
        assert not r.get("Failed"), r
        by_id = {x["Id"]: x["MessageId"] for x in r["Successful"]}
        ids.extend(by_id[str(k)] for k in range(len(entries)))
    return ids


def depth(url):
    """Messages in the queue: visible + in flight + delayed."""
    a = sqs_call("GetQueueAttributes", {"QueueUrl": url, "AttributeNames": ["All"]})["Attributes"]
    return sum(int(a.get(k, 0)) for k in ("ApproximateNumberOfMessages",
                                           "ApproximateNumberOfMessagesNotVisible",
                                           "ApproximateNumberOfMessagesDelayed"))


def drain(url, wait=1):
    """Receives (and deletes) what is receivable now; returns the bodies."""
    got = []
    while True:
        r = sqs_call("ReceiveMessage", {"QueueUrl": url, "MaxNumberOfMessages": 10,
                                        "WaitTimeSeconds": wait})
        msgs = r.get("Messages") or []
        if not msgs:
            return got
        for m in msgs:
            got.append(m["Body"])
            sqs_call("DeleteMessage", {"QueueUrl": url, "ReceiptHandle": m["ReceiptHandle"]})


def sqs_records(fn, ok_only=False):
    out = []
    for rq in fn.requests():
        if ok_only and not rq.ok:
            continue
        out.extend((rq.json or {}).get("Records") or [])
    return out


def mapping(url, fn, batch=10, window=0, **extra):
    d = {"EventSourceArn": url, "FunctionName": "f", "BatchSize": batch,
         "MaximumBatchingWindowInSeconds": window, "wait_time": "1s"}
    d.update(extra)
    return d


def config(tmp_path, fn, m, timeout=5):
    return base_config(tmp_path, {"f": http_fn(fn.url, timeout=timeout)}, [m])


@pytest.mark.parametrize("form", ["url", "arn"])
def test_sqs_event_shape_and_deletes(tmp_path, fn, sluice, form):
    url = make_queue()
    attrs = {"s": {"DataType": "String", "StringValue": "x y"},
             "n": {"DataType": "Number", "StringValue": "42"},
             "b": {"DataType": "Binary", "BinaryValue": base64.b64encode(b"\x00\x01").decode()}}
    bodies = ['{"n":%d}' % i for i in range(25)]
    ids = send(url, bodies, attrs=attrs)
    arn = queue_arn(url)
    env = {"AWS_ENDPOINT_URL_SQS": sqs_endpoint()} if form == "arn" else None
    s = sluice(config(tmp_path, fn, mapping(url if form == "url" else arn, fn)), env_extra=env)
    wait_until(lambda: len(sqs_records(fn)) >= 25, 30, "25 records", proc=s)
    wait_until(lambda: depth(url) == 0, 20, "the queue to be empty", proc=s)
    recs = sqs_records(fn)
    assert sorted(r["body"] for r in recs) == sorted(bodies)
    assert sorted(r["messageId"] for r in recs) == sorted(ids)
    for r in recs:
        assert list(r.keys()) == ["messageId", "receiptHandle", "body", "attributes",
                                  "messageAttributes", "md5OfMessageAttributes", "md5OfBody",
                                  "eventSource", "eventSourceARN", "awsRegion"], r
        assert r["eventSource"] == "aws:sqs"
        assert r["eventSourceARN"] == arn
        assert r["awsRegion"] == "us-east-1"
        assert r["md5OfBody"] == hashlib.md5(r["body"].encode()).hexdigest()
        assert r["receiptHandle"]
        a = r["attributes"]
        for k in ("ApproximateReceiveCount", "SentTimestamp", "SenderId",
                  "ApproximateFirstReceiveTimestamp"):
            assert isinstance(a.get(k), str), (k, a)
        assert a["ApproximateReceiveCount"] == "1"
        ma = r["messageAttributes"]
        assert ma["s"] == {"stringValue": "x y", "stringListValues": [], "binaryListValues": [],
                           "dataType": "String"}
        assert ma["n"] == {"stringValue": "42", "stringListValues": [], "binaryListValues": [],
                           "dataType": "Number"}
        assert ma["b"] == {"binaryValue": base64.b64encode(b"\x00\x01").decode(),
                           "stringListValues": [], "binaryListValues": [], "dataType": "Binary"}
        assert isinstance(r["md5OfMessageAttributes"], str)
    assert all(rq.ok for rq in fn.requests())
    assert all(len((rq.json or {}).get("Records")) <= 10 for rq in fn.requests())
    powertools_accepts([rq.json for rq in fn.requests()])


def test_sqs_fifo_event_parses(tmp_path, fn, sluice):
    """A FIFO queue's events (SequenceNumber, MessageGroupId, MessageDeduplicationId) and a
    message without attributes pass Powertools' SqsSchema too."""
    url = make_queue(fifo=True)
    send(url, ["f-0", "f-1"], group="g")
    s = sluice(config(tmp_path, fn, mapping(url, fn)))
    wait_until(lambda: len(sqs_records(fn)) >= 2, 20, "2 records", proc=s)
    for r in sqs_records(fn):
        a = r["attributes"]
        assert a["MessageGroupId"] == "g" and a["SequenceNumber"] and a["MessageDeduplicationId"]
        assert r["md5OfMessageAttributes"] is None
    powertools_accepts([rq.json for rq in fn.requests()])


def test_sqs_no_attributes_md5_null(tmp_path, fn, sluice):
    url = make_queue()
    send(url, ["plain text"])
    s = sluice(config(tmp_path, fn, mapping(url, fn)))
    wait_until(lambda: sqs_records(fn), 20, "a record", proc=s)
    r = sqs_records(fn)[0]
    assert r["body"] == "plain text"
    assert r["messageAttributes"] == {}
    assert r["md5OfMessageAttributes"] is None
    wait_until(lambda: depth(url) == 0, 20, "the queue to be empty", proc=s)


def test_sqs_partial_batch_deletes_only_unlisted(tmp_path, fn, sluice):
    url = make_queue(VisibilityTimeout=2)
    bodies = ["ok-%d" % i for i in range(6)] + ["fail-%d" % i for i in range(4)]
    send(url, bodies)
    first = {}

    def hook(rq):
        recs = (rq.json or {}).get("Records") or []
        failed = []
        for r in recs:
            if r["body"].startswith("fail") and r["body"] not in first:
                first[r["body"]] = r["messageId"]
                failed.append({"itemIdentifier": r["messageId"]})
        return Reply(200, body={"batchItemFailures": failed})

    fn.set_hook(hook)
    m = mapping(url, fn, FunctionResponseTypes=["ReportBatchItemFailures"])
    s = sluice(config(tmp_path, fn, m))
    # every failed message comes back once its visibility runs out, and then succeeds
    wait_until(lambda: depth(url) == 0, 30, "the queue to be empty", proc=s)
    got = [r["body"] for r in sqs_records(fn)]
    for b in bodies:
        want = 2 if b.startswith("fail") else 1
        assert got.count(b) == want, (b, got)
    again = [r for r in sqs_records(fn) if r["body"].startswith("fail") and
             r["attributes"]["ApproximateReceiveCount"] == "2"]
    assert len(again) == 4


def test_sqs_function_error_redrives_to_dlq(tmp_path, fn, sluice):
    dlq = make_queue("dlq")
    dlq_arn = sqs_call("GetQueueAttributes", {"QueueUrl": dlq, "AttributeNames": ["QueueArn"]})[
        "Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})
    url = make_queue(VisibilityTimeout=1, RedrivePolicy=policy)
    send(url, ["good-%d" % i for i in range(5)])
    send(url, ["bad-%d" % i for i in range(3)])

    def hook(rq):
        recs = (rq.json or {}).get("Records") or []
        if any(r["body"].startswith("bad") for r in recs):
            return Reply(500)
        return None

    fn.set_hook(hook)
    s = sluice(config(tmp_path, fn, mapping(url, fn, batch=1)))
    wait_until(lambda: depth(url) == 0, 40, "the source queue to be empty", proc=s)
    moved = drain(dlq)
    assert sorted(moved) == ["bad-0", "bad-1", "bad-2"]
    ok = [r["body"] for r in sqs_records(fn, ok_only=True)]
    assert sorted(ok) == ["good-%d" % i for i in range(5)]


def test_sqs_fifo_order_per_group(tmp_path, fn, sluice):
    url = make_queue(fifo=True)
    a = ["a-%02d" % i for i in range(15)]
    b = ["b-%02d" % i for i in range(15)]
    send(url, a, group="ga")
    send(url, b, group="gb")
    s = sluice(config(tmp_path, fn, mapping(url, fn, batch=10)))
    wait_until(lambda: depth(url) == 0, 40, "the queue to be empty", proc=s)
    got = [r["body"] for r in sqs_records(fn, ok_only=True)]
    assert [x for x in got if x.startswith("a")] == a
    assert [x for x in got if x.startswith("b")] == b
    for r in sqs_records(fn):
        assert r["attributes"]["MessageGroupId"] == ("ga" if r["body"].startswith("a") else "gb")


def test_sqs_sigkill_restart_loses_nothing(tmp_path, fn, sluice):
    url = make_queue(VisibilityTimeout=2)
    bodies = ["m-%03d" % i for i in range(150)]
    send(url, bodies)
    fn.set_default(Reply(200, delay=0.05))
    cfg = config(tmp_path, fn, mapping(url, fn, batch=10))
    s1 = sluice(cfg)
    wait_until(lambda: len(sqs_records(fn, ok_only=True)) >= 30, 30, "30 records", proc=s1)
    s1.kill9()
    assert depth(url) > 0, "everything was done before the kill"
    s2 = sluice(cfg)
    wait_until(lambda: depth(url) == 0, 60, "the queue to be empty", proc=s2)
    got = {r["body"] for r in sqs_records(fn, ok_only=True)}
    missing_bodies = [b for b in bodies if b not in got]
    assert not missing_bodies, missing_bodies[:10]


def test_sqs_missing_queue_is_a_clear_error(tmp_path, fn, sluice):
    arn = "arn:aws:sqs:us-east-1:000000000000:nope-" + uuid.uuid4().hex[:8]
    s = sluice(config(tmp_path, fn, mapping(arn, fn)),
               env_extra={"AWS_ENDPOINT_URL_SQS": sqs_endpoint()})
    wait_until(lambda: "does not exist" in s.log(), 10, "the error line", proc=s)
    assert s.poll() is None
    s.signal(signal.SIGTERM)
    assert s.wait(20) == 0
    assert fn.count() == 0
    time.sleep(0)


def test_sqs_heartbeat_outlasts_visibility_timeout(tmp_path, fn, sluice):
    """A handler that runs 2.5 times the queue's visibility timeout: its messages are kept
    invisible (ChangeMessageVisibilityBatch heartbeats), so nobody receives them meanwhile, the
    function is invoked once, and they are deleted after."""
    url = make_queue(VisibilityTimeout=2)
    send(url, ["slow-0", "slow-1"])
    fn.set_default(Reply(200, delay=5))
    s = sluice(config(tmp_path, fn, mapping(url, fn, batch=10), timeout=10))
    wait_until(lambda: fn.count() >= 1, 20, "the first invocation", proc=s)
    # while the handler runs, the messages stay in flight: a receive of our own gets nothing
    r = sqs_call("ReceiveMessage", {"QueueUrl": url, "MaxNumberOfMessages": 10,
                                    "WaitTimeSeconds": 3})
    assert not r.get("Messages"), r
    wait_until(lambda: depth(url) == 0, 20, "the queue to be empty", proc=s)
    bodies = sorted(r["body"] for r in sqs_records(fn))
    assert bodies == ["slow-0", "slow-1"], bodies
    assert all(r["attributes"]["ApproximateReceiveCount"] == "1" for r in sqs_records(fn))


def test_sqs_filtered_messages_are_deleted(tmp_path, fn, sluice):
    """FilterCriteria match the record with its body parsed as JSON; a message filtered out is
    deleted, as AWS does."""
    url = make_queue()
    keep = ['{"keep":true,"n":%d}' % i for i in range(3)]
    drop = ['{"keep":false,"n":%d}' % i for i in range(3)] + ["not json"]
    send(url, keep + drop)
    m = mapping(url, fn, FilterCriteria={"Filters": [{"Pattern": json.dumps(
        {"body": {"keep": [True]}, "eventSource": ["aws:sqs"]})}]})
    s = sluice(config(tmp_path, fn, m))
    wait_until(lambda: depth(url) == 0, 20, "the queue to be empty", proc=s)
    wait_until(lambda: len(sqs_records(fn)) >= 3, 10, "3 records", proc=s)
    assert sorted(r["body"] for r in sqs_records(fn)) == sorted(keep)


def test_sqs_drain_returns_waiting_messages(tmp_path, fn, sluice):
    """SIGTERM while received messages wait in a batching window: they are returned with
    visibility 0 before sluice exits, so another consumer receives them at once instead of
    after the queue's 30 s visibility timeout; none was invoked."""
    url = make_queue(VisibilityTimeout=30)
    send(url, ["w-%d" % i for i in range(5)])
    s = sluice(config(tmp_path, fn, mapping(url, fn, batch=100, window=20)))
    wait_until(lambda: depth(url) == 5 and visible(url) == 0, 10, "the messages in flight",
               proc=s)
    s.signal(signal.SIGTERM)
    assert s.wait(20) == 0, s.log_tail()
    assert fn.count() == 0
    got = drain(url, wait=1)
    assert sorted(got) == ["w-%d" % i for i in range(5)], got


def test_sqs_queue_deleted_mid_run(tmp_path, fn, sluice):
    """A queue deleted under a running mapping: a warning naming it, a slow retry, sluice stays
    up and exits cleanly."""
    url = make_queue()
    send(url, ["before"])
    s = sluice(config(tmp_path, fn, mapping(url, fn)))
    wait_until(lambda: depth(url) == 0, 20, "the first message done", proc=s)
    sqs_call("DeleteQueue", {"QueueUrl": url})
    wait_until(lambda: "does the queue exist?" in s.log(), 20, "the warning", proc=s)
    assert s.poll() is None
    s.signal(signal.SIGTERM)
    assert s.wait(20) == 0


def visible(url):
    a = sqs_call("GetQueueAttributes", {"QueueUrl": url, "AttributeNames": ["All"]})["Attributes"]
    return int(a.get("ApproximateNumberOfMessages", 0))


def test_sqs_fifo_group_failure_keeps_order(tmp_path, fn, sluice):
    """FIFO: a function error on a batch holding a-03 returns it (and what follows it of group
    a) to the queue; it comes back after the visibility timeout and group a is still delivered
    in order, while group b flows."""
    url = make_queue(fifo=True, VisibilityTimeout=1)
    a = ["a-%02d" % i for i in range(8)]
    b = ["b-%02d" % i for i in range(8)]
    send(url, a, group="ga")
    send(url, b, group="gb")
    failed = []

    def hook(rq):
        recs = (rq.json or {}).get("Records") or []
        if not failed and any(r["body"] == "a-03" for r in recs):
            failed.append(True)
            return Reply(500)
        return None

    fn.set_hook(hook)
    s = sluice(config(tmp_path, fn, mapping(url, fn, batch=10)))
    wait_until(lambda: depth(url) == 0, 40, "the queue to be empty", proc=s)
    assert failed
    got = [r["body"] for r in sqs_records(fn, ok_only=True)]
    assert [x for x in got if x.startswith("a")] == a
    assert [x for x in got if x.startswith("b")] == b


def test_sqs_lag_is_the_queue_depth(tmp_path, fn, sluice):
    """The progress line's lag is the queue's depth (ApproximateNumberOfMessages, records):
    unknown at first, then what is still waiting in the queue, and 0 once it is empty."""
    url = make_queue()
    send(url, ["d-%02d" % i for i in range(40)])
    fn.set_default(Reply(200, delay=0.2))
    cfg = config(tmp_path, fn, mapping(url, fn, batch=1, ScalingConfig={"MaximumConcurrency": 2}))
    cfg["stats_interval"] = "200ms"
    s = sluice(cfg, args=["--log-format", "json"])

    def lags():
        out = []
        for line in s.log().splitlines():
            try:
                o = json.loads(line)
            except ValueError:
                continue
            if o.get("msg") == "progress" and isinstance(o.get("lag"), int):
                out.append(o["lag"])
        return out

    wait_until(lambda: any(x > 0 for x in lags()), 20, "a progress line with lag > 0", proc=s)
    assert all(x <= 40 for x in lags()), lags()
    wait_until(lambda: depth(url) == 0, 40, "the queue to be empty", proc=s)
    wait_until(lambda: lags() and lags()[-1] == 0, 10, "lag 0", proc=s)


def test_sqs_fifo_batch_size_above_ten_refused(tmp_path, fn, sluice):
    """A FIFO queue takes a BatchSize of at most 10: a mapping asking for more stops before
    anything is received, saying so; nothing is invoked and the messages stay."""
    url = make_queue(fifo=True)
    send(url, ["x"], group="g")
    s = sluice(config(tmp_path, fn, mapping(url, fn, batch=20, window=1)))
    wait_until(lambda: "at most 10" in s.log() or s.poll() is not None, 20, "the refusal")
    assert "at most 10" in s.log(), s.log_tail()
    assert fn.count() == 0
    assert depth(url) == 1


def test_sqs_large_batches_built_from_several_receives(tmp_path, fn, sluice):
    """BatchSize 1000 with a 1 s window over 3,000 messages: batches larger than SQS's 10 a
    receive are built from several receives; none is above BatchSize, none above the 6 MB
    payload (the last 500 messages are 20 KB each, so their batches are cut by size)."""
    url = make_queue(VisibilityTimeout=120)
    small = ["s-%04d" % i for i in range(2500)]
    big = ["b-%04d-" % i + "x" * 20000 for i in range(500)]
    send(url, small)
    send(url, big)
    s = sluice(config(tmp_path, fn, mapping(url, fn, batch=1000, window=1), timeout=30))
    wait_until(lambda: depth(url) == 0, 120, "the queue to be empty", proc=s)
    sizes = []
    for rq in fn.requests():
        assert rq.ok, rq
        assert len(rq.body) <= 6291456, len(rq.body)
        sizes.append(len((rq.json or {}).get("Records") or []))
    assert max(sizes) <= 1000, sizes
    assert max(sizes) > 10, sizes
    got = sorted(r["body"] for r in sqs_records(fn))
    assert got == sorted(small + big)


def test_sqs_concurrency_one_under_a_burst(tmp_path, fn, sluice):
    """ScalingConfig.MaximumConcurrency 1 under a burst of 100 messages, BatchSize 1, a function
    of ~100 ms (10 s in all) and a visibility timeout of 2 s (maxReceiveCount 1): never two
    invocations at once, and sluice never receives more than it can invoke within the visibility
    timeout, so no message runs out its visibility waiting and none reaches the DLQ."""
    dlq = make_queue("dlq")
    dlq_arn = sqs_call("GetQueueAttributes", {"QueueUrl": dlq, "AttributeNames": ["QueueArn"]})[
        "Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "1"})
    url = make_queue(VisibilityTimeout=2, RedrivePolicy=policy)
    bodies = ["c-%03d" % i for i in range(100)]
    send(url, bodies)
    fn.set_default(Reply(200, delay=0.1))
    s = sluice(config(tmp_path, fn, mapping(url, fn, batch=1,
                                            ScalingConfig={"MaximumConcurrency": 1}), timeout=5))
    wait_until(lambda: depth(url) == 0, 60, "the queue to be empty", proc=s)
    rqs = sorted(fn.requests(), key=lambda r: r.time)
    for a, b in zip(rqs, rqs[1:]):
        assert a.reply_time <= b.time, "invocations %d and %d overlap" % (a.index, b.index)
    assert fn.max_inflight() == 1
    assert sorted(r["body"] for r in sqs_records(fn, ok_only=True)) == bodies
    assert depth(dlq) == 0, drain(dlq)


def test_sqs_short_visibility_timeout_warned(tmp_path, fn, sluice):
    """The queue's own VisibilityTimeout (5 s, read with GetQueueAttributes after start) is
    shorter than the function's timeout (30 s): one warning line says so; a queue of 200 s (more
    than 6 times) gets none. Messages are delivered either way."""
    short = make_queue(VisibilityTimeout=5)
    send(short, ["w-0"])
    s = sluice(config(tmp_path, fn, mapping(short, fn), timeout=30))
    wait_until(lambda: depth(short) == 0, 20, "the queue to be empty", proc=s)
    wait_until(lambda: "visibility timeout (5000ms) is shorter" in s.log(), 10, "the warning",
               proc=s)
    assert s.log().count("visibility timeout (5000ms) is shorter") == 1, s.log_tail()
    s.signal(signal.SIGTERM)
    assert s.wait(20) == 0
    long_ = make_queue(VisibilityTimeout=200)
    send(long_, ["w-1"])
    s2 = sluice(config(tmp_path, fn, mapping(long_, fn), timeout=30))
    wait_until(lambda: depth(long_) == 0, 20, "the queue to be empty", proc=s2)
    assert "is shorter than the function timeout" not in s2.log(), s2.log_tail()
