"""Delivery streams to Kafka and Redis (issue 12 item 5, issue 13 item 4): a
SinkDestinationConfiguration writes each record of a delivered object as one Kafka message
(idempotent producer; read back with kcat, the project's consumer tool) or one Redis stream
entry (XADD, field data; read back with XRANGE), the records as they were put, each exactly
once; Redis stopped mid-delivery and started again on the same port: every acknowledged record
lands, none more than at-least-once allows, and the spool keeps the records until Redis took
them. Records are put through sluice's Firehose API with boto3. Against tests/services' Kafka
mock and redis-server, and redis-servers of the tests' own for the restart."""

import json
import re
import time
import uuid

import helpers
from redisutil import RedisServer, services_redis, xrange_entries
from test_firehose import boto3_client, start
from test_kafka import new_topic
import kafka_tools as kt


def sink_stream(name, destination, interval=0, size_mb=1, **extra):
    conf = {"Destination": destination,
            "BufferingHints": {"SizeInMBs": size_mb, "IntervalInSeconds": interval}}
    conf.update(extra)
    return {"DeliveryStreamName": name, "DeliveryStreamType": "DirectPut",
            "SinkDestinationConfiguration": conf}


def put_all(client, name, records, batch=100):
    for i in range(0, len(records), batch):
        r = client.put_record_batch(DeliveryStreamName=name,
                                    Records=[{"Data": d} for d in records[i:i + batch]])
        assert r["FailedPutCount"] == 0, r


def test_records_land_in_a_kafka_topic(tmp_path, sluice, kafka):
    topic = new_topic(3)
    s, url = start(sluice, tmp_path, sink_stream(
        "to-kafka", "kafka://" + topic, BootstrapServers=kafka["KAFKA_BOOTSTRAP"],
        DestinationOptions={"delivery_timeout": "10s"}))
    records = [json.dumps({"n": i, "text": "caf\u00e9 %d" % i}).encode() for i in range(250)]
    records.append(b"\x00binary\xff")
    put_all(boto3_client(url), "to-kafka", records)

    def got():
        return kt.consume(kafka["KAFKA_BOOTSTRAP"], topic, timeout=20)

    helpers.wait_until(lambda: len(got()) >= len(records), 30, "every record on the topic",
                       proc=s)
    msgs = got()
    assert sorted(m["value"] for m in msgs) == sorted(records)  # each exactly once, intact
    assert all(m["key"] is None for m in msgs)
    assert s.stop() == 0
    assert "not written" not in s.log()


def test_records_land_in_a_redis_stream(tmp_path, sluice):
    _, port = services_redis()
    stream = "fh-" + uuid.uuid4().hex[:12]
    s, url = start(sluice, tmp_path, sink_stream(
        "to-redis", "redis://127.0.0.1:%d/0/%s?maxlen=100000" % (port, stream)))
    records = [("rec-%04d" % i).encode() for i in range(300)]
    client = boto3_client(url)
    # the SDKs describe a stream before they use it: it answers, ACTIVE
    desc = client.describe_delivery_stream(DeliveryStreamName="to-redis")
    assert desc["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE"
    put_all(client, "to-redis", records)
    helpers.wait_until(lambda: len(xrange_entries(port, stream)) >= len(records), 30,
                       "every record in the stream", proc=s)
    entries = xrange_entries(port, stream)
    assert [f[b"data"] for _, f in entries] == records  # one delivery stream: in order
    assert all(set(f) == {b"data"} for _, f in entries)
    assert s.stop() == 0


def test_redis_restarted_mid_delivery_nothing_lost(tmp_path, sluice, monkeypatch):
    """Records are put while Redis is up, while it is stopped and after it is started again on
    the same port (durable: a restart is an outage). Every record put is in the stream at the
    end, each at least once and, since no write was in flight twice, exactly once; while Redis
    is down the records wait in the spool (the put answered, nothing dropped)."""
    srv = RedisServer(tmp_path / "redis", password="pw-hunter2").start()
    stream = "fh-restart"
    monkeypatch.setenv("REDIS_PW", srv.password)  # the config names it: ${REDIS_PW}
    try:
        s, url = start(sluice, tmp_path, sink_stream(
            "r", "redis://:${REDIS_PW}@127.0.0.1:%d/2/%s" % (srv.port, stream)))
    except AssertionError:
        srv.stop()
        raise
    client = boto3_client(url)
    want = []

    def put(lo, hi):
        recs = [("r-%04d" % i).encode() for i in range(lo, hi)]
        put_all(client, "r", recs, batch=50)
        want.extend(recs)

    def in_stream():
        try:
            return [f[b"data"] for _, f in xrange_entries2(srv, stream)]
        except OSError:
            return []

    try:
        put(0, 200)
        helpers.wait_until(lambda: len(in_stream()) >= 200, 30, "the first records", proc=s)
        srv.stop()
        put(200, 400)  # accepted into the spool while Redis is down
        time.sleep(0.5)  # down for a while: deliveries fail and are retried
        assert s.poll() is None, s.log_tail()
        srv.start()
        put(400, 500)
        helpers.wait_until(lambda: set(in_stream()) >= set(want), 40,
                           "every record after the restart", proc=s)
        assert s.stop() == 0
        got = in_stream()
        assert sorted(set(got)) == sorted(want)
        assert len(got) == len(want), "duplicates: %d entries for %d records" % (len(got),
                                                                                len(want))
        log = s.log()
        assert "pw-hunter2" not in log
        assert len(re.findall(r"reconnecting with backoff", log)) >= 1
        assert "records not written" in log  # deliveries failed while it was down, retried
    finally:
        if s.poll() is None:
            s.kill9()
        srv.stop()


def xrange_entries2(srv, stream):
    """XRANGE in database 2 with the server's password."""
    from redisutil import Resp
    with Resp(srv.port) as r:
        r.call("AUTH", srv.password)
        r.call("SELECT", 2)
        out = []
        for eid, fields in r.call("XRANGE", stream, "-", "+") or []:
            out.append((eid, dict(zip(fields[0::2], fields[1::2]))))
        return out
