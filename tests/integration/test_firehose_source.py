"""A delivery stream fed by a source rather than PutRecordBatch (issue 12 item 2b).

DeliveryStreamType KinesisStreamAsSource: the stream reads its KinesisStreamSourceConfiguration's
Kinesis stream (kinesalite, run by tests/services; records put by the AWS CLI) from LATEST, every
shard, and delivers what it reads to S3 file:// objects: every record exactly once in a clean
run across several shards; a restart resumes from the checkpoint (nothing twice after a clean
exit, nothing put while it was down lost); SIGKILL mid-stream then a restart delivers every record
at least once; a small spool_max_bytes pauses reading while the quota is full, without losing or
skipping anything; each record's Kinesis metadata (shard id, partition key, sequence number) is in
the spool with it; a direct PutRecord/PutRecordBatch is refused with AWS's
InvalidArgumentException, and DescribeDeliveryStream says KinesisStreamAsSource.

Beyond Firehose: a mapping whose FunctionName is a delivery stream's ARN (here of a file source)
feeds the stream with the records' raw bytes under the mapping's rules: exactly once in a clean
run, resumed from the checkpoint after a restart, at least once after SIGKILL.

Skipped without the Kinesis service or the AWS CLI unless CI=true."""

import glob
import json
import os
import re
import time

import pytest

import helpers
from test_firehose import aws as fh_aws
from test_firehose import boto3_client, objects
from test_kinesis import ACCOUNT, REGION, arn, create_stream, kinesis, put  # noqa: F401

FH_ARN = "arn:aws:firehose:us-east-1:000000000000:deliverystream/"


def dest(out, interval=0, size_mb=1):
    return {"RoleARN": "arn:aws:iam::000000000000:role/firehose",
            "BucketARN": "file://" + str(out), "Prefix": "raw/",
            "BufferingHints": {"SizeInMBs": size_mb, "IntervalInSeconds": interval},
            "CompressionFormat": "UNCOMPRESSED"}


def kinesis_config(tmp_path, stream, out, interval=0, **extra):
    conf = {"DeliveryStreamName": "clicks", "DeliveryStreamType": "KinesisStreamAsSource",
            "KinesisStreamSourceConfiguration": {
                "KinesisStreamARN": arn(stream),
                "RoleARN": "arn:aws:iam::%s:role/firehose-reader" % ACCOUNT},
            "ExtendedS3DestinationConfiguration": dest(out, interval)}
    conf.update(extra)
    return {"state_dir": str(tmp_path / "state"), "region": REGION, "listen": "127.0.0.1:0",
            "stats_interval": "1s", "delivery_streams": [conf]}


def sluice_env(endpoint):
    return {"AWS_ENDPOINT_URL_KINESIS": endpoint, "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test", "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull}


def start(sluice, cfg, endpoint, shards):
    """Starts sluice and waits until every shard's LATEST iterator is ready (what is put after
    that is read)."""
    s = sluice(cfg, args=["--log-level", "debug"], env_extra=sluice_env(endpoint))
    helpers.wait_until(lambda: s.log().count("shard iterator ready") >= shards, timeout=30,
                       what="%d shard iterators" % shards, proc=s)
    return s


def url_of(s):
    port = helpers.wait_until(
        lambda: (re.search(r"listening on 127\.0\.0\.1:0 \(port (\d+)\)", s.log()) or [0, 0])[1],
        what="sluice's listening line", proc=s)
    return "http://127.0.0.1:%s" % port


def lines(out, final=False, sep="\n"):
    """Every record in the objects under out, each ending with sep (Firehose adds no
    delimiter: the records bring their own)."""
    got = []
    for data in objects(out, final=final).values():
        got.extend(x for x in data.decode().split(sep) if x)
    return got


def put_lines(endpoint, stream, prefix, n, size=0):
    """Puts n records "<prefix>-<i>\\n" (padded to size bytes) with spread partition keys."""
    recs = []
    for i in range(n):
        text = "%s-%04d" % (prefix, i)
        text = text + "." * max(0, size - len(text) - 1)
        recs.append(("key-%d" % (i * 7919 % 997), (text + "\n").encode()))
    for j in range(0, len(recs), 50):  # within the command line's length
        put(endpoint, stream, recs[j:j + 50])
    return ["%s-%04d" % (prefix, i) + "." * max(0, size - len("%s-%04d" % (prefix, i)) - 1)
            for i in range(n)]


def wait_lines(s, out, want, timeout=60, sep="\n"):
    helpers.wait_until(lambda: set(want) <= set(lines(out, sep=sep)), timeout=timeout,
                       what="%d records delivered" % len(want), proc=s)


def test_kinesis_source_exactly_once_across_shards(kinesis, sluice, tmp_path):
    """Four shards, 400 records put after the start (LATEST: what was there before is left):
    each lands in the objects once; a put to the stream is refused as AWS refuses it."""
    stream = create_stream(kinesis, shards=4)
    put(kinesis, stream, [("old", b"before-the-stream\n")])
    time.sleep(1.5)  # past the LATEST start's margin for clock skew: "before" is older
    out = tmp_path / "out"
    s = start(sluice, kinesis_config(tmp_path, stream, out), kinesis, 4)
    want = put_lines(kinesis, stream, "a", 400)
    wait_lines(s, out, want)
    assert s.stop() == 0, s.log_tail()
    got = lines(out, final=True)
    assert sorted(got) == sorted(want)  # exactly once, "before-the-stream" not read
    for key in objects(out):
        assert key.startswith("raw/") and "/clicks-1-" in key, key


def test_kinesis_source_direct_put_refused(kinesis, sluice, tmp_path):
    """PutRecord and PutRecordBatch to a KinesisStreamAsSource stream: AWS's
    InvalidArgumentException, nothing stored; DescribeDeliveryStream names the source."""
    stream = create_stream(kinesis, shards=1)
    out = tmp_path / "out"
    s = start(sluice, kinesis_config(tmp_path, stream, out), kinesis, 1)
    url = url_of(s)
    r = fh_aws(tmp_path, url, "put-record", "--delivery-stream-name", "clicks", "--record",
               json.dumps({"Data": "aGkK"}))
    assert r.returncode != 0
    assert "InvalidArgumentException" in r.stderr, r.stderr
    assert "This operation is not permitted on KinesisStreamAsSource delivery stream type." \
        in r.stderr, r.stderr
    fh = boto3_client(url)
    with pytest.raises(Exception) as e:
        fh.put_record_batch(DeliveryStreamName="clicks", Records=[{"Data": b"x\n"}])
    assert e.value.response["Error"]["Code"] == "InvalidArgumentException"
    assert e.value.response["Error"]["Message"] == \
        "This operation is not permitted on KinesisStreamAsSource delivery stream type."
    d = fh.describe_delivery_stream(DeliveryStreamName="clicks")["DeliveryStreamDescription"]
    assert d["DeliveryStreamType"] == "KinesisStreamAsSource"
    assert d["Source"]["KinesisStreamSourceDescription"]["KinesisStreamARN"] == arn(stream)
    assert s.stop() == 0, s.log_tail()
    assert lines(out, final=True) == []


def test_kinesis_source_restart_resumes_from_checkpoint(kinesis, sluice, tmp_path):
    """A clean stop, records put while sluice is down, a restart: they are read from the
    checkpoint (not skipped by LATEST again), and nothing of the first run comes twice."""
    stream = create_stream(kinesis, shards=2)
    time.sleep(1.5)
    out = tmp_path / "out"
    cfg = kinesis_config(tmp_path, stream, out)
    s = start(sluice, cfg, kinesis, 2)
    first = put_lines(kinesis, stream, "first", 100)
    wait_lines(s, out, first)
    assert s.stop() == 0, s.log_tail()
    second = put_lines(kinesis, stream, "down", 100)
    s.start()
    wait_lines(s, out, first + second)
    third = put_lines(kinesis, stream, "after", 50)
    wait_lines(s, out, first + second + third)
    assert s.stop() == 0, s.log_tail()
    got = lines(out, final=True)
    assert sorted(got) == sorted(first + second + third)


def test_kinesis_source_sigkill_at_least_once(kinesis, sluice, tmp_path):
    """SIGKILL while records flow (some in the spool, some not read yet), then a restart: every
    record arrives at least once; the spool holds each record's Kinesis metadata."""
    stream = create_stream(kinesis, shards=3)
    time.sleep(1.5)
    out = tmp_path / "out"
    cfg = kinesis_config(tmp_path, stream, out, interval=900)  # held in the spool until drain
    s = start(sluice, cfg, kinesis, 3)
    first = put_lines(kinesis, stream, "held", 150)
    spool = str(tmp_path / "state" / "streams" / "clicks")

    def spooled():
        data = b"".join(open(p, "rb").read() for p in glob.glob(spool + "/seg-*.spool"))
        return all(("%s\n" % x).encode() in data for x in first) and data
    data = helpers.wait_until(spooled, timeout=60, what="150 records in the spool", proc=s)
    # each record's metadata beside it: shard id, partition key, sequence number
    assert b"shardId-000000000000" in data and b"key-7" in data
    assert re.search(rb"\d{50,}", data)
    more = put_lines(kinesis, stream, "flowing", 300)
    s.kill9()
    assert lines(out) == []
    cfg["delivery_streams"][0]["ExtendedS3DestinationConfiguration"] = dest(out, interval=0)
    helpers.write_config(tmp_path, cfg)
    s.start()
    wait_lines(s, out, first + more)
    assert "150 records left by the previous run" in s.log() or \
        "records left by the previous run" in s.log(), s.log_tail()
    assert s.stop() == 0, s.log_tail()
    got = lines(out, final=True)
    assert set(got) == set(first + more)  # none lost; repeats allowed (at least once)


def test_kinesis_source_quota_pauses_reading(kinesis, sluice, tmp_path):
    """A 64 KiB spool: 300 records of 1,000 bytes do not fit at once; reading pauses while the
    quota is full and goes on as deliveries free room: every record once, none skipped."""
    stream = create_stream(kinesis, shards=2)
    time.sleep(1.5)
    out = tmp_path / "out"
    cfg = kinesis_config(tmp_path, stream, out, interval=1, spool_max_bytes="64KiB")
    s = start(sluice, cfg, kinesis, 2)
    want = put_lines(kinesis, stream, "q", 300, size=1000)
    wait_lines(s, out, want, timeout=90)
    s.args = ["--log-format", "json"]
    assert s.stop() == 0, s.log_tail()
    got = lines(out, final=True)
    assert sorted(got) == sorted(want)
    assert "ThrottledRecords" in s.log()
    throttled = [int(m) for m in re.findall(r"ThrottledRecords=(\d+)", s.log())]
    assert throttled and max(throttled) > 0, "the 64 KiB quota never refused a batch"


def file_config(tmp_path, src, out, interval=0):
    return {"state_dir": str(tmp_path / "state"), "region": REGION, "listen": "127.0.0.1:0",
            "mappings": [helpers.file_mapping(src, FH_ARN + "logs", batch=50)],
            "delivery_streams": [{"DeliveryStreamName": "logs",
                                  "ExtendedS3DestinationConfiguration": dest(out, interval)}]}


def write_records(src, recs):
    """A line per record; its bytes (without the newline) are what the stream gets, so each
    ends with ';' to tell them apart in an object."""
    helpers.write_lines(str(src), [r + ";" for r in recs])


def test_file_source_feeds_stream(sluice, tmp_path):
    """A file mapping whose FunctionName is the stream's ARN: each line's bytes go into the
    stream (no Lambda event), exactly once; a restart resumes from the checkpoint; the stream
    still takes direct puts."""
    src = tmp_path / "in.log"
    out = tmp_path / "out"
    first = ["line-%04d" % i for i in range(500)]
    write_records(src, first)
    cfg = file_config(tmp_path, src, out)
    s = sluice(cfg)
    wait_lines(s, out, first, sep=";")
    r = fh_aws(tmp_path, url_of(s), "put-record", "--delivery-stream-name", "logs", "--record",
               json.dumps({"Data": "ZGlyZWN0Ow=="}))  # "direct;"
    assert r.returncode == 0, r.stderr
    wait_lines(s, out, first + ["direct"], sep=";")
    assert s.stop() == 0, s.log_tail()
    second = ["more-%04d" % i for i in range(300)]
    write_records(src, second)
    s.start()
    wait_lines(s, out, first + second + ["direct"], sep=";")
    assert s.stop() == 0, s.log_tail()
    got = lines(out, final=True, sep=";")
    assert sorted(got) == sorted(first + second + ["direct"])  # nothing twice


def test_file_source_sigkill_at_least_once(sluice, tmp_path):
    """SIGKILL while a file's lines flow into the stream (900 s interval: held in the spool),
    then a restart: every line arrives at least once."""
    src = tmp_path / "in.log"
    out = tmp_path / "out"
    want = ["kill-%05d" % i for i in range(3000)]
    write_records(src, want)
    cfg = file_config(tmp_path, src, out, interval=900)
    s = sluice(cfg)
    spool = str(tmp_path / "state" / "streams" / "logs")
    helpers.wait_until(lambda: sum(os.path.getsize(p) for p in glob.glob(spool + "/seg-*"))
                       > 10000, timeout=30, what="lines in the spool", proc=s)
    s.kill9()
    assert lines(out, sep=";") == []
    cfg["delivery_streams"][0]["ExtendedS3DestinationConfiguration"] = dest(out, interval=0)
    helpers.write_config(tmp_path, cfg)
    s.start()
    wait_lines(s, out, want, sep=";")
    assert s.stop() == 0, s.log_tail()
    got = lines(out, final=True, sep=";")
    assert set(got) == set(want)  # none lost; repeats allowed (at least once)


def test_kinesis_source_transform_gets_record_metadata(kinesis, sluice, fn, tmp_path):
    """A Lambda processor of a KinesisStreamAsSource stream receives Firehose's event for that
    source: sourceKinesisStreamArn, and each record's kinesisRecordMetadata (shardId,
    partitionKey, sequenceNumber, subsequenceNumber, approximateArrivalTimestamp) as Kinesis
    gave them; Powertools' KinesisFirehoseSchema accepts it; the transformed bytes land."""
    from test_firehose_transform import answer, powertools_accepts, processors
    fn.set_hook(lambda rq: answer(rq, lambda d: ("Ok", d.upper(), None)))
    stream = create_stream(kinesis, shards=2)
    out = tmp_path / "out"
    d = dest(out)
    d["ProcessingConfiguration"] = processors()
    d["ProcessingConfiguration"]["Processors"][0]["Parameters"][0]["ParameterValue"] = "xf"
    cfg = kinesis_config(tmp_path, stream, out)
    cfg["delivery_streams"][0]["ExtendedS3DestinationConfiguration"] = d
    cfg["functions"] = {"xf": helpers.http_fn(fn.url + "/xf", timeout=30)}
    s = start(sluice, cfg, kinesis, 2)
    sent = put(kinesis, stream, [("k-%d" % i, b"rec-%d\n" % i) for i in range(20)])
    wait_lines(s, out, ["REC-%d" % i for i in range(20)])
    assert s.stop() == 0, s.log_tail()
    evs = [rq.json for rq in fn.requests()]
    assert evs
    by_seq = {seq: (shard, key) for shard, seq, key, _ in sent}
    seen = set()
    for ev in evs:
        assert ev["sourceKinesisStreamArn"] == arn(stream)
        for r in ev["records"]:
            m = r["kinesisRecordMetadata"]
            assert m["sequenceNumber"] in by_seq, m
            assert (m["shardId"], m["partitionKey"]) == by_seq[m["sequenceNumber"]]
            assert m["subsequenceNumber"] == 0
            assert m["approximateArrivalTimestamp"] == r["approximateArrivalTimestamp"]
            seen.add(m["sequenceNumber"])
    assert seen == set(by_seq)
    powertools_accepts(evs)
