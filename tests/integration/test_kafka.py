"""The Kafka source (issue 4) against librdkafka's mock cluster run as its own process by
tests/services (SERVICES=kafka tests/services/start.sh; KAFKA_BOOTSTRAP and KAFKA_CTL come from
run/services.env).  Producers are real clients (kafka-produce from tests/services/kafka-tools).

Covered: the event byte for byte (key, value, headers as signed bytes incl. non-ASCII, null key,
tombstone, no headers); commit only after success (the function fails, kill -9, restart: the
records come again and nothing is skipped; then the committed offsets are the end); a poison
record isolated by BisectBatchOnFunctionError and written to a file:// on-failure destination
with KafkaBatchInfo; partial batch responses with "topic-partition-offset" identifiers; two
processes in one group splitting the partitions with nothing lost or repeated.

Group joins on the mock take 3 s (first join) and about 5 s (rejoin) with session.timeout.ms
6000, which every config here sets.  Skipped without KAFKA_BOOTSTRAP unless CI=true."""

import base64
import os
import re
import subprocess
import sys
import uuid

from fnserver import Reply
from helpers import (REPO, base_config, destination_docs, file_destination, http_fn,
                     sluice_bin, wait_until, write_config)

sys.path.insert(0, os.path.join(REPO, "tests", "services", "kafka-tools"))
import kafka_tools as kt  # noqa: E402

FN = "/fn"
JOIN_S = 30  # generous: a join is 3-5 s on the mock, plus a rebalance


def new_topic(partitions):
    name = "t-" + uuid.uuid4().hex[:10]
    kt.ctl("topic %s %d" % (name, partitions))
    return name


def mapping(kafka, topic, fn_name, group, batch=100, start="TRIM_HORIZON", **extra):
    m = {
        "SelfManagedEventSource": {
            "Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": kafka["KAFKA_BOOTSTRAP"].split(",")}},
        "Topics": [topic],
        "FunctionName": fn_name,
        "StartingPosition": start,
        "BatchSize": batch,
        "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": group},
        "rdkafka": {"session.timeout.ms": "6000"},
    }
    m.update(extra)
    return m


def config(tmp_path, fn, maps):
    return base_config(tmp_path, {"hook": http_fn(fn.url + FN)}, maps)


def kafka_records(rq):
    """[(topic, partition, offset, key bytes|None, value bytes|None, headers)] of one request."""
    out = []
    ev = rq.json if isinstance(rq.json, dict) else {}
    for recs in (ev.get("records") or {}).values():
        for r in recs:
            key = base64.b64decode(r["key"]) if "key" in r else None
            value = base64.b64decode(r["value"]) if "value" in r else None
            hs = [(k, bytes(b & 0xFF for b in v)) for h in r["headers"] for k, v in h.items()]
            out.append((r["topic"], r["partition"], r["offset"], key, value, hs))
    return out


def delivered(fn, ok_only=True):
    out = []
    for rq in fn.requests():
        if ok_only and not rq.ok:
            continue
        out.extend(kafka_records(rq))
    return out


def assigned_offsets(s):
    """{"topic-p": offset} from the last "assigned, reading from offset N" line per partition."""
    got = {}
    for m in re.finditer(r"(\S+-\d+): assigned, reading from (?:offset (\d+)|(.*))", s.log()):
        got[m.group(1)] = int(m.group(2)) if m.group(2) else m.group(3)
    return got


def test_kafka_event_byte_for_byte(tmp_path, fn, sluice, kafka):
    topic = new_topic(1)
    ts = 1700000000123
    kt.produce(kafka["KAFKA_BOOTSTRAP"], topic, [
        {"key": b"k1", "value": b'{"a":1}', "timestamp": ts,
         "headers": [("headerKey", b"header"), ("bin", b"\xc3\xa9\xff\x80\x7f\x00")]},
        {"key": None, "value": b"no key", "timestamp": ts + 1},
        {"key": b"gone", "value": None, "timestamp": ts + 2},
    ], partition=0)
    s = sluice(config(tmp_path, fn, [mapping(kafka, topic, "hook", "g-" + topic)]))
    wait_until(lambda: len(delivered(fn)) >= 3, JOIN_S, "3 records", proc=s)
    bodies = [rq.body.decode() for rq in fn.requests() if rq.ok]
    assert len(bodies) == 1, bodies
    servers = kafka["KAFKA_BOOTSTRAP"]
    want = ('{"eventSource":"SelfManagedKafka","bootstrapServers":"%s","records":{"%s-0":['
            '{"topic":"%s","partition":0,"offset":0,"timestamp":%d,"timestampType":"CREATE_TIME",'
            '"key":"azE=","value":"eyJhIjoxfQ==","headers":[{"headerKey":[104,101,97,100,101,'
            '114]},{"bin":[-61,-87,-1,-128,127,0]}]},'
            '{"topic":"%s","partition":0,"offset":1,"timestamp":%d,"timestampType":"CREATE_TIME",'
            '"value":"bm8ga2V5","headers":[]},'
            '{"topic":"%s","partition":0,"offset":2,"timestamp":%d,"timestampType":"CREATE_TIME",'
            '"key":"Z29uZQ==","headers":[]}]}}'
            % (servers, topic, topic, ts, topic, ts + 1, topic, ts + 2))
    assert bodies[0] == want


def test_kafka_commit_only_after_success_kill9_restart(tmp_path, fn, sluice, kafka):
    topic = new_topic(2)
    recs = [{"partition": i % 2, "value": "r%d" % i} for i in range(20)]
    kt.produce(kafka["KAFKA_BOOTSTRAP"], topic, recs)
    fn.set_default(Reply(500, body={"errorMessage": "not yet"}))
    cfg = config(tmp_path, fn, [mapping(kafka, topic, "hook", "g-" + topic, batch=5)])
    s = sluice(cfg)
    wait_until(lambda: fn.count() >= 2, JOIN_S, "failing invocations", proc=s)
    s.kill9()
    assert delivered(fn) == []
    fn.set_default(Reply(200))
    s.start()
    want = {(p, o) for p in (0, 1) for o in range(10)}
    wait_until(lambda: {(r[1], r[2]) for r in delivered(fn)} >= want, JOIN_S,
               "all 20 records after the restart", proc=s)
    got = [(r[1], r[2]) for r in delivered(fn)]
    assert sorted(set(got)) == sorted(want), "skipped: %r" % (want - set(got))
    assert len(got) == len(set(got)), "a record was delivered twice after success: %r" % got
    # the first run committed only where it started (a new group's TRIM_HORIZON: offset 0), so
    # the second one read from there
    assert assigned_offsets(s) == {"%s-0" % topic: 0, "%s-1" % topic: 0}, s.log()
    assert s.stop() == 0
    # a third run starts from the committed offsets: the end of both partitions
    n = fn.count()
    s.start()
    wait_until(lambda: len(assigned_offsets(s)) == 2, JOIN_S, "assignment", proc=s)
    assert assigned_offsets(s) == {"%s-0" % topic: 10, "%s-1" % topic: 10}, s.log()
    assert fn.count() == n


def test_kafka_kill9_after_success_before_commit_repeats_never_skips(tmp_path, fn, sluice, kafka):
    """kill -9 right after the function answered: the batch may come again, nothing is lost."""
    topic = new_topic(1)
    kt.produce(kafka["KAFKA_BOOTSTRAP"], topic, [{"value": "r%d" % i} for i in range(30)])
    answered = []

    def hook(rq):
        answered.append(rq)
        return Reply(200, delay=0.2)

    fn.set_hook(hook)
    cfg = config(tmp_path, fn, [mapping(kafka, topic, "hook", "g-" + topic, batch=10)])
    s = sluice(cfg)
    wait_until(lambda: len(answered) >= 1, JOIN_S, "the first invocation", proc=s)
    wait_until(lambda: fn.requests()[0].answered, 5, "its answer")
    s.kill9()
    first = {r[2] for r in delivered(fn)}
    fn.set_hook(None)
    s.start()
    wait_until(lambda: {r[2] for r in delivered(fn)} >= set(range(30)), JOIN_S,
               "every record", proc=s)
    again = [r[2] for rq in fn.requests()[len(answered):] for r in kafka_records(rq)]
    assert min(again) <= max(first) + 1, "a gap after the kill: first %r, then %r" % (
        sorted(first), again)


def test_kafka_poison_bisect_to_file_destination(tmp_path, fn, sluice, kafka):
    topic = new_topic(1)
    values = ["v%d" % i for i in range(8)]
    values[5] = "poison"
    kt.produce(kafka["KAFKA_BOOTSTRAP"], topic, [{"key": "k", "value": v} for v in values])

    def hook(rq):
        vals = [r[4] for r in kafka_records(rq)]
        return Reply(500, body={"errorMessage": "poison"}) if b"poison" in vals else None

    fn.set_hook(hook)
    dlq = tmp_path / "dlq"
    m = mapping(kafka, topic, "hook", "g-" + topic, batch=8, MaximumRetryAttempts=1,
                BisectBatchOnFunctionError=True, DestinationConfig=file_destination(dlq))
    s = sluice(config(tmp_path, fn, [m]))
    wait_until(lambda: len(destination_docs(dlq)) >= 1, JOIN_S + 20, "the on-failure record",
               proc=s)
    wait_until(lambda: len(delivered(fn)) >= 7, 20, "the good records", proc=s)
    good = sorted(r[2] for r in delivered(fn))
    assert good == [0, 1, 2, 3, 4, 6, 7], good
    docs = destination_docs(dlq)
    assert len(docs) == 1, docs
    d = docs[0]
    assert d["requestContext"]["condition"] == "RetryAttemptsExhausted", d
    info = d["KafkaBatchInfo"]
    assert info["batchSize"] == 1, info
    assert info["bootstrapServers"] == kafka["KAFKA_BOOTSTRAP"], info
    ri = info["recordsInfo"]["%s-0" % topic]
    assert ri["firstRecordOffset"] == "5" and ri["lastRecordOffset"] == "5", info
    assert s.stop() == 0
    s.start()
    wait_until(lambda: len(assigned_offsets(s)) == 1, JOIN_S, "assignment", proc=s)
    assert assigned_offsets(s) == {"%s-0" % topic: 8}, s.log()


def test_kafka_partial_batch_response_item_ids(tmp_path, fn, sluice, kafka):
    topic = new_topic(1)
    kt.produce(kafka["KAFKA_BOOTSTRAP"], topic, [{"value": "v%d" % i} for i in range(6)])
    failed_once = []

    def hook(rq):
        offs = [r[2] for r in kafka_records(rq)]
        if 3 in offs and not failed_once:
            failed_once.append(True)
            return Reply(200, body={"batchItemFailures": [
                {"itemIdentifier": "%s-0-3" % topic}]})
        return None

    fn.set_hook(hook)
    m = mapping(kafka, topic, "hook", "g-" + topic, batch=10,
                FunctionResponseTypes=["ReportBatchItemFailures"])
    s = sluice(config(tmp_path, fn, [m]))
    wait_until(lambda: fn.count() >= 2, JOIN_S, "the retry", proc=s)
    seq = [[r[2] for r in kafka_records(rq)] for rq in fn.requests()]
    assert seq[0] == [0, 1, 2, 3, 4, 5], seq
    assert seq[1] == [3, 4, 5], seq


def partitions_of(rq):
    return sorted({r[1] for r in kafka_records(rq)})


def test_kafka_batch_spans_partitions(tmp_path, fn, sluice, kafka):
    """AWS's Kafka batches hold several partitions (esm.md §3): records waiting in partitions
    with no batch in flight go out together, up to BatchSize, each partition in order."""
    topic = new_topic(4)
    kt.produce(kafka["KAFKA_BOOTSTRAP"], topic,
               [{"partition": i % 4, "value": "r%d" % i} for i in range(120)])
    m = mapping(kafka, topic, "hook", "g-" + topic, batch=50, MaximumBatchingWindowInSeconds=2)
    s = sluice(config(tmp_path, fn, [m]))
    wait_until(lambda: len(delivered(fn)) >= 120, JOIN_S, "120 records", proc=s)
    reqs = [rq for rq in fn.requests() if rq.ok]
    assert all(len(kafka_records(rq)) <= 50 for rq in reqs), [len(kafka_records(r)) for r in reqs]
    assert any(len(partitions_of(rq)) > 1 for rq in reqs), [partitions_of(r) for r in reqs]
    for rq in reqs:
        # one member per partition, keyed "<topic>-<partition>", holding only its records
        for key, recs in rq.json["records"].items():
            assert {"%s-%d" % (r["topic"], r["partition"]) for r in recs} == {key}, rq.json
    got = [(r[1], r[2]) for r in delivered(fn)]
    assert sorted(got) == sorted((p, o) for p in range(4) for o in range(30)), got
    for p in range(4):
        offs = [o for (q, o) in got if q == p]
        assert offs == sorted(offs), (p, offs)


def test_kafka_spanning_partial_response_resumes_each_partition(tmp_path, fn, sluice, kafka):
    """A partial batch response over several partitions: each partition resumes at its own
    lowest failed record; the other partitions' records are done."""
    topic = new_topic(2)
    kt.produce(kafka["KAFKA_BOOTSTRAP"], topic,
               [{"partition": p, "value": "p%d-%d" % (p, o)} for p in (0, 1) for o in range(3)])
    failed_once = []

    def hook(rq):
        if len(partitions_of(rq)) == 2 and not failed_once:
            failed_once.append(True)
            return Reply(200, body={"batchItemFailures": [
                {"itemIdentifier": {"partition": "%s-0" % topic, "offset": 1}}]})
        return None

    fn.set_hook(hook)
    m = mapping(kafka, topic, "hook", "g-" + topic, batch=10, MaximumBatchingWindowInSeconds=2,
                FunctionResponseTypes=["ReportBatchItemFailures"])
    s = sluice(config(tmp_path, fn, [m]))
    wait_until(lambda: fn.count() >= 2, JOIN_S, "the retry", proc=s)
    seq = [[(r[1], r[2]) for r in kafka_records(rq)] for rq in fn.requests()]
    assert failed_once, "the first batch did not span both partitions: %r" % seq
    assert sorted(seq[0]) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)], seq
    assert seq[1] == [(0, 1), (0, 2)], seq
    assert s.stop() == 0
    s.start()
    wait_until(lambda: len(assigned_offsets(s)) == 2, JOIN_S, "assignment", proc=s)
    assert assigned_offsets(s) == {"%s-0" % topic: 3, "%s-1" % topic: 3}, s.log()


def test_kafka_spanning_batch_exhausted_names_every_partition(tmp_path, fn, sluice, kafka):
    """A failed batch over two partitions makes one invocation record whose recordsInfo has a
    member per partition (esm.md §4.4), and both partitions' offsets move past it."""
    topic = new_topic(2)
    kt.produce(kafka["KAFKA_BOOTSTRAP"], topic,
               [{"partition": p, "value": "p%d-%d" % (p, o)} for p in (0, 1) for o in range(2)])
    fn.set_default(Reply(500, body={"errorMessage": "always"}))
    dlq = tmp_path / "dlq"
    m = mapping(kafka, topic, "hook", "g-" + topic, batch=10, MaximumBatchingWindowInSeconds=2,
                MaximumRetryAttempts=0, DestinationConfig=file_destination(dlq))
    s = sluice(config(tmp_path, fn, [m]))
    wait_until(lambda: len(destination_docs(dlq)) >= 1, JOIN_S, "the on-failure record", proc=s)
    assert fn.count() == 1, [partitions_of(rq) for rq in fn.requests()]
    assert partitions_of(fn.requests()[0]) == [0, 1]
    docs = destination_docs(dlq)
    assert len(docs) == 1, docs
    info = docs[0]["KafkaBatchInfo"]
    assert info["batchSize"] == 4, info
    ri = info["recordsInfo"]
    assert sorted(ri) == ["%s-0" % topic, "%s-1" % topic], info
    for key in ri:
        assert (ri[key]["firstRecordOffset"], ri[key]["lastRecordOffset"]) == ("0", "1"), info
    payload = docs[0]["payload"]
    assert sorted(payload["records"]) == sorted(ri), payload
    assert s.stop() == 0
    s.start()
    wait_until(lambda: len(assigned_offsets(s)) == 2, JOIN_S, "assignment", proc=s)
    assert assigned_offsets(s) == {"%s-0" % topic: 2, "%s-1" % topic: 2}, s.log()


def test_kafka_stalled_fetcher_is_woken(tmp_path, fn, sluice, kafka):
    """librdkafka 2.0 stops fetching a partition whose queue holds queued.min.messages and looks
    again only when its broker thread wakes, up to a second later. With tiny fetches (one record
    batch of 10 each) and queued.min.messages 1 every fetch stalls the partition: 400 records take
    about 40 stalls, 40 s or more if each waited for librdkafka's second. sluice sees the
    partition queue stay empty while the broker has more and wakes the fetcher, so they all
    arrive well inside the deadline."""
    topic = new_topic(1)
    n = 400
    # record batches of 10: a fetch of at most 1024 bytes returns one of them
    kt.produce(kafka["KAFKA_BOOTSTRAP"], topic, [{"value": "r%04d" % i} for i in range(n)],
               conf={"batch.num.messages": "10", "linger.ms": "0"})
    m = mapping(kafka, topic, "hook", "g-" + topic, batch=100, MaximumBatchingWindowInSeconds=0)
    m["rdkafka"].update({"queued.min.messages": "1", "fetch.max.bytes": "1024",
                         "message.max.bytes": "1000", "max.partition.fetch.bytes": "1024",
                         "fetch.error.backoff.ms": "5000"})
    s = sluice(config(tmp_path, fn, [m]))
    wait_until(lambda: len(assigned_offsets(s)) == 1, JOIN_S, "assignment", proc=s)
    wait_until(lambda: len(delivered(fn)) >= n, 25, "every record despite stalled fetches",
               proc=s)
    got = [r[2] for r in delivered(fn)]
    assert got == list(range(n)), got


def test_kafka_two_processes_share_the_group(tmp_path, fn, sluice, kafka):
    topic = new_topic(4)
    group = "g-" + topic
    cfg = config(tmp_path, fn, [mapping(kafka, topic, "hook", group, batch=50)])
    a = sluice(cfg, name="a")
    wait_until(lambda: len(assigned_offsets(a)) == 4, JOIN_S, "a owns 4 partitions", proc=a)
    b = sluice(cfg, name="b")
    wait_until(lambda: len(assigned_offsets(b)) >= 1, JOIN_S, "b joins", proc=b)
    wait_until(lambda: "revoked" in a.log(), JOIN_S, "a gives partitions up", proc=a)

    def owners():
        pa = set(re.findall(r"(\S+-\d+): assigned", a.log().split("revoked")[-1]))
        pb = set(re.findall(r"(\S+-\d+): assigned", b.log()))
        return pa, pb

    wait_until(lambda: len(owners()[0] | owners()[1]) == 4 and owners()[0] and owners()[1],
               JOIN_S, "the split", proc=a)
    pa, pb = owners()
    assert not (pa & pb), (pa, pb)
    n = 400
    kt.produce(kafka["KAFKA_BOOTSTRAP"], topic, [{"value": "r%d" % i, "partition": i % 4}
                                                 for i in range(n)])
    wait_until(lambda: len(delivered(fn)) >= n, 60, "every record")
    got = [(r[1], r[2]) for r in delivered(fn)]
    assert len(set(got)) == n, "lost: %d of %d" % (n - len(set(got)), n)
    assert len(got) == n, "duplicates without a rebalance: %r" % sorted(
        x for x in set(got) if got.count(x) > 1)


def test_kafka_validate_errors(tmp_path, kafka):
    """`sluice validate` names the key and what is allowed (no broker needed, but the config
    names the mock's servers)."""
    m = mapping(kafka, "t", "hook", "g", rdkafka={"no.such.prop": "1"})
    cfg = base_config(tmp_path, {"hook": http_fn("http://127.0.0.1:1/")}, [m])
    path = write_config(tmp_path, cfg)
    r = subprocess.run([sluice_bin(), "validate", path], capture_output=True, text=True)
    assert r.returncode != 0
    assert "rdkafka.no.such.prop" in r.stderr + r.stdout, r.stderr + r.stdout
