"""Every example configuration in config/ runs as the README says: from a copy of config/
(so state and output start empty), `sluice run --until-idle CONFIG` exits 0 and does what
the example is for. Assertions are on what the functions and destinations received, and on
the exit counters (JSON log)."""

import glob
import json
import os
import shutil
import subprocess

import pytest

from helpers import REPO, json_log, needs_adapter, sluice_env


def run_example(sluice_bin, tmp_path, name):
    shutil.copytree(os.path.join(REPO, "config"), str(tmp_path / "config"))
    (tmp_path / "build").mkdir()
    env = sluice_env({"PWD": str(tmp_path)})
    r = subprocess.run([sluice_bin, "run", "--until-idle=1", "--log-format", "json",
                        "config/%s.json" % name], cwd=str(tmp_path), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, "%s exited %d\n%s" % (name, r.returncode, r.stderr[-3000:])
    logs = json_log(r.stderr)
    exits = [o for o in logs if o.get("msg") == "exit"]
    assert len(exits) == 1, r.stderr[-3000:]
    return exits[0], logs


def input_lines(tmp_path):
    lines = []
    for f in sorted(glob.glob(str(tmp_path / "config/demo/input/*.ndjson"))):
        with open(f) as fh:
            lines += [json.loads(ln) for ln in fh if ln.strip()]
    return lines


def fn_lines(logs, fn):
    return [o["msg"] for o in logs if o.get("comp") == "exec" and o.get("inst") == fn]


@pytest.mark.parametrize("name", sorted(os.path.basename(p)[:-5] for p in
                                        glob.glob(os.path.join(REPO, "config", "*.json"))))
def test_example_validates(sluice_bin, name):
    if name in ("kafka", "kinesis", "redis"):
        needs_adapter(sluice_bin, name)
    if name == "firehose-redis":
        needs_adapter(sluice_bin, "redis")
    r = subprocess.run([sluice_bin, "validate", "config/%s.json" % name], cwd=REPO,
                       capture_output=True, text=True, timeout=30,
                       env=sluice_env({"FIREHOSE_ACCESS_KEY": "example-key"}))
    if name == "http":
        pytest.skip("needs its function server for a run; validated here only")
    assert r.returncode == 0, r.stderr


def test_example_failures(sluice_bin, tmp_path):
    ex, logs = run_example(sluice_bin, tmp_path, "failures")
    lines = input_lines(tmp_path)
    errors = [ln for ln in lines if ln["level"] == "error"]
    poison = [ln for ln in lines if "poison" in ln["msg"]]
    docs = []
    for f in glob.glob(str(tmp_path / "build/failures/*.ndjson")):
        with open(f) as fh:
            docs += [json.loads(ln) for ln in fh]
    assert len(docs) == len(errors) + len(poison)
    got = sorted(json.loads(__import__("base64").b64decode(d["payload"]["Records"][0]["kinesis"]
                                                            ["data"]))["msg"] for d in docs)
    assert got == sorted(ln["msg"] for ln in errors + poison)
    for d in docs:
        assert d["requestContext"]["condition"] == "RetryAttemptsExhausted"
        assert d["requestContext"]["approximateInvokeCount"] == 2
    assert ex["OnFailureDestinationDeliveredEventCount"] == len(docs)
    assert ex["delivered"] == len(lines) - len(docs)
    assert ex["PolledEventCount"] == len(lines)


def test_example_filters(sluice_bin, tmp_path):
    ex, logs = run_example(sluice_bin, tmp_path, "filters")
    lines = input_lines(tmp_path)
    wanted = [ln for ln in lines
              if ln["level"] in ("warn", "error") or ln["user"].startswith("ali")]
    assert ex["delivered"] == len(wanted)
    assert ex["FilteredOutEventCount"] == len(lines) - len(wanted)


def test_example_windows(sluice_bin, tmp_path):
    ex, logs = run_example(sluice_bin, tmp_path, "windows")
    finals = [m for m in fn_lines(logs, "levels") if m.startswith("window ")]
    total = 0
    for m in finals:
        total += sum(int(x.split(": ")[1]) for x in m.split("{")[1].rstrip("}").split(", "))
    assert total == len(input_lines(tmp_path))
    assert ex["delivered"] == total


def test_example_parallel(sluice_bin, tmp_path):
    ex, logs = run_example(sluice_bin, tmp_path, "parallel")
    assert ex["delivered"] == len(input_lines(tmp_path))
    assert ex["batches"] >= len({ln["user"] for ln in input_lines(tmp_path)})


def test_example_kafka(sluice_bin, tmp_path):
    """config/kafka.json against the test broker: its topic and group are made unique, and its
    bootstrap server is the one tests/services started."""
    needs_adapter(sluice_bin, "kafka")
    import sys
    import uuid
    sys.path.insert(0, os.path.join(REPO, "tests", "services", "kafka-tools"))
    import kafka_tools as kt
    from helpers import missing
    env = kt.services_env()
    if not env.get("KAFKA_BOOTSTRAP"):
        missing("KAFKA_BOOTSTRAP (tests/services/start.sh with SERVICES including kafka)")
    topic = "orders-" + uuid.uuid4().hex[:8]
    kt.ctl("topic %s 3" % topic)
    sent = kt.produce(env["KAFKA_BOOTSTRAP"], topic,
                      [{"key": "customer-%d" % (i % 5), "value": json.dumps({"order": i})}
                       for i in range(120)])
    shutil.copytree(os.path.join(REPO, "config"), str(tmp_path / "config"))
    with open(str(tmp_path / "config/kafka.json")) as f:
        cfg = json.load(f)
    m = cfg["mappings"][0]
    m["SelfManagedEventSource"]["Endpoints"]["KAFKA_BOOTSTRAP_SERVERS"] = \
        env["KAFKA_BOOTSTRAP"].split(",")
    m["Topics"] = [topic]
    m["SelfManagedKafkaEventSourceConfig"]["ConsumerGroupId"] = "example-" + topic
    with open(str(tmp_path / "config/kafka.json"), "w") as f:
        json.dump(cfg, f)
    (tmp_path / "build").mkdir()
    r = subprocess.run([sluice_bin, "run", "--until-idle", "--log-format", "json",
                        "config/kafka.json"], cwd=str(tmp_path), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=180, env=sluice_env())
    assert r.returncode == 0, r.stderr[-3000:]
    logs = json_log(r.stderr)
    ex = [o for o in logs if o.get("msg") == "exit"][0]
    assert ex["delivered"] == len(sent) == 120
    lines = fn_lines(logs, "orders")
    assert sum(int(m.split(": ")[1].split(" ")[0]) for m in lines) == 120
    assert all(m.startswith("SelfManagedKafka: ") for m in lines)


def test_example_kinesis(sluice_bin, tmp_path):
    """config/kinesis.json against the test Kinesis server (kinesalite): its stream is made
    unique and created with the AWS CLI, which puts the records; its endpoint is the one
    tests/services started."""
    needs_adapter(sluice_bin, "kinesis")
    from helpers import missing
    import test_kinesis as tk
    env = tk._services_env()
    if not env.get("AWS_ENDPOINT_URL_KINESIS"):
        missing("AWS_ENDPOINT_URL_KINESIS (tests/services/start.sh with SERVICES including "
                "kinesis)")
    endpoint = env["AWS_ENDPOINT_URL_KINESIS"]
    stream = tk.create_stream(endpoint, shards=2)
    sent = tk.put(endpoint, stream, [("customer-%d" % (i % 5), json.dumps({"order": i}).encode())
                                     for i in range(60)])
    shutil.copytree(os.path.join(REPO, "config"), str(tmp_path / "config"))
    with open(str(tmp_path / "config/kinesis.json")) as f:
        cfg = json.load(f)
    m = cfg["mappings"][0]
    m["EventSourceArn"] = m["EventSourceArn"].replace("stream/orders", "stream/" + stream)
    m["endpoint_url"] = endpoint
    with open(str(tmp_path / "config/kinesis.json"), "w") as f:
        json.dump(cfg, f)
    (tmp_path / "build").mkdir()
    r = subprocess.run([sluice_bin, "run", "--until-idle", "--log-format", "json",
                        "config/kinesis.json"], cwd=str(tmp_path), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=180,
                       env=sluice_env({"AWS_ACCESS_KEY_ID": "test",
                                       "AWS_SECRET_ACCESS_KEY": "test"}))
    assert r.returncode == 0, r.stderr[-3000:]
    logs = json_log(r.stderr)
    ex = [o for o in logs if o.get("msg") == "exit"][0]
    assert ex["delivered"] == len(sent) == 60
    lines = fn_lines(logs, "orders")
    assert sum(int(m.split(": ")[1].split(" ")[0]) for m in lines) == 60
    assert all(m.startswith("aws:kinesis: ") for m in lines)


def test_example_redis(sluice_bin, tmp_path):
    """config/redis.json against tests/services' redis-server: its stream is made unique and
    filled with XADD; the example's port becomes the one tests/services started."""
    needs_adapter(sluice_bin, "redis")
    import uuid
    from redisutil import call, services_redis
    _, port = services_redis()
    stream = "orders-" + uuid.uuid4().hex[:8]
    for i in range(60):
        call(port, "XADD", stream, "*", "order", str(i), "customer", "customer-%d" % (i % 5))
    shutil.copytree(os.path.join(REPO, "config"), str(tmp_path / "config"))
    with open(str(tmp_path / "config/redis.json")) as f:
        cfg = json.load(f)
    m = cfg["mappings"][0]
    m["EventSourceArn"] = "redis://127.0.0.1:%d/0/%s" % (port, stream)
    with open(str(tmp_path / "config/redis.json"), "w") as f:
        json.dump(cfg, f)
    (tmp_path / "build").mkdir()
    r = subprocess.run([sluice_bin, "run", "--until-idle", "--log-format", "json",
                        "config/redis.json"], cwd=str(tmp_path), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=120, env=sluice_env())
    assert r.returncode == 0, r.stderr[-3000:]
    logs = json_log(r.stderr)
    ex = [o for o in logs if o.get("msg") == "exit"][0]
    assert ex["delivered"] == 60
    lines = fn_lines(logs, "orders")
    assert sum(int(m.split(": ")[1].split(" ")[0]) for m in lines) == 60
    assert all(m.startswith("sluice:redis: ") for m in lines)
    assert call(port, "XPENDING", stream, m["consumer_group"])[0] == 0


def test_example_sqs(sluice_bin, tmp_path):
    """config/sqs.json against the test fauxqs: its queue URL is made unique at the endpoint
    tests/services started; the handler's failed messages stay in the queue, the rest are
    deleted."""
    import uuid
    import urllib.request
    from helpers import missing
    ep = os.environ.get("SQS_ENDPOINT")
    if not ep:
        missing("SQS_ENDPOINT (tests/services/start.sh with SERVICES including sqs)")

    def call(op, body):
        rq = urllib.request.Request(ep + "/", data=json.dumps(body).encode(), method="POST",
                                    headers={"X-Amz-Target": "AmazonSQS." + op,
                                             "Content-Type": "application/x-amz-json-1.0"})
        with urllib.request.urlopen(rq, timeout=10) as r:
            raw = r.read()
        return json.loads(raw) if raw else {}

    url = call("CreateQueue", {"QueueName": "orders-" + uuid.uuid4().hex[:8]})["QueueUrl"]
    bodies = [json.dumps({"order": i}) for i in range(10)] + ['{"order":"fail-1"}',
                                                              '{"order":"fail-2"}']
    for b in bodies:
        call("SendMessage", {"QueueUrl": url, "MessageBody": b})
    shutil.copytree(os.path.join(REPO, "config"), str(tmp_path / "config"))
    with open(str(tmp_path / "config/sqs.json")) as f:
        cfg = json.load(f)
    cfg["mappings"][0]["EventSourceArn"] = url
    with open(str(tmp_path / "config/sqs.json"), "w") as f:
        json.dump(cfg, f)
    (tmp_path / "build").mkdir()
    r = subprocess.run([sluice_bin, "run", "--until-idle", "--log-format", "json",
                        "config/sqs.json"], cwd=str(tmp_path), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=120, env=sluice_env())
    assert r.returncode == 0, r.stderr[-3000:]
    logs = json_log(r.stderr)
    ex = [o for o in logs if o.get("msg") == "exit"][0]
    assert ex["delivered"] == 10 and ex["DeletedEventCount"] == 10, ex
    lines = fn_lines(logs, "orders")
    assert sum(int(m.split(": ")[1].split(" ")[0]) for m in lines) == 12
    a = call("GetQueueAttributes", {"QueueUrl": url, "AttributeNames": ["All"]})["Attributes"]
    left = int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])
    assert left == 2, a


FIREHOSE_RECORDS = [b'{"click":1}\n', b'{"click":2}\n']


def run_firehose_example(sluice_bin, tmp_path, name, edit=None, env=None,
                         records=FIREHOSE_RECORDS):
    """config/NAME.json as the README runs it, on port 0 instead of 4573 (another run may hold
    that), edited by edit(cfg) first: FIREHOSE_RECORDS put with boto3, then --until-idle ends the
    run (exit 0), well before the 60 s interval."""
    import re
    from helpers import wait_until
    try:
        import boto3
    except ImportError:
        from helpers import missing
        missing("boto3 for /usr/bin/python3 (apt-get install python3-boto3)")
    shutil.copytree(os.path.join(REPO, "config"), str(tmp_path / "config"))
    path = str(tmp_path / ("config/%s.json" % name))
    with open(path) as f:
        cfg = json.load(f)
    cfg["listen"] = "127.0.0.1:0"
    if edit:
        edit(cfg)
    with open(path, "w") as f:
        json.dump(cfg, f)
    (tmp_path / "build").mkdir()
    err_path = str(tmp_path / "sluice.stderr")
    e = {"PWD": str(tmp_path)}
    e.update(env or {})
    with open(err_path, "wb") as err:
        p = subprocess.Popen([sluice_bin, "run", "--until-idle=1", "--log-format", "json",
                              "config/%s.json" % name], cwd=str(tmp_path),
                             stdin=subprocess.DEVNULL, stderr=err, env=sluice_env(e))
    try:
        def port_line():
            assert p.poll() is None, open(err_path).read()[-3000:]
            with open(err_path) as f:
                m = re.search(r"\(port (\d+)\)", f.read())
            return m and m.group(1)

        port = wait_until(port_line, timeout=30, what="the example's listening line")
        fh = boto3.client("firehose", endpoint_url="http://127.0.0.1:" + port,
                          region_name="us-east-1", aws_access_key_id="fake",
                          aws_secret_access_key="fake")
        got = fh.put_record_batch(DeliveryStreamName="clicks",
                                  Records=[{"Data": r} for r in records])
        assert got["FailedPutCount"] == 0
        assert p.wait(60) == 0, open(err_path).read()[-3000:]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    with open(err_path) as f:
        return json_log(f.read())


def test_example_firehose(sluice_bin, tmp_path):
    """config/firehose.json: the records land under build/firehose-bucket/clicks/YYYY/MM/dd/HH/."""
    import re
    run_firehose_example(sluice_bin, tmp_path, "firehose")
    objs = []
    for root, _dirs, files in os.walk(str(tmp_path / "build/firehose-bucket")):
        objs += [os.path.relpath(os.path.join(root, f), str(tmp_path / "build/firehose-bucket"))
                 for f in files]
    assert len(objs) == 1 and re.match(r"clicks/\d{4}/\d\d/\d\d/\d\d/clicks-1-", objs[0]), objs
    with open(str(tmp_path / "build/firehose-bucket" / objs[0]), "rb") as f:
        assert f.read() == b"".join(FIREHOSE_RECORDS)


def bucket_objects(tmp_path):
    """{key: bytes} of the objects under build/firehose-bucket."""
    top = str(tmp_path / "build/firehose-bucket")
    objs = {}
    for root, _dirs, files in os.walk(top):
        for f in files:
            with open(os.path.join(root, f), "rb") as fh:
                objs[os.path.relpath(os.path.join(root, f), top)] = fh.read()
    return objs


def test_example_firehose_transform(sluice_bin, tmp_path):
    """config/firehose-transform.json: its exec function transforms the records (Ok: a field
    added), drops one and fails one, which lands under clicks-errors/processing-failed/."""
    import base64
    import re
    logs = run_firehose_example(sluice_bin, tmp_path, "firehose-transform", records=[
        b'{"click":1}', b'{"drop":true}', b"not json"])
    objs = bucket_objects(tmp_path)
    assert len(objs) == 2, objs
    data = [v for k, v in objs.items() if re.match(r"clicks/\d{4}/\d\d/\d\d/\d\d/clicks-1-", k)]
    assert [json.loads(ln) for ln in data[0].splitlines()] == [
        {"click": 1, "seen_by": "firehose_transform"}]
    err = [v for k, v in objs.items() if k.startswith("clicks-errors/processing-failed/")]
    e = json.loads(err[0])
    assert e["errorCode"] == "Lambda.ProcessingFailedStatus" and e["lambdaArn"] == "transform"
    assert base64.b64decode(e["rawData"]) == b"not json"
    ex = [o for o in logs if o.get("msg") == "exit"][0]
    assert ex["transform_dropped"] == 1 and ex["spool_records"] == 0


def test_example_firehose_partitioned(sluice_bin, tmp_path):
    """config/firehose-partitioned.json: one object per page (the MetadataExtraction query's
    key in the Prefix), a line each; a record without the key under partitioning-failed."""
    import re
    run_firehose_example(sluice_bin, tmp_path, "firehose-partitioned", records=[
        b'{"page":"home","n":1}', b'{"page":"cart","n":2}', b'{"page":"home","n":3}',
        b'{"n":4}'])
    objs = bucket_objects(tmp_path)
    assert len(objs) == 3, objs
    got = {re.match(r"(clicks/page=\w+|clicks-errors/[\w-]+)/", k).group(1): v
           for k, v in objs.items()}
    assert got["clicks/page=home"] == b'{"page":"home","n":1}\n{"page":"home","n":3}\n'
    assert got["clicks/page=cart"] == b'{"page":"cart","n":2}\n'
    e = json.loads(got["clicks-errors/partitioning-failed"])
    assert e["errorCode"] == "DynamicPartitioning.MetadataExtractionFailed"


def test_example_firehose_s3(sluice_bin, tmp_path):
    """config/firehose-s3.json against tests/services' s3rver (its bucket made unique and
    created first): one GZIP object under clicks/year=YYYY/month=MM/, read back through the S3
    API."""
    import gzip
    import re
    import uuid
    from test_firehose_dest import s3_endpoint
    import boto3
    from botocore.config import Config
    endpoint = s3_endpoint()
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="S3RVER", aws_secret_access_key="S3RVER",
                      config=Config(s3={"addressing_style": "path"}))
    bucket = "example-" + uuid.uuid4().hex[:10]
    s3.create_bucket(Bucket=bucket)

    def edit(cfg):
        cfg["delivery_streams"][0]["ExtendedS3DestinationConfiguration"]["BucketARN"] = \
            "arn:aws:s3:::" + bucket

    logs = run_firehose_example(sluice_bin, tmp_path, "firehose-s3", edit,
                                env={"AWS_ENDPOINT_URL_S3": endpoint, "AWS_REGION": "us-east-1",
                                     "AWS_ACCESS_KEY_ID": "S3RVER",
                                     "AWS_SECRET_ACCESS_KEY": "S3RVER"})
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert len(keys) == 1 and re.match(r"clicks/year=\d{4}/month=\d\d/clicks-1-.*\.gz$",
                                       keys[0]), keys
    body = s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read()
    assert gzip.decompress(body) == b"".join(FIREHOSE_RECORDS)
    ex = [o for o in logs if o.get("msg") == "exit"][0]
    assert ex["DeliveryToS3.Records"] == 2 and ex["DeliveryToS3.Success"] == 1


def test_example_firehose_redis(sluice_bin, tmp_path):
    """config/firehose-redis.json against tests/services' redis-server (its port and a stream
    name of this run's own put in): each record one entry of the stream, field data."""
    import uuid
    from redisutil import services_redis, xrange_entries
    needs_adapter(sluice_bin, "redis")
    _, port = services_redis()
    stream = "example-" + uuid.uuid4().hex[:10]

    def edit(cfg):
        cfg["delivery_streams"][0]["SinkDestinationConfiguration"]["Destination"] = \
            "redis://127.0.0.1:%d/0/%s?maxlen=100000" % (port, stream)

    logs = run_firehose_example(sluice_bin, tmp_path, "firehose-redis", edit)
    assert [f[b"data"] for _, f in xrange_entries(port, stream)] == FIREHOSE_RECORDS
    ex = [o for o in logs if o.get("msg") == "exit"][0]
    assert ex["DeliveryToSink.Records"] == 2 and ex["DeliveryToSink.Success"] == 1, ex


def test_example_firehose_http(sluice_bin, tmp_path):
    """config/firehose-http.json with its endpoint URL pointed at a small endpoint here: the
    records arrive in Firehose's request, with the example's access key and attributes."""
    import base64
    from test_firehose_dest import Endpoint
    ep = Endpoint(200)
    try:
        def edit(cfg):
            dest = cfg["delivery_streams"][0]["HttpEndpointDestinationConfiguration"]
            dest["EndpointConfiguration"]["Url"] = ep.url

        logs = run_firehose_example(sluice_bin, tmp_path, "firehose-http", edit,
                                    env={"FIREHOSE_ACCESS_KEY": "example-key"})
    finally:
        ep.stop()
    assert len(ep.requests) == 1
    headers, body = ep.requests[0]
    assert [base64.b64decode(r["data"]) for r in body["records"]] == FIREHOSE_RECORDS
    assert headers["X-Amz-Firehose-Access-Key"] == "example-key"
    assert json.loads(headers["X-Amz-Firehose-Common-Attributes"]) == \
        {"commonAttributes": {"env": "dev"}}
    ex = [o for o in logs if o.get("msg") == "exit"][0]
    assert ex["DeliveryToHttpEndpoint.Records"] == 2


def test_example_firehose_file(sluice_bin, tmp_path):
    """config/firehose-file.json: the demo's log lines, read by a file mapping whose
    FunctionName is the stream's ARN, land once each in one GZIP object under
    build/firehose-file-bucket/logs/ (no delimiter added: a line's bytes as they are)."""
    import gzip
    shutil.copytree(os.path.join(REPO, "config"), str(tmp_path / "config"))
    (tmp_path / "build").mkdir()
    r = subprocess.run([sluice_bin, "run", "--until-idle=1", "--log-format", "json",
                        "config/firehose-file.json"], cwd=str(tmp_path),
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
                       env=sluice_env({"PWD": str(tmp_path)}))
    assert r.returncode == 0, r.stderr[-3000:]
    objs = glob.glob(str(tmp_path / "build/firehose-file-bucket/logs/*/*/*/*/logs-1-*.gz"))
    assert len(objs) == 1, objs
    with open(objs[0], "rb") as f:
        body = gzip.decompress(f.read()).decode()
    lines = [json.dumps(ln, separators=(",", ":")) for ln in input_lines(tmp_path)]
    assert sorted(body.replace("}{", "}\n{").split("\n")) == sorted(lines)
    ex = [o for o in json_log(r.stderr) if o.get("msg") == "exit"]
    assert any(o.get("IncomingRecords") == len(lines) for o in ex), ex


def test_example_firehose_kinesis(sluice_bin, tmp_path):
    """config/firehose-kinesis.json against the test Kinesis server: its stream made unique,
    records put once the stream reads every shard (it starts at LATEST, as Firehose does), each
    lands once under build/firehose-kinesis-bucket/orders/."""
    import re
    needs_adapter(sluice_bin, "kinesis")
    from helpers import missing, wait_until
    import test_kinesis as tk
    env = tk._services_env()
    if not env.get("AWS_ENDPOINT_URL_KINESIS"):
        missing("AWS_ENDPOINT_URL_KINESIS (tests/services/start.sh with SERVICES including "
                "kinesis)")
    endpoint = env["AWS_ENDPOINT_URL_KINESIS"]
    stream = tk.create_stream(endpoint, shards=2)
    shutil.copytree(os.path.join(REPO, "config"), str(tmp_path / "config"))
    path = str(tmp_path / "config/firehose-kinesis.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg["listen"] = "127.0.0.1:0"
    ksc = cfg["delivery_streams"][0]["KinesisStreamSourceConfiguration"]
    ksc["KinesisStreamARN"] = ksc["KinesisStreamARN"].replace("stream/orders", "stream/" + stream)
    with open(path, "w") as f:
        json.dump(cfg, f)
    (tmp_path / "build").mkdir()
    err_path = str(tmp_path / "sluice.stderr")
    with open(err_path, "wb") as err:
        p = subprocess.Popen([sluice_bin, "run", "--until-idle=3", "--log-level", "debug",
                              "config/firehose-kinesis.json"], cwd=str(tmp_path),
                             stdin=subprocess.DEVNULL, stderr=err,
                             env=sluice_env({"PWD": str(tmp_path),
                                             "AWS_ENDPOINT_URL_KINESIS": endpoint,
                                             "AWS_ACCESS_KEY_ID": "test",
                                             "AWS_SECRET_ACCESS_KEY": "test"}))
    try:
        wait_until(lambda: open(err_path).read().count("shard iterator ready") >= 2,
                   timeout=30, what="both shards read")
        sent = [json.dumps({"order": i}) + "\n" for i in range(40)]
        tk.put(endpoint, stream, [("customer-%d" % (i % 5), s.encode())
                                  for i, s in enumerate(sent)])
        assert p.wait(120) == 0, open(err_path).read()[-3000:]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    got = []
    for o in glob.glob(str(tmp_path / "build/firehose-kinesis-bucket/orders/*/*/*/*/*")):
        assert re.search(r"/orders-archive-1-\d{4}-", o), o
        with open(o) as f:
            got += f.read().splitlines(keepends=True)
    assert sorted(got) == sorted(sent)


def test_example_kinesis_shared(sluice_bin, tmp_path):
    """config/kinesis-shared.json: two processes run the example at once against kinesalite and
    tests/services' Redis (checkpoint_store and leases); between them every record is delivered,
    both exit 0, and the checkpoints in Redis are each shard's last sequence number."""
    needs_adapter(sluice_bin, "kinesis")
    needs_adapter(sluice_bin, "redis")
    from helpers import missing
    from redisutil import call, services_redis
    import test_kinesis as tk
    env = tk._services_env()
    if not env.get("AWS_ENDPOINT_URL_KINESIS"):
        missing("AWS_ENDPOINT_URL_KINESIS (tests/services/start.sh with SERVICES including "
                "kinesis)")
    endpoint = env["AWS_ENDPOINT_URL_KINESIS"]
    _, port = services_redis()
    stream = tk.create_stream(endpoint, shards=4)
    sent = tk.put(endpoint, stream, [("customer-%d" % i, json.dumps({"order": i}).encode())
                                     for i in range(120)])
    shutil.copytree(os.path.join(REPO, "config"), str(tmp_path / "config"))
    with open(str(tmp_path / "config/kinesis-shared.json")) as f:
        cfg = json.load(f)
    prefix = stream + ":"
    cfg["checkpoint_store"] = "redis://127.0.0.1:%d/0?prefix=%s" % (port, prefix)
    m = cfg["mappings"][0]
    m["EventSourceArn"] = m["EventSourceArn"].replace("stream/orders", "stream/" + stream)
    m["endpoint_url"] = endpoint
    with open(str(tmp_path / "config/kinesis-shared.json"), "w") as f:
        json.dump(cfg, f)
    (tmp_path / "build").mkdir()
    procs = [subprocess.Popen([sluice_bin, "run", "--until-idle=4", "--log-format", "json",
                               "config/kinesis-shared.json"], cwd=str(tmp_path),
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True,
                              env=sluice_env({"AWS_ACCESS_KEY_ID": "test",
                                              "AWS_SECRET_ACCESS_KEY": "test"}))
             for _ in range(2)]
    outs = [p.communicate(timeout=180)[1] for p in procs]
    for p, err in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    got = 0
    for err in outs:
        lines = fn_lines(json_log(err), "orders")
        assert all(x.startswith("aws:kinesis: ") for x in lines)
        got += sum(int(x.split(": ")[1].split(" ")[0]) for x in lines)
    assert got >= len(sent) == 120  # at least once between the two
    last = {}
    for shard, seq, _, _ in sent:
        last[shard] = seq
    rows = call(port, "HGETALL", prefix + "ckpt:" + m["UUID"])
    stored = {rows[i].decode(): json.loads(rows[i + 1])["pos"] for i in range(0, len(rows), 2)}
    assert {s: p.split(":")[0] if ":" in p else p for s, p in stored.items()} == last, stored
