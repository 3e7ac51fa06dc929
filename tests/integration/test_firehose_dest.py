"""Delivery stream destinations: records put through sluice's Firehose API (boto3) land where
Firehose would put them.  The S3 API destination (arn:aws:s3:::BUCKET) against tests/services'
s3rver (AWS_ENDPOINT_URL_S3), read back through the S3 API (boto3): Firehose's object keys, the
records as they came; GZIP read back with gzip; a !{timestamp:yyyy-MM} prefix; a bucket that does
not exist yet is retried (records kept, DataFreshness growing on the progress line) until it
does.  The HTTP endpoint destination against a small endpoint in this file (http.server in a
thread): delivered with Firehose's request (records base64, the X-Amz-Firehose-* headers) and
counted; an endpoint that always answers 500 is retried with the same requestId for
RetryOptions.DurationInSeconds, then the records are written to the S3Configuration bucket under
http-endpoint-failed/ as Firehose's error records.  sluice listens on port 0 (its log says
which), so nothing collides with another run."""

import base64
import datetime
import gzip
import http.server
import json
import os
import re
import threading
import uuid

import pytest

import helpers
from test_firehose import boto3_client, start

REGION = "us-east-1"


def s3_endpoint():
    """S3_ENDPOINT from tests/services' services.env (or the environment)."""
    if os.environ.get("S3_ENDPOINT"):
        return os.environ["S3_ENDPOINT"]
    run_dir = os.environ.get("SERVICES_RUN_DIR") or os.environ.get("RUN_DIR") or \
        os.path.join(helpers.REPO, "build-services")
    path = os.path.join(run_dir, "services.env")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                k, sep, v = line.strip().partition("=")
                if sep and k == "S3_ENDPOINT":
                    return v
    helpers.missing("an S3 server (SERVICES=s3 tests/services/start.sh: S3_ENDPOINT)")
    return None


@pytest.fixture
def s3():
    """(endpoint, boto3 S3 client, fresh bucket name); the bucket is not created."""
    endpoint = s3_endpoint()
    try:
        import boto3
        from botocore.config import Config
    except ImportError:
        helpers.missing("boto3 for /usr/bin/python3 (apt-get install python3-boto3)")
    client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION,
                          aws_access_key_id="S3RVER", aws_secret_access_key="S3RVER",
                          config=Config(s3={"addressing_style": "path"}))
    return endpoint, client, "fh-" + uuid.uuid4().hex[:12]


def s3_env(endpoint):
    return {"AWS_ENDPOINT_URL_S3": endpoint, "AWS_ACCESS_KEY_ID": "S3RVER",
            "AWS_SECRET_ACCESS_KEY": "S3RVER", "AWS_REGION": REGION}


def run(sluice, tmp_path, stream, env=None):
    """sluice with one stream, on port 0; returns (proc, boto3 Firehose client)."""
    s, url = start(sluice_env_wrap(sluice, env), tmp_path, stream)
    return s, boto3_client(url)


def sluice_env_wrap(sluice, env):
    def factory(cfg, args=()):
        return sluice(cfg, args=args, env_extra=env)
    return factory


def listing(client, bucket):
    """{key: body bytes} of every object in bucket ({} when the bucket does not exist)."""
    try:
        got = client.list_objects_v2(Bucket=bucket)
    except client.exceptions.NoSuchBucket:
        return {}
    return {o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
            for o in got.get("Contents", [])}


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc)


def name_re(stream, ext=""):
    """Firehose's object name: <stream>-1-yyyy-MM-dd-HH-mm-ss-<uuid><ext>."""
    return (re.escape(stream) + r"-1-\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d-" + helpers.UUID_RE +
            re.escape(ext))


def s3_stream(bucket, prefix="raw/", compression="UNCOMPRESSED", interval=0, **extra):
    dest = {"RoleARN": "arn:aws:iam::000000000000:role/firehose",
            "BucketARN": "arn:aws:s3:::" + bucket, "Prefix": prefix,
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": interval},
            "CompressionFormat": compression}
    dest.update(extra)
    return {"DeliveryStreamName": "clicks", "ExtendedS3DestinationConfiguration": dest}


def test_s3_api_objects_with_firehose_keys(sluice, tmp_path, s3):
    endpoint, client, bucket = s3
    client.create_bucket(Bucket=bucket)
    s, fh = run(sluice, tmp_path, s3_stream(bucket, interval=60), env=s3_env(endpoint))
    recs = [b'{"click":%d}\n' % i for i in range(5)]
    assert fh.put_record_batch(DeliveryStreamName="clicks",
                               Records=[{"Data": r} for r in recs])["FailedPutCount"] == 0
    s.stop()  # SIGTERM delivers what is buffered
    objs = listing(client, bucket)
    assert len(objs) == 1, objs
    key, body = next(iter(objs.items()))
    hour = now_utc().strftime("%Y/%m/%d/%H/")
    assert re.match("^raw/" + re.escape(hour) + name_re("clicks") + "$", key), key
    assert body == b"".join(recs)
    ex = helpers.exit_counters(s)
    assert ex["DeliveryToS3.Records"] == 5 and ex["DeliveryToS3.Success"] == 1
    assert ex["DeliveryToS3.Bytes"] == len(b"".join(recs))
    assert ex["DeliveryToS3.DataFreshness"] == 0


def test_s3_gzip_round_trip_and_timestamp_prefix(sluice, tmp_path, s3):
    endpoint, client, bucket = s3
    client.create_bucket(Bucket=bucket)
    stream = s3_stream(bucket, prefix="logs/!{timestamp:yyyy-MM}/", compression="GZIP",
                       ErrorOutputPrefix="errors/!{firehose:error-output-type}/")
    s, fh = run(sluice, tmp_path, stream, env=s3_env(endpoint))
    recs = [("line %d " % i).encode() * 50 + b"\n" for i in range(40)]
    assert fh.put_record_batch(DeliveryStreamName="clicks",
                               Records=[{"Data": r} for r in recs])["FailedPutCount"] == 0
    objs = helpers.wait_until(lambda: listing(client, bucket), timeout=20,
                              what="the object in the bucket", proc=s)
    assert len(objs) == 1, objs
    key, body = next(iter(objs.items()))
    month = now_utc().strftime("%Y-%m")
    assert re.match("^logs/" + month + "/" + name_re("clicks", ".gz") + "$", key), key
    assert body[:2] == b"\x1f\x8b" and len(body) < len(b"".join(recs))
    assert gzip.decompress(body) == b"".join(recs)


def test_s3_retried_until_the_bucket_exists(sluice, tmp_path, s3):
    """A bucket that is missing: PutObject fails (NoSuchBucket), the records are kept and tried
    again, DataFreshness grows; once the bucket exists the same object lands, whole."""
    endpoint, client, bucket = s3
    s, fh = run(sluice, tmp_path, s3_stream(bucket), env=s3_env(endpoint))
    assert fh.put_record_batch(DeliveryStreamName="clicks",
                               Records=[{"Data": b"kept\n"}])["FailedPutCount"] == 0

    def stale_progress():
        lines = [o for o in helpers.json_log(s.log()) if o.get("msg") == "progress"]
        return lines and lines[-1].get("DeliveryToS3.DataFreshness", 0) >= 1 and lines[-1]

    line = helpers.wait_until(stale_progress, timeout=20, what="DataFreshness >= 1", proc=s)
    assert line["DeliveryToS3.Records"] == 0 and line["failed_attempts"] >= 1
    assert line["buffered_records"] == 1
    assert any("cannot deliver 1 records as raw/" in o.get("msg", "") for o in helpers.warn_lines(s))
    client.create_bucket(Bucket=bucket)
    objs = helpers.wait_until(lambda: listing(client, bucket), timeout=20,
                              what="the object once the bucket exists", proc=s)
    assert list(objs.values()) == [b"kept\n"]
    s.stop()
    ex = helpers.exit_counters(s)
    assert ex["DeliveryToS3.Records"] == 1 and ex["DeliveryToS3.Success"] == 1


class Endpoint:
    """A Firehose HTTP endpoint: records every request (headers, JSON body, gunzipped when it
    came gzipped) and answers 200 with the echoed requestId, or always `status` with Firehose's
    failure body."""

    def __init__(self, status=200):
        self.status = status
        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                body = json.loads(raw)
                outer.requests.append((dict(self.headers), body))
                answer = {"requestId": body["requestId"], "timestamp": 1700000000456}
                if outer.status != 200:
                    answer["errorMessage"] = "boom"
                data = json.dumps(answer).encode()
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/ingest" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint():
    made = []

    def make(status=200):
        e = Endpoint(status)
        made.append(e)
        return e
    yield make
    for e in made:
        e.stop()


def http_stream(url, bucket_arn, retry_s=300, **extra):
    dest = {"EndpointConfiguration": {"Url": url, "Name": "test", "AccessKey": "k-123"},
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
            "RetryOptions": {"DurationInSeconds": retry_s},
            "S3Configuration": {"BucketARN": bucket_arn, "CompressionFormat": "UNCOMPRESSED"}}
    dest.update(extra)
    return {"DeliveryStreamName": "clicks", "HttpEndpointDestinationConfiguration": dest}


def test_http_endpoint_delivered(sluice, tmp_path, endpoint):
    ep = endpoint(200)
    out = tmp_path / "backup"
    s, fh = run(sluice, tmp_path, http_stream(ep.url, "file://" + str(out)))
    recs = [b'{"n":1}', b'{"n":2}', b""]
    assert fh.put_record_batch(DeliveryStreamName="clicks",
                               Records=[{"Data": r} for r in recs])["FailedPutCount"] == 0
    helpers.wait_until(lambda: ep.requests, timeout=20, what="a request", proc=s)
    s.stop()
    assert len(ep.requests) == 1
    headers, body = ep.requests[0]
    assert [base64.b64decode(r["data"]) for r in body["records"]] == recs
    assert headers["X-Amz-Firehose-Request-Id"] == body["requestId"]
    assert headers["X-Amz-Firehose-Access-Key"] == "k-123"
    assert headers["X-Amz-Firehose-Source-Arn"] == \
        "arn:aws:firehose:us-east-1:000000000000:deliverystream/clicks"
    assert not out.exists() or not any(f for _r, _d, f in os.walk(str(out)))  # nothing failed
    ex = helpers.exit_counters(s)
    assert ex["DeliveryToHttpEndpoint.Records"] == 3
    assert ex["DeliveryToHttpEndpoint.Success"] == 1
    assert ex["BackupToS3.Records"] == 0


def test_http_endpoint_failing_backed_up(sluice, tmp_path, endpoint, s3):
    """500 every time: the same request (same requestId) again and again for DurationInSeconds,
    then Firehose's error records in the S3Configuration's bucket under http-endpoint-failed/."""
    s3_url, client, bucket = s3
    client.create_bucket(Bucket=bucket)
    ep = endpoint(500)
    s, fh = run(sluice, tmp_path, http_stream(ep.url, "arn:aws:s3:::" + bucket, retry_s=2),
                env=s3_env(s3_url))
    recs = [b'{"n":1}\n', b'{"n":2}\n']
    assert fh.put_record_batch(DeliveryStreamName="clicks",
                               Records=[{"Data": r} for r in recs])["FailedPutCount"] == 0
    objs = helpers.wait_until(lambda: listing(client, bucket), timeout=40,
                              what="the backup object", proc=s)
    assert len(objs) == 1, objs
    key, body = next(iter(objs.items()))
    hour = now_utc().strftime("%Y/%m/%d/%H/")
    assert re.match("^http-endpoint-failed/" + re.escape(hour) + name_re("clicks") + "$",
                    key), key
    ids = {b["requestId"] for _h, b in ep.requests}
    assert len(ep.requests) >= 2 and len(ids) == 1, ep.requests
    lines = [json.loads(ln) for ln in body.decode().splitlines()]
    assert [base64.b64decode(ln["rawData"]) for ln in lines] == recs
    for ln in lines:
        assert ln["errorCode"] == "HttpEndpoint.DestinationException"
        assert "boom" in ln["errorMessage"] and "500" in ln["errorMessage"]
        assert ln["attemptsMade"] == len(ep.requests)
        assert ln["attemptEndingTimestamp"] >= ln["arrivalTimestamp"] > 0
    s.stop()
    ex = helpers.exit_counters(s)
    assert ex["DeliveryToHttpEndpoint.Records"] == 0
    assert ex["BackupToS3.Records"] == 2 and ex["BackupToS3.Success"] == 1
