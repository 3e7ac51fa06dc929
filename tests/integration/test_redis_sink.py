"""The redis:// sink as a mapping's on-failure destination (issue 13 item 4, issue 12 item 5):
failed records land in a Redis stream (XADD, field "data") or list (RPUSH) as the same
invocation record the other destinations write; Redis down, then restarted on the same port:
the record is retried until Redis took it, the checkpoint held until then, nothing lost; the
password in the URL never logged. Against tests/services' redis-server (SERVICES=redis) and
redis-servers of the tests' own (redisutil.RedisServer) for the outages."""

import json
import os
import time
import uuid

import pytest

from fnserver import Reply
from helpers import (base_config, check_invocation_record, checkpoint_positions, exit_counters,
                     file_mapping, http_fn, offsets_of, run_until_idle, wait_until, write_lines)
from redisutil import RedisServer, call, services_redis, xrange_entries

FN = "/fn"


def failing_cfg(tmp_path, fn, log, destination, batch=2, **mkw):
    m = file_mapping(log, "hook", batch=batch, MaximumRetryAttempts=0, **mkw)
    m["DestinationConfig"] = {"OnFailure": {"Destination": destination}}
    return base_config(tmp_path, {"hook": http_fn(fn.url + FN)}, [m])


def test_failed_records_land_in_a_stream(tmp_path, fn, sluice):
    _, port = services_redis()
    stream = "sluice-dlq-" + uuid.uuid4().hex[:12]
    log = tmp_path / "in.log"
    lines = ["r0", "r1", "r2", "r3"]
    write_lines(log, lines)
    fn.set_default(Reply(500))
    config = failing_cfg(tmp_path, fn, log, "redis://127.0.0.1:%d/0/%s" % (port, stream))
    t0 = time.time()
    s = run_until_idle(sluice, config)
    entries = xrange_entries(port, stream)
    assert len(entries) == 2, entries
    offs = offsets_of(lines)
    for (eid, fields), recs in zip(entries, [list(zip(offs[:2], lines[:2])),
                                             list(zip(offs[2:], lines[2:]))]):
        assert set(fields) == {b"data"}, fields
        doc = json.loads(fields[b"data"])
        errs = check_invocation_record(doc, log, recs, "RetryAttemptsExhausted", invoke_count=1,
                                       status=500, function_error="Unhandled", now=t0)
        assert not errs, "\n".join(errs) + "\n" + fields[b"data"][:2000].decode()
    assert exit_counters(s).get("OnFailureDestinationDeliveredEventCount") == 4
    assert list(checkpoint_positions(tmp_path / "state").values()) == [os.path.getsize(log)]


def test_failed_records_land_in_a_list_in_another_database(tmp_path, fn, sluice):
    _, port = services_redis()
    name = "sluice-dlq-" + uuid.uuid4().hex[:12]
    log = tmp_path / "in.log"
    lines = ["l0", "l1", "l2"]
    write_lines(log, lines)
    fn.set_default(Reply(500))
    config = failing_cfg(tmp_path, fn, log, "redis://127.0.0.1:%d/3/list/%s" % (port, name),
                         batch=3)
    run_until_idle(sluice, config)
    assert call(port, "EXISTS", name) == 0  # database 0 has nothing
    got = call(port, "EVAL", "redis.call('SELECT', 3); return redis.call('LRANGE', KEYS[1], 0, -1)",
               1, name)
    assert len(got) == 1, got
    errs = check_invocation_record(json.loads(got[0]), log, list(zip(offsets_of(lines), lines)),
                                   "RetryAttemptsExhausted", invoke_count=1, status=500)
    assert not errs, errs


def test_redis_down_then_restarted_nothing_lost(tmp_path, fn, sluice):
    """Redis is not there when the first record fails, comes up, takes it, is stopped while
    more records fail and is started again on the same port: every failed record's document is
    in the stream exactly once, and the checkpoint never moved past a record before Redis had
    its document."""
    # durable: a restart is an outage, not a loss
    srv = RedisServer(tmp_path / "redis", password="pw-hunter2")
    stream = "dlq"
    log = tmp_path / "in.log"
    write_lines(log, ["bad0"])
    fn.set_hook(lambda rq: Reply(500) if any(ln.startswith(b"bad")
                                             for _, _, ln in rq.records()) else None)
    config = failing_cfg(tmp_path, fn, log,
                         "redis://:pw-hunter2@127.0.0.1:%d/0/%s" % (srv.port, stream), batch=1)
    s = sluice(config, args=["--log-format", "json"])
    try:
        wait_until(lambda: fn.count() >= 1, 10, "the failing invocation", proc=s)
        # Redis is down: the record waits, the checkpoint stays before it
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            assert all(p == 0 for p in checkpoint_positions(tmp_path / "state").values())
            assert s.poll() is None, s.log_tail()
            time.sleep(0.05)
        srv.start()
        size1 = os.path.getsize(log)
        wait_until(lambda: list(checkpoint_positions(tmp_path / "state").values()) == [size1],
                   15, "the checkpoint after bad0", proc=s)
        srv.stop()
        with open(log, "a") as f:
            f.write("good1\nbad2\nbad3\n")
        size2 = os.path.getsize(log)
        wait_until(lambda: fn.count() >= 3, 10, "the invocations while Redis is down", proc=s)
        time.sleep(0.5)  # Redis stays down for a while: several attempts fail
        assert all(p < size2 for p in checkpoint_positions(tmp_path / "state").values())
        srv.start()
        wait_until(lambda: list(checkpoint_positions(tmp_path / "state").values()) == [size2],
                   20, "the checkpoint at the end", proc=s)
        assert s.stop() == 0
        entries = xrange_entries(srv.port, stream, password=srv.password)
        got = [json.loads(f[b"data"]) for _, f in entries]
        lines = [d["KinesisBatchInfo"]["startSequenceNumber"] for d in got]
        # bad0, bad2, bad3 each exactly once (at-least-once allows a repeat only for a write
        # whose answer was lost; none was in flight when Redis stopped here)
        assert len(got) == 3, json.dumps(got)[:3000]
        assert len(set(lines)) == 3, lines
        log_text = s.log()
        assert "pw-hunter2" not in log_text
        assert "reconnecting with backoff" in log_text
    finally:
        if s.poll() is None:
            s.kill9()
        srv.stop()
