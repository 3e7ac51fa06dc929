"""The kafka://topic on-failure destination (issue 4 item 5): one message per failed record, to
a topic of the source's own cluster (self-managed or MSK, connecting as the source does), keyed
by the record's key, holding AWS's invocation record with KafkaBatchInfo and the payload;
written before the committed offset passes the record.  Beyond AWS (issue 12 item 5), a mapping
of any source names the cluster in destination_options (bootstrap_servers, rdkafka): a file
mapping's failed records land there in the same shape, and while that broker is down the
records wait, the checkpoint with them.  Against librdkafka's mock cluster from tests/services
(and a one-broker mock of the test's own, started late); skipped without it unless CI=true."""

import base64
import json
import os
import signal
import subprocess
import textwrap
import time
import uuid

import pytest

from fnserver import FnServer, Reply
from helpers import (PYTHON, base_config, check_invocation_record, checkpoint_positions,
                     file_mapping, offsets_of, wait_until, write_lines)
from test_kafka_faults import free_port
from test_kafka import (JOIN_S, assigned_offsets, config, delivered, kafka_records,  # noqa: F401
                        mapping, new_topic)
import kafka_tools as kt


def test_failed_records_go_to_a_kafka_topic_one_message_each(tmp_path, fn, sluice, kafka):
    topic = new_topic(1)
    dlq = new_topic(1)
    recs = [{"key": "k%d" % i, "value": "bad-%d" % i if i in (2, 3) else "ok-%d" % i}
            for i in range(6)]
    kt.produce(kafka["KAFKA_BOOTSTRAP"], topic, recs)

    def hook(rq):
        vals = [r[4] for r in kafka_records(rq)]
        return Reply(500) if any(v.startswith(b"bad") for v in vals if v) else None

    fn.set_hook(hook)
    m = mapping(kafka, topic, "hook", "g-" + topic, batch=6, MaximumRetryAttempts=0,
                BisectBatchOnFunctionError=True,
                DestinationConfig={"OnFailure": {"Destination": "kafka://" + dlq}})
    s = sluice(config(tmp_path, fn, [m]))

    def dlq_messages():
        return kt.consume(kafka["KAFKA_BOOTSTRAP"], dlq, timeout=20)

    wait_until(lambda: len(dlq_messages()) >= 2, JOIN_S + 30, "two messages on the DLQ topic",
               proc=s)
    wait_until(lambda: len(delivered(fn)) >= 4, 20, "the good records", proc=s)
    got = dlq_messages()
    assert len(got) == 2, got
    assert [g["key"] for g in got] == [b"k2", b"k3"]
    for g, offset in zip(got, (2, 3)):
        doc = json.loads(g["value"])
        assert doc["requestContext"]["condition"] == "RetryAttemptsExhausted"
        info = doc["KafkaBatchInfo"]
        assert info["batchSize"] == 1
        assert info["bootstrapServers"] == kafka["KAFKA_BOOTSTRAP"]
        assert info["recordInfo"]["offset"] == str(offset)
        assert info["recordInfo"]["timestamp"].endswith("Z")
        assert "recordsInfo" not in info
        payload = doc["payload"]["records"]["%s-0" % topic]
        assert len(payload) == 1
        assert base64.b64decode(payload[0]["value"]) == b"bad-%d" % offset
    assert sorted(r[2] for r in delivered(fn)) == [0, 1, 4, 5]
    assert s.stop() == 0


def test_msk_mapping_failed_record_goes_to_a_kafka_topic(tmp_path, fn, sluice, kafka):
    """An MSK-style mapping (arn:aws:kafka: EventSourceArn plus bootstrap_servers, no
    "kafka://" ARN to take the servers from): its kafka:// destination's producer connects to
    the cluster the source gives it, with the source's security settings (here the pass-through's
    explicit PLAINTEXT, the one protocol the mock speaks). The poison record lands on the topic
    with the MSK ARN in KafkaBatchInfo; the good ones reach the function."""
    boot = kafka["KAFKA_BOOTSTRAP"]
    topic = new_topic(1)
    dlq = new_topic(1)
    arn = "arn:aws:kafka:us-east-1:123456789012:cluster/msk-test/0b1c2d3e-4f5a-6b7c-8d9e"
    kt.produce(boot, topic, [{"key": "k%d" % i, "value": "poison" if i == 1 else "ok-%d" % i}
                             for i in range(4)])

    def hook(rq):
        vals = [r[4] for r in kafka_records(rq)]
        return Reply(500) if b"poison" in vals else None

    fn.set_hook(hook)
    m = {
        "EventSourceArn": arn,
        "bootstrap_servers": boot.split(","),
        "Topics": [topic],
        "FunctionName": "hook",
        "StartingPosition": "TRIM_HORIZON",
        "BatchSize": 4,
        "MaximumRetryAttempts": 0,
        "BisectBatchOnFunctionError": True,
        "AmazonManagedKafkaEventSourceConfig": {"ConsumerGroupId": "g-" + topic},
        "DestinationConfig": {"OnFailure": {"Destination": "kafka://" + dlq}},
        "rdkafka": {"session.timeout.ms": "6000", "security.protocol": "PLAINTEXT"},
    }
    s = sluice(config(tmp_path, fn, [m]))
    wait_until(lambda: len(kt.consume(boot, dlq, timeout=20)) >= 1, JOIN_S + 30,
               "the poison record on the DLQ topic", proc=s)
    wait_until(lambda: sorted(r[2] for r in delivered(fn)) == [0, 2, 3], 20, "the good records",
               proc=s)
    got = kt.consume(boot, dlq, timeout=20)
    assert len(got) == 1, got
    assert got[0]["key"] == b"k1"
    doc = json.loads(got[0]["value"])
    assert doc["requestContext"]["condition"] == "RetryAttemptsExhausted"
    info = doc["KafkaBatchInfo"]
    assert info["eventSourceArn"] == arn, info
    assert info["bootstrapServers"] == boot, info
    assert info["recordInfo"]["offset"] == "1", info
    payload = doc["payload"]
    assert payload["eventSource"] == "aws:kafka", payload
    assert base64.b64decode(payload["records"]["%s-0" % topic][0]["value"]) == b"poison"
    assert s.stop() == 0


@pytest.mark.parametrize("kind", ["sqs", "http"])
def test_kafka_batch_to_sqs_and_http_destinations(tmp_path, fn, sluice, kafka, kind):
    """A Kafka batch that exhausts its retries goes to an SQS queue (fauxqs) or an http(s)
    endpoint as one invocation record with AWS's KafkaBatchInfo: one recordsInfo member per
    partition of the batch, offsets as strings; SQS without the payload (as AWS), http with it;
    the offsets are committed past the records once the destination has them."""
    from test_destinations import sqs_call, sqs_endpoint, sqs_receive_all
    topic = new_topic(2)
    kt.produce(kafka["KAFKA_BOOTSTRAP"], topic,
               [{"partition": p, "value": "p%d-%d" % (p, o)} for p in (0, 1) for o in range(2)])
    fn.set_default(Reply(500, body={"errorMessage": "always"}))
    with FnServer() as dest:
        if kind == "sqs":
            ep = sqs_endpoint()
            target = sqs_call(ep, "CreateQueue",
                              {"QueueName": "k-dlq-" + uuid.uuid4().hex[:10]})["QueueUrl"]
        else:
            target = dest.url + "/dest"
        m = mapping(kafka, topic, "hook", "g-" + topic, batch=10,
                    MaximumBatchingWindowInSeconds=2, MaximumRetryAttempts=0,
                    DestinationConfig={"OnFailure": {"Destination": target}})
        s = sluice(config(tmp_path, fn, [m]))
        if kind == "sqs":
            msgs = sqs_receive_all(ep, target, 1, timeout=JOIN_S)
            assert len(msgs) == 1, msgs
            doc = json.loads(msgs[0]["Body"])
        else:
            wait_until(lambda: len(dest.requests()) >= 1, JOIN_S, "the record", proc=s)
            doc = dest.requests()[0].json
        assert doc["requestContext"]["condition"] == "RetryAttemptsExhausted", doc
        assert doc["responseContext"]["functionError"] == "Unhandled", doc
        info = doc["KafkaBatchInfo"]
        assert info["batchSize"] == 4, info
        assert info["bootstrapServers"] == kafka["KAFKA_BOOTSTRAP"], info
        ri = info["recordsInfo"]
        assert sorted(ri) == ["%s-0" % topic, "%s-1" % topic], info
        for v in ri.values():
            assert (v["firstRecordOffset"], v["lastRecordOffset"]) == ("0", "1"), info
        assert ("payload" in doc) == (kind == "http"), sorted(doc)
        assert s.stop() == 0
        s.start()
        wait_until(lambda: len(assigned_offsets(s)) == 2, JOIN_S, "assignment", proc=s)
        assert assigned_offsets(s) == {"%s-0" % topic: 2, "%s-1" % topic: 2}, s.log()


# ---- a mapping of another source, on a cluster its destination_options name (issue 12) --------

# An exec function that fails (exit 1) on a batch holding a line starting "bad" and appends the
# other batches' lines to OUT.
FAILING_HANDLER = textwrap.dedent(r'''
    import base64, json, os, sys
    ev = json.load(sys.stdin)
    lines = [base64.b64decode(r["kinesis"]["data"]) for r in ev["Records"]]
    if any(ln.startswith(b"bad") for ln in lines):
        sys.stderr.write("refusing a bad line\n")
        sys.exit(1)
    with open(os.environ["OUT"], "ab") as f:
        for ln in lines:
            f.write(ln + b"\n")
''')


def failing_file_config(tmp_path, log, dlq, options):
    hd = tmp_path / "fn"
    hd.mkdir()
    (hd / "handler.py").write_text(FAILING_HANDLER)
    m = file_mapping(log, "audit", batch=1, MaximumRetryAttempts=0,
                     DestinationConfig={"OnFailure": {"Destination": "kafka://" + dlq}})
    m["destination_options"] = options
    fns = {"audit": {"type": "exec", "command": [PYTHON, str(hd / "handler.py")], "timeout": 10,
                     "env": {"OUT": str(hd / "out")}}}
    return base_config(tmp_path, fns, [m]), hd / "out"


def out_lines(path):
    try:
        return path.read_text().splitlines()
    except OSError:
        return []


def check_dlq_message(msg, log, offset, line, t0):
    """A message of a file mapping's kafka:// destination: keyed by the record's key (the
    file's path, as the file source keys its records) and holding the exact invocation record of
    that one record (KinesisBatchInfo, the function's error, the payload), as on the file://
    and http(s) destinations."""
    assert msg["key"] == str(log).encode(), msg
    doc = json.loads(msg["value"])
    errs = check_invocation_record(doc, log, [(offset, line)], "RetryAttemptsExhausted",
                                   invoke_count=1, status=200, function_error="Unhandled",
                                   now=t0)
    assert not errs, "\n".join(errs) + "\n" + msg["value"][:2000].decode("utf-8", "replace")
    assert sorted(doc) == ["KinesisBatchInfo", "payload", "requestContext", "responseContext",
                           "timestamp", "version"], sorted(doc)


def test_file_mapping_failed_records_go_to_a_kafka_topic(tmp_path, sluice, kafka):
    """A file mapping whose exec function fails on "bad" lines: each failed record is one
    message on a topic of the cluster destination_options names (bootstrap_servers, with the
    connection's rdkafka settings), keyed and shaped as above; the good lines reach the function
    and the checkpoint ends at the end of the file; the rdkafka values never reach the log."""
    boot = kafka["KAFKA_BOOTSTRAP"]
    dlq = new_topic(1)
    log = tmp_path / "in.log"
    lines = ["good-0", "bad-1", "good-2", "bad-3"]
    write_lines(log, lines)
    offs = offsets_of(lines)
    secret = "pw-" + uuid.uuid4().hex
    cfg, out = failing_file_config(tmp_path, log, dlq, {
        "bootstrap_servers": boot.split(","),
        "rdkafka": {"security.protocol": "PLAINTEXT", "client.id": "dlq-" + secret}})
    t0 = time.time()
    s = sluice(cfg, args=["--log-format", "json"])
    wait_until(lambda: len(kt.consume(boot, dlq, timeout=20)) >= 2, 60,
               "two messages on the DLQ topic", proc=s)
    wait_until(lambda: list(checkpoint_positions(tmp_path / "state").values())
               == [os.path.getsize(log)], 20, "checkpoint at the end of the file", proc=s)
    assert out_lines(out) == ["good-0", "good-2"]
    got = kt.consume(boot, dlq, timeout=20)
    assert len(got) == 2, got
    for msg, i in zip(got, (1, 3)):
        check_dlq_message(msg, log, offs[i], lines[i], t0)
    assert s.stop() == 0
    assert secret not in s.log(), "an rdkafka value was logged"


def test_file_mapping_kafka_destination_down_then_started(tmp_path, sluice, kafka):
    """The destination's broker is not running when the record fails: the write is retried,
    nothing is lost, and the checkpoint stays before the failed record (the good line after it
    waits too: order) until a broker starts on that port; then the record lands, once, and the
    checkpoint moves to the end of the file."""
    env = kt.services_env()
    mock = os.path.join(os.path.dirname(env.get("KAFKA_PRODUCE", "")), "kafka-mock")
    if not os.access(mock, os.X_OK):
        pytest.skip("no kafka-mock binary beside KAFKA_PRODUCE")
    port = free_port()
    boot = "127.0.0.1:%d" % port
    dlq = "late-dlq"
    log = tmp_path / "in.log"
    lines = ["bad-0", "good-1"]
    write_lines(log, lines)
    cfg, out = failing_file_config(tmp_path, log, dlq, {"bootstrap_servers": [boot],
                                                        "delivery_timeout": "1s"})
    t0 = time.time()
    s = sluice(cfg, args=["--log-format", "json"])
    mp = None
    mlog = open(tmp_path / "mock.log", "wb")
    try:
        wait_until(lambda: s.log().count("kafka://late-dlq failed") >= 2, 30,
                   "two failed writes to the destination", proc=s)
        assert list(checkpoint_positions(tmp_path / "state").values()) in ([], [0]), \
            checkpoint_positions(tmp_path / "state")
        assert out_lines(out) == []
        mp = subprocess.Popen([mock, "-b", "1", "-P", str(port), "-c", str(tmp_path / "mock.ctl"),
                               "-f", str(tmp_path / "mock.boot"), "%s:1" % dlq],
                              stdout=subprocess.PIPE, stderr=mlog)
        line = mp.stdout.readline().decode()
        assert line.startswith("BOOTSTRAP="), line
        wait_until(lambda: list(checkpoint_positions(tmp_path / "state").values())
                   == [os.path.getsize(log)], 60, "checkpoint at the end of the file", proc=s)
        assert out_lines(out) == ["good-1"]
        got = kt.consume(boot, dlq, timeout=20)
        assert len(got) == 1, got
        check_dlq_message(got[0], log, 0, "bad-0", t0)
        assert s.stop(timeout=20) == 0
    finally:
        s.stop(timeout=20)
        if mp:
            mp.send_signal(signal.SIGTERM)
            try:
                mp.wait(10)
            except subprocess.TimeoutExpired:
                mp.kill()
                mp.wait(5)
        mlog.close()
