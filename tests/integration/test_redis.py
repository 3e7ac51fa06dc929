"""The Redis Streams source (issue 13 item 1) against the redis-server of tests/services
(SERVICES=redis) and redis-servers of the tests' own: the event a function receives, field by
field; an entry acknowledged (XACK) only once the function succeeded (XPENDING read back while
the function holds its batch); a failing function retried, bisected and sent to the on-failure
destination as for Kinesis, a partial batch response naming entries by id; a consumer SIGKILLed
with entries pending, whose entries a second process claims after claim_idle (XAUTOCLAIM, and
XPENDING + XCLAIM on a server without XAUTOCLAIM) with nothing lost; SIGKILL mid-stream, then a
restart: every entry arrives at least once."""

import base64
import json
import os
import subprocess
import threading
import time
import uuid

from fnserver import Reply
from helpers import (base_config, destination_docs, exit_counters, http_fn, run_until_idle,
                     wait_until)
from redisutil import RedisServer, call, redis_server_bin, services_redis

FN = "/fn"


def new_stream():
    return "sluice-src-" + uuid.uuid4().hex[:12]


def xadd(port, stream, n, prefix="e", fields=None):
    """Adds n entries (one connection, pipelined replies read in order); returns their ids."""
    ids = []
    for i in range(n):
        f = fields(i) if fields else {"n": str(i), "text": "%s%d" % (prefix, i)}
        args = ["XADD", stream, "*"]
        for k, v in f.items():
            args += [k, v]
        ids.append(call(port, *args).decode())
    return ids


def mapping(port, stream, fn="hook", batch=10, **extra):
    m = {"EventSourceArn": "redis://127.0.0.1:%d/0/%s" % (port, stream), "FunctionName": fn,
         "BatchSize": batch, "StartingPosition": "TRIM_HORIZON", "block_time": "200ms"}
    m.update(extra)
    return m


def config(tmp_path, fn, port, stream, **mkw):
    return base_config(tmp_path, {"hook": http_fn(fn.url + FN)}, [mapping(port, stream, **mkw)])


def event_ids(rq):
    return [r["kinesis"]["sequenceNumber"] for r in (rq.json or {}).get("Records", [])]


def delivered_ids(fn):
    return [i for rq in fn.requests() if rq.ok for i in event_ids(rq)]


def pending(port, stream, group):
    """XPENDING's count for group (0 without a group)."""
    try:
        return call(port, "XPENDING", stream, group)[0]
    except Exception:  # noqa: BLE001 (NOGROUP before the group exists)
        return 0


def test_event_shape(tmp_path, fn, sluice):
    _, port = services_redis()
    stream = new_stream()
    fields = [{"order": "1", "note": 'say "hi"\n'}, {"order": "2", "city": "Zürich"},
              {"single": ""}, {"esc": "abcdefgh\\ijklmno\x01pq", "tab": "eight b\t"}]
    ids = xadd(port, stream, 4, fields=lambda i: fields[i])
    cfg = config(tmp_path, fn, port, stream, batch=10)
    s = run_until_idle(sluice, cfg)
    reqs = [rq for rq in fn.requests() if rq.ok]
    assert len(reqs) == 1, fn.requests()
    recs = reqs[0].json["Records"]
    assert [r["kinesis"]["sequenceNumber"] for r in recs] == ids
    for r, eid, f in zip(recs, ids, fields):
        assert set(r) == {"kinesis", "eventSource", "eventVersion", "eventID", "eventName",
                          "eventSourceARN", "awsRegion"}, r
        k = r["kinesis"]
        assert set(k) == {"kinesisSchemaVersion", "partitionKey", "sequenceNumber", "data",
                          "approximateArrivalTimestamp"}, k
        assert k["kinesisSchemaVersion"] == "1.0"
        assert k["partitionKey"] == stream
        assert k["sequenceNumber"] == eid
        data = base64.b64decode(k["data"])
        assert json.loads(data) == f
        assert list(json.loads(data)) == list(f)  # the entry's field order
        assert abs(k["approximateArrivalTimestamp"] - int(eid.split("-")[0]) / 1000.0) < 0.002
        assert r["eventSource"] == "sluice:redis"
        assert r["eventVersion"] == "1.0"
        assert r["eventName"] == "sluice:redis:record"
        assert r["eventID"] == "%s:%s" % (stream, eid)
        assert r["eventSourceARN"] == "redis://127.0.0.1:%d/0/%s" % (port, stream)
        assert r["awsRegion"] == "us-east-1"
    ex = exit_counters(s)
    assert ex.get("delivered") == 4
    assert ex.get("lag") == 0 and ex.get("lag_unit") == "records", ex  # XINFO GROUPS' lag
    group = call(port, "XINFO", "GROUPS", stream)[0]
    info = dict(zip(group[0::2], group[1::2]))
    assert info[b"pending"] == 0 and info[b"last-delivered-id"].decode() == ids[-1], info


def test_xack_only_after_the_function_succeeded(tmp_path, fn, sluice):
    _, port = services_redis()
    stream = new_stream()
    group = "g-" + uuid.uuid4().hex[:8]
    ids = xadd(port, stream, 5)
    release = threading.Event()

    def hold(rq):
        release.wait(30)
        return Reply(200)

    fn.set_hook(hold)
    s = sluice(config(tmp_path, fn, port, stream, batch=5, consumer_group=group))
    try:
        wait_until(lambda: fn.count() >= 1, 10, "the batch at the function", proc=s)
        # the function holds the batch: its five entries are delivered and all still pending
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            assert pending(port, stream, group) == 5
            time.sleep(0.05)
        detail = call(port, "XPENDING", stream, group, "-", "+", 10)
        assert [e[0].decode() for e in detail] == ids
        release.set()
        wait_until(lambda: pending(port, stream, group) == 0, 10, "the XACK after success",
                   proc=s)
        assert delivered_ids(fn) == ids
    finally:
        release.set()
    assert s.stop() == 0


def test_failing_function_retried_then_on_failure(tmp_path, fn, sluice):
    """As for Kinesis: a function error is retried MaximumRetryAttempts times, bisected, and the
    record that still fails goes to the on-failure destination (its KinesisBatchInfo naming the
    stream and the entry id); the rest is delivered; every entry is acknowledged once done."""
    _, port = services_redis()
    stream = new_stream()
    group = "g-" + uuid.uuid4().hex[:8]
    ids = xadd(port, stream, 4, fields=lambda i: {"v": "bad" if i == 2 else "ok%d" % i})
    bad = ids[2]

    def hook(rq):
        return Reply(500, function_error="Unhandled") if bad in event_ids(rq) else Reply(200)

    fn.set_hook(hook)
    dest = tmp_path / "failed"
    cfg = config(tmp_path, fn, port, stream, batch=4, consumer_group=group,
                 MaximumRetryAttempts=1, BisectBatchOnFunctionError=True,
                 DestinationConfig={"OnFailure": {"Destination": "file://%s" % dest}})
    s = run_until_idle(sluice, cfg)
    assert sorted(delivered_ids(fn)) == sorted(ids[:2] + ids[3:])
    docs = destination_docs(str(dest))
    assert len(docs) == 1, docs
    bi = docs[0]["KinesisBatchInfo"]
    assert bi["shardId"] == stream
    assert bi["startSequenceNumber"] == bad and bi["endSequenceNumber"] == bad
    assert bi["batchSize"] == 1
    assert bi["streamArn"] == "redis://127.0.0.1:%d/0/%s" % (port, stream)
    assert docs[0]["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert exit_counters(s).get("OnFailureDestinationDeliveredEventCount") == 1
    assert pending(port, stream, group) == 0


def test_partial_batch_response_by_entry_id(tmp_path, fn, sluice):
    _, port = services_redis()
    stream = new_stream()
    group = "g-" + uuid.uuid4().hex[:8]
    ids = xadd(port, stream, 4)
    state = {"failed_once": False}

    def hook(rq):
        got = event_ids(rq)
        if ids[1] in got and not state["failed_once"]:
            state["failed_once"] = True
            return Reply(200, body={"batchItemFailures": [{"itemIdentifier": ids[1]}]})
        return Reply(200, body={"batchItemFailures": []})

    fn.set_hook(hook)
    cfg = config(tmp_path, fn, port, stream, batch=4, consumer_group=group,
                 FunctionResponseTypes=["ReportBatchItemFailures"])
    run_until_idle(sluice, cfg)
    got = [event_ids(rq) for rq in fn.requests()]
    # the first batch, then from the entry named on: AWS's rule for streams
    assert got == [ids, ids[1:]], got
    assert pending(port, stream, group) == 0


def _own_redis_without_xautoclaim(tmp_path):
    """A redis-server of the test's own on which XAUTOCLAIM does not exist (as before 6.2)."""
    srv = RedisServer(tmp_path / "redis-old", durable=False)
    args = [redis_server_bin(), "--port", str(srv.port), "--bind", "127.0.0.1", "--save", "",
            "--dir", srv.dir, "--logfile", os.path.join(srv.dir, "redis.log"), "--daemonize",
            "no", "--appendonly", "no", "--rename-command", "XAUTOCLAIM", ""]
    srv.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(srv._ready, 10, "redis-server on port %d" % srv.port)
    return srv


def _reclaim(tmp_path, fn, sluice, port, tag):
    from fnserver import FnServer
    stream = new_stream()
    group = "g-" + uuid.uuid4().hex[:8]
    ids = xadd(port, stream, 30)
    hang = FnServer(mode="http", default=Reply(hang=True)).start()
    try:
        cfg_a = base_config(tmp_path / "a", {"hook": http_fn(hang.url + FN, timeout=60)},
                            [mapping(port, stream, batch=10, consumer_group=group,
                                     consumer_name="a", claim_idle="1s")])
        (tmp_path / "a").mkdir()
        a = sluice(cfg_a, name="a-" + tag)
        wait_until(lambda: hang.count() >= 1, 10, "A's first batch", proc=a)
        # A holds what its budget let it read (two batches), pending for it
        wait_until(lambda: pending(port, stream, group) >= 10, 10, "A holding entries", proc=a)
        a.kill9()
    finally:
        hang.stop()
    held_by_a = [e[0].decode() for e in call(port, "XPENDING", stream, group, "-", "+", 100)]
    assert held_by_a and len(held_by_a) < len(ids)
    # B is another consumer of the group: it reads the rest and claims what A left
    cfg_b = base_config(tmp_path / "b", {"hook": http_fn(fn.url + FN)},
                        [mapping(port, stream, batch=10, consumer_group=group, consumer_name="b",
                                 claim_idle="1s")])
    (tmp_path / "b").mkdir()
    b = sluice(cfg_b, name="b-" + tag)
    wait_until(lambda: set(delivered_ids(fn)) == set(ids), 20, "B delivering A's entries",
               proc=b)
    wait_until(lambda: pending(port, stream, group) == 0, 10, "B's XACKs", proc=b)
    assert b.stop() == 0
    assert sorted(delivered_ids(fn)) == sorted(ids)  # each once: A's never succeeded
    assert "claimed" in b.log()
    return b.log()


def test_sigkilled_consumer_entries_claimed_by_another(tmp_path, fn, sluice):
    _, port = services_redis()
    _reclaim(tmp_path, fn, sluice, port, "xautoclaim")


def test_sigkilled_consumer_entries_claimed_without_xautoclaim(tmp_path, fn, sluice):
    srv = _own_redis_without_xautoclaim(tmp_path)
    try:
        log = _reclaim(tmp_path, fn, sluice, srv.port, "xpending")
        assert "has no XAUTOCLAIM" in log
    finally:
        srv.stop()


def test_sigkill_mid_stream_then_restart_every_entry_at_least_once(tmp_path, fn, sluice):
    """Entries are added while sluice reads; it is SIGKILLed with batches in flight and entries
    read but not acknowledged, then started again (the same consumer name: its own pending
    entries are read again first): every entry reaches the function at least once, and in the
    end none is pending."""
    _, port = services_redis()
    stream = new_stream()
    group = "g-" + uuid.uuid4().hex[:8]
    fn.set_default(Reply(200, delay=0.02))
    cfg = config(tmp_path, fn, port, stream, batch=20, consumer_group=group,
                 consumer_name="restarted")
    ids = xadd(port, stream, 200)
    stop = threading.Event()
    more = []

    def produce():
        i = 0
        while not stop.is_set() and i < 600:
            more.extend(xadd(port, stream, 10, prefix="m%d-" % i))
            i += 1
            time.sleep(0.01)

    t = threading.Thread(target=produce)
    t.start()
    try:
        s = sluice(cfg, name="first")
        wait_until(lambda: len(delivered_ids(fn)) >= 150, 20, "some batches delivered", proc=s)
        s.kill9()
        killed_at = len(set(delivered_ids(fn)))
        s2 = sluice(cfg, name="second")
        time.sleep(0.3)
    finally:
        stop.set()
        t.join()
    want = set(ids) | set(more)
    wait_until(lambda: want <= set(delivered_ids(fn)), 60, "every entry delivered", proc=s2)
    wait_until(lambda: pending(port, stream, group) == 0, 10, "nothing pending", proc=s2)
    assert s2.stop() == 0
    assert killed_at < len(want)


def test_stream_deleted_then_made_again(tmp_path, fn, sluice):
    """A stream deleted while it is read ends its partition; once a stream of that name exists
    again, it is read from its start."""
    _, port = services_redis()
    stream = new_stream()
    group = "g-" + uuid.uuid4().hex[:8]
    first = xadd(port, stream, 3)
    s = sluice(config(tmp_path, fn, port, stream, batch=10, consumer_group=group))
    wait_until(lambda: set(delivered_ids(fn)) == set(first), 10, "the first stream's entries",
               proc=s)
    wait_until(lambda: pending(port, stream, group) == 0, 10, "their XACK", proc=s)
    call(port, "DEL", stream)
    wait_until(lambda: "was deleted" in s.log(), 10, "the partition's end", proc=s)
    second = xadd(port, stream, 4, prefix="again")
    wait_until(lambda: set(second) <= set(delivered_ids(fn)), 15, "the new stream's entries",
               proc=s)
    wait_until(lambda: pending(port, stream, group) == 0, 10, "their XACK", proc=s)
    assert s.stop() == 0
    assert sorted(delivered_ids(fn)) == sorted(first + second)


def test_redis_restarted_mid_stream_nothing_lost(tmp_path, fn, sluice):
    """Redis (durable: a restart is an outage, not a loss) stopped while entries are read and
    delivered, then started again on the same port: every entry is delivered at least once,
    none stays pending, one line says the outage and one its end (three connections), and the
    password is never logged."""
    srv = RedisServer(tmp_path / "redis", password="pw-hunter2").start()
    stream = "restarted"
    group = "g-restart"
    try:
        ids = [call(srv.port, "XADD", stream, "*", "n", str(i),
                    password=srv.password).decode() for i in range(300)]
        fn.set_default(Reply(200, delay=0.02))
        cfg = base_config(tmp_path, {"hook": http_fn(fn.url + FN)},
                          [{"EventSourceArn": "redis://:pw-hunter2@127.0.0.1:%d/0/%s"
                            % (srv.port, stream), "FunctionName": "hook", "BatchSize": 20,
                            "StartingPosition": "TRIM_HORIZON", "block_time": "200ms",
                            "consumer_group": group, "consumer_name": "c"}])
        s = sluice(cfg)
        wait_until(lambda: len(delivered_ids(fn)) >= 60, 15, "some batches", proc=s)
        srv.stop()
        time.sleep(0.5)  # down for a while: reads and XACKs fail meanwhile
        srv.start()
        wait_until(lambda: set(ids) <= set(delivered_ids(fn)), 30, "every entry", proc=s)
        wait_until(lambda: call(srv.port, "XPENDING", stream, group,
                                password=srv.password)[0] == 0, 15, "nothing pending", proc=s)
        assert s.stop() == 0
        log = s.log()
        assert "pw-hunter2" not in log
        # one line for the outage, one for its end, whatever the connections
        assert log.count("reconnecting with backoff") == 1, log
        assert log.count("connected again") == 1, log
    finally:
        srv.stop()


def test_filter_on_the_entry_fields(tmp_path, fn, sluice):
    """FilterCriteria match the entry's fields under "data": only matching entries reach the
    function, and every entry, filtered out or not, is acknowledged."""
    _, port = services_redis()
    stream = new_stream()
    group = "g-" + uuid.uuid4().hex[:8]
    ids = xadd(port, stream, 6, fields=lambda i: {"kind": "keep" if i % 2 else "drop",
                                                  "n": str(i)})
    cfg = config(tmp_path, fn, port, stream, batch=10, consumer_group=group,
                 FilterCriteria={"Filters": [{"Pattern": json.dumps(
                     {"data": {"kind": ["keep"]}})}]})
    s = run_until_idle(sluice, cfg)
    assert delivered_ids(fn) == ids[1::2]
    ex = exit_counters(s)
    assert ex.get("FilteredOutEventCount") == 3 and ex.get("delivered") == 3, ex
    assert pending(port, stream, group) == 0


def test_group_destroyed_is_created_again(tmp_path, fn, sluice):
    """A consumer group destroyed while it is read is created again at StartingPosition
    (TRIM_HORIZON: the stream again from its start, so nothing added meanwhile is missed), with a
    warning."""
    _, port = services_redis()
    stream = new_stream()
    group = "g-" + uuid.uuid4().hex[:8]
    first = xadd(port, stream, 3)
    s = sluice(config(tmp_path, fn, port, stream, batch=10, consumer_group=group))
    wait_until(lambda: set(delivered_ids(fn)) == set(first), 10, "the first entries", proc=s)
    wait_until(lambda: pending(port, stream, group) == 0, 10, "their XACK", proc=s)
    assert call(port, "XGROUP", "DESTROY", stream, group) == 1
    second = xadd(port, stream, 2, prefix="after")
    wait_until(lambda: set(second) <= set(delivered_ids(fn)), 15, "the entries added after",
               proc=s)
    wait_until(lambda: pending(port, stream, group) == 0, 10, "their XACK", proc=s)
    assert s.stop() == 0
    assert "creating the group again" in s.log()
    assert set(delivered_ids(fn)) == set(first + second)


def test_sigterm_drain_acknowledges_what_it_delivered(tmp_path, fn, sluice):
    """SIGTERM while a batch is at the function: the drain lets it finish, and its XACK reaches
    Redis before the process exits (the XACK connection outlives the source's stop until it is
    answered), so a restart does not deliver it again."""
    _, port = services_redis()
    stream = new_stream()
    group = "g-" + uuid.uuid4().hex[:8]
    ids = xadd(port, stream, 5)
    fn.set_default(Reply(200, delay=0.5))
    s = sluice(config(tmp_path, fn, port, stream, batch=5, consumer_group=group))
    wait_until(lambda: fn.count() >= 1, 10, "the batch at the function", proc=s)
    assert s.stop() == 0
    assert delivered_ids(fn) == ids
    assert pending(port, stream, group) == 0


def test_starting_positions_of_a_new_group(tmp_path, fn, sluice):
    """A new group starts at StartingPosition: AT_TIMESTAMP at the first entry of that second
    (explicit ids, so no clock is waited for), LATEST after the entries already there."""
    _, port = services_redis()
    stream = new_stream()
    for ms in (1000, 1999, 2000, 2500, 3000):
        call(port, "XADD", stream, "%d-0" % ms, "at", str(ms))
    cfg = config(tmp_path, fn, port, stream, consumer_group="g-at",
                 StartingPosition="AT_TIMESTAMP", StartingPositionTimestamp=2)
    run_until_idle(sluice, cfg)
    assert delivered_ids(fn) == ["2000-0", "2500-0", "3000-0"]
    fn.clear()
    s = sluice(config(tmp_path, fn, port, stream, consumer_group="g-latest",
                      StartingPosition="LATEST"))
    # the group exists (made at "$") before anything more is added
    wait_until(lambda: len(call(port, "XINFO", "GROUPS", stream)) == 2, 10, "the LATEST group",
               proc=s)
    new = xadd(port, stream, 2, prefix="late")
    wait_until(lambda: delivered_ids(fn) == new, 10, "the entries added after the start",
               proc=s)
    assert s.stop() == 0
