"""On-failure destinations (issue 3, esm.md §4.4): the file:// sink's layout and documents,
the http(s) sink, the SQS sink (against fauxqs when SQS_ENDPOINT is set), a destination that
is down and comes back (retried forever, the checkpoint held until it accepts), and counters."""

import json
import os
import re
import time
import urllib.request
import uuid

import pytest

from fnserver import FnServer, Reply
from helpers import (base_config, check_invocation_record, checkpoint_positions,
                     destination_docs, exit_counters, file_destination, file_mapping, http_fn,
                     missing, offsets_of, payload_records, read_destination_dir,
                     run_until_idle, wait_until, write_lines)

FN = "/fn"


def failing_cfg(tmp_path, fn, logs, destination, batch=2, **mkw):
    ms = []
    for i, log in enumerate(logs):
        m = file_mapping(log, "hook", batch=batch, MaximumRetryAttempts=0, **mkw)
        m["DestinationConfig"] = {"OnFailure": {"Destination": destination}}
        if len(logs) > 1:
            m["UUID"] = "m%d" % i
        ms.append(m)
    return base_config(tmp_path, {"hook": http_fn(fn.url + FN)}, ms)


def test_file_destination_layout_and_documents(tmp_path, fn, sluice):
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    la = ["a0", "a1", "a2", "a3"]
    lb = ["b0"]
    write_lines(a, la)
    write_lines(b, lb)
    fn.set_default(Reply(500))
    dlq = tmp_path / "dlq"  # does not exist yet: the sink creates it
    config = base_config(tmp_path, {"hook": http_fn(fn.url + FN)}, [
        file_mapping(str(tmp_path) + "/*.log", "hook", batch=2, MaximumRetryAttempts=0,
                     DestinationConfig=file_destination(dlq))])
    t0 = time.time()
    s = run_until_idle(sluice, config)
    got = read_destination_dir(dlq)
    names = {n for n, _ in got}
    assert len(names) == 1 and re.fullmatch(r"\d{4}-\d{2}-\d{2}\.ndjson", names.pop()), got
    docs = [d for _, d in got]
    assert len(docs) == 3, docs
    for name, d in got:
        assert name == d["timestamp"][:10] + ".ndjson", (name, d["timestamp"])
    by_shard = {}
    for d in docs:
        by_shard.setdefault(d["KinesisBatchInfo"]["shardId"], []).append(d)
    assert set(by_shard) == {str(a), str(b)}, by_shard.keys()
    oa = offsets_of(la)
    da = by_shard[str(a)]
    assert len(da) == 2, da
    for d, recs in zip(da, [list(zip(oa[:2], la[:2])), list(zip(oa[2:], la[2:]))]):
        errs = check_invocation_record(d, a, recs, "RetryAttemptsExhausted", invoke_count=1,
                                       status=500, function_error="Unhandled", now=t0)
        assert not errs, "\n".join(errs) + "\n" + json.dumps(d)
    errs = check_invocation_record(by_shard[str(b)][0], b, [(0, "b0")],
                                   "RetryAttemptsExhausted", invoke_count=1, status=500, now=t0)
    assert not errs, errs
    assert len({d["requestContext"]["requestId"] for d in docs}) == 3, "requestIds not unique"
    # every line of the file is one JSON document followed by a newline
    for name in os.listdir(dlq):
        with open(dlq / name, "rb") as f:
            raw = f.read()
        assert raw.endswith(b"\n") and all(json.loads(x) for x in raw.splitlines()), raw[:300]
    c = exit_counters(s)
    assert c.get("OnFailureDestinationDeliveredEventCount") == 5, c
    assert c.get("PolledEventCount") == 5, c
    # a later run appends to the same day's file and keeps what was there
    write_lines(a, ["a4"])
    run_until_idle(sluice, config)
    docs2 = destination_docs(dlq)
    assert docs2[:3] == docs, "earlier documents changed"
    assert len(docs2) == 4 and payload_records(docs2[3]) == [(str(a), oa[-1] + 3, b"a4")], docs2


def test_http_destination_posts_invocation_record(tmp_path, fn, sluice):
    log = tmp_path / "in.log"
    lines = ["h0", "h1"]
    write_lines(log, lines)
    fn.set_default(Reply(500))
    with FnServer() as dest:
        config = failing_cfg(tmp_path, fn, [log], dest.url + "/dest")
        t0 = time.time()
        s = run_until_idle(sluice, config)
        reqs = dest.requests()
        assert len(reqs) == 1, reqs
        rq = reqs[0]
        assert rq.method == "POST" and rq.path == "/dest", rq
        assert "application/json" in (rq.header("Content-Type") or ""), rq.headers
        assert rq.json is not None, rq.body[:300]
        errs = check_invocation_record(rq.json, log, list(zip(offsets_of(lines), lines)),
                                       "RetryAttemptsExhausted", invoke_count=1, status=500,
                                       function_error="Unhandled", now=t0)
        assert not errs, "\n".join(errs) + "\n" + rq.body[:2000].decode("utf-8", "replace")
        assert exit_counters(s).get("OnFailureDestinationDeliveredEventCount") == 2


def ckpt_not_past(tmp_path, limit):
    """The checkpoint of the (single) partition has not moved past byte offset `limit`."""
    pos = checkpoint_positions(tmp_path / "state")
    assert all(p <= limit for p in pos.values()), \
        "checkpoint moved past the failed record before the destination accepted it: %r" % pos


@pytest.mark.parametrize("mode", ["503", "500", "refused"])
def test_destination_down_then_up(tmp_path, fn, sluice, mode):
    log = tmp_path / "in.log"
    lines = ["bad", "good1", "good2"]
    write_lines(log, lines)
    size = os.path.getsize(log)
    fn.set_hook(lambda rq: Reply(500) if b"bad" in [ln for _, _, ln in rq.records()] else None)
    up = [False]
    dest = FnServer(hook=lambda rq: None if up[0] else Reply(int(mode)) if mode != "refused"
                    else None)
    dest.start()
    port = dest.port
    if mode == "refused":
        dest.stop()  # nothing listens on the port until we say so
    try:
        config = failing_cfg(tmp_path, fn, [log], "http://127.0.0.1:%d/dest" % port, batch=1)
        s = sluice(config, args=["--log-format", "json"])
        wait_until(lambda: fn.count() >= 1, 10, "the failing invocation", proc=s)
        if mode != "refused":
            wait_until(lambda: dest.count() >= 3, 15, "3 destination attempts", proc=s)
        # for a while: the destination keeps failing and the checkpoint stays before "bad"
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            ckpt_not_past(tmp_path, 0)
            assert s.poll() is None, s.log_tail()
            time.sleep(0.05)
        assert destination_docs(tmp_path / "dlq") == []
        if mode == "refused":
            dest = FnServer(port=port)
            try:
                dest.start()
            except OSError:
                pytest.skip("port %d was taken meanwhile" % port)
        else:
            up[0] = True
        wait_until(lambda: [r for r in dest.requests() if r.ok], 15,
                   "the destination accepts the record", proc=s)
        wait_until(lambda: list(checkpoint_positions(tmp_path / "state").values()) == [size],
                   15, "checkpoint at the end of the file", proc=s)
        wait_until(lambda: fn.lines() == ["good1", "good2"], 10, "good lines", proc=s)
        assert s.stop() == 0
        ok = [r for r in dest.requests() if r.ok]
        assert len(ok) == 1, ok
        errs = check_invocation_record(ok[0].json, log, [(0, "bad")], "RetryAttemptsExhausted",
                                       invoke_count=1, status=500)
        assert not errs, errs
        # the destination's failures are retried without invoking the function again
        bad = [r for r in fn.requests() if [ln for _, _, ln in r.records()] == [b"bad"]]
        assert bad == fn.requests()[:1], fn.requests()
        for r in dest.requests():  # every attempt carried the same record
            assert r.json["KinesisBatchInfo"] == ok[0].json["KinesisBatchInfo"], r.json
    finally:
        dest.stop()


def test_destination_retry_is_not_a_tight_loop(tmp_path, fn, sluice):
    """A destination answering 500 is retried with backoff (SLUICE_RETRY_MAX_MS=200 here):
    over 2 s, far fewer than one attempt per millisecond, yet more than one."""
    log = tmp_path / "in.log"
    write_lines(log, ["bad"])
    fn.set_default(Reply(500))
    with FnServer(default=Reply(500)) as dest:
        s = sluice(failing_cfg(tmp_path, fn, [log], dest.url + "/dest", batch=1))
        wait_until(lambda: dest.count() >= 1, 10, "first destination attempt", proc=s)
        t0 = time.monotonic()
        n0 = dest.count()
        while time.monotonic() - t0 < 2.0:
            time.sleep(0.1)
        n = dest.count() - n0
        assert 2 <= n <= 200, "%d destination attempts in 2 s" % n
        assert s.stop() == 0


# ---- SQS --------------------------------------------------------------------------------------


def sqs_call(endpoint, op, body, timeout=10):
    rq = urllib.request.Request(endpoint.rstrip("/") + "/", data=json.dumps(body).encode(),
                                method="POST",
                                headers={"X-Amz-Target": "AmazonSQS." + op,
                                         "Content-Type": "application/x-amz-json-1.0"})
    with urllib.request.urlopen(rq, timeout=timeout) as r:
        raw = r.read()
    return json.loads(raw) if raw else {}


def sqs_endpoint():
    ep = os.environ.get("SQS_ENDPOINT")
    if not ep:
        missing("SQS_ENDPOINT (tests/services/start.sh with SERVICES including sqs)")
    return ep


def sqs_receive_all(ep, url, want, timeout=20):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        r = sqs_call(ep, "ReceiveMessage", {"QueueUrl": url, "MaxNumberOfMessages": 10,
                                            "WaitTimeSeconds": 1})
        got.extend(r.get("Messages") or [])
    return got


@pytest.mark.parametrize("form", ["url", "arn"])
def test_sqs_destination(tmp_path, fn, sluice, form):
    ep = sqs_endpoint()
    name = "sluice-dlq-" + uuid.uuid4().hex[:12]
    qurl = sqs_call(ep, "CreateQueue", {"QueueName": name})["QueueUrl"]
    log = tmp_path / "in.log"
    lines = ["q0", "q1", "q2"]
    write_lines(log, lines)
    fn.set_default(Reply(500))
    acct = qurl.rstrip("/").split("/")[-2]
    destination = qurl if form == "url" else "arn:aws:sqs:us-east-1:%s:%s" % (acct, name)
    env = {"AWS_ENDPOINT_URL_SQS": ep} if form == "arn" else None
    config = failing_cfg(tmp_path, fn, [log], destination, batch=3)
    s = run_until_idle(sluice, config, env_extra=env)
    msgs = sqs_receive_all(ep, qurl, 1)
    assert len(msgs) == 1, "want one message in %s, got %r\n%s" % (qurl, msgs, s.log_tail())
    doc = json.loads(msgs[0]["Body"])
    errs = check_invocation_record(doc, log, list(zip(offsets_of(lines), lines)),
                                   "RetryAttemptsExhausted", invoke_count=1, status=500,
                                   function_error="Unhandled", payload="payload" in doc)
    assert not errs, "\n".join(errs) + "\n" + msgs[0]["Body"][:2000]
    assert exit_counters(s).get("OnFailureDestinationDeliveredEventCount") == 3
    assert sqs_receive_all(ep, qurl, 1, timeout=2) == [], "more than one message"


def test_sqs_destination_queue_missing_then_created(tmp_path, fn, sluice):
    """A queue that does not exist yet: the record waits (checkpoint held) and is sent once the
    queue exists."""
    ep = sqs_endpoint()
    name = "sluice-late-" + uuid.uuid4().hex[:12]
    log = tmp_path / "in.log"
    write_lines(log, ["late"])
    fn.set_default(Reply(500))
    arn = "arn:aws:sqs:us-east-1:000000000000:" + name
    s = sluice(failing_cfg(tmp_path, fn, [log], arn, batch=1),
               env_extra={"AWS_ENDPOINT_URL_SQS": ep})
    wait_until(lambda: fn.count() >= 1, 10, "the failing invocation", proc=s)
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        ckpt_not_past(tmp_path, 0)
        time.sleep(0.05)
    qurl = sqs_call(ep, "CreateQueue", {"QueueName": name})["QueueUrl"]
    msgs = sqs_receive_all(ep, qurl, 1, timeout=20)
    assert len(msgs) == 1, s.log_tail()
    wait_until(lambda: list(checkpoint_positions(tmp_path / "state").values()) == [5], 10,
               "checkpoint past the record", proc=s)
    assert s.stop() == 0


def test_until_idle_waits_for_a_slow_destination(tmp_path, fn, sluice):
    log = tmp_path / "in.log"
    write_lines(log, ["slow"])
    fn.set_default(Reply(500))
    with FnServer(default=Reply(200, delay=2.5)) as dest:
        t0 = time.monotonic()
        run_until_idle(sluice, failing_cfg(tmp_path, fn, [log], dest.url + "/dest", batch=1))
        assert time.monotonic() - t0 >= 2.4
        reqs = dest.requests()
        assert reqs and reqs[-1].answered, "sluice exited before the destination answered"
        assert list(checkpoint_positions(tmp_path / "state").values()) == [5]


# ---- secrets in URLs ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["human", "json"])
def test_url_credentials_and_query_never_logged(tmp_path, fn, sluice, fmt):
    """A function URL and a destination URL with user:password and a query token: the
    function fails so the destination is used, and the destination fails too, so every warn
    line about both is written (at debug level, in both log formats). Neither password nor
    token may appear in the log; the hosts do."""
    log = tmp_path / "in.log"
    write_lines(log, ["bad"])
    fn.set_default(Reply(500))
    with FnServer(default=Reply(500)) as dest:
        fn_url = fn.url.replace("http://", "http://alice:FNPASSWORD@") + FN + "?key=FNTOKEN"
        dest_url = (dest.url.replace("http://", "http://carol:DESTPASSWORD@") +
                    "/dest?sig=DESTTOKEN#frag")
        cfg = failing_cfg(tmp_path, fn, [log], dest_url, batch=1)
        cfg["functions"]["hook"]["url"] = fn_url
        s = sluice(cfg, args=["--log-format", fmt, "--log-level", "debug"])
        wait_until(lambda: dest.count() >= 3, 15, "3 destination attempts", proc=s)
        assert s.stop() == 0
        text = s.log()
        for secret in ("FNPASSWORD", "FNTOKEN", "DESTPASSWORD", "DESTTOKEN", "alice", "carol"):
            assert secret not in text, "%s logged:\n%s" % (secret, text)
        host = "127.0.0.1:%d" % dest.port
        assert host in text, "the destination's host is not named:\n" + text
        assert "writing" in text, text
        # the function and the destination did get the credentials
        assert fn.requests()[0].header("Authorization", "").startswith("Basic ")
        assert dest.requests()[0].header("Authorization", "").startswith("Basic ")


def test_sqs_endpoint_credentials_never_logged(tmp_path, fn, sluice):
    """An SQS queue ARN sent to an endpoint from the environment that carries user:password and
    a query: the failing GetQueueUrl is logged with the endpoint redacted."""
    log = tmp_path / "in.log"
    write_lines(log, ["bad"])
    fn.set_default(Reply(500))
    with FnServer(default=Reply(500)) as ep:
        env = {"AWS_ENDPOINT_URL_SQS": ep.url.replace("http://", "http://sam:EPPASSWORD@") +
               "/?sig=EPTOKEN"}
        cfg = failing_cfg(tmp_path, fn, [log], "arn:aws:sqs:us-east-1:123456789012:dlq", batch=1)
        s = sluice(cfg, args=["--log-level", "debug"], env_extra=env)
        wait_until(lambda: ep.count() >= 2, 15, "2 GetQueueUrl attempts", proc=s)
        wait_until(lambda: "failed" in s.log(), 15, "a destination failure in the log", proc=s)
        assert s.stop() == 0
        text = s.log()
        for secret in ("EPPASSWORD", "EPTOKEN", "sam:"):
            assert secret not in text, "%s logged:\n%s" % (secret, text)
