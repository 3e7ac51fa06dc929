"""SQS benchmark helper (tests/bench/bench_sqs_http.sh): fills a queue of fauxqs with
SendMessageBatch, runs the plain receive-and-delete loop the source is compared with, runs sluice
on the same queue, and prints the table.

    bench_sqs_loop.py loop --endpoint URL --queue NAME --records N   (the baseline; prints JSON)
    bench_sqs_loop.py bench ...                                     (everything; see the .sh)

The loop is Python's http.client with keep-alive, one request at a time: ReceiveMessage of 10
(WaitTimeSeconds 0 while messages remain), then DeleteMessageBatch of what it got.  Its own cost
is about 0.1 ms a request, against fauxqs's (a Node process) several, so it measures the server.
fauxqs checks no signature, so requests carry a dummy SigV4 Authorization header."""

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import time
import uuid

import aws_json  # tests/bench/aws_json.py, beside this script


def Client(endpoint):
    return aws_json.Client(endpoint, "sqs", "AmazonSQS", "1.0")


def queue_url(endpoint, name):
    return endpoint.rstrip("/") + "/000000000000/" + name


def loop(endpoint, name, records):
    """The plain loop: receive 10, delete them, until `records` were deleted."""
    c = Client(endpoint)
    url = queue_url(endpoint, name)
    t0 = time.time()
    n = 0
    while n < records:
        r = c.call("ReceiveMessage", {"QueueUrl": url, "MaxNumberOfMessages": 10,
                                      "WaitTimeSeconds": 1, "MessageSystemAttributeNames": ["All"],
                                      "MessageAttributeNames": ["All"]})
        msgs = r.get("Messages", [])
        if not msgs:
            break
        d = c.call("DeleteMessageBatch", {"QueueUrl": url, "Entries": [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)]})
        assert not d.get("Failed"), d
        n += len(msgs)
    t1 = time.time()
    print(json.dumps({"records": n, "t0": t0, "t1": t1}))


def fill(c, endpoint, name, records, size):
    url = queue_url(endpoint, name)
    body = "x" * size
    for i in range(0, records, 10):
        r = c.call("SendMessageBatch", {"QueueUrl": url, "Entries": [
            {"Id": str(j), "MessageBody": body} for j in range(min(10, records - i))]})
        assert not r.get("Failed"), r


def timed(cmd, out):
    """Runs cmd under GNU time; returns (rc, user, sys, maxrss_kb)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    with open(out + ".out", "wb") as o, open(out + ".err", "wb") as e:
        rc = subprocess.call(["/usr/bin/time", "-f", "%U %S %M", "-o", out + ".time"] + cmd,
                             stdout=o, stderr=e, env=env)
    u, s, m = open(out + ".time").read().split()[-3:]
    return rc, float(u), float(s), int(m)


def ts(d):
    return datetime.datetime.strptime(d["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def sluice_active(log):
    """(delivered, active seconds) from sluice's JSON log: from the queue's attributes line to
    the last message received (the idle line less its "last record read N ms ago")."""
    start = stop = None
    since = 0.0
    delivered = -1
    for line in open(log):
        try:
            d = json.loads(line)
        except ValueError:
            continue
        msg = d.get("msg", "")
        if start is None and msg.startswith("queue ") and "visibility timeout" in msg:
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
    rows = []
    me = os.path.abspath(__file__)
    bins = [("sluice", a.sluice)] + ([("sluice-base", a.base)] if a.base else [])
    for run in range(1, a.runs + 1):
        if "loop" in a.rows:
            name = "bench-loop-" + uuid.uuid4().hex[:8]
            c.call("CreateQueue", {"QueueName": name})
            fill(c, a.endpoint, name, a.records, a.size)
            out = os.path.join(a.dir, "loop.%d" % run)
            rc, u, s, m = timed([sys.executable, me, "loop", "--endpoint", a.endpoint,
                                 "--queue", name, "--records", str(a.records)], out)
            res = json.loads(open(out + ".out").read())
            assert rc == 0 and res["records"] == a.records, (rc, res)
            rows.append(("loop", run, res["t1"] - res["t0"], u + s, m))
        if "sluice" not in a.rows:
            continue
        for label, binary in bins:
            name = "bench-%s-" % label + uuid.uuid4().hex[:8]
            c.call("CreateQueue", {"QueueName": name, "Attributes": {"VisibilityTimeout": "120"}})
            fill(c, a.endpoint, name, a.records, a.size)
            cfg = os.path.join(a.dir, "%s.%d.json" % (label, run))
            mapping = {"EventSourceArn": queue_url(a.endpoint, name), "FunctionName": "nginx",
                       "BatchSize": a.batch}
            if a.window:
                mapping["MaximumBatchingWindowInSeconds"] = a.window
            with open(cfg, "w") as f:
                json.dump({"state_dir": os.path.join(a.dir, "state.%s.%d" % (label, run)),
                           "region": "us-east-1", "stats_interval": 60,
                           "functions": {"nginx": {"type": "http", "url": a.url,
                                                   "timeout": 30}},
                           "mappings": [mapping]}, f)
            out = os.path.join(a.dir, "%s.%d" % (label, run))
            rc, u, s, m = timed([binary, "run", "--until-idle=1", "--log-format", "json", cfg],
                                out)
            delivered, active = sluice_active(out + ".err")
            assert rc == 0 and delivered == a.records and active, (rc, delivered, out)
            left = c.call("GetQueueAttributes", {"QueueUrl": queue_url(a.endpoint, name),
                                                 "AttributeNames": ["All"]})["Attributes"]
            assert left["ApproximateNumberOfMessages"] == "0", left
            assert left["ApproximateNumberOfMessagesNotVisible"] == "0", left
            rows.append((label, run, active, u + s, m))
    print("sqs -> http (nginx 200), %d x %d-byte messages, BatchSize %d, window %s s, %d cores, "
          "%s" % (a.records, a.size, a.batch, a.window or "none", os.cpu_count(),
                  datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")))
    print("%-12s %4s %10s %10s %16s %12s" % ("row", "run", "records/s", "active s",
                                             "CPU s/M records", "peak RSS MB"))
    for name, run, active, cpu, m in rows:
        print("%-12s %4d %10.0f %10.2f %16.2f %12.1f" % (
            name, run, a.records / active, active, cpu / a.records * 1e6, m / 1024))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["loop", "bench"])
    p.add_argument("--endpoint", required=True)
    p.add_argument("--queue")
    p.add_argument("--url")
    p.add_argument("--sluice")
    p.add_argument("--base")
    p.add_argument("--dir")
    p.add_argument("--records", type=int, default=50000)
    p.add_argument("--size", type=int, default=100)
    p.add_argument("--batch", type=int, default=10)
    p.add_argument("--window", type=int, default=0)
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--rows", default="loop sluice")
    a = p.parse_args()
    if a.mode == "loop":
        loop(a.endpoint, a.queue, a.records)
    else:
        bench(a)


if __name__ == "__main__":
    main()
