"""Failure semantics of a mapping (issue 3, esm.md §4): MaximumRetryAttempts counting,
BisectBatchOnFunctionError, ReportBatchItemFailures (every edge case of AWS's contract plus the
misspelled-key warning), throttles and transport errors that do not use up attempts (timeouts
do: test_fn_faults.py),
MaximumRecordAgeInSeconds (arrival_time_field), lines over max_line_bytes, bad function
responses (huge, binary, deeply nested), and `sluice validate` for the new keys.

Every count is the function server's own count of the requests it received."""

import datetime
import json
import os
import re
import time

import pytest

from fnserver import Reply
from helpers import (base_config, check_invocation_record, destination_docs, exit_counters,
                     file_destination, file_mapping, http_fn, offsets_of, payload_records,
                     read_destination_dir, run_cli, run_until_idle, wait_until, warn_lines,
                     write_config, write_lines)

FN = "/fn"
RBIF = ["ReportBatchItemFailures"]


def cfg(tmp_path, fn, log, dest=True, batch=10, fn_timeout=5, **mkw):
    m = file_mapping(log, "hook", batch=batch, **mkw)
    if dest:
        m["DestinationConfig"] = file_destination(tmp_path / "dlq")
    return base_config(tmp_path, {"hook": http_fn(fn.url + FN, timeout=fn_timeout)}, [m])


def batch_lines(rq):
    return [ln.decode() for _, _, ln in rq.records()]


def assert_restart_delivers_nothing(tmp_path, fn, sluice, config, ndocs=None):
    """Run again over the same state: nothing is read again, nothing invoked, nothing new at
    the destination (the checkpoint moved past every record)."""
    before = fn.count()
    docs = destination_docs(tmp_path / "dlq")
    s = run_until_idle(sluice, config)
    assert fn.count() == before, "restart invoked again: %r" % fn.requests()[before:]
    assert destination_docs(tmp_path / "dlq") == docs, "restart wrote to the destination again"
    c = exit_counters(s)
    assert c.get("PolledEventCount") == 0, "restart re-read records: %r" % c
    return s


# ---- MaximumRetryAttempts ------------------------------------------------------------------


def test_all_failing_exactly_n_plus_1_then_destination_then_checkpoint(tmp_path, fn, sluice):
    log = tmp_path / "in.log"
    want = ["rec-a", "rec-b", "rec-c"]
    write_lines(log, want)
    fn.set_default(Reply(500, body={"error": "boom"}))
    config = cfg(tmp_path, fn, log, batch=3, MaximumRetryAttempts=2)
    t0 = time.time()
    s = run_until_idle(sluice, config)
    reqs = fn.requests()
    assert len(reqs) == 3, "MaximumRetryAttempts 2 must give exactly 3 invocations: %r" % reqs
    for r in reqs:
        assert batch_lines(r) == want, "each attempt carries the same records: %r" % r
    docs = read_destination_dir(tmp_path / "dlq")
    assert len(docs) == 1, docs
    name, doc = docs[0]
    errs = check_invocation_record(doc, log, list(zip(offsets_of(want), want)),
                                   "RetryAttemptsExhausted", invoke_count=3, status=500,
                                   function_error="Unhandled", now=t0)
    assert not errs, "\n".join(errs) + "\n" + json.dumps(doc)[:2000]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}\.ndjson", name), name
    assert name == doc["timestamp"][:10] + ".ndjson", (name, doc["timestamp"])
    c = exit_counters(s)
    assert c.get("PolledEventCount") == 3, c
    assert c.get("OnFailureDestinationDeliveredEventCount") == 3, c
    assert c.get("DroppedEventCount") == 0, c
    assert c.get("FilteredOutEventCount") == 0, c
    assert c.get("InvokedEventCount") == 9, "3 records x 3 attempts: %r" % c
    assert c.get("FailedInvokeEventCount") == 9, "3 records x 3 failed attempts: %r" % c
    assert_restart_delivers_nothing(tmp_path, fn, sluice, config)


@pytest.mark.parametrize("attempts", [0, 1, 4])
def test_retry_count_n_plus_1(tmp_path, fn, sluice, attempts):
    log = tmp_path / "in.log"
    write_lines(log, ["only"])
    fn.set_default(Reply(502))
    run_until_idle(sluice, cfg(tmp_path, fn, log, MaximumRetryAttempts=attempts))
    assert fn.count() == attempts + 1, fn.requests()
    docs = destination_docs(tmp_path / "dlq")
    assert len(docs) == 1 and docs[0]["requestContext"]["approximateInvokeCount"] == attempts + 1


@pytest.mark.parametrize("status", [400, 404, 413, 500, 502, 504])
def test_http_statuses_are_function_errors(tmp_path, fn, sluice, status):
    """http function: any non-2xx other than 429 and 503 is a function error and counts."""
    log = tmp_path / "in.log"
    write_lines(log, ["s"])
    fn.set_default(Reply(status))
    run_until_idle(sluice, cfg(tmp_path, fn, log, MaximumRetryAttempts=1))
    assert fn.count() == 2, fn.requests()
    docs = destination_docs(tmp_path / "dlq")
    assert len(docs) == 1, docs
    assert docs[0]["responseContext"]["statusCode"] == status, docs[0]
    assert docs[0]["responseContext"]["functionError"] == "Unhandled", docs[0]


def test_lambda_service_errors_do_not_count_function_errors_do(tmp_path, lambda_fn, sluice):
    """Lambda Invoke API: 5xx/429 answers are service errors and throttles (the function never
    ran): retried without using up attempts; 200 with X-Amz-Function-Error counts."""
    log = tmp_path / "in.log"
    write_lines(log, ["l0", "l1"])
    lambda_fn.push(Reply(500, body={"Type": "Service", "message": "boom"}),
                   Reply(429, body={"Reason": "ConcurrentInvocationLimitExceeded"}),
                   Reply(502), Reply(500))
    lambda_fn.set_default(Reply(200, function_error="Unhandled",
                                body={"errorMessage": "bad", "errorType": "Error"}))
    m = file_mapping(log, "remote", batch=2, MaximumRetryAttempts=1,
                     DestinationConfig=file_destination(tmp_path / "dlq"))
    config = base_config(tmp_path, {"remote": {"type": "lambda", "endpoint": lambda_fn.url,
                                               "function_name": "function", "timeout": 5}}, [m])
    run_until_idle(sluice, config)
    assert lambda_fn.count() == 4 + 2, lambda_fn.requests()
    docs = destination_docs(tmp_path / "dlq")
    assert len(docs) == 1, docs
    errs = check_invocation_record(docs[0], log, list(zip(offsets_of(["l0", "l1"]),
                                                          ["l0", "l1"])),
                                   "RetryAttemptsExhausted", status=200,
                                   function_error="Unhandled")
    assert not errs, errs
    # AWS documents approximateInvokeCount as counting every attempt; whether the attempts
    # that never reached the function count is not said: either reading is accepted
    assert docs[0]["requestContext"]["approximateInvokeCount"] in (2, 6), docs[0]


def test_function_retry_backoff_not_a_tight_loop(tmp_path, fn, sluice):
    log = tmp_path / "in.log"
    write_lines(log, ["t"])
    fn.set_default(Reply(500))
    s = sluice(cfg(tmp_path, fn, log, dest=False))
    wait_until(lambda: fn.count() >= 2, 10, "two attempts", proc=s)
    t0, n0 = time.monotonic(), fn.count()
    while time.monotonic() - t0 < 2.0:
        time.sleep(0.1)
    n = fn.count() - n0
    # SLUICE_RETRY_BASE_MS=20, SLUICE_RETRY_MAX_MS=200: ~10-40 attempts in 2 s
    assert 3 <= n <= 200, "%d attempts in 2 s" % n
    gaps = [b.time - a.time for a, b in zip(fn.requests()[-n:], fn.requests()[-n + 1:])]
    assert len(set(round(g, 3) for g in gaps)) > 1, "no jitter: %r" % gaps
    assert s.stop() == 0


def test_retry_count_exec_function(tmp_path, sluice):
    """exec: a non-zero exit is a function error; the process counts its own invocations."""
    log = tmp_path / "in.log"
    write_lines(log, ["x1", "x2"])
    count = tmp_path / "count"
    m = file_mapping(log, "ex", batch=10, MaximumRetryAttempts=3,
                     DestinationConfig=file_destination(tmp_path / "dlq"))
    config = base_config(tmp_path, {"ex": {"type": "exec", "timeout": 10, "command": [
        "/bin/sh", "-c", "cat >/dev/null; echo run >> '%s'; exit 3" % count]}}, [m])
    run_until_idle(sluice, config)
    with open(count) as f:
        runs = f.read().split()
    assert len(runs) == 4, "MaximumRetryAttempts 3: want 4 runs, got %d" % len(runs)
    docs = destination_docs(tmp_path / "dlq")
    assert len(docs) == 1, docs
    errs = check_invocation_record(docs[0], log, list(zip(offsets_of(["x1", "x2"]),
                                                          ["x1", "x2"])),
                                   "RetryAttemptsExhausted", invoke_count=4)
    assert not errs, errs


def test_exhausted_without_destination_is_dropped_logged_counted(tmp_path, fn, sluice):
    log = tmp_path / "in.log"
    write_lines(log, ["bad", "good"])

    def hook(rq):
        return Reply(500) if b"bad" in [ln for _, _, ln in rq.records()] else None

    fn.set_hook(hook)
    config = cfg(tmp_path, fn, log, dest=False, batch=1, MaximumRetryAttempts=1)
    s = run_until_idle(sluice, config)
    assert [batch_lines(r) for r in fn.requests()] == [["bad"], ["bad"], ["good"]]
    assert fn.lines() == ["good"]
    c = exit_counters(s)
    assert c.get("DroppedEventCount") == 1, c
    assert c.get("OnFailureDestinationDeliveredEventCount", 0) == 0, c
    w = [json.dumps({k: v for k, v in o.items() if k not in ("ts", "inst", "comp", "level")})
         for o in warn_lines(s)]
    w = [t for t in w if str(log) in t]
    assert w, "no warning naming the partition of the dropped record\n" + s.log_tail()
    assert any(re.search(r"(?<![0-9.:-])0(?![0-9.:-])", t) for t in w), \
        "the drop warning does not give the record's position (0): %r" % w
    assert_restart_delivers_nothing(tmp_path, fn, sluice, config)


# ---- throttles and transport errors: retried without using up attempts -------------------------
# (A function that runs past its timeout is a function error and counts, as on AWS:
# test_fn_faults.py.)


@pytest.mark.parametrize("kind", ["429", "503", "drop"])
def test_throttles_do_not_use_attempts(tmp_path, fn, sluice, kind):
    log = tmp_path / "in.log"
    want = ["t0", "t1", "t2"]
    write_lines(log, want)
    n = 5
    reply = {"429": Reply(429, headers={"Retry-After": "0"}), "503": Reply(503),
             "drop": Reply(drop=True)}[kind]
    fn.push(*([reply] * n))
    config = cfg(tmp_path, fn, log, batch=3, MaximumRetryAttempts=0)
    s = run_until_idle(sluice, config, timeout=60)
    reqs = fn.requests()
    assert len(reqs) == n + 1, reqs
    for r in reqs:
        assert batch_lines(r) == want
    assert reqs[-1].ok and reqs[-1].answered
    assert destination_docs(tmp_path / "dlq") == [], "a %s used up MaximumRetryAttempts 0" % kind
    c = exit_counters(s)
    assert c.get("OnFailureDestinationDeliveredEventCount", 0) == 0, c


# ---- BisectBatchOnFunctionError ----------------------------------------------------------------


def test_bisect_isolates_poison_record(tmp_path, fn, sluice):
    log = tmp_path / "in.log"
    lines = ["line%d" % i for i in range(1, 9)]
    poison = "line5"
    write_lines(log, lines)

    def hook(rq):
        return Reply(500, body={"errorMessage": "poison"}) if poison in batch_lines(rq) else None

    fn.set_hook(hook)
    config = cfg(tmp_path, fn, log, batch=8, MaximumRetryAttempts=1,
                 BisectBatchOnFunctionError=True)
    s = run_until_idle(sluice, config)
    seq = [batch_lines(r) for r in fn.requests()]
    L = lambda *ns: ["line%d" % n for n in ns]  # noqa: E731
    expected = [L(1, 2, 3, 4, 5, 6, 7, 8), L(1, 2, 3, 4), L(5, 6, 7, 8), L(5, 6), L(5), L(5),
                L(6), L(7, 8)]
    good = [ln for ln in lines if ln != poison]
    assert fn.lines() == good, "neighbours not delivered exactly once in order: %r" % seq
    alone = [b for b in seq if b == [poison]]
    assert len(alone) == 2, "poison must be invoked alone exactly N+1 = 2 times: %r" % seq
    assert seq == expected, "invocation sequence\n got: %r\nwant: %r" % (seq, expected)
    docs = destination_docs(tmp_path / "dlq")
    assert len(docs) == 1, docs
    off = offsets_of(lines)[4]
    errs = check_invocation_record(docs[0], log, [(off, poison)], "RetryAttemptsExhausted",
                                   invoke_count=2, status=500, function_error="Unhandled")
    assert not errs, errs
    c = exit_counters(s)
    assert c.get("OnFailureDestinationDeliveredEventCount") == 1, c
    assert_restart_delivers_nothing(tmp_path, fn, sluice, config)


def test_bisect_zero_retries_poison_alone_once(tmp_path, fn, sluice):
    log = tmp_path / "in.log"
    lines = ["p%d" % i for i in range(4)]
    write_lines(log, lines)
    fn.set_hook(lambda rq: Reply(500) if "p0" in batch_lines(rq) else None)
    run_until_idle(sluice, cfg(tmp_path, fn, log, batch=4, MaximumRetryAttempts=0,
                               BisectBatchOnFunctionError=True))
    seq = [batch_lines(r) for r in fn.requests()]
    assert seq.count(["p0"]) == 1, seq
    assert fn.lines() == ["p1", "p2", "p3"], seq
    docs = destination_docs(tmp_path / "dlq")
    assert len(docs) == 1 and docs[0]["KinesisBatchInfo"]["batchSize"] == 1, docs


def test_bisect_two_poison_records(tmp_path, fn, sluice):
    log = tmp_path / "in.log"
    lines = ["q%d" % i for i in range(1, 9)]
    poison = {"q2", "q7"}
    write_lines(log, lines)
    fn.set_hook(lambda rq: Reply(500) if poison & set(batch_lines(rq)) else None)
    config = cfg(tmp_path, fn, log, batch=8, MaximumRetryAttempts=0,
                 BisectBatchOnFunctionError=True)
    run_until_idle(sluice, config)
    seq = [batch_lines(r) for r in fn.requests()]
    assert fn.lines() == [ln for ln in lines if ln not in poison], seq
    for p in poison:
        assert seq.count([p]) == 1, "%s alone once (MaximumRetryAttempts 0): %r" % (p, seq)
    docs = destination_docs(tmp_path / "dlq")
    got = [[ln.decode() for _, _, ln in payload_records(d)] for d in docs]
    assert got == [["q2"], ["q7"]], got
    assert_restart_delivers_nothing(tmp_path, fn, sluice, config)


@pytest.mark.parametrize("n,poison_at", [(5, 4), (7, 0), (3, 1), (16, 9)])
def test_bisect_odd_sizes(tmp_path, fn, sluice, n, poison_at):
    log = tmp_path / "in.log"
    lines = ["o%02d" % i for i in range(n)]
    poison = lines[poison_at]
    write_lines(log, lines)
    fn.set_hook(lambda rq: Reply(500) if poison in batch_lines(rq) else None)
    run_until_idle(sluice, cfg(tmp_path, fn, log, batch=n, MaximumRetryAttempts=2,
                               BisectBatchOnFunctionError=True))
    seq = [batch_lines(r) for r in fn.requests()]
    assert fn.lines() == [ln for ln in lines if ln != poison], seq
    assert seq.count([poison]) == 3, seq
    for b in seq:  # every failed batch is split, so no batch is tried twice unless alone
        assert b == [poison] or seq.count(b) == 1, seq
    docs = destination_docs(tmp_path / "dlq")
    assert len(docs) == 1 and docs[0]["requestContext"]["approximateInvokeCount"] == 3, docs


def test_bisect_with_partial_response_splits_at_failed_id(tmp_path, fn, sluice):
    """With both on, a partial response is not halved: the batch resumes at the failed id, and
    that retry counts (esm.md §4.2)."""
    log = tmp_path / "in.log"
    lines = ["r%d" % i for i in range(1, 9)]
    write_lines(log, lines)
    offs = offsets_of(lines)
    fn.set_hook(lambda rq: Reply(200, body=fail_ids(offs[4])) if "r5" in batch_lines(rq)
                else Reply(200, body={}))
    config = cfg(tmp_path, fn, log, batch=8, MaximumRetryAttempts=1,
                 BisectBatchOnFunctionError=True, FunctionResponseTypes=RBIF)
    run_until_idle(sluice, config)
    seq = [batch_lines(r) for r in fn.requests()]
    assert seq == [lines, lines[4:]], seq
    docs = destination_docs(tmp_path / "dlq")
    assert len(docs) == 1, docs
    errs = check_invocation_record(docs[0], log, list(zip(offs[4:], lines[4:])),
                                   "RetryAttemptsExhausted", invoke_count=2, status=200,
                                   function_error=None)
    assert not errs, errs


def test_bisect_after_filtering(tmp_path, fn, sluice):
    """Filtered records are never invoked, also not in the halves of a bisected batch."""
    log = tmp_path / "in.log"
    lines = [json.dumps({"keep": i % 3 != 0, "n": i}) for i in range(12)]
    write_lines(log, lines)
    kept = [ln for ln in lines if json.loads(ln)["keep"]]
    poison = kept[5]
    fn.set_hook(lambda rq: Reply(500) if poison in batch_lines(rq) else None)
    run_until_idle(sluice, cfg(tmp_path, fn, log, batch=12, MaximumRetryAttempts=0,
                               BisectBatchOnFunctionError=True,
                               FilterCriteria={"Filters": [{"Pattern": json.dumps(
                                   {"data": {"keep": [True]}})}]}))
    sent = {ln for r in fn.requests() for ln in batch_lines(r)}
    assert sent == set(kept), sorted(sent ^ set(kept))
    assert fn.lines() == [ln for ln in kept if ln != poison]
    docs = destination_docs(tmp_path / "dlq")
    assert [[ln.decode() for _, _, ln in payload_records(d)] for d in docs] == [[poison]]


def test_without_bisect_whole_batch_exhausted(tmp_path, fn, sluice):
    """Bisection is off by default: the whole batch is retried and goes to the destination."""
    log = tmp_path / "in.log"
    lines = ["w%d" % i for i in range(4)]
    write_lines(log, lines)
    fn.set_hook(lambda rq: Reply(500) if "w2" in batch_lines(rq) else None)
    run_until_idle(sluice, cfg(tmp_path, fn, log, batch=4, MaximumRetryAttempts=1))
    assert [batch_lines(r) for r in fn.requests()] == [lines, lines]
    docs = destination_docs(tmp_path / "dlq")
    assert len(docs) == 1, docs
    assert not check_invocation_record(docs[0], log, list(zip(offsets_of(lines), lines)),
                                       "RetryAttemptsExhausted", invoke_count=2)


# ---- ReportBatchItemFailures -------------------------------------------------------------------


def fail_ids(*ids):
    return {"batchItemFailures": [{"itemIdentifier": str(i)} for i in ids]}


@pytest.mark.parametrize("body", [
    pytest.param(b'{"batchItemFailures":[]}', id="empty-list"),
    pytest.param(b'{"batchItemFailures":null}', id="null-list"),
    pytest.param(b"{}", id="empty-object"),
    pytest.param(b"", id="empty-body"),
    pytest.param(b"null", id="null"),
    pytest.param(b'""', id="empty-string"),
])
def test_partial_full_success_forms(tmp_path, fn, sluice, body):
    log = tmp_path / "in.log"
    lines = ["s0", "s1", "s2"]
    write_lines(log, lines)
    fn.set_default(Reply(200, body=body))
    config = cfg(tmp_path, fn, log, batch=3, MaximumRetryAttempts=0, FunctionResponseTypes=RBIF)
    run_until_idle(sluice, config)
    assert fn.count() == 1, "a full-success response was retried: %r" % fn.requests()
    assert fn.lines() == lines
    assert destination_docs(tmp_path / "dlq") == []
    assert_restart_delivers_nothing(tmp_path, fn, sluice, config)


INVALID = [
    pytest.param(lambda offs: fail_ids(""), id="empty-id"),
    pytest.param(lambda offs: {"batchItemFailures": [{"itemIdentifier": None}]}, id="null-id"),
    pytest.param(lambda offs: fail_ids(999999), id="unknown-id"),
    pytest.param(lambda offs: {"batchItemFailures": [{"foo": str(offs[1])}]}, id="missing-key"),
    pytest.param(lambda offs: b"this is not json", id="not-json"),
    pytest.param(lambda offs: b'{"batchItemFailures":[{"itemIdentifier":"0"}', id="truncated"),
    pytest.param(lambda offs: {"batchItemFailures": [{"itemIdentifier": str(offs[2])},
                                                      {"itemIdentifier": "nope"}]},
                 id="one-valid-one-unknown"),
]


@pytest.mark.parametrize("make", INVALID)
def test_partial_invalid_response_fails_whole_batch(tmp_path, fn, sluice, make):
    log = tmp_path / "in.log"
    lines = ["i0", "i1", "i2", "i3"]
    write_lines(log, lines)
    offs = offsets_of(lines)
    fn.set_default(Reply(200, body=make(offs)))
    config = cfg(tmp_path, fn, log, batch=4, MaximumRetryAttempts=1, FunctionResponseTypes=RBIF)
    run_until_idle(sluice, config)
    seq = [batch_lines(r) for r in fn.requests()]
    # whole batch failed, and that counts as an attempt: exactly 2 invocations of all 4
    assert seq == [lines, lines], seq
    docs = destination_docs(tmp_path / "dlq")
    assert len(docs) == 1, docs
    errs = check_invocation_record(docs[0], log, list(zip(offs, lines)),
                                   "RetryAttemptsExhausted", invoke_count=2, status=200)
    assert not errs, errs


def test_partial_invalid_then_success_redelivers_whole_batch(tmp_path, fn, sluice):
    log = tmp_path / "in.log"
    lines = ["v0", "v1", "v2"]
    write_lines(log, lines)
    fn.push(Reply(200, body=fail_ids("")))
    config = cfg(tmp_path, fn, log, batch=3, MaximumRetryAttempts=5, FunctionResponseTypes=RBIF)
    run_until_idle(sluice, config)
    assert [batch_lines(r) for r in fn.requests()] == [lines, lines]
    assert destination_docs(tmp_path / "dlq") == []


@pytest.mark.parametrize("key", ["batchItemFailure", "BatchItemFailures", "batchitemfailures"])
def test_partial_misspelled_key_is_success_with_warning(tmp_path, fn, sluice, key):
    log = tmp_path / "in.log"
    lines = ["m0", "m1", "m2"]
    write_lines(log, lines)
    offs = offsets_of(lines)
    fn.set_default(Reply(200, body={key: [{"itemIdentifier": str(offs[1])}]}))
    config = cfg(tmp_path, fn, log, batch=3, MaximumRetryAttempts=0, FunctionResponseTypes=RBIF)
    s = run_until_idle(sluice, config)
    assert fn.count() == 1, "a misspelled key must count as full success: %r" % fn.requests()
    assert destination_docs(tmp_path / "dlq") == []
    pat = re.compile(re.escape(key) + r"(?![A-Za-z])")
    hits = [o for o in warn_lines(s) if pat.search(json.dumps(o))]
    assert hits, "no warning naming the key %r\n%s" % (key, s.log_tail())
    assert_restart_delivers_nothing(tmp_path, fn, sluice, config)


def test_partial_several_failures_resume_at_lowest(tmp_path, fn, sluice):
    log = tmp_path / "in.log"
    lines = ["f%d" % i for i in range(6)]
    write_lines(log, lines)
    offs = offsets_of(lines)
    fn.push(Reply(200, body=fail_ids(offs[4], offs[2])))  # not in order on purpose
    config = cfg(tmp_path, fn, log, batch=6, MaximumRetryAttempts=3, FunctionResponseTypes=RBIF)
    s = run_until_idle(sluice, config)
    seq = [batch_lines(r) for r in fn.requests()]
    assert seq == [lines, lines[2:]], "the retry must start at the lowest failed id: %r" % seq
    assert destination_docs(tmp_path / "dlq") == []
    c = exit_counters(s)
    assert c.get("PolledEventCount") == 6, c
    assert_restart_delivers_nothing(tmp_path, fn, sluice, config)


def test_partial_duplicate_ids_resume_at_lowest(tmp_path, fn, sluice):
    """The same identifier listed twice is still a valid partial response (user-asks §11.1)."""
    log = tmp_path / "in.log"
    lines = ["u%d" % i for i in range(4)]
    write_lines(log, lines)
    offs = offsets_of(lines)
    fn.push(Reply(200, body=fail_ids(offs[1], offs[3], offs[1])))
    config = cfg(tmp_path, fn, log, batch=4, MaximumRetryAttempts=3, FunctionResponseTypes=RBIF)
    run_until_idle(sluice, config)
    assert [batch_lines(r) for r in fn.requests()] == [lines, lines[1:]]
    assert destination_docs(tmp_path / "dlq") == []


def test_partial_failures_exhaust_retries(tmp_path, fn, sluice):
    """The retry after a partial failure counts as an attempt; when they run out, what is
    still failing goes to the destination with functionError null."""
    log = tmp_path / "in.log"
    lines = ["e%d" % i for i in range(6)]
    write_lines(log, lines)
    offs = offsets_of(lines)
    fn.push(Reply(200, body=fail_ids(offs[2])), Reply(200, body=fail_ids(offs[4], offs[5])))
    config = cfg(tmp_path, fn, log, batch=6, MaximumRetryAttempts=1, FunctionResponseTypes=RBIF)
    run_until_idle(sluice, config)
    seq = [batch_lines(r) for r in fn.requests()]
    assert seq == [lines, lines[2:]], seq
    docs = destination_docs(tmp_path / "dlq")
    assert len(docs) == 1, docs
    errs = check_invocation_record(docs[0], log, list(zip(offs[4:], lines[4:])),
                                   "RetryAttemptsExhausted", invoke_count=2, status=200,
                                   function_error=None)
    assert not errs, "\n".join(errs) + "\n" + json.dumps(docs[0])[:1500]
    assert_restart_delivers_nothing(tmp_path, fn, sluice, config)


def test_partial_response_from_exec_function(tmp_path, sluice):
    """exec: the partial response is the process's stdout."""
    log = tmp_path / "in.log"
    lines = ["x0", "x1", "x2"]
    write_lines(log, lines)
    offs = offsets_of(lines)
    seen = tmp_path / "seen"
    script = ("cat > /dev/null; echo run >> '%s'; "
              "if [ $(wc -l < '%s') -eq 1 ]; then "
              "printf '{\"batchItemFailures\":[{\"itemIdentifier\":\"%d\"}]}'; "
              "else printf '{}'; fi" % (seen, seen, offs[1]))
    m = file_mapping(log, "ex", batch=3, MaximumRetryAttempts=2, FunctionResponseTypes=RBIF,
                     DestinationConfig=file_destination(tmp_path / "dlq"))
    config = base_config(tmp_path, {"ex": {"type": "exec", "timeout": 10,
                                           "command": ["/bin/sh", "-c", script]}}, [m])
    s = run_until_idle(sluice, config)
    with open(seen) as f:
        assert len(f.read().split()) == 2, s.log_tail()
    assert destination_docs(tmp_path / "dlq") == []
    c = exit_counters(s)
    assert c.get("InvokedEventCount") == 5, "3 records, then the 2 from x1 on: %r" % c


def test_partial_response_ignored_without_rbif(tmp_path, fn, sluice):
    log = tmp_path / "in.log"
    lines = ["n0", "n1"]
    write_lines(log, lines)
    fn.set_default(Reply(200, body=fail_ids(0)))
    run_until_idle(sluice, cfg(tmp_path, fn, log, batch=2, MaximumRetryAttempts=0))
    assert fn.count() == 1
    assert destination_docs(tmp_path / "dlq") == []


# ---- bad responses: huge, binary, deeply nested ------------------------------------------------


@pytest.mark.parametrize("rbif", [True, False], ids=["rbif", "plain"])
def test_huge_response_is_function_error(tmp_path, fn, sluice, rbif):
    log = tmp_path / "in.log"
    write_lines(log, ["h0"])
    big = b'{"batchItemFailures":[],"pad":"' + b"x" * (7 * 1024 * 1024) + b'"}'
    fn.push(Reply(200, body=big))
    extra = {"FunctionResponseTypes": RBIF} if rbif else {}
    s = run_until_idle(sluice, cfg(tmp_path, fn, log, MaximumRetryAttempts=0, **extra))
    assert fn.count() == 1
    docs = destination_docs(tmp_path / "dlq")
    assert len(docs) == 1, "a 7 MB response must be a function error\n" + s.log_tail()
    assert docs[0]["requestContext"]["condition"] == "RetryAttemptsExhausted"


def test_binary_response_with_rbif_fails_batch(tmp_path, fn, sluice):
    log = tmp_path / "in.log"
    write_lines(log, ["b0", "b1"])
    fn.set_default(Reply(200, body=b"\xff\xfe\x00\x01{\x80\x81\"batchItemFailures\x00",
                         headers={"Content-Type": "application/octet-stream"}))
    run_until_idle(sluice, cfg(tmp_path, fn, log, MaximumRetryAttempts=1,
                               FunctionResponseTypes=RBIF))
    assert [batch_lines(r) for r in fn.requests()] == [["b0", "b1"]] * 2
    assert len(destination_docs(tmp_path / "dlq")) == 1


def test_binary_response_without_rbif_is_success(tmp_path, fn, sluice):
    log = tmp_path / "in.log"
    write_lines(log, ["b0"])
    fn.set_default(Reply(200, body=b"\xff\xfe\x00\x01"))
    run_until_idle(sluice, cfg(tmp_path, fn, log, MaximumRetryAttempts=0))
    assert fn.count() == 1
    assert destination_docs(tmp_path / "dlq") == []


def test_deeply_nested_identifier_fails_batch(tmp_path, fn, sluice):
    """100,000 levels of nesting where the identifier should be: whether or not the parser
    accepts that depth, it is not a valid identifier, so the whole batch failed."""
    log = tmp_path / "in.log"
    write_lines(log, ["d0", "d1"])
    depth = 100000
    body = (b'{"batchItemFailures":[{"itemIdentifier":' + b"[" * depth + b"]" * depth + b"}]}")
    fn.set_default(Reply(200, body=body))
    run_until_idle(sluice, cfg(tmp_path, fn, log, MaximumRetryAttempts=1,
                               FunctionResponseTypes=RBIF))
    assert [batch_lines(r) for r in fn.requests()] == [["d0", "d1"]] * 2
    assert len(destination_docs(tmp_path / "dlq")) == 1


@pytest.mark.parametrize("shape", ["array", "object"])
def test_deeply_nested_response_no_crash(tmp_path, fn, sluice, shape):
    """A 100,000-level document as the whole response: sluice neither crashes nor loops; the
    batch is either a success (parsed: no batchItemFailures) or a failed batch (not parsed)."""
    log = tmp_path / "in.log"
    write_lines(log, ["d0"])
    depth = 100000
    body = (b"[" * depth + b"]" * depth) if shape == "array" else \
        (b'{"a":' * depth + b"1" + b"}" * depth)
    fn.set_default(Reply(200, body=body))
    run_until_idle(sluice, cfg(tmp_path, fn, log, MaximumRetryAttempts=1,
                               FunctionResponseTypes=RBIF))
    n = fn.count()
    ndocs = len(destination_docs(tmp_path / "dlq"))
    assert (n, ndocs) in ((1, 0), (2, 1)), (n, ndocs)


# ---- MaximumRecordAgeInSeconds (arrival_time_field) --------------------------------------------


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@pytest.mark.parametrize("form", ["epoch", "iso"])
def test_record_age_exceeded_before_first_attempt(tmp_path, fn, sluice, form):
    log = tmp_path / "in.log"
    now = int(time.time())
    old_t = now - 3 * 3600
    fresh_t = now - 5

    def ts(t):
        return t if form == "epoch" else iso(t)[:-5] + "Z"  # "…T12:00:00Z"

    old = [json.dumps({"at": ts(old_t + i), "n": i}) for i in range(3)]
    fresh = [json.dumps({"at": ts(fresh_t), "n": 10 + i}) for i in range(2)]
    write_lines(log, old + fresh)
    config = cfg(tmp_path, fn, log, batch=10, MaximumRecordAgeInSeconds=60,
                 MaximumRetryAttempts=-1, arrival_time_field="at")
    s = run_until_idle(sluice, config)
    got = fn.lines()
    assert got == fresh, "old records must never be invoked: %r" % fn.requests()
    for r in fn.requests():
        for rec in r.json["Records"]:
            assert rec["kinesis"]["approximateArrivalTimestamp"] == fresh_t, rec
    docs = destination_docs(tmp_path / "dlq")
    assert docs, "old records not at the destination\n" + s.log_tail()
    offs = offsets_of(old + fresh)
    covered = []
    for d in docs:
        assert d["requestContext"]["condition"] == "RecordAgeExceeded", d
        assert "responseContext" not in d, d
        covered += [(seq, ln.decode()) for _, seq, ln in payload_records(d)]
    assert covered == list(zip(offs[:3], old)), covered
    if len(docs) == 1:
        errs = check_invocation_record(docs[0], log, list(zip(offs[:3], old)),
                                       "RecordAgeExceeded")
        assert not errs, errs
        kb = docs[0]["KinesisBatchInfo"]
        assert kb["approximateArrivalOfFirstRecord"] == iso(old_t), kb
        assert kb["approximateArrivalOfLastRecord"] == iso(old_t + 2), kb
    c = exit_counters(s)
    assert c.get("OnFailureDestinationDeliveredEventCount") == 3, c
    assert_restart_delivers_nothing(tmp_path, fn, sluice, config)


def test_record_age_minus_one_means_no_limit(tmp_path, fn, sluice):
    log = tmp_path / "in.log"
    line = json.dumps({"at": int(time.time()) - 30 * 86400, "v": 1})
    write_lines(log, [line])
    run_until_idle(sluice, cfg(tmp_path, fn, log, MaximumRecordAgeInSeconds=-1,
                               arrival_time_field="at"))
    assert fn.lines() == [line]
    assert destination_docs(tmp_path / "dlq") == []


@pytest.mark.parametrize("status", [503, 500])
def test_records_expire_while_retrying(tmp_path, fn, sluice, status):
    """Throttles (503) never use up attempts, function errors with -1 never run out: either way
    the records are retried until they pass MaximumRecordAgeInSeconds, then go to the
    destination with RecordAgeExceeded and no responseContext."""
    log = tmp_path / "in.log"
    born = time.time() - 56
    line = json.dumps({"at": round(born, 3), "v": "aging"})
    write_lines(log, [line])
    fn.set_default(Reply(status))
    config = cfg(tmp_path, fn, log, MaximumRecordAgeInSeconds=60,
                 MaximumRetryAttempts=0 if status == 503 else -1, arrival_time_field="at")
    s = sluice(config, args=["--log-format", "json"])
    wait_until(lambda: destination_docs(tmp_path / "dlq"), 30, "RecordAgeExceeded document",
               proc=s)
    expired_at = time.time()
    docs = destination_docs(tmp_path / "dlq")
    assert len(docs) == 1, docs
    assert expired_at >= born + 60 - 0.5, "expired early: %.2fs old" % (expired_at - born)
    errs = check_invocation_record(docs[0], log, [(0, line)], "RecordAgeExceeded")
    assert not errs, errs
    n = fn.count()
    assert n >= 2, "retried only %d times before expiry" % n
    last = fn.requests()[-1].time
    assert last <= born + 60 + 1.0, "invoked %.2fs after the record expired" % (last - born - 60)
    assert s.stop() == 0
    assert fn.count() == n, "invoked again after expiry"


# ---- lines over max_line_bytes -----------------------------------------------------------------


def test_oversized_line_goes_to_destination(tmp_path, fn, sluice):
    log = tmp_path / "in.log"
    big = "X" * 300
    lines = ["small-a", big, "small-b"]
    write_lines(log, lines)
    config = cfg(tmp_path, fn, log, batch=10, max_line_bytes=100)
    s = run_until_idle(sluice, config)
    assert fn.lines() == ["small-a", "small-b"]
    assert big.encode() not in b"".join(r.body for r in fn.requests())
    docs = destination_docs(tmp_path / "dlq")
    assert len(docs) == 1, docs
    d = docs[0]
    errs = check_invocation_record(d, log, [(offsets_of(lines)[1], big)],
                                   "MaximumPayloadSizeExceeded", payload=False)
    assert not errs, errs
    assert big not in json.dumps(d), "the oversized line's bytes went to the destination"
    c = exit_counters(s)
    assert c.get("OnFailureDestinationDeliveredEventCount") == 1, c
    assert_restart_delivers_nothing(tmp_path, fn, sluice, config)


def test_oversized_line_without_destination_dropped_and_counted(tmp_path, fn, sluice):
    log = tmp_path / "in.log"
    lines = ["small-a", "Y" * 300, "small-b"]
    write_lines(log, lines)
    config = cfg(tmp_path, fn, log, dest=False, batch=10, max_line_bytes=100)
    s = run_until_idle(sluice, config)
    assert fn.lines() == ["small-a", "small-b"]
    c = exit_counters(s)
    assert c.get("DroppedEventCount") == 1, c
    assert any(str(log) in json.dumps(o) for o in warn_lines(s)), s.log_tail()
    assert_restart_delivers_nothing(tmp_path, fn, sluice, config)


# ---- sluice validate ---------------------------------------------------------------------------


BAD_VALUES = [
    # (extra mapping keys, JSON path the error must name, a token the line must show)
    ({"MaximumRetryAttempts": 10001}, "$.mappings[0].MaximumRetryAttempts", "10001"),
    ({"MaximumRetryAttempts": -2}, "$.mappings[0].MaximumRetryAttempts", "-2"),
    ({"MaximumRecordAgeInSeconds": 30}, "$.mappings[0].MaximumRecordAgeInSeconds", "30"),
    ({"MaximumRecordAgeInSeconds": 604801}, "$.mappings[0].MaximumRecordAgeInSeconds",
     "604801"),
    ({"ParallelizationFactor": 11}, "$.mappings[0].ParallelizationFactor", "11"),
    ({"ParallelizationFactor": 0}, "$.mappings[0].ParallelizationFactor", "0"),
    ({"FunctionResponseTypes": ["Nope"]}, "$.mappings[0].FunctionResponseTypes", "Nope"),
    ({"BisectBatchOnFunctionError": "yes"}, "$.mappings[0].BisectBatchOnFunctionError", "yes"),
    ({"DestinationConfig": {"OnFailure": {"Destination": "s3://x"}}},
     "$.mappings[0].DestinationConfig.OnFailure.Destination", "s3://x"),
    ({"DestinationConfig": {"OnSuccess": {"Destination": "file:///tmp/x"}}},
     "$.mappings[0].DestinationConfig.OnSuccess", "OnFailure"),
    ({"ScalingConfig": {"MaximumConcurrency": 0}},
     "$.mappings[0].ScalingConfig.MaximumConcurrency", "0"),
    ({"ScalingConfig": {"MaximumConcurrency": 1001}},
     "$.mappings[0].ScalingConfig.MaximumConcurrency", "1001"),
    ({"FilterCriteria": {"Filters": [{"Pattern": "{\"data\": "}]}},
     "$.mappings[0].FilterCriteria.Filters[0].Pattern", None),
]


@pytest.mark.parametrize("extra,jpath,token", BAD_VALUES,
                         ids=[b[1].split(".", 2)[2] + "=" + str(b[2]) for b in BAD_VALUES])
def test_validate_rejects(tmp_path, fn, sluice_bin, extra, jpath, token):
    log = tmp_path / "in.log"
    m = file_mapping(log, "hook")
    m.update(extra)
    path = write_config(tmp_path, base_config(tmp_path, {"hook": http_fn(fn.url + FN)}, [m]))
    r = run_cli(sluice_bin, "validate", path)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    hits = [ln for ln in r.stderr.splitlines() if jpath in ln]
    assert hits, "no error line names %s:\n%s" % (jpath, r.stderr)
    if token is not None:  # the bad value (or what is allowed), as a word of its own
        shows = re.compile(r"(?<![\w.-])" + re.escape(token) + r"(?![\w.])")
        assert any(shows.search(ln) for ln in hits), "line does not show %r: %s" % (token, hits)
    assert any(os.path.basename(path) in ln for ln in hits), hits


def test_validate_accepts_every_new_key(tmp_path, fn, sluice_bin):
    log = tmp_path / "in.log"
    m = file_mapping(log, "hook", MaximumRetryAttempts=10000, MaximumRecordAgeInSeconds=604800,
                     BisectBatchOnFunctionError=True, FunctionResponseTypes=RBIF,
                     ParallelizationFactor=10, ScalingConfig={"MaximumConcurrency": 1},
                     DestinationConfig=file_destination(tmp_path / "dlq"),
                     FilterCriteria={"Filters": [{"Pattern": '{"data":{"level":["error"]}}'}]},
                     partition_key_field="k", arrival_time_field="t")
    m2 = file_mapping(log, "hook", MaximumRetryAttempts=-1, MaximumRecordAgeInSeconds=-1,
                      UUID="second", DestinationConfig={"OnFailure": {
                          "Destination": "http://127.0.0.1:9/dest"}})
    m3 = file_mapping(log, "hook", MaximumRecordAgeInSeconds=60, UUID="third",
                      DestinationConfig={"OnFailure": {
                          "Destination": "arn:aws:sqs:us-east-1:123456789012:dlq"}})
    path = write_config(tmp_path, base_config(tmp_path, {"hook": http_fn(fn.url + FN)},
                                              [m, m2, m3]))
    r = run_cli(sluice_bin, "validate", path)
    assert r.returncode == 0, r.stderr
