"""Delivery streams are durable: a put is answered only once its records are fsynced in the
stream's spool (state_dir/streams/<name>/), so a SIGKILL right after PutRecordBatch answered loses
none of them (they are delivered after the restart); a segment file torn between runs is
quarantined and reported, the good records delivered, and sluice keeps running; past
spool_max_bytes puts are refused with ServiceUnavailableException ("Slow down.") and nothing is
lost once deliveries free room; and after a clean restart nothing delivered is delivered again.
Clients: Debian's AWS CLI (/usr/bin/aws) and boto3, unchanged but for --endpoint-url; sluice
listens on port 0 and the tests read the port from its log."""

import glob
import json
import os
import re
import signal

import helpers
from test_firehose import aws, b64, boto3_client, objects, stream_conf


def config(tmp_path, out, interval=900, size_mb=128, **stream_extra):
    conf = stream_conf(out, size_mb=size_mb, interval=interval)
    conf.update(stream_extra)
    return {"state_dir": str(tmp_path / "state"), "region": "us-east-1",
            "listen": "127.0.0.1:0", "stats_interval": "1s", "delivery_streams": [conf]}


def endpoint(s):
    """The URL of this run of s (its port is picked anew at each start)."""
    port = helpers.wait_until(
        lambda: (re.search(r"listening on 127\.0\.0\.1:0 \(port (\d+)\)", s.log()) or [0, 0])[1],
        what="sluice's listening line", proc=s)
    return "http://127.0.0.1:%s" % port


def lines_of(out, final=True):
    """Every line of every object under out, as a list (repeats kept); final: nothing is being
    written any more (a temporary file is a failure, else skipped)."""
    got = []
    for data in objects(out, final=final).values():
        got.extend(data.decode().splitlines())
    return got


def test_sigkill_after_ack_loses_nothing(sluice, tmp_path):
    """PutRecordBatch answered, then SIGKILL before anything is delivered (900 s interval):
    after the restart every acknowledged record is delivered."""
    out = tmp_path / "out"
    s = sluice(config(tmp_path, out), args=["--log-format", "json"])
    url = endpoint(s)
    acked = []
    for i in range(3):
        recs = ["kill-%d-%03d" % (i, j) for j in range(100)]
        r = aws(tmp_path, url, "put-record-batch", "--delivery-stream-name", "clicks",
                "--records", json.dumps([{"Data": b64(x + "\n")} for x in recs]))
        assert r.returncode == 0, r.stderr
        ans = json.loads(r.stdout)
        assert ans["FailedPutCount"] == 0
        acked.extend(recs)
    s.kill9()
    assert objects(out) == {}  # nothing was delivered before the kill
    assert glob.glob(str(tmp_path / "state" / "streams" / "clicks" / "seg-*.spool"))
    s.start()
    endpoint(s)
    assert "300 records left by the previous run" in s.log()
    assert s.stop() == 0, s.log_tail()
    got = lines_of(out)
    assert set(got) == set(acked)  # at least once: none lost
    assert len(got) == len(acked)  # and here exactly once (nothing was released before the kill)
    assert sorted(got) == got  # in the order they were put


def test_torn_spool_file_quarantined(sluice, tmp_path):
    """A segment file cut mid-frame between runs (a torn write): sluice starts, says so, moves the
    torn bytes to a quarantine file, delivers the good records and keeps running."""
    out = tmp_path / "out"
    s = sluice(config(tmp_path, out), args=["--log-format", "json"])
    fh = boto3_client(endpoint(s))
    put = ["torn-%03d" % j for j in range(50)]
    ans = fh.put_record_batch(DeliveryStreamName="clicks",
                              Records=[{"Data": (x + "\n").encode()} for x in put])
    assert ans["FailedPutCount"] == 0
    s.kill9()
    segs = sorted(glob.glob(str(tmp_path / "state" / "streams" / "clicks" / "seg-*.spool")))
    assert segs
    size = os.path.getsize(segs[-1])
    with open(segs[-1], "r+b") as f:
        f.truncate(size - 5)  # the last frame loses its last bytes
    s.start()
    endpoint(s)
    helpers.wait_until(lambda: "torn tail" in s.log(), what="the torn tail reported", proc=s)
    assert glob.glob(segs[-1] + ".quarantine")
    assert s.poll() is None  # running, not crashed
    assert s.stop() == 0, s.log_tail()
    assert lines_of(out) == put[:-1]  # the good records, once; the torn one is gone
    # and the next start is clean: no crash loop, nothing quarantined again, nothing repeated
    s.start()
    endpoint(s)
    assert "torn tail" not in s.log()
    assert s.stop() == 0, s.log_tail()
    assert lines_of(out) == put[:-1]


def test_backpressure_at_quota(sluice, tmp_path):
    """A 64 KiB spool (the stream's own spool_max_bytes): PutRecordBatch past it answers every
    record ServiceUnavailableException "Slow down." with nothing stored; what the spool holds is
    delivered at once so room comes back, and the records sent again are all delivered, once."""
    out = tmp_path / "out"
    s = sluice(config(tmp_path, out, size_mb=1, spool_max_bytes="64KiB"),
               args=["--log-format", "json"])
    fh = boto3_client(endpoint(s))
    pending = ["%04d" % i + "q" * 995 for i in range(200)]  # 1,000 bytes with the newline
    accepted = []
    throttled = 0
    for _ in range(40):
        if not pending:
            break
        batch, pending = pending[:20], pending[20:]
        ans = fh.put_record_batch(DeliveryStreamName="clicks",
                                  Records=[{"Data": (x + "\n").encode()} for x in batch])
        refused = ans["FailedPutCount"]
        for rec, res in zip(batch, ans["RequestResponses"]):
            if "RecordId" in res:
                accepted.append(rec)
            else:
                assert res["ErrorCode"] == "ServiceUnavailableException"
                assert res["ErrorMessage"] == "Slow down."
                throttled += 1
                pending.append(rec)  # sent again, as a producer does
        assert ans["FailedPutCount"] == sum(1 for r in ans["RequestResponses"] if "ErrorCode" in r)
        if refused == 0:
            continue
        # room comes back once what the spool held is delivered (no waiting for the interval)
        helpers.wait_until(lambda: len(lines_of(out, final=False)) == len(accepted), timeout=20,
                           what="the spool delivered", proc=s)
    assert throttled > 0, "the 64 KiB quota never refused a put"
    assert not pending, "%d records never accepted" % len(pending)
    assert s.stop() == 0, s.log_tail()
    got = lines_of(out)
    assert sorted(got) == sorted(accepted) and len(set(got)) == 200
    assert helpers.exit_counters(s)["ThrottledRecords"] == throttled


def test_clean_restart_delivers_once(sluice, tmp_path):
    """Records replayed after a SIGKILL are delivered at the next clean exit; the run after that
    delivers nothing again (the spool saved that they were delivered)."""
    out = tmp_path / "out"
    s = sluice(config(tmp_path, out), args=["--log-format", "json"])
    fh = boto3_client(endpoint(s))
    put = ["once-%03d" % j for j in range(20)]
    assert fh.put_record_batch(DeliveryStreamName="clicks",
                               Records=[{"Data": (x + "\n").encode()} for x in put]
                               )["FailedPutCount"] == 0
    s.kill9()
    s.start()  # replays the 20 records
    endpoint(s)
    assert s.stop() == 0, s.log_tail()
    assert lines_of(out) == put
    s.start()
    fh = boto3_client(endpoint(s))
    assert "left by the previous run" not in s.log()
    assert fh.put_record_batch(DeliveryStreamName="clicks",
                               Records=[{"Data": b"after\n"}])["FailedPutCount"] == 0
    s.signal(signal.SIGTERM)
    assert s.wait(30) == 0, s.log_tail()
    assert sorted(lines_of(out)) == sorted(put + ["after"])
