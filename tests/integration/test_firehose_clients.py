"""The ingest API as real clients see it, and a clean shutdown.

Clients: the JavaScript SDK's FirehoseClient (@aws-sdk/client-firehose, through
tests/services/node/firehose-sdk.mjs), boto3 and Debian's AWS CLI, each unchanged but for its
endpoint and credentials (test_firehose.py covers the CLI's and boto3's puts, List and Describe
of an S3 stream; this file adds the JavaScript SDK, Describe of an HTTP endpoint stream, of
processors and dynamic partitioning, and of a Kafka or Redis sink stream without its secrets,
and the SDK's own retry at the spool quota).  Shutdown: SIGTERM refuses new puts at once (a 503
ServiceUnavailableException, which the SDKs retry, with Connection: close), answers the puts
already being made durable, delivers what is held and exits; every record answered success is
delivered, every other one was answered with an error; a progress line due while the streams
close (a slow last sync) neither logs nor crashes.  Counters: the exit line's Firehose
counters against what was put and what landed.  sluice listens on port 0 and the tests read the
port from its log."""

import base64
import gzip
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time

import pytest

import helpers
from test_firehose import aws, b64, boto3_client, objects, raw_call, start, stream_conf

NODE_DIR = os.path.join(helpers.REPO, "tests", "services", "node")
SDK_SCRIPT = os.path.join(NODE_DIR, "firehose-sdk.mjs")
STREAM_ARN = "arn:aws:firehose:us-east-1:000000000000:deliverystream/clicks"


def js_sdk(url, steps, timeout=120):
    """Runs steps (firehose-sdk.mjs's JSON) with the JavaScript SDK; returns one result a step."""
    if not shutil.which("node") or not os.path.exists(
            os.path.join(NODE_DIR, "node_modules", "@aws-sdk", "client-firehose")):
        helpers.missing("node and @aws-sdk/client-firehose (npm ci in tests/services/node)")
    r = subprocess.run(["node", SDK_SCRIPT, url], input=json.dumps(steps), capture_output=True,
                       text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def lines_of(out, final=True):
    got = []
    for data in objects(out, final=final).values():
        got.extend(data.decode().splitlines())
    return got


def port_of(url):
    return int(url.rsplit(":", 1)[1])


class Endpoint:
    """Firehose's HTTP endpoint protocol on loopback (200 with the echoed requestId), whose
    answers wait while the gate is shut."""

    def __init__(self):
        import http.server
        self.requests = []
        self.gate = threading.Event()
        self.gate.set()
        ep = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    raw = gzip.decompress(raw)
                body = json.loads(raw)
                ep.requests.append(body)
                ep.gate.wait(60)
                data = json.dumps({"requestId": body["requestId"],
                                   "timestamp": int(time.time() * 1000)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/ingest" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def records(self):
        return [base64.b64decode(r["data"]) for b in self.requests for r in b["records"]]

    def stop(self):
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint():
    e = Endpoint()
    yield e
    e.stop()


def http_stream(url, bucket_arn, **extra):
    dest = {"EndpointConfiguration": {"Url": url, "Name": "test", "AccessKey": "k-secret-123"},
            "BufferingHints": {"SizeInMBs": 2, "IntervalInSeconds": 0},
            "RetryOptions": {"DurationInSeconds": 120},
            "S3BackupMode": "AllData",
            "RequestConfiguration": {"ContentEncoding": "GZIP", "CommonAttributes": [
                {"AttributeName": "env", "AttributeValue": "test"}]},
            "S3Configuration": {"RoleARN": "arn:aws:iam::000000000000:role/fh",
                                "BucketARN": bucket_arn, "Prefix": "backup/",
                                "ErrorOutputPrefix": "failed/!{firehose:error-output-type}/",
                                "BufferingHints": {"SizeInMBs": 3, "IntervalInSeconds": 120},
                                "CompressionFormat": "GZIP"}}
    dest.update(extra)
    return {"DeliveryStreamName": "clicks", "HttpEndpointDestinationConfiguration": dest}


def put_batch(conn, recs, stream="clicks"):
    """One PutRecordBatch on the keep-alive connection conn, as an SDK sends it; returns
    (status, headers, parsed answer)."""
    body = json.dumps({"DeliveryStreamName": stream,
                       "Records": [{"Data": b64(x)} for x in recs]})
    conn.request("POST", "/", body=body, headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "Firehose_20150804.PutRecordBatch"})
    r = conn.getresponse()
    return r.status, dict(r.getheaders()), json.loads(r.read())


# ------------------------------------------------------------------------------------------
# The JavaScript SDK


def test_js_sdk_puts_describe_list(sluice, tmp_path):
    """FirehoseClient against sluice: PutRecord, PutRecordBatch of 500 records, List and
    Describe; the records land as objects, in order."""
    out = tmp_path / "out"
    s, url = start(sluice, tmp_path, stream_conf(out, size_mb=1, interval=0),
                   stream_conf(tmp_path / "other", name="audit", interval=300))
    batch = ["js-%03d" % i for i in range(500)]
    res = js_sdk(url, [
        {"op": "ListDeliveryStreams", "input": {}},
        {"op": "ListDeliveryStreams", "input": {"Limit": 1}},
        {"op": "DescribeDeliveryStream", "input": {"DeliveryStreamName": "clicks"}},
        {"op": "PutRecord", "input": {"DeliveryStreamName": "clicks",
                                      "Record": {"Text": "js-single\n"}}},
        {"op": "PutRecordBatch", "input": {"DeliveryStreamName": "clicks",
                                           "Records": [{"Text": x + "\n"} for x in batch]}},
        {"op": "DescribeDeliveryStream", "input": {"DeliveryStreamName": "nope"}},
    ])
    assert res[0]["ok"] == {"DeliveryStreamNames": ["audit", "clicks"],
                            "HasMoreDeliveryStreams": False}
    assert res[1]["ok"] == {"DeliveryStreamNames": ["audit"], "HasMoreDeliveryStreams": True}
    d = res[2]["ok"]["DeliveryStreamDescription"]
    assert d["DeliveryStreamARN"] == STREAM_ARN and d["DeliveryStreamStatus"] == "ACTIVE"
    ext = d["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert ext["BufferingHints"] == {"SizeInMBs": 1, "IntervalInSeconds": 0}
    assert ext["BucketARN"] == "file://" + str(out)
    # the SDK turned CreateTimestamp into a Date, printed as ISO text
    assert re.match(r"^\d{4}-\d\d-\d\dT", d["CreateTimestamp"]), d["CreateTimestamp"]
    assert res[3]["ok"]["RecordId"] and res[3]["ok"]["Encrypted"] is False
    b = res[4]["ok"]
    assert b["FailedPutCount"] == 0 and len(b["RequestResponses"]) == 500
    assert len({x["RecordId"] for x in b["RequestResponses"]}) == 500
    assert res[5]["error"] == "ResourceNotFoundException" and res[5]["status"] == 400
    assert res[5]["attempts"] == 1  # a client error is not retried
    helpers.wait_until(lambda: len(lines_of(out, final=False)) == 501, timeout=20,
                       what="501 records delivered", proc=s)
    assert s.stop() == 0, s.log_tail()
    objs = sorted(objects(out, final=True).values(), key=len)
    assert objs == [b"js-single\n", "".join(x + "\n" for x in batch).encode()]  # in order


def test_js_sdk_retries_at_the_quota(sluice, tmp_path):
    """A spool of 64 KiB and six PutRecord calls of 16 KB at once (four fit): the calls past the
    quota are answered 503 ServiceUnavailableException with Retry-After; the SDK's own retry
    (its default three attempts) sends them again once the spool delivered, and every record is
    delivered, once."""
    out = tmp_path / "out"
    conf = stream_conf(out, size_mb=1, interval=900)
    conf["spool_max_bytes"] = "64KiB"
    s, url = start(sluice, tmp_path, conf)
    body = "q" * 16000
    res = js_sdk(url, [{"op": "PutRecord", "parallel": 6, "input": {
        "DeliveryStreamName": "clicks", "Record": {"Text": "rec-{i}-" + body + "\n"}}}])[0]
    bad = [r for r in res if "ok" not in r]
    assert not bad, bad
    retried = [r for r in res if r["attempts"] > 1]
    assert retried, "the quota never refused a call"
    # Retry-After: 1 made the SDK wait about a second, not its own tens of ms
    assert all(r["ms"] >= 900 for r in retried), retried
    assert s.stop() == 0, s.log_tail()
    got = lines_of(out)
    assert sorted(got) == sorted("rec-%d-" % i + body for i in range(6))
    ex = helpers.exit_counters(s)
    assert ex["ThrottledRecords"] == sum(r["attempts"] - 1 for r in res)
    assert ex["IncomingRecords"] == 6


def test_boto3_and_cli_retry_put_record_at_the_quota(sluice, tmp_path):
    """Two streams whose 64 KiB spools are filled to the brim (four 16 KB records; interval 900,
    so nothing is delivered before the quota is hit): boto3's put_record to one and the AWS
    CLI's put-record to the other are answered 503 ServiceUnavailableException, which delivers
    what the spool holds; each client's own retry then succeeds, and every record is delivered
    once."""
    body = "b" * 16000
    confs = []
    for name in ("clicks", "audit"):
        c = stream_conf(tmp_path / name, name=name, size_mb=1, interval=900)
        c["spool_max_bytes"] = "64KiB"
        confs.append(c)
    s, url = start(sluice, tmp_path, *confs)
    conn = http.client.HTTPConnection("127.0.0.1", port_of(url), timeout=30)
    for name in ("clicks", "audit"):
        status, _h, ans = put_batch(conn, ["%s-%d-%s\n" % (name, i, body) for i in range(4)],
                                    stream=name)
        assert status == 200 and ans["FailedPutCount"] == 0, ans
    conn.close()
    got = boto3_client(url).put_record(DeliveryStreamName="clicks",
                                       Record={"Data": ("boto3-" + body + "\n").encode()})
    assert got["RecordId"] and got["ResponseMetadata"]["RetryAttempts"] >= 1, got
    r = aws(tmp_path, url, "put-record", "--delivery-stream-name", "audit",
            "--record", json.dumps({"Data": b64("cli-" + body + "\n")}))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["RecordId"]
    assert s.stop() == 0, s.log_tail()
    for name, client in (("clicks", "boto3"), ("audit", "cli")):
        want = ["%s-%d-%s" % (name, i, body) for i in range(4)] + [client + "-" + body]
        assert sorted(lines_of(tmp_path / name)) == sorted(want), name
    ex = helpers.exit_lines(s)
    assert len(ex) == 2
    for e in ex:  # each client's failed attempt, then its retry
        assert e["IncomingRecords"] == 5 and e["ThrottledRecords"] >= 1, e


# ------------------------------------------------------------------------------------------
# DescribeDeliveryStream of an HTTP endpoint stream


def test_describe_http_endpoint_stream(sluice, tmp_path, endpoint):
    """An HTTP endpoint stream is described as AWS does: HttpEndpointDestinationDescription with
    EndpointConfiguration (Url and Name, never the AccessKey), BufferingHints, RetryOptions,
    RequestConfiguration, S3BackupMode and S3DestinationDescription; the JavaScript SDK, boto3
    and the AWS CLI all read it."""
    s, url = start(sluice, tmp_path, http_stream(endpoint.url, "file://" + str(tmp_path / "b")))
    want = {
        "EndpointConfiguration": {"Url": endpoint.url, "Name": "test"},
        "BufferingHints": {"SizeInMBs": 2, "IntervalInSeconds": 0},
        "RetryOptions": {"DurationInSeconds": 120},
        "S3BackupMode": "AllData",
        "RequestConfiguration": {"ContentEncoding": "GZIP", "CommonAttributes": [
            {"AttributeName": "env", "AttributeValue": "test"}]},
    }
    want_s3 = {"RoleARN": "arn:aws:iam::000000000000:role/fh",
               "BucketARN": "file://" + str(tmp_path / "b"), "Prefix": "backup/",
               "ErrorOutputPrefix": "failed/!{firehose:error-output-type}/",
               "BufferingHints": {"SizeInMBs": 3, "IntervalInSeconds": 120},
               "CompressionFormat": "GZIP"}

    def check(dest, who):
        assert set(dest) == {"DestinationId", "HttpEndpointDestinationDescription"}, (who, dest)
        h = dest["HttpEndpointDestinationDescription"]
        for k, v in want.items():
            assert h[k] == v, (who, k, h[k])
        for k, v in want_s3.items():
            assert h["S3DestinationDescription"][k] == v, (who, k, h["S3DestinationDescription"])
        assert "k-secret-123" not in json.dumps(h), who

    js = js_sdk(url, [{"op": "DescribeDeliveryStream",
                       "input": {"DeliveryStreamName": "clicks"}}])[0]
    check(js["ok"]["DeliveryStreamDescription"]["Destinations"][0], "JavaScript SDK")
    d = boto3_client(url).describe_delivery_stream(DeliveryStreamName="clicks")
    check(d["DeliveryStreamDescription"]["Destinations"][0], "boto3")
    r = aws(tmp_path, url, "describe-delivery-stream", "--delivery-stream-name", "clicks")
    assert r.returncode == 0, r.stderr
    check(json.loads(r.stdout)["DeliveryStreamDescription"]["Destinations"][0], "AWS CLI")
    assert s.stop() == 0


# ------------------------------------------------------------------------------------------
# Shutdown


def test_sigterm_refuses_new_puts_and_delivers_taken(sluice, tmp_path, endpoint):
    """A put taken before SIGTERM is delivered; a put on a kept-alive connection after it is
    answered 503 ServiceUnavailableException (Retry-After, Connection: close) and stored
    nowhere; a new connection is refused; sluice exits 0 once the taken records are delivered,
    long before drain_timeout."""
    endpoint.gate.clear()  # the endpoint holds its answer: the delivery is in flight
    cfg = {"state_dir": str(tmp_path / "state"), "region": "us-east-1",
           "listen": "127.0.0.1:0", "drain_timeout": "60s",
           "delivery_streams": [http_stream(endpoint.url, "file://" + str(tmp_path / "b"),
                                            S3BackupMode="FailedDataOnly")]}
    s = sluice(cfg, args=["--log-format", "json"])
    port = helpers.wait_until(
        lambda: (re.search(r"\(port (\d+)\)", s.log()) or [0, 0])[1], what="listening", proc=s)
    conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
    status, _h, ans = put_batch(conn, ["before-%d" % i for i in range(3)])
    assert status == 200 and ans["FailedPutCount"] == 0
    helpers.wait_until(lambda: endpoint.requests, what="the delivery at the endpoint", proc=s)
    s.signal(signal.SIGTERM)
    helpers.wait_until(lambda: "draining" in s.log(), what="the drain", proc=s)
    status, headers, ans = put_batch(conn, ["after-%d" % i for i in range(3)])
    assert status == 503, (status, ans)
    assert ans["__type"] == "ServiceUnavailableException"
    assert headers.get("Retry-After") == "1" and headers.get("Connection") == "close"
    conn.close()
    with pytest.raises(OSError):
        c2 = http.client.HTTPConnection("127.0.0.1", int(port), timeout=5)
        put_batch(c2, ["new-connection"])
    assert s.poll() is None  # still delivering what it took
    endpoint.gate.set()
    t0 = time.monotonic()
    assert s.wait(30) == 0, s.log_tail()
    assert time.monotonic() - t0 < 20
    assert endpoint.records() == [b"before-0", b"before-1", b"before-2"]
    ex = helpers.exit_counters(s)
    assert ex["IncomingRecords"] == 3 and ex["DeliveryToHttpEndpoint.Records"] == 3
    assert ex["spool_records"] == 0


SLOW_SYNC_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
/* fdatasync and fsync take 400 ms once the file named by SLOW_SYNC_FLAG exists */
static void slow(void)
{
    const char *flag = getenv("SLOW_SYNC_FLAG");
    struct timespec ts = {0, 400000000};
    if (flag && access(flag, F_OK) == 0) {
        nanosleep(&ts, NULL);
    }
}
int fdatasync(int fd)
{
    slow();
    return ((int (*)(int))dlsym(RTLD_NEXT, "fdatasync"))(fd);
}
int fsync(int fd)
{
    slow();
    return ((int (*)(int))dlsym(RTLD_NEXT, "fsync"))(fd);
}
"""


def test_progress_timer_during_a_slow_close(sluice, tmp_path):
    """The progress line's timer fires while the streams are being freed (a spool's last sync
    is slow, and the streams close on the loop): sluice exits 0, without logging (or
    crashing on) a stream that is half freed. fdatasync and fsync are slowed by a preloaded
    shim once the test says so (a slow disk at exit), the progress line comes every 100 ms."""
    cc = shutil.which("cc")
    if not cc:
        helpers.missing("a C compiler (cc) for the slow-sync shim")
    shim = tmp_path / "slow_sync.so"
    src = tmp_path / "slow_sync.c"
    src.write_text(SLOW_SYNC_SHIM)
    r = subprocess.run([cc, "-shared", "-fPIC", "-o", str(shim), str(src), "-ldl"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    flag = tmp_path / "slow-now"

    def slow_sluice(cfg, args=()):
        cfg["stats_interval"] = "100ms"
        return sluice(cfg, args=args, env_extra={"LD_PRELOAD": str(shim),
                                                 "SLOW_SYNC_FLAG": str(flag)})

    out = tmp_path / "out"
    s, url = start(slow_sluice, tmp_path, stream_conf(out, interval=0))
    conn = http.client.HTTPConnection("127.0.0.1", port_of(url), timeout=30)
    status, _, ans = put_batch(conn, ["r%d" % i for i in range(50)])
    assert status == 200 and ans["FailedPutCount"] == 0, ans
    conn.close()
    flag.write_text("")  # every sync from here on takes 400 ms: the exit's too
    rc = s.stop(timeout=60)
    assert rc == 0, "exit code %s\n%s" % (rc, s.log_tail())
    assert "".join(lines_of(out)) == "".join("r%d" % i for i in range(50))
    exit_at = s.log().index('"msg":"exit"')
    assert '"msg":"progress"' not in s.log()[exit_at:], s.log_tail()


def test_puts_racing_sigterm(sluice, tmp_path):
    """Four producers put batches over kept-alive connections while SIGTERM arrives: every record
    answered success is delivered, once; every other call was answered with an error (503
    ServiceUnavailableException, or no connection) and none of its records is delivered; and
    sluice exits 0 well within drain_timeout."""
    out = tmp_path / "out"
    cfg = {"state_dir": str(tmp_path / "state"), "region": "us-east-1",
           "listen": "127.0.0.1:0", "drain_timeout": "60s",
           "delivery_streams": [stream_conf(out, size_mb=1, interval=1)]}
    s = sluice(cfg, args=["--log-format", "json"])
    port = int(helpers.wait_until(
        lambda: (re.search(r"\(port (\d+)\)", s.log()) or [0, 0])[1], what="listening", proc=s))
    acked, refused, unanswered = [], [], []
    lock = threading.Lock()
    stop = threading.Event()
    started = threading.Barrier(5)

    def producer(w):
        conn = None
        n = 0
        started.wait()
        while not stop.is_set():
            recs = ["w%d-%05d" % (w, n + i) for i in range(50)]
            n += 50
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status, _h, ans = put_batch(conn, [x + "\n" for x in recs])
            except ConnectionRefusedError:
                with lock:
                    refused.extend(recs)  # never sent: the server is gone
                break
            except (OSError, http.client.HTTPException):
                with lock:
                    unanswered.extend(recs)
                if conn:
                    conn.close()
                conn = None
                continue
            with lock:
                if status == 200:
                    for x, r in zip(recs, ans["RequestResponses"]):
                        (acked if "RecordId" in r else refused).append(x)
                else:
                    assert status == 503 and ans["__type"] == "ServiceUnavailableException"
                    refused.extend(recs)
            if status != 200:
                conn.close()
                conn = None
        if conn:
            conn.close()

    threads = [threading.Thread(target=producer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    started.wait()
    helpers.wait_until(lambda: len(acked) >= 2000, timeout=60, what="2000 records taken", proc=s)
    s.signal(signal.SIGTERM)
    t0 = time.monotonic()
    rc = s.wait(40)
    stop.set()
    for t in threads:
        t.join(30)
    assert rc == 0, s.log_tail()
    assert time.monotonic() - t0 < 20  # not drain_timeout's 60 s
    got = lines_of(out)
    print("\nacked %d, refused %d, unanswered %d, delivered %d"
          % (len(acked), len(refused), len(unanswered), len(got)))
    assert sorted(got) == sorted(acked)  # every success delivered, once; no error delivered
    # A call sent on a kept-alive connection in the instant sluice exits may find it closed
    # unread (the clients' connection-reset error, which the SDKs retry): never stored.
    assert not set(unanswered) & set(got)
    assert refused  # some producer met the drain
    ex = helpers.exit_counters(s)
    assert ex["IncomingRecords"] == len(acked) == ex["DeliveryToS3.Records"]


def free_port():
    import socket
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


def test_js_producer_across_a_restart(sluice, tmp_path):
    """A JavaScript SDK producer (resending what is refused, as applications do) puts while
    sluice gets SIGTERM and starts again on the same port: the calls during the drain and the
    restart fail (503 ServiceUnavailableException with Retry-After, or no connection), the SDK
    (or past its retries the producer) sends them again, and every record is delivered, once;
    none is lost."""
    out = tmp_path / "out"
    cfg = {"state_dir": str(tmp_path / "state"), "region": "us-east-1",
           "listen": "127.0.0.1:%d" % free_port(), "drain_timeout": "60s",
           "delivery_streams": [stream_conf(out, size_mb=1, interval=1)]}
    s = sluice(cfg, args=["--log-format", "json"])
    url = "http://" + cfg["listen"]
    helpers.wait_until(lambda: "listening on" in s.log(), what="listening", proc=s)
    if not shutil.which("node") or not os.path.exists(
            os.path.join(NODE_DIR, "node_modules", "@aws-sdk", "client-firehose")):
        helpers.missing("node and @aws-sdk/client-firehose (npm ci in tests/services/node)")
    steps = tmp_path / "produce.json"
    steps.write_text(json.dumps([{"op": "Produce", "input": {
        "DeliveryStreamName": "clicks", "batches": 400, "size": 25, "prefix": "p",
        "pauseMs": 100, "everyMs": 5}}]))
    with open(str(steps)) as fin:
        producer = subprocess.Popen(["node", SDK_SCRIPT, url], stdin=fin,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        helpers.wait_until(lambda: len(lines_of(out, final=False)) >= 200, timeout=60,
                           what="records delivered before the restart", proc=s)
        s.signal(signal.SIGTERM)
        assert s.wait(30) == 0, s.log_tail()
        first = len(lines_of(out))
        s.start()
        helpers.wait_until(lambda: "listening on" in s.log(), what="listening again", proc=s)
        stdout, stderr = producer.communicate(timeout=120)
    finally:
        if producer.poll() is None:
            producer.kill()
    assert producer.returncode == 0, stderr
    res = json.loads(stdout.splitlines()[0])["ok"]
    print("\nbefore the restart %d delivered; the producer saw %s" % (first, res))
    assert s.stop() == 0, s.log_tail()
    got = lines_of(out)
    want = {"p-%d-%d" % (b, n) for b in range(400) for n in range(25)}
    assert set(got) == want  # every record delivered
    assert len(got) == len(want)  # once: nothing refused was also stored
    assert first < len(want)  # the restart came while the producer was putting
    # and some call met it: retried by the SDK (after a 503's Retry-After, or no connection)
    # or, past its retries, by the producer
    assert res["retriedCalls"] + sum(res["errors"].values()) > 0, res


# ------------------------------------------------------------------------------------------
# Counters


def test_counters_match_what_was_put_and_landed(sluice, tmp_path, endpoint):
    """IncomingRecords/Bytes, ThrottledRecords and DeliveryToS3.Records/Success on the exit line
    equal what the test put, what the quota refused, and the objects that landed (read back);
    DeliveryToHttpEndpoint.Success equals the requests the endpoint answered."""
    out = tmp_path / "out"
    conf = stream_conf(out, size_mb=1, interval=0)
    conf["spool_max_bytes"] = "64KiB"
    s, url = start(sluice, tmp_path, conf)
    fh = boto3_client(url)
    put_bytes = 0
    put_records = 0
    throttled = 0
    for i in range(6):
        recs = [("%d-%02d-" % (i, j) + "c" * 3000 + "\n").encode() for j in range(30)]
        ans = fh.put_record_batch(DeliveryStreamName="clicks",
                                  Records=[{"Data": d} for d in recs])
        for d, r in zip(recs, ans["RequestResponses"]):
            if "RecordId" in r:
                put_records += 1
                put_bytes += len(d)
            else:
                throttled += 1
    assert throttled > 0, "the 64 KiB quota never refused a record"
    assert s.stop() == 0, s.log_tail()
    objs = objects(out, final=True)
    landed = b"".join(objs.values())
    ex = helpers.exit_counters(s)
    assert ex["IncomingRecords"] == put_records == landed.count(b"\n")
    assert ex["IncomingBytes"] == put_bytes == len(landed)
    assert ex["ThrottledRecords"] == throttled
    assert ex["DeliveryToS3.Records"] == put_records
    assert ex["DeliveryToS3.Bytes"] == put_bytes
    assert ex["DeliveryToS3.Success"] == len(objs)

    # the HTTP endpoint's counters: one stream, three puts at interval 0
    s2 = sluice({"state_dir": str(tmp_path / "state2"), "region": "us-east-1",
                 "listen": "127.0.0.1:0",
                 "delivery_streams": [http_stream(endpoint.url, "file://" + str(tmp_path / "b"),
                                                  S3BackupMode="FailedDataOnly")]},
                args=["--log-format", "json"])
    port = helpers.wait_until(
        lambda: (re.search(r"\(port (\d+)\)", s2.log()) or [0, 0])[1], what="listening", proc=s2)
    fh = boto3_client("http://127.0.0.1:%s" % port)
    for i in range(3):
        assert fh.put_record_batch(DeliveryStreamName="clicks",
                                   Records=[{"Data": b"h%d-%d" % (i, j)} for j in range(4)]
                                   )["FailedPutCount"] == 0
        helpers.wait_until(lambda: len(endpoint.requests) == i + 1, what="the request", proc=s2)
    assert s2.stop() == 0, s2.log_tail()
    ex = helpers.exit_counters(s2)
    assert ex["IncomingRecords"] == 12 == len(endpoint.records())
    assert ex["IncomingBytes"] == sum(len(r) for r in endpoint.records())
    assert ex["DeliveryToHttpEndpoint.Records"] == 12
    assert ex["DeliveryToHttpEndpoint.Success"] == len(endpoint.requests) == 3
    assert ex["BackupToS3.Records"] == 0


# ------------------------------------------------------------------------------------------
# DescribeDeliveryStream of transforms, dynamic partitioning and sluice's own sinks

LAMBDA_ARN = "arn:aws:lambda:us-east-1:000000000000:function:enrich"


def describe_all(tmp_path, url, name):
    """DescribeDeliveryStream of name through the JavaScript SDK, boto3 and the AWS CLI, and as
    sent on the wire; returns {client: the first destination} for the clients, and the raw one."""
    got = {}
    js = js_sdk(url, [{"op": "DescribeDeliveryStream", "input": {"DeliveryStreamName": name}}])[0]
    assert "ok" in js, js
    got["JavaScript SDK"] = js["ok"]["DeliveryStreamDescription"]["Destinations"][0]
    d = boto3_client(url).describe_delivery_stream(DeliveryStreamName=name)
    got["boto3"] = d["DeliveryStreamDescription"]["Destinations"][0]
    r = aws(tmp_path, url, "describe-delivery-stream", "--delivery-stream-name", name)
    assert r.returncode == 0, r.stderr
    got["AWS CLI"] = json.loads(r.stdout)["DeliveryStreamDescription"]["Destinations"][0]
    status, raw = raw_call(url, "DescribeDeliveryStream", {"DeliveryStreamName": name})
    assert status == 200, raw
    return got, raw["DeliveryStreamDescription"]["Destinations"][0]


def test_describe_processing_and_dynamic_partitioning(sluice, tmp_path, endpoint):
    """ExtendedS3DestinationDescription carries ProcessingConfiguration as configured (Enabled,
    each processor's Type and Parameters), DynamicPartitioningConfiguration (Enabled, RetryOptions
    with Firehose's default 300 s when not given) and S3BackupMode; an HTTP endpoint's
    description carries its ProcessingConfiguration; all three clients read them."""
    processing = {"Enabled": True, "Processors": [
        {"Type": "Lambda", "Parameters": [
            {"ParameterName": "LambdaArn", "ParameterValue": LAMBDA_ARN},
            {"ParameterName": "NumberOfRetries", "ParameterValue": "2"}]},
        {"Type": "MetadataExtraction", "Parameters": [
            {"ParameterName": "MetadataExtractionQuery",
             "ParameterValue": "{customer: .customer}"},
            {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"}]}]}
    s3 = stream_conf(tmp_path / "out", interval=60)
    ext = s3["ExtendedS3DestinationConfiguration"]
    ext.update({"Prefix": "data/!{partitionKeyFromQuery:customer}/",
                "ErrorOutputPrefix": "errors/!{firehose:error-output-type}/",
                "ProcessingConfiguration": processing,
                "DynamicPartitioningConfiguration": {"Enabled": True}})
    http_processing = {"Enabled": True, "Processors": [
        {"Type": "AppendDelimiterToRecord",
         "Parameters": [{"ParameterName": "Delimiter", "ParameterValue": "\\n"}]}]}
    http = http_stream(endpoint.url, "file://" + str(tmp_path / "b"),
                       ProcessingConfiguration=http_processing)
    http["DeliveryStreamName"] = "hooks"
    # a Lambda processor needs a Lambda endpoint to be configured (nothing is put, none called)
    def with_lambda(cfg, args=()):
        return sluice(cfg, args=args, env_extra={"AWS_ENDPOINT_URL_LAMBDA": "http://127.0.0.1:9"})

    s, url = start(with_lambda, tmp_path, s3, http)
    got, _ = describe_all(tmp_path, url, "clicks")
    for who, dest in got.items():
        e = dest["ExtendedS3DestinationDescription"]
        assert e["ProcessingConfiguration"] == processing, (who, e)
        assert e["DynamicPartitioningConfiguration"] == {
            "Enabled": True, "RetryOptions": {"DurationInSeconds": 300}}, (who, e)
        assert e["S3BackupMode"] == "Disabled", (who, e)
        assert e["Prefix"] == "data/!{partitionKeyFromQuery:customer}/", (who, e)
    got, _ = describe_all(tmp_path, url, "hooks")
    for who, dest in got.items():
        h = dest["HttpEndpointDestinationDescription"]
        assert h["ProcessingConfiguration"] == http_processing, (who, h)
        assert "k-secret-123" not in json.dumps(dest), who
    assert s.stop() == 0, s.log_tail()


def test_describe_sink_destination_without_secrets(sluice, tmp_path):
    """A stream with SinkDestinationConfiguration is described as what it is, a
    SinkDestinationDescription (Destination with its password redacted, BootstrapServers,
    BufferingHints), not as an S3 destination without a bucket; no password or rdkafka secret is
    in the answer; the JavaScript SDK, boto3 and the AWS CLI skip the member they do not know
    and read the rest."""
    redis = {"DeliveryStreamName": "to-redis", "DeliveryStreamType": "DirectPut",
             "SinkDestinationConfiguration": {
                 "Destination": "redis://app:r3dis-pw-42@127.0.0.1:1/0/events",
                 "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 30}}}
    kafka = {"DeliveryStreamName": "to-kafka", "DeliveryStreamType": "DirectPut",
             "SinkDestinationConfiguration": {
                 "Destination": "kafka://events", "BootstrapServers": "127.0.0.1:1",
                 "rdkafka": {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
                             "sasl.username": "app", "sasl.password": "k4fka-pw-42"},
                 "BufferingHints": {"SizeInMBs": 2, "IntervalInSeconds": 10}}}
    s, url = start(sluice, tmp_path, redis, kafka)
    want = {"to-redis": {"Destination": "redis://***@127.0.0.1:1/0/events",
                         "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 30}},
            "to-kafka": {"Destination": "kafka://events", "BootstrapServers": "127.0.0.1:1",
                         "BufferingHints": {"SizeInMBs": 2, "IntervalInSeconds": 10}}}
    for name, sink in want.items():
        got, raw = describe_all(tmp_path, url, name)
        assert raw == {"DestinationId": "destinationId-000000000001",
                       "SinkDestinationDescription": sink}, raw
        for who, dest in got.items():
            assert dest == {"DestinationId": "destinationId-000000000001"}, (who, dest)
        _, whole = raw_call(url, "DescribeDeliveryStream", {"DeliveryStreamName": name})
        text = json.dumps(whole)
        assert "r3dis-pw-42" not in text and "k4fka-pw-42" not in text, text
        assert "BucketARN" not in text, text
    assert s.stop() == 0, s.log_tail()
