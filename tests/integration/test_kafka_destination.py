"""The kafka://topic on-failure destination (issue 4 item 5): one message per failed record, to
a topic of the source's own cluster (self-managed or MSK, connecting as the source does), keyed
by the record's key, holding AWS's invocation record with KafkaBatchInfo and the payload;
written before the committed offset passes the record.  Against librdkafka's mock cluster from
tests/services; skipped without it unless CI=true."""

import base64
import json
import uuid

import pytest

from fnserver import FnServer, Reply
from helpers import wait_until
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
