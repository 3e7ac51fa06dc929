"""SIGKILL in the middle of failure handling (issue 3; user-asks.md §11.3, §11.5): during
retries (plain function errors, partial batch failures, bisection), during an on-failure
destination write that hangs, with MaximumRetryAttempts counting across a crash, and with
ParallelizationFactor 10 (the checkpoint as a low-watermark).  After a restart nothing is
lost and nothing is skipped.

Each run sends header X-Gen: ${SLUICE_GEN} to the function, so every request is attributed to
the run that sent it."""

import json
import os
import random
import threading
import time

import pytest

from fnserver import FnServer, Reply
from helpers import (base_config, checkpoint_positions, destination_docs, exit_counters,
                     file_destination, file_mapping, http_fn, offsets_of, payload_records,
                     run_until_idle, wait_until, write_lines)

FN = "/fn"


def gen_fn(url, timeout=5):
    return http_fn(url + FN, timeout=timeout, headers={"X-Gen": "${SLUICE_GEN}"})


def gen_of(rq):
    return int(rq.header("X-Gen", "-1"))


def lines_of(rq):
    return [ln.decode() for _, _, ln in rq.records()]


def first_deliveries(reqs):
    """{partition: [seq of first successful delivery, in order of first delivery]}"""
    seen = set()
    out = {}
    for r in reqs:
        if not r.ok:
            continue
        for key, seq, _ in r.records():
            if (key, seq) not in seen:
                seen.add((key, seq))
                out.setdefault(key, []).append(seq)
    return out


@pytest.mark.parametrize("style", ["error", "partial", "bisect"])
def test_sigkill_during_retries(tmp_path, fn, sluice, style):
    d = tmp_path / "in"
    d.mkdir()
    files = {}
    for f in range(2):
        ls = ["f%d-%03d" % (f, i) for i in range(60)]
        write_lines(d / ("f%d.log" % f), ls)
        files[str(d / ("f%d.log" % f))] = ls
    stuck = "f0-025"
    healed = [False]
    lock = threading.Lock()
    delivered = []  # (partition, seq) the function accepted, in the order it accepted them

    def hook(rq):
        recs = rq.records()
        ls = [ln.decode() for _, _, ln in recs]
        if healed[0] or stuck not in ls:
            done = recs
            reply = Reply(200, body={})
        elif style == "partial":
            seq = [q for _, q, ln in recs if ln == stuck.encode()][0]
            done = [r for r in recs if r[1] < seq]
            reply = Reply(200, body={"batchItemFailures": [{"itemIdentifier": str(seq)}]})
        else:
            done = []
            reply = Reply(500)
        with lock:
            delivered.extend((k, q) for k, q, _ in done)
        return reply

    fn.set_hook(hook)
    extra = {"partial": {"FunctionResponseTypes": ["ReportBatchItemFailures"]},
             "bisect": {"BisectBatchOnFunctionError": True}, "error": {}}[style]
    config = base_config(tmp_path, {"hook": gen_fn(fn.url)}, [
        file_mapping(str(d) + "/*.log", "hook", batch=10, MaximumRetryAttempts=-1,
                     DestinationConfig=file_destination(tmp_path / "dlq"),
                     max_unsaved_batches=1, **extra)])

    def failures(gen):
        return len([r for r in fn.requests() if gen_of(r) == gen and stuck in lines_of(r)])

    s = sluice(config, env_extra={"SLUICE_GEN": "0"})
    for gen in range(2):
        wait_until(lambda: failures(gen) >= 3, 20, "3 failed attempts in run %d" % gen, proc=s)
        s.kill9()
        s = sluice(config, env_extra={"SLUICE_GEN": str(gen + 1)},
                   args=["--log-format", "json"])
    wait_until(lambda: failures(2) >= 2, 20, "failed attempts in run 2", proc=s)
    healed[0] = True
    want = sum(len(v) for v in files.values())

    def n_delivered():
        with lock:
            return len(set(delivered))

    wait_until(lambda: n_delivered() >= want, 20, "every line delivered", proc=s)
    assert s.stop() == 0
    got = {}
    seen = set()
    with lock:
        for k, q in delivered:
            if (k, q) not in seen:
                seen.add((k, q))
                got.setdefault(k, []).append(q)
    for path, ls in files.items():
        assert got.get(path) == offsets_of(ls), \
            "%s: first deliveries not every line in order: %r" % (path, got.get(path))
    assert destination_docs(tmp_path / "dlq") == [], "retries are forever (-1)"
    # every run retried the stuck record: it was never skipped across a kill
    for gen in range(3):
        assert any(stuck in lines_of(r) for r in fn.requests() if gen_of(r) == gen), gen
    s = run_until_idle(sluice, config, env_extra={"SLUICE_GEN": "3"})
    assert not [r for r in fn.requests() if gen_of(r) == 3], "restart delivered again"
    assert exit_counters(s).get("PolledEventCount") == 0


def test_sigkill_mid_retries_with_limit_still_reaches_destination(tmp_path, fn, sluice):
    """MaximumRetryAttempts 5 and a kill after 2 attempts: however the count survives the
    crash, the record is invoked at least 6 times in all, then written to the destination;
    its neighbours are delivered; nothing skipped."""
    log = tmp_path / "in.log"
    lines = ["r%02d" % i for i in range(12)]
    write_lines(log, lines)
    poison = "r05"
    fn.set_hook(lambda rq: Reply(500) if poison in lines_of(rq) else Reply(200, body={}))
    config = base_config(tmp_path, {"hook": gen_fn(fn.url)}, [
        file_mapping(log, "hook", batch=1, MaximumRetryAttempts=5,
                     DestinationConfig=file_destination(tmp_path / "dlq"))])
    s = sluice(config, env_extra={"SLUICE_GEN": "0"})
    wait_until(lambda: len([r for r in fn.requests() if not r.ok]) >= 2, 20, "2 attempts",
               proc=s)
    s.kill9()
    assert destination_docs(tmp_path / "dlq") == []
    s = run_until_idle(sluice, config, env_extra={"SLUICE_GEN": "1"})
    attempts = [r for r in fn.requests() if poison in lines_of(r)]
    assert 6 <= len(attempts) <= 12, len(attempts)
    docs = destination_docs(tmp_path / "dlq")
    assert len(docs) == 1, docs
    assert [ln for _, _, ln in payload_records(docs[0])] == [poison.encode()]
    got = first_deliveries(fn.requests())
    assert got[str(log)] == [o for o, ln in zip(offsets_of(lines), lines) if ln != poison]
    assert list(checkpoint_positions(tmp_path / "state").values()) == [os.path.getsize(log)]


def test_sigkill_during_destination_write(tmp_path, fn, sluice):
    log = tmp_path / "in.log"
    lines = ["d%02d" % i for i in range(10)]
    write_lines(log, lines)
    poison = "d04"
    poff = offsets_of(lines)[4]
    fn.set_hook(lambda rq: Reply(500) if poison in lines_of(rq) else Reply(200, body={}))
    answering = [False]
    dest = FnServer(hook=lambda rq: Reply(200) if answering[0] else Reply(200, hang=True))
    dest.start()
    try:
        config = base_config(tmp_path, {"hook": gen_fn(fn.url)}, [
            file_mapping(log, "hook", batch=1, MaximumRetryAttempts=0,
                         DestinationConfig={"OnFailure": {"Destination": dest.url + "/dest"}})])
        s = sluice(config, env_extra={"SLUICE_GEN": "0"})
        wait_until(lambda: dest.count() >= 1, 20, "the destination write (hanging)", proc=s)
        pos = checkpoint_positions(tmp_path / "state")
        assert all(p <= poff for p in pos.values()), \
            "checkpoint %r passed the record whose destination write is in flight" % pos
        s.kill9()
        answering[0] = True
        s = sluice(config, env_extra={"SLUICE_GEN": "1"}, args=["--log-format", "json"])
        wait_until(lambda: [r for r in dest.requests() if r.ok], 20,
                   "the record at the destination after the restart", proc=s)
        wait_until(lambda: list(checkpoint_positions(tmp_path / "state").values())
                   == [os.path.getsize(log)], 20, "checkpoint at the end", proc=s)
        assert s.stop() == 0
        ok = [r for r in dest.requests() if r.ok]
        assert len(ok) >= 1
        for r in ok:
            kb = r.json["KinesisBatchInfo"]
            assert kb["startSequenceNumber"] == str(poff) == kb["endSequenceNumber"], kb
        assert any(poison in lines_of(r) for r in fn.requests() if gen_of(r) == 1), \
            "after the restart the poison record was not read again: the checkpoint skipped it"
        got = first_deliveries(fn.requests())
        assert got[str(log)] == [o for o, ln in zip(offsets_of(lines), lines) if ln != poison]
    finally:
        dest.stop()


def test_sigkill_during_file_destination_retries(tmp_path, fn, sluice):
    """A file:// destination that cannot be written (its path is a regular file) is retried;
    kill, fix the path, restart: the record arrives there and nothing is skipped."""
    log = tmp_path / "in.log"
    lines = ["x0", "x1", "x2"]
    write_lines(log, lines)
    fn.set_hook(lambda rq: Reply(500) if "x1" in lines_of(rq) else Reply(200, body={}))
    blocker = tmp_path / "dlq"
    blocker.write_text("not a directory\n")
    config = base_config(tmp_path, {"hook": gen_fn(fn.url)}, [
        file_mapping(log, "hook", batch=1, MaximumRetryAttempts=0,
                     DestinationConfig=file_destination(blocker))])
    s = sluice(config, env_extra={"SLUICE_GEN": "0"})
    wait_until(lambda: any("x1" in lines_of(r) for r in fn.requests()), 20, "x1 invoked",
               proc=s)
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:  # the sink fails for a while; nothing moves past x1
        pos = checkpoint_positions(tmp_path / "state")
        assert all(p <= 3 for p in pos.values()), pos
        time.sleep(0.05)
    s.kill9()
    blocker.unlink()
    run_until_idle(sluice, config, env_extra={"SLUICE_GEN": "1"})
    docs = destination_docs(blocker)
    assert len(docs) == 1 and [ln for _, _, ln in payload_records(docs[0])] == [b"x1"], docs
    assert first_deliveries(fn.requests())[str(log)] == [0, 6]


def test_sigkill_pf10_low_watermark(tmp_path, fn, sluice):
    seed = int(os.environ.get("CRASH_SEED") or time.time_ns() % 1000003)
    rnd = random.Random(seed)
    log = tmp_path / "in.log"
    n_lines = 3000
    lines = [json.dumps({"k": "key%d" % rnd.randrange(10), "n": i}) for i in range(n_lines)]
    write_lines(log, lines)
    lock = threading.Lock()
    count = [0]

    def hook(rq):
        with lock:
            count[0] += len(rq.records())
            d = rnd.uniform(0, 0.02)
        return Reply(200, body={}, delay=d)

    fn.set_hook(hook)
    config = base_config(tmp_path, {"hook": gen_fn(fn.url)}, [
        file_mapping(log, "hook", batch=10, ParallelizationFactor=10, partition_key_field="k")])
    thresholds = sorted(rnd.sample(range(200, n_lines - 300), 3))
    s = sluice(config, env_extra={"SLUICE_GEN": "0"})
    for gen, th in enumerate(thresholds):
        wait_until(lambda: count[0] >= th, 60, "%d records (run %d)" % (th, gen), proc=s)
        s.kill9()
        s = sluice(config, env_extra={"SLUICE_GEN": str(gen + 1)},
                   args=["--until-idle=1"] if gen == len(thresholds) - 1 else [])
    assert s.wait(120) == 0, s.log_tail()
    offs = offsets_of(lines)
    seen = {}
    order_errs = []
    for r in fn.requests():
        if not r.ok:
            continue
        for key, seq, ln in r.records():
            if seq not in seen:
                seen[seq] = key
    lost = sorted(set(offs) - set(seen))
    assert not lost, "lost %d records, e.g. offsets %s (seed %d)" % (len(lost), lost[:10], seed)
    # per key, first deliveries strictly increasing
    last = {}
    done = set()
    for r in fn.requests():
        if not r.ok:
            continue
        for key, seq, _ in r.records():
            if seq in done:
                continue
            done.add(seq)
            if key in last and seq < last[key]:
                order_errs.append((key, last[key], seq, r.index))
            last[key] = seq
    assert not order_errs, "per-key order (seed %d): %s" % (seed, order_errs[:10])


def test_sigterm_during_retries_drains_and_does_not_skip(tmp_path, fn, sluice):
    log = tmp_path / "in.log"
    write_lines(log, ["t0", "t1"])
    fn.set_default(Reply(500))
    config = base_config(tmp_path, {"hook": gen_fn(fn.url)}, [
        file_mapping(log, "hook", batch=1, MaximumRetryAttempts=-1)], drain_timeout=5)
    s = sluice(config, env_extra={"SLUICE_GEN": "0"})
    wait_until(lambda: fn.count() >= 3, 10, "retries", proc=s)
    t0 = time.monotonic()
    assert s.stop(timeout=20) == 0
    assert time.monotonic() - t0 < 6, "a batch backing off held the drain too long"
    assert all(p == 0 for p in checkpoint_positions(tmp_path / "state").values())
    fn.set_default(Reply(200, body={}))
    run_until_idle(sluice, config, env_extra={"SLUICE_GEN": "1"})
    assert first_deliveries(fn.requests())[str(log)] == [0, 3]


def test_sigterm_during_hanging_destination_write(tmp_path, fn, sluice):
    log = tmp_path / "in.log"
    write_lines(log, ["h0", "h1"])
    fn.set_hook(lambda rq: Reply(500) if "h0" in lines_of(rq) else Reply(200, body={}))
    answering = [False]
    dest = FnServer(hook=lambda rq: Reply(200) if answering[0] else Reply(200, hang=True))
    dest.start()
    try:
        config = base_config(tmp_path, {"hook": gen_fn(fn.url)}, [
            file_mapping(log, "hook", batch=1, MaximumRetryAttempts=0,
                         DestinationConfig={"OnFailure": {"Destination": dest.url + "/d"}})],
            drain_timeout=1)
        s = sluice(config, env_extra={"SLUICE_GEN": "0"})
        wait_until(lambda: dest.count() >= 1, 10, "the hanging destination write", proc=s)
        t0 = time.monotonic()
        assert s.stop(timeout=20) == 0
        assert time.monotonic() - t0 < 8, "drain_timeout 1 s not honoured"
        assert all(p == 0 for p in checkpoint_positions(tmp_path / "state").values())
        answering[0] = True
        run_until_idle(sluice, config, env_extra={"SLUICE_GEN": "1"})
        ok = [r for r in dest.requests() if r.ok]
        assert len(ok) == 1 and ok[0].json["KinesisBatchInfo"]["startSequenceNumber"] == "0"
        assert list(checkpoint_positions(tmp_path / "state").values()) == [6]
    finally:
        dest.stop()
