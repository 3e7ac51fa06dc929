"""Kinesis benchmark helper (tests/bench/bench_kinesis_http.sh): fills a stream of kinesalite
with PutRecords, runs the plain GetRecords loop the source is compared with, runs sluice on the
same stream, and prints the table.

    bench_kinesis_loop.py loop --endpoint URL --stream NAME     (the baseline; prints JSON)
    bench_kinesis_loop.py bench ...                            (everything; see the .sh)
    bench_kinesis_loop.py trickle ...   (1 record a second, poll_interval 200ms: PutRecords ->
                                         invocation latency, median and p90 of --records)
    bench_kinesis_loop.py shards ...    (a stream of --shards shards, --records records spread
                                         over them: sluice's peak RSS and CPU, all delivered)

kinesalite checks no signature, so requests carry a dummy SigV4 Authorization header."""

import argparse
import http.server
import statistics
import threading
import base64
import datetime
import http.client
import json
import os
import re
import subprocess
import sys
import time
import uuid

import aws_json  # tests/bench/aws_json.py, beside this script


def Client(endpoint):
    return aws_json.Client(endpoint, "kinesis", "Kinesis_20131202", "1.1")


def loop(endpoint, stream):
    """The plain loop: every shard from TRIM_HORIZON to its end, the shards in turn."""
    c = Client(endpoint)
    t0 = time.time()
    n = 0
    for sh in c.call("ListShards", {"StreamName": stream})["Shards"]:
        it = c.call("GetShardIterator", {"StreamName": stream, "ShardId": sh["ShardId"],
                                         "ShardIteratorType": "TRIM_HORIZON"})["ShardIterator"]
        while it:
            r = c.call("GetRecords", {"ShardIterator": it, "Limit": 10000})
            n += len(r["Records"])
            it = r.get("NextShardIterator")
            if not r["Records"] and r.get("MillisBehindLatest", 0) == 0:
                break
    t1 = time.time()
    print(json.dumps({"records": n, "t0": t0, "t1": t1}))


def timed(cmd, out):
    """Runs cmd under GNU time; returns (rc, user, sys, maxrss_kb, t0, t1)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    t0 = time.time()
    with open(out + ".out", "wb") as o, open(out + ".err", "wb") as e:
        rc = subprocess.call(["/usr/bin/time", "-f", "%U %S %M", "-o", out + ".time"] + cmd,
                             stdout=o, stderr=e, env=env)
    t1 = time.time()
    u, s, m = open(out + ".time").read().split()[-3:]
    return rc, float(u), float(s), int(m), t0, t1


def ts(d):
    return datetime.datetime.strptime(d["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def sluice_active(log):
    """(delivered, active seconds) from sluice's JSON log."""
    start = stop = None
    since = 0.0
    delivered = -1
    for line in open(log):
        try:
            d = json.loads(line)
        except ValueError:
            continue
        msg = d.get("msg", "")
        if start is None and msg.startswith("reading stream"):
            start = ts(d)
        elif msg.startswith("idle for") and msg.endswith("stopping"):
            stop = ts(d)
            ago = re.search(r"last record read (\d+)ms ago", msg)
            since = float(ago.group(1)) / 1000 if ago else 1.0
        elif msg == "exit" and "delivered" in d:
            delivered = d["delivered"]
    if start is None or stop is None:
        return delivered, None
    return delivered, stop - since - start


def bench(a):
    c = Client(a.endpoint)
    stream = "bench-" + uuid.uuid4().hex[:8]
    c.call("CreateStream", {"StreamName": stream, "ShardCount": a.shards})
    while c.call("DescribeStreamSummary", {"StreamName": stream})[
            "StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
        time.sleep(0.05)
    payload = base64.b64encode(b"x" * a.size).decode()
    t = time.time()
    for i in range(0, a.records, 500):
        recs = [{"Data": payload, "PartitionKey": "k%d" % j}
                for j in range(i, min(i + 500, a.records))]
        r = c.call("PutRecords", {"StreamName": stream, "Records": recs})
        assert r.get("FailedRecordCount", 0) == 0, r
    print("put %d records of %d bytes into %d shards in %.1f s" % (
        a.records, a.size, a.shards, time.time() - t), file=sys.stderr)
    rows = []
    me = os.path.abspath(__file__)
    for run in range(1, a.runs + 1):
        if "loop" in a.rows:
            out = os.path.join(a.dir, "loop.%d" % run)
            rc, u, s, m, _, _ = timed([sys.executable, me, "loop", "--endpoint", a.endpoint,
                                       "--stream", stream], out)
            res = json.loads(open(out + ".out").read())
            assert rc == 0 and res["records"] == a.records, (rc, res)
            rows.append(("loop", res["t1"] - res["t0"], u + s, m))
        for row, binary in (("sluice", a.sluice), ("base", a.base)):
            if row not in a.rows or not binary:
                continue
            cfg = os.path.join(a.dir, "%s.%d.json" % (row, run))
            with open(cfg, "w") as f:
                json.dump({"state_dir": os.path.join(a.dir, "state.%s.%d" % (row, run)),
                           "region": "us-east-1", "stats_interval": 60,
                           "functions": {"nginx": {"type": "http", "url": a.url,
                                                   "timeout": 30}},
                           "mappings": [{"EventSourceArn": "arn:aws:kinesis:us-east-1:"
                                         "123456789012:stream/" + stream,
                                         "FunctionName": "nginx", "BatchSize": a.batch,
                                         "StartingPosition": "TRIM_HORIZON",
                                         "endpoint_url": a.endpoint,
                                         "poll_interval": "200ms"}]}, f)
            out = os.path.join(a.dir, "%s.%d" % (row, run))
            rc, u, s, m, _, _ = timed([binary, "run", "--until-idle=1", "--log-format",
                                       "json", cfg], out)
            delivered, active = sluice_active(out + ".err")
            assert rc == 0 and delivered == a.records and active, (rc, delivered, out)
            rows.append((row, active, u + s, m))
    print("kinesis -> http (nginx 200), %d x %d-byte records, %d shards, BatchSize %d" % (
        a.records, a.size, a.shards, a.batch))
    print("%-8s %12s %10s %16s %12s" % ("row", "records/s", "active s", "CPU s/M records",
                                         "peak RSS MB"))
    for name, active, cpu, m in rows:
        print("%-8s %12.0f %10.2f %16.2f %12.1f" % (name, a.records / active, active,
                                                     cpu / a.records * 1e6, m / 1024))


def create(c, shards):
    stream = "bench-" + uuid.uuid4().hex[:8]
    c.call("CreateStream", {"StreamName": stream, "ShardCount": shards})
    while c.call("DescribeStreamSummary", {"StreamName": stream})[
            "StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
        time.sleep(0.05)
    return stream


def sluice_config(a, path, stream, url, poll):
    with open(path, "w") as f:
        json.dump({"state_dir": path + ".state", "region": "us-east-1", "stats_interval": 60,
                   "functions": {"fn": {"type": "http", "url": url, "timeout": 30}},
                   "mappings": [{"EventSourceArn": "arn:aws:kinesis:us-east-1:123456789012:"
                                 "stream/" + stream, "FunctionName": "fn",
                                 "BatchSize": a.batch, "StartingPosition": "TRIM_HORIZON",
                                 "endpoint_url": a.endpoint, "poll_interval": poll}]}, f)


def sluice_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    return env


def trickle(a):
    """One record a second into one shard; the function notes when each arrives."""
    got = {}

    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            now = time.time()
            ev = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            for r in ev["Records"]:
                got[base64.b64decode(r["kinesis"]["data"]).decode()] = now
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    c = Client(a.endpoint)
    stream = create(c, 1)
    cfg = os.path.join(a.dir, "trickle.json")
    sluice_config(a, cfg, stream, "http://127.0.0.1:%d/" % srv.server_port, "200ms")
    err = open(os.path.join(a.dir, "trickle.err"), "wb")
    p = subprocess.Popen([a.sluice, "run", cfg], stderr=err, env=sluice_env())
    time.sleep(2)  # the shard listed and its iterator taken before the first record
    put = {}
    for i in range(a.records):
        key = "r%d" % i
        put[key] = time.time()
        c.call("PutRecords", {"StreamName": stream, "Records": [
            {"Data": base64.b64encode(key.encode()).decode(), "PartitionKey": "k"}]})
        time.sleep(1)
    deadline = time.time() + 10
    while len(got) < a.records and time.time() < deadline:
        time.sleep(0.05)
    p.terminate()
    p.wait(30)
    srv.shutdown()
    lat = sorted((got[k] - put[k]) * 1000 for k in put if k in got)
    assert len(lat) == a.records, (len(lat), a.records)
    print("trickle: %d records, 1 a second, poll_interval 200ms: PutRecords -> invocation "
          "median %.0f ms, p90 %.0f ms, max %.0f ms" % (
              len(lat), statistics.median(lat), lat[int(len(lat) * 0.9) - 1], lat[-1]))


def shards(a):
    """Many shards in one process: every record delivered, and what it costs."""
    c = Client(a.endpoint)
    stream = create(c, a.shards)
    payload = base64.b64encode(b"x" * a.size).decode()
    for i in range(0, a.records, 500):
        c.call("PutRecords", {"StreamName": stream, "Records": [
            {"Data": payload, "PartitionKey": "k%d" % j}
            for j in range(i, min(i + 500, a.records))]})
    cfg = os.path.join(a.dir, "shards.json")
    sluice_config(a, cfg, stream, a.url, "1s")
    out = os.path.join(a.dir, "shards")
    rc, u, s_, m, t0, t1 = timed([a.sluice, "run", "--until-idle=2", "--log-format", "json",
                                  cfg], out)
    delivered, active = sluice_active(out + ".err")
    assert rc == 0 and delivered == a.records, (rc, delivered, out)
    print("shards: %d shards, %d records: all delivered, wall %.1f s (with 2 s idle), CPU %.1f "
          "s, peak RSS %.1f MB" % (a.shards, a.records, t1 - t0, u + s_, m / 1024))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["loop", "bench", "trickle", "shards"])
    p.add_argument("--endpoint", required=True)
    p.add_argument("--stream")
    p.add_argument("--url")
    p.add_argument("--sluice")
    p.add_argument("--base")
    p.add_argument("--dir")
    p.add_argument("--records", type=int, default=100000)
    p.add_argument("--shards", type=int, default=4)
    p.add_argument("--size", type=int, default=100)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--rows", default="loop sluice base")
    a = p.parse_args()
    if a.mode == "loop":
        loop(a.endpoint, a.stream)
    elif a.mode == "trickle":
        trickle(a)
    elif a.mode == "shards":
        shards(a)
    else:
        bench(a)


if __name__ == "__main__":
    main()
