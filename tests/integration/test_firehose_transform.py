"""Delivery streams with Firehose's processors, driven through sluice's Firehose API by boto3 and
Debian's AWS CLI: a Lambda processor (a function of the test's own, fnserver.py, as an http
function) transforms the records (Ok: the new bytes are delivered; Dropped: nothing; Failed, a
failing function after NumberOfRetries, or a recordId missing from the answer: the original
bytes under ErrorOutputPrefix as processing-failed error records); the event it receives passes
Powertools' KinesisFirehoseSchema; dynamic partitioning puts each record under the keys of its
MetadataExtraction query or of the function's partitionKeys, one object per partition, and a
record without its keys under the error prefix as partitioning-failed; a SIGKILL while a
transform is in flight loses nothing (every acknowledged record is delivered transformed after
the restart), and a drain that times out with a transform in flight leaves its records in the
spool, never reports them failed; many partitions within the memory cap keep flowing; and a
transform before an HTTP endpoint sends it the transformed records; partitions through the S3
API (s3rver) land under their keys."""

import base64
import json
import os
import re
import shutil
import subprocess
import time

import helpers
from fnserver import Reply
from test_firehose import aws, b64, boto3_client, objects
from test_firehose_dest import s3  # noqa: F401 (the fixture)
from test_firehose_durable import endpoint

NODE_DIR = os.path.join(helpers.REPO, "tests", "services", "node")
LAMBDA_ARN = "xf"
ARN_RE = re.compile(r"^arn:aws:firehose:us-east-1:\d{12}:deliverystream/clicks$")


def processors(retries=3, interval=0, delimiter=False, query=None):
    procs = [{"Type": "Lambda", "Parameters": [
        {"ParameterName": "LambdaArn", "ParameterValue": LAMBDA_ARN},
        {"ParameterName": "NumberOfRetries", "ParameterValue": str(retries)},
        {"ParameterName": "BufferIntervalInSeconds", "ParameterValue": str(interval)}]}]
    if query:
        procs.append({"Type": "MetadataExtraction", "Parameters": [
            {"ParameterName": "MetadataExtractionQuery", "ParameterValue": query},
            {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]})
    if delimiter:
        procs.append({"Type": "AppendDelimiterToRecord", "Parameters": []})
    return {"Enabled": True, "Processors": procs}


def config(tmp_path, out, fn=None, prefix="raw/", error_prefix="err/", interval=0,
           processing=None, dynamic=False, **top):
    dest = {"BucketARN": "file://" + str(out), "Prefix": prefix,
            "ErrorOutputPrefix": error_prefix,
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": interval}}
    if processing:
        dest["ProcessingConfiguration"] = processing
    if dynamic:
        dest["DynamicPartitioningConfiguration"] = {"Enabled": True}
    cfg = {"state_dir": str(tmp_path / "state"), "region": "us-east-1",
           "listen": "127.0.0.1:0", "stats_interval": "1s",
           "delivery_streams": [{"DeliveryStreamName": "clicks",
                                 "ExtendedS3DestinationConfiguration": dest}]}
    if fn is not None:
        cfg["functions"] = {LAMBDA_ARN: helpers.http_fn(fn.url + "/xf", timeout=30)}
    cfg.update(top)
    return cfg


def answer(rq, decide):
    """The function's answer: decide(data bytes) -> (result, new bytes or None, partitionKeys
    or None) per record, None to leave the record out of the answer."""
    out = []
    for r in rq.json["records"]:
        d = decide(base64.b64decode(r["data"]))
        if d is None:
            continue
        result, data, keys = d
        e = {"recordId": r["recordId"], "result": result}
        if data is not None:
            e["data"] = base64.b64encode(data).decode()
        if keys is not None:
            e["metadata"] = {"partitionKeys": keys}
        out.append(e)
    return Reply(200, body={"records": out})


def upper_drop_fail(data):
    if data.startswith(b"drop"):
        return ("Dropped", None, None)
    if data.startswith(b"fail"):
        return ("ProcessingFailed", None, None)
    return ("Ok", data.upper(), None)


def put(url, *datas):
    got = boto3_client(url).put_record_batch(DeliveryStreamName="clicks",
                                             Records=[{"Data": d} for d in datas])
    assert got["FailedPutCount"] == 0, got


def under(out, sub, final=False):
    """{key: bytes} of the objects whose key starts with sub."""
    return {k: v for k, v in objects(out, final=final).items() if k.startswith(sub)}


def error_lines(out, sub):
    return [json.loads(ln) for v in under(out, sub).values() for ln in v.decode().splitlines()]


def powertools_accepts(evs):
    """Powertools for AWS Lambda's parser (KinesisFirehoseSchema, as handlers use it) accepts
    every event the function received."""
    mods = os.path.join(NODE_DIR, "node_modules", "@aws-lambda-powertools", "parser")
    if not shutil.which("node") or not os.path.exists(mods):
        helpers.missing("node and @aws-lambda-powertools/parser (tests/services/start.sh "
                        "installs it)")
    r = subprocess.run(["node", os.path.join(NODE_DIR, "powertools-parse.mjs"),
                        "KinesisFirehoseSchema"], input=json.dumps(evs), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def check_error_line(e, raw, code, attempts, since_ms):
    """One error record, field by field (Firehose's processing-failed format)."""
    assert list(e) == ["attemptsMade", "arrivalTimestamp", "errorCode", "errorMessage",
                       "attemptEndingTimestamp", "rawData", "lambdaArn"], e
    assert e["attemptsMade"] == attempts
    assert isinstance(e["arrivalTimestamp"], int) and e["arrivalTimestamp"] >= since_ms
    assert e["errorCode"] == code
    assert isinstance(e["errorMessage"], str) and e["errorMessage"]
    assert e["attemptEndingTimestamp"] >= e["arrivalTimestamp"]
    assert base64.b64decode(e["rawData"]) == raw
    assert e["lambdaArn"] == LAMBDA_ARN


def test_transform_ok_dropped_failed(fn, sluice, tmp_path):
    """Ok records are delivered transformed, Dropped ones nowhere, ProcessingFailed ones under
    ErrorOutputPrefix as processing-failed with their original bytes; the spool is emptied."""
    fn.set_hook(lambda rq: answer(rq, upper_drop_fail))
    out = tmp_path / "out"
    since = int(time.time() * 1000)
    s = sluice(config(tmp_path, out, fn, processing=processors()), args=["--log-format", "json"])
    url = endpoint(s)
    put(url, b"a1\n", b"drop-b\n", b"fail-c\n", b"d4\n")
    helpers.wait_until(lambda: under(out, "err/processing-failed/") and
                       b"".join(sorted(under(out, "raw/").values())).count(b"\n") == 2,
                       what="the transformed records and the failed one", proc=s)
    data = sorted(b"".join(under(out, "raw/").values()).splitlines())
    assert data == [b"A1", b"D4"]
    lines = error_lines(out, "err/processing-failed/")
    assert len(lines) == 1
    check_error_line(lines[0], b"fail-c\n", "Lambda.ProcessingFailedStatus", 1, since)
    evs = [rq.json for rq in fn.requests()]
    for ev in evs:
        assert ARN_RE.match(ev["deliveryStreamArn"]) and ev["region"] == "us-east-1"
        for r in ev["records"]:
            assert re.match(r"^\d{56}$", r["recordId"])
            assert r["approximateArrivalTimestamp"] >= since
    powertools_accepts(evs)
    assert s.stop() == 0, s.log_tail()
    ex = helpers.exit_counters(s)
    assert ex["transform_ok"] == 2 and ex["transform_dropped"] == 1
    assert ex["transform_failed"] == 1 and ex["spool_records"] == 0
    assert ex["DeliveryToS3.Records"] == 2


def test_transform_retries_then_processing_failed(fn, sluice, tmp_path):
    """A function that keeps failing is invoked 1 + NumberOfRetries times (same recordIds, a new
    invocationId each time); then every record goes to processing-failed."""
    fn.set_hook(lambda rq: Reply(500, body={"message": "boom"}))
    out = tmp_path / "out"
    since = int(time.time() * 1000)
    s = sluice(config(tmp_path, out, fn, processing=processors(retries=2)),
               args=["--log-format", "json"])
    url = endpoint(s)
    r = aws(tmp_path, url, "put-record-batch", "--delivery-stream-name", "clicks",
            "--records", json.dumps([{"Data": b64("x%d\n" % i)} for i in range(3)]))
    assert r.returncode == 0, r.stderr
    helpers.wait_until(lambda: len(error_lines(out, "err/processing-failed/")) == 3,
                       what="3 processing-failed records", proc=s)
    rqs = fn.requests()
    assert len(rqs) == 3, [len(rq.json["records"]) for rq in rqs]  # the first and 2 retries
    ids = [[r["recordId"] for r in rq.json["records"]] for rq in rqs]
    assert ids[0] == ids[1] == ids[2] and len(ids[0]) == 3
    assert len({rq.json["invocationId"] for rq in rqs}) == 3
    lines = sorted(error_lines(out, "err/processing-failed/"), key=lambda e: e["rawData"])
    for i, e in enumerate(lines):
        check_error_line(e, b"x%d\n" % i, "Lambda.FunctionError", 3, since)
    assert under(out, "raw/") == {}
    assert s.stop() == 0, s.log_tail()
    assert helpers.exit_counters(s)["spool_records"] == 0


def test_transform_missing_record_id(fn, sluice, tmp_path):
    """An answer without one of the recordIds fails that record alone (Lambda.MissingRecordId,
    not retried); the others are delivered."""
    fn.set_hook(lambda rq: answer(
        rq, lambda d: None if d.startswith(b"lost") else ("Ok", d.upper(), None)))
    out = tmp_path / "out"
    since = int(time.time() * 1000)
    s = sluice(config(tmp_path, out, fn, processing=processors()), args=["--log-format", "json"])
    url = endpoint(s)
    put(url, b"k1\n", b"lost2\n", b"k3\n")
    helpers.wait_until(lambda: under(out, "err/processing-failed/") and
                       b"".join(under(out, "raw/").values()).count(b"\n") == 2,
                       what="the delivered records and the missing one", proc=s)
    assert sorted(b"".join(under(out, "raw/").values()).splitlines()) == [b"K1", b"K3"]
    lines = error_lines(out, "err/processing-failed/")
    assert len(lines) == 1
    check_error_line(lines[0], b"lost2\n", "Lambda.MissingRecordId", 1, since)
    assert len(fn.requests()) == 1  # not retried
    assert s.stop() == 0, s.log_tail()


def test_partition_by_query(sluice, tmp_path):
    """MetadataExtraction keys: one object per partition under its keys, the delimiter after each
    record; records without the key (or not JSON) under the error prefix as
    partitioning-failed, never dropped."""
    out = tmp_path / "out"
    proc = {"Enabled": True, "Processors": [
        {"Type": "MetadataExtraction", "Parameters": [
            {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{customer: .c}"},
            {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]},
        {"Type": "AppendDelimiterToRecord", "Parameters": []}]}
    s = sluice(config(tmp_path, out, prefix="c=!{partitionKeyFromQuery:customer}/",
                      error_prefix="err/!{firehose:error-output-type}/", interval=1,
                      processing=proc, dynamic=True), args=["--log-format", "json"])
    url = endpoint(s)
    put(url, b'{"c":"a","n":1}', b'{"c":"b","n":2}', b'{"c":"a","n":3}', b'{"n":4}',
        b"not json")
    helpers.wait_until(lambda: len(objects(out)) == 3, timeout=15, what="3 objects", proc=s)
    a = under(out, "c=a/")
    b = under(out, "c=b/")
    assert len(a) == 1 and len(b) == 1, objects(out)
    assert list(a.values()) == [b'{"c":"a","n":1}\n{"c":"a","n":3}\n']
    assert list(b.values()) == [b'{"c":"b","n":2}\n']
    assert re.match(r"^c=a/clicks-1-\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d-" + helpers.UUID_RE + "$",
                    next(iter(a)))
    errs = error_lines(out, "err/partitioning-failed/")
    assert sorted(base64.b64decode(e["rawData"]) for e in errs) == [b"not json", b'{"n":4}']
    assert {e["errorCode"] for e in errs} == {"DynamicPartitioning.MetadataExtractionFailed"}
    assert s.stop() == 0, s.log_tail()
    ex = helpers.exit_counters(s)
    assert ex["partitioning_failed"] == 2 and ex["spool_records"] == 0


def test_partition_key_from_lambda(fn, sluice, tmp_path):
    """partitionKeyFromLambda: the keys the function returns in metadata.partitionKeys; a record
    the function gives none goes to partitioning-failed."""
    def decide(d):
        if d.startswith(b"nokey"):
            return ("Ok", d, None)
        return ("Ok", d, {"k": d[:1].decode()})
    fn.set_hook(lambda rq: answer(rq, decide))
    out = tmp_path / "out"
    s = sluice(config(tmp_path, out, fn, prefix="k=!{partitionKeyFromLambda:k}/",
                      error_prefix="err/!{firehose:error-output-type}/", interval=1,
                      processing=processors(), dynamic=True), args=["--log-format", "json"])
    url = endpoint(s)
    put(url, b"x1\n", b"y2\n", b"x3\n", b"nokey\n")
    helpers.wait_until(lambda: len(objects(out)) == 3, timeout=15, what="3 objects", proc=s)
    assert list(under(out, "k=x/").values()) == [b"x1\nx3\n"]
    assert list(under(out, "k=y/").values()) == [b"y2\n"]
    errs = error_lines(out, "err/partitioning-failed/")
    assert [base64.b64decode(e["rawData"]) for e in errs] == [b"nokey\n"]
    assert s.stop() == 0, s.log_tail()


def test_sigkill_during_transform_loses_nothing(fn, sluice, tmp_path):
    """SIGKILL while the function holds a batch: after the restart every acknowledged record is
    delivered, transformed, at least once, and nothing is written as failed."""
    fn.set_hook(lambda rq: Reply(hang=True))
    out = tmp_path / "out"
    cfg = config(tmp_path, out, fn, processing=processors())
    s = sluice(cfg, args=["--log-format", "json"])
    url = endpoint(s)
    acked = ["r%03d" % i for i in range(50)]
    put(url, *[(x + "\n").encode() for x in acked])
    helpers.wait_until(lambda: fn.requests(), what="a transform in flight", proc=s)
    s.kill9()
    assert objects(out) == {}
    fn.set_hook(lambda rq: answer(rq, lambda d: ("Ok", d.upper(), None)))
    s.start()
    endpoint(s)
    helpers.wait_until(
        lambda: set(b"".join(under(out, "raw/").values()).decode().split()) ==
        {x.upper() for x in acked}, timeout=20, what="every record transformed", proc=s)
    assert s.stop() == 0, s.log_tail()
    assert under(out, "err/") == {}


def test_drain_timeout_keeps_transform_records(fn, sluice, tmp_path):
    """SIGTERM while the function hangs: at drain_timeout the batch is canceled, its records stay
    in the spool (exit code 1, nothing written as processing-failed) and the next run
    transforms and delivers them."""
    fn.set_hook(lambda rq: Reply(hang=True))
    out = tmp_path / "out"
    cfg = config(tmp_path, out, fn, processing=processors(retries=0), drain_timeout="1s")
    s = sluice(cfg, args=["--log-format", "json"])
    url = endpoint(s)
    put(url, b"h1\n", b"h2\n")
    helpers.wait_until(lambda: fn.requests(), what="a transform in flight", proc=s)
    assert s.stop() == 1, s.log_tail()
    assert objects(out) == {}
    fn.set_hook(lambda rq: answer(rq, lambda d: ("Ok", d.upper(), None)))
    s.start()
    endpoint(s)
    helpers.wait_until(lambda: sorted(b"".join(under(out, "raw/").values()).split()) ==
                       [b"H1", b"H2"], what="the records transformed after the restart", proc=s)
    assert s.stop() == 0, s.log_tail()
    assert under(out, "err/") == {}


def test_partitions_within_memory_cap_keep_flowing(sluice, tmp_path):
    """Many partitions, none reaching SizeInMBs, more bytes than the stream holds in memory
    (twice SizeInMBs plus one call): the partition due first is delivered early, so every record
    is delivered long before the 900 s interval, each partition's records under its own key."""
    out = tmp_path / "out"
    proc = {"Enabled": True, "Processors": [
        {"Type": "MetadataExtraction", "Parameters": [
            {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{p: .p}"},
            {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]}]}
    s = sluice(config(tmp_path, out, prefix="p=!{partitionKeyFromQuery:p}/",
                      error_prefix="err/!{firehose:error-output-type}/", interval=900,
                      processing=proc, dynamic=True), args=["--log-format", "json"])
    url = endpoint(s)
    pad = "x" * 5000
    recs = [json.dumps({"p": "k%02d" % (i % 80), "i": i, "pad": pad}).encode()
            for i in range(1800)]  # about 9 MB in 80 partitions of about 110 KB
    for i in range(0, len(recs), 400):
        put(url, *recs[i:i + 400])

    def delivered():
        return sum(v.count(b'"pad"') for v in objects(out).values())
    # what memory cannot hold is delivered at once (what it can waits for its interval)
    helpers.wait_until(lambda: delivered() >= 500, timeout=30,
                       what="records delivered before the interval", proc=s)
    assert s.stop() == 0, s.log_tail()
    objs = objects(out, final=True)
    seen = []
    for k, v in objs.items():
        part = k.split("/")[0]
        docs = [json.loads(d) for d in v.replace(b"}{", b"}\n{").splitlines()]
        assert {"p=" + d["p"] for d in docs} == {part}, k
        seen += [d["i"] for d in docs]
    assert sorted(seen) == list(range(1800))


def test_transform_before_http_endpoint(fn, sluice, tmp_path):
    """An HTTP endpoint destination with a Lambda processor: the endpoint receives the
    transformed records; a failed one is written to its S3Configuration under
    processing-failed."""
    from test_firehose_dest import Endpoint, http_stream
    fn.set_hook(lambda rq: answer(rq, upper_drop_fail))
    ep = Endpoint(200)
    try:
        out = tmp_path / "backup"
        st = http_stream(ep.url, "file://" + str(out))
        st["HttpEndpointDestinationConfiguration"]["ProcessingConfiguration"] = processors()
        st["HttpEndpointDestinationConfiguration"]["S3Configuration"]["ErrorOutputPrefix"] = "e/"
        cfg = {"state_dir": str(tmp_path / "state"), "region": "us-east-1",
               "listen": "127.0.0.1:0", "functions": {
                   LAMBDA_ARN: helpers.http_fn(fn.url + "/xf", timeout=30)},
               "delivery_streams": [st]}
        s = sluice(cfg, args=["--log-format", "json"])
        url = endpoint(s)
        put(url, b"h1\n", b"fail-2\n", b"drop-3\n")
        helpers.wait_until(lambda: ep.requests and under(out, "e/processing-failed/"),
                           what="the endpoint's request and the failed record", proc=s)
        got = [base64.b64decode(r["data"]) for _h, b in ep.requests for r in b["records"]]
        assert got == [b"H1\n"]
        lines = error_lines(out, "e/processing-failed/")
        assert [base64.b64decode(e["rawData"]) for e in lines] == [b"fail-2\n"]
        assert s.stop() == 0, s.log_tail()
    finally:
        ep.stop()


def test_partitions_through_the_s3_api(sluice, tmp_path, s3):
    """Dynamic partitioning to a bucket through the S3 API (tests/services' s3rver): objects
    under each partition's key, read back through the S3 API; the failed record under the error
    prefix, gzipped like the others."""
    import gzip
    from test_firehose_dest import listing, run, s3_env, s3_stream
    endpoint_url, client, bucket = s3
    client.create_bucket(Bucket=bucket)
    proc = {"Enabled": True, "Processors": [
        {"Type": "MetadataExtraction", "Parameters": [
            {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{t: .tenant}"},
            {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]}]}
    stream = s3_stream(bucket, prefix="t=!{partitionKeyFromQuery:t}/!{timestamp:yyyy}/",
                       compression="GZIP", interval=60,
                       ErrorOutputPrefix="e/!{firehose:error-output-type}/",
                       DynamicPartitioningConfiguration={"Enabled": True},
                       ProcessingConfiguration=proc)
    s, fh = run(sluice, tmp_path, stream, env=s3_env(endpoint_url))
    recs = [b'{"tenant":"n"}\n', b'{"tenant":"s"}\n', b'{"tenant":"n"}\n', b'{"x":1}\n']
    assert fh.put_record_batch(DeliveryStreamName="clicks",
                               Records=[{"Data": r} for r in recs])["FailedPutCount"] == 0
    assert s.stop() == 0, s.log_tail()
    objs = {k.split("/")[0] + "/" + k.split("/")[1]: gzip.decompress(v)
            for k, v in listing(client, bucket).items()}
    year = time.strftime("%Y", time.gmtime())
    assert objs["t=n/" + year] == recs[0] + recs[2]
    assert objs["t=s/" + year] == recs[1]
    assert json.loads(objs["e/partitioning-failed"])["rawData"] == b64(recs[3])
    assert len(objs) == 3
