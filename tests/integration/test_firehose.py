"""Delivery streams fed through sluice's Firehose API, driven by the clients users use: Debian's
AWS CLI (/usr/bin/aws) and boto3, unchanged but for --endpoint-url.  Records put with
PutRecordBatch / PutRecord appear as objects under a file:// destination with Firehose's key
layout and the records concatenated as they came; IntervalInSeconds 0 delivers each put at once,
SizeInMBs delivers as soon as it is reached, the interval otherwise; refused calls (unknown stream,
501 records, bad base64, bad JSON) carry AWS's error types and store nothing; SIGTERM and the end
of --until-idle deliver what is buffered.  sluice listens on port 0 and the tests read the port
from its log, so nothing collides with another run."""

import base64
import datetime
import json
import os
import re
import signal
import subprocess
import urllib.error
import urllib.request

import pytest

import helpers

AWS = "/usr/bin/aws"
KEY_RE = re.compile(r"^(?P<prefix>.*?)(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P<h>\d{2})/"
                    r"(?P<name>[A-Za-z0-9_.-]+)-1-(?P=y)-(?P=m)-(?P=d)-(?P=h)-\d{2}-\d{2}-"
                    + helpers.UUID_RE + "$")


def stream_conf(out, name="clicks", prefix="raw/", size_mb=1, interval=0):
    return {"DeliveryStreamName": name, "DeliveryStreamType": "DirectPut",
            "ExtendedS3DestinationConfiguration": {
                "RoleARN": "arn:aws:iam::000000000000:role/firehose",
                "BucketARN": "file://" + str(out), "Prefix": prefix,
                "BufferingHints": {"SizeInMBs": size_mb, "IntervalInSeconds": interval},
                "CompressionFormat": "UNCOMPRESSED"}}


def start(sluice, tmp_path, *streams, args=()):
    """Starts sluice with the delivery streams on 127.0.0.1:0; returns (proc, endpoint URL)."""
    cfg = {"state_dir": str(tmp_path / "state"), "region": "us-east-1",
           "listen": "127.0.0.1:0", "stats_interval": "1s", "delivery_streams": list(streams)}
    s = sluice(cfg, args=["--log-format", "json"] + list(args))
    port = helpers.wait_until(
        lambda: (re.search(r"listening on 127\.0\.0\.1:0 \(port (\d+)\)", s.log()) or [0, 0])[1],
        what="sluice's listening line", proc=s)
    return s, "http://127.0.0.1:%s" % port


def client_env(tmp_path):
    env = helpers.sluice_env({"AWS_ACCESS_KEY_ID": "AKIDFAKEFAKEFAKE",
                              "AWS_SECRET_ACCESS_KEY": "fake-secret", "AWS_REGION": "us-east-1",
                              "AWS_PAGER": "", "AWS_EC2_METADATA_DISABLED": "true",
                              "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
                              "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-creds")})
    return env


def aws(tmp_path, url, *args):
    """Runs the AWS CLI's firehose command; returns CompletedProcess (text)."""
    if not os.access(AWS, os.X_OK):
        helpers.missing("the AWS CLI at " + AWS)
    return subprocess.run([AWS, "firehose"] + list(args) + ["--endpoint-url", url,
                                                            "--output", "json"],
                          capture_output=True, text=True, timeout=60, env=client_env(tmp_path))


def boto3_client(url):
    try:
        import boto3
    except ImportError:
        helpers.missing("boto3 for /usr/bin/python3 (apt-get install python3-boto3)")
    return boto3.client("firehose", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="AKIDFAKEFAKEFAKE", aws_secret_access_key="fake-secret")


def raw_call(url, target, body):
    """One POST as an SDK sends it (no signature: sluice does not check them); returns
    (status, parsed JSON answer)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url + "/", data=data, method="POST", headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "Firehose_20150804." + target})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def b64(s):
    return base64.b64encode(s if isinstance(s, bytes) else s.encode()).decode()


def objects(out, final=False):
    """{key: bytes} of the objects under out.  An object being written is a temporary file
    (.name.tmp) until it is whole: skipped, or with final=True (nothing is being written any
    more) a failure."""
    found = {}
    for root, _dirs, files in os.walk(str(out)):
        for f in files:
            if f.startswith("."):
                assert not final, "temporary file left: %s/%s" % (root, f)
                continue
            path = os.path.join(root, f)
            with open(path, "rb") as fh:
                found[os.path.relpath(path, str(out))] = fh.read()
    return found


def check_key(key, name="clicks", prefix="raw/"):
    m = KEY_RE.match(key)
    assert m, "object key %r is not Firehose's layout" % key
    assert m.group("prefix") == prefix and m.group("name") == name, key
    when = datetime.datetime(int(m.group("y")), int(m.group("m")), int(m.group("d")),
                             int(m.group("h")), tzinfo=datetime.timezone.utc)
    now = datetime.datetime.now(datetime.timezone.utc)
    assert datetime.timedelta(0) <= now - when < datetime.timedelta(hours=1, minutes=5), key


def test_put_record_batch_cli_objects_layout(sluice, tmp_path):
    out = tmp_path / "out"
    s, url = start(sluice, tmp_path, stream_conf(out, interval=0))
    recs = [{"Data": b64("rec-%d\n" % i)} for i in range(3)]
    r = aws(tmp_path, url, "put-record-batch", "--delivery-stream-name", "clicks",
            "--records", json.dumps(recs))
    assert r.returncode == 0, r.stderr
    ans = json.loads(r.stdout)
    assert ans["FailedPutCount"] == 0 and ans["Encrypted"] is False
    assert len(ans["RequestResponses"]) == 3
    assert all(x.get("RecordId") for x in ans["RequestResponses"])
    objs = helpers.wait_until(lambda: objects(out), what="an object", proc=s)
    assert len(objs) == 1
    key, data = next(iter(objs.items()))
    check_key(key)
    assert data == b"rec-0\nrec-1\nrec-2\n"  # as they came, no delimiter added
    # interval 0: the next put is an object of its own, at once
    r = aws(tmp_path, url, "put-record", "--delivery-stream-name", "clicks",
            "--record", json.dumps({"Data": b64("solo")}))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["RecordId"]
    objs = helpers.wait_until(lambda: len(objects(out)) == 2 and objects(out), what="2 objects",
                              proc=s)
    assert sorted(objs.values()) == [b"rec-0\nrec-1\nrec-2\n", b"solo"]
    assert s.stop() == 0
    assert len(objects(out, final=True)) == 2
    ex = helpers.exit_counters(s)
    assert ex["IncomingRecords"] == 4 and ex["DeliveryToS3.Records"] == 4
    assert ex["DeliveryToS3.Success"] == 2
    assert "fake-secret" not in s.log() and "AKIDFAKE" not in s.log()


def test_describe_list_and_boto3_puts(sluice, tmp_path):
    out = tmp_path / "out"
    s, url = start(sluice, tmp_path, stream_conf(out, interval=0),
                   stream_conf(tmp_path / "other", name="audit", interval=300))
    r = aws(tmp_path, url, "list-delivery-streams")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"DeliveryStreamNames": ["audit", "clicks"],
                                    "HasMoreDeliveryStreams": False}
    r = aws(tmp_path, url, "describe-delivery-stream", "--delivery-stream-name", "clicks")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)["DeliveryStreamDescription"]
    assert d["DeliveryStreamName"] == "clicks" and d["DeliveryStreamStatus"] == "ACTIVE"
    assert d["DeliveryStreamARN"] == "arn:aws:firehose:us-east-1:000000000000:deliverystream/clicks"
    ext = d["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert ext["BufferingHints"] == {"SizeInMBs": 1, "IntervalInSeconds": 0}
    assert ext["Prefix"] == "raw/" and ext["BucketARN"] == "file://" + str(out)

    fh = boto3_client(url)
    assert fh.list_delivery_streams(Limit=1)["HasMoreDeliveryStreams"] is True
    desc = fh.describe_delivery_stream(DeliveryStreamName="audit")["DeliveryStreamDescription"]
    assert desc["DeliveryStreamType"] == "DirectPut"
    got = fh.put_record_batch(DeliveryStreamName="clicks",
                              Records=[{"Data": b"a\n"}, {"Data": b"b\n"}])
    assert got["FailedPutCount"] == 0 and len(got["RequestResponses"]) == 2
    assert fh.put_record(DeliveryStreamName="clicks", Record={"Data": b"c\n"})["RecordId"]
    helpers.wait_until(lambda: sorted(objects(out).values()) == [b"a\nb\n", b"c\n"],
                       what="two objects from boto3's puts", proc=s)


def test_interval_flush(sluice, tmp_path):
    out = tmp_path / "out"
    s, url = start(sluice, tmp_path, stream_conf(out, size_mb=1, interval=2))
    fh = boto3_client(url)
    fh.put_record_batch(DeliveryStreamName="clicks", Records=[{"Data": b"1\n"}])
    fh.put_record_batch(DeliveryStreamName="clicks", Records=[{"Data": b"2\n"}])
    objs = helpers.wait_until(lambda: objects(out), timeout=15, what="the interval's object",
                              proc=s)
    # both puts came within the interval: one object
    assert list(objs.values()) == [b"1\n2\n"], objs
    check_key(next(iter(objs)))


def test_size_flush(sluice, tmp_path):
    out = tmp_path / "out"
    s, url = start(sluice, tmp_path, stream_conf(out, size_mb=1, interval=900))
    fh = boto3_client(url)
    recs = [bytes([65 + i]) * 400000 for i in range(3)]  # 1.2 MB >= 1 MiB
    got = fh.put_record_batch(DeliveryStreamName="clicks", Records=[{"Data": d} for d in recs])
    assert got["FailedPutCount"] == 0
    # long before the 900 s interval
    objs = helpers.wait_until(lambda: objects(out), timeout=15, what="the size-flushed object",
                              proc=s)
    assert list(objs.values()) == [b"".join(recs)]


def test_unknown_stream_refused(sluice, tmp_path):
    out = tmp_path / "out"
    s, url = start(sluice, tmp_path, stream_conf(out))
    r = aws(tmp_path, url, "put-record-batch", "--delivery-stream-name", "nope",
            "--records", json.dumps([{"Data": b64("x")}]))
    assert r.returncode != 0
    assert "ResourceNotFoundException" in r.stderr
    assert "Firehose nope under account 000000000000 not found." in r.stderr
    from botocore.exceptions import ClientError
    fh = boto3_client(url)
    with pytest.raises(ClientError) as ei:
        fh.put_record(DeliveryStreamName="nope", Record={"Data": b"x"})
    assert ei.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert s.stop() == 0
    assert objects(out) == {}
    assert helpers.exit_counters(s)["IncomingRecords"] == 0


def test_malformed_calls_refused(sluice, tmp_path):
    out = tmp_path / "out"
    s, url = start(sluice, tmp_path, stream_conf(out))
    status, ans = raw_call(url, "PutRecordBatch", {
        "DeliveryStreamName": "clicks", "Records": [{"Data": b64("x")}] * 501})
    assert status == 400 and ans["__type"] == "ValidationException"
    assert "less than or equal to 500" in ans["message"]
    status, ans = raw_call(url, "PutRecordBatch", {
        "DeliveryStreamName": "clicks", "Records": [{"Data": b64("ok")}, {"Data": "no!base64"}]})
    assert status == 400 and ans["__type"] == "SerializationException"
    status, ans = raw_call(url, "PutRecordBatch", b'{"DeliveryStreamName": "clicks", "Rec')
    assert status == 400 and ans["__type"] == "SerializationException"
    # each record within 1,000 KiB, 4.3 MB together: over the 4 MiB of a call
    status, ans = raw_call(url, "PutRecordBatch", {
        "DeliveryStreamName": "clicks",
        "Records": [{"Data": b64("x" * 1000000)}] * 4 + [{"Data": b64("x" * 300000)}]})
    assert status == 400 and ans["__type"] == "InvalidArgumentException"
    # a body that cannot be a valid call is not even read
    status, ans = raw_call(url, "PutRecordBatch", {
        "DeliveryStreamName": "clicks", "Records": [{"Data": b64("x" * 1000000)}] * 8})
    assert status == 413 and ans["__type"] == "InvalidArgumentException"
    status, ans = raw_call(url, "CreateDeliveryStream", {"DeliveryStreamName": "x"})
    assert status == 400 and ans["__type"] == "UnknownOperationException"
    # boto3 sends what it is given: 501 records reach the server and come back refused
    from botocore.exceptions import ClientError
    with pytest.raises(ClientError) as ei:
        boto3_client(url).put_record_batch(DeliveryStreamName="clicks",
                                           Records=[{"Data": b"x"}] * 501)
    assert ei.value.response["Error"]["Code"] == "ValidationException"
    assert s.stop() == 0
    assert objects(out) == {}
    assert helpers.exit_counters(s)["IncomingRecords"] == 0


def test_sigterm_delivers_buffered(sluice, tmp_path):
    out = tmp_path / "out"
    s, url = start(sluice, tmp_path, stream_conf(out, size_mb=128, interval=900))
    fh = boto3_client(url)
    for i in range(5):
        fh.put_record_batch(DeliveryStreamName="clicks",
                            Records=[{"Data": ("%d-%d\n" % (i, j)).encode()} for j in range(100)])
    assert objects(out) == {}  # held for the 900 s interval
    s.signal(signal.SIGTERM)
    assert s.wait(30) == 0, s.log_tail()
    objs = objects(out, final=True)
    assert len(objs) == 1
    want = b"".join(("%d-%d\n" % (i, j)).encode() for i in range(5) for j in range(100))
    assert list(objs.values()) == [want]
    ex = helpers.exit_counters(s)
    assert ex["IncomingRecords"] == 500 and ex["DeliveryToS3.Records"] == 500
    assert ex["buffered_records"] == 0


def test_until_idle_delivers_then_exits(sluice, tmp_path):
    out = tmp_path / "out"
    s, url = start(sluice, tmp_path, stream_conf(out, size_mb=5, interval=300),
                   args=["--until-idle=1"])
    boto3_client(url).put_record_batch(DeliveryStreamName="clicks",
                                       Records=[{"Data": b"idle-1\n"}, {"Data": b"idle-2\n"}])
    # nothing arrives for 1 s: sluice drains, delivers the buffer and exits on its own
    assert s.wait(30) == 0, s.log_tail()
    assert list(objects(out, final=True).values()) == [b"idle-1\nidle-2\n"]


def test_undeliverable_then_sigterm_exits_within_drain_timeout(sluice, tmp_path):
    """A destination that cannot be written (its directory is under a regular file): writes are
    retried and logged while sluice runs; SIGTERM waits drain_timeout for them, then exits 1
    saying how many records were not delivered (they stay in the spool for the next start)."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    cfg = {"state_dir": str(tmp_path / "state"), "region": "us-east-1",
           "listen": "127.0.0.1:0", "drain_timeout": "1s",
           "delivery_streams": [stream_conf(blocker / "out", interval=0)]}
    s = sluice(cfg, args=["--log-format", "json"])
    port = helpers.wait_until(
        lambda: (re.search(r"\(port (\d+)\)", s.log()) or [0, 0])[1], what="listening", proc=s)
    fh = boto3_client("http://127.0.0.1:%s" % port)
    fh.put_record_batch(DeliveryStreamName="clicks", Records=[{"Data": b"x\n"}] * 3)
    helpers.wait_until(lambda: "cannot deliver 3 records" in s.log(), what="the retried write",
                       proc=s)
    s.signal(signal.SIGTERM)
    assert s.wait(15) == 1, s.log_tail()
    assert "exiting with 3 records not delivered" in s.log()
    assert helpers.exit_counters(s)["buffered_records"] == 3


def test_listen_address_in_use(sluice, tmp_path):
    """A listen address another process holds: sluice says so and exits 1 at start."""
    import socket
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        port = holder.getsockname()[1]
        cfg = {"state_dir": str(tmp_path / "state"), "listen": "127.0.0.1:%d" % port,
               "delivery_streams": [stream_conf(tmp_path / "out")]}
        s = sluice(cfg)
        assert s.wait(20) == 1, s.log_tail()
        assert "cannot listen on 127.0.0.1:%d: Address already in use" % port in s.log()
    finally:
        holder.close()
