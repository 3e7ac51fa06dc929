"""ParallelizationFactor and ScalingConfig.MaximumConcurrency (issue 3, esm.md §4.5, §7):
several batches of one file in flight, records of one partition key (partition_key_field)
strictly in order and never two of its batches at once, the checkpoint a contiguous
low-watermark; at most MaximumConcurrency invocations in flight per mapping, 1 allowed.

Concurrency is measured by the function server: a request counts from the moment its body
was read until its reply is decided, so the measure never overstates what sluice had out."""

import json
import os
import random
import threading
import time

from fnserver import Reply
from helpers import (base_config, checkpoint_positions, exit_counters, file_mapping, http_fn,
                     offsets_of, run_until_idle, wait_until, write_lines)

FN = "/fn"


def pcfg(tmp_path, fn, glob, batch=5, **mkw):
    return base_config(tmp_path, {"hook": http_fn(fn.url + FN, timeout=10)},
                       [file_mapping(glob, "hook", batch=batch, **mkw)])


def random_delay_hook(seed, lo=0.0, hi=0.04):
    rnd = random.Random(seed)
    lock = threading.Lock()

    def hook(rq):
        with lock:
            d = rnd.uniform(lo, hi)
        return Reply(200, body={}, delay=d)
    return hook


def key_of(line):
    try:
        o = json.loads(line)
        return o.get("k") if isinstance(o, dict) else None
    except ValueError:
        return None


def check_per_key_order(reqs, path, ok_only=True):
    """Per partition key: records strictly increasing by sequence number in arrival order,
    and a key's requests never overlapping in time.  Returns problems."""
    errs = []
    last_seq = {}
    last_rq = {}
    for rq in reqs:
        if ok_only and not rq.ok:
            continue
        keys_here = []
        for key, seq, _ in rq.records():
            if key in last_seq and seq <= last_seq[key]:
                errs.append("key %s: sequence %d after %d (request #%d)" % (key, seq,
                                                                           last_seq[key],
                                                                           rq.index))
            last_seq[key] = seq
            if key not in keys_here:
                keys_here.append(key)
        for key in keys_here:
            prev = last_rq.get(key)
            if prev is not None and (prev.reply_time is None or prev.reply_time > rq.time):
                errs.append("key %s: request #%d sent before #%d was answered"
                            % (key, rq.index, prev.index))
            last_rq[key] = rq
    return errs


def test_pf10_per_key_order_and_concurrency(tmp_path, fn, sluice):
    seed = int(os.environ.get("PF_SEED") or time.time_ns() % 1000003)
    rnd = random.Random(seed)
    log = tmp_path / "in.log"
    keys = ["key%d" % i for i in range(10)]
    lines = []
    for n in range(400):
        if n % 50 == 7:
            lines.append("not json %d" % n)          # keeps the file's path as its key
        elif n % 50 == 8:
            lines.append(json.dumps({"n": n}))      # JSON without the field: the path too
        else:
            lines.append(json.dumps({"k": rnd.choice(keys), "n": n}))
    write_lines(log, lines)
    fn.set_hook(random_delay_hook(seed))
    config = pcfg(tmp_path, fn, log, batch=5, ParallelizationFactor=10,
                  partition_key_field="k")
    s = run_until_idle(sluice, config, timeout=120)
    reqs = fn.requests()
    assert all(r.ok for r in reqs)
    offs = offsets_of(lines)
    got = sorted((seq, ln.decode(), key) for r in reqs for key, seq, ln in r.records())
    assert [(q, ln) for q, ln, _ in got] == list(zip(offs, lines)), \
        "every line exactly once (seed %d)" % seed
    for seq, ln, key in got:
        want_key = key_of(ln) or str(log)
        assert key == want_key, "line %r has partitionKey %r, want %r" % (ln, key, want_key)
    errs = check_per_key_order(reqs, str(log))
    assert not errs, "per-key order broken (seed %d): %s" % (seed, errs[:10])
    mx = fn.max_inflight()
    assert 1 < mx <= 10, "max concurrent invocations %d, want 2..10 with PF 10 (seed %d)" % (
        mx, seed)
    assert list(checkpoint_positions(tmp_path / "state").values()) == [os.path.getsize(log)]
    c = exit_counters(s)
    assert c.get("PolledEventCount") == 400, c
    # restart: everything was checkpointed
    s2 = run_until_idle(sluice, config)
    assert fn.count() == len(reqs)
    assert exit_counters(s2).get("PolledEventCount") == 0


def test_pf1_is_one_batch_at_a_time(tmp_path, fn, sluice):
    """Baseline: without ParallelizationFactor one file has one batch in flight."""
    log = tmp_path / "in.log"
    write_lines(log, [json.dumps({"k": "k%d" % (i % 5), "n": i}) for i in range(60)])
    fn.set_hook(random_delay_hook(1, 0.005, 0.02))
    run_until_idle(sluice, pcfg(tmp_path, fn, log, partition_key_field="k"))
    assert fn.max_inflight() == 1
    assert len(fn.records()) == 60


def test_pf_failing_key_holds_checkpoint_not_other_keys(tmp_path, fn, sluice):
    """One key's batch fails until a flag flips: other keys move on; the checkpoint stays at
    the first unfinished record (contiguous low-watermark); once the key recovers, its records
    arrive in order and the checkpoint reaches the end."""
    log = tmp_path / "in.log"
    keys = ["a", "b", "c", "d", "e", "f", "g", "h"]
    lines = [json.dumps({"k": keys[i % len(keys)], "n": i}) for i in range(160)]
    write_lines(log, lines)
    offs = offsets_of(lines)
    stuck_first = 16  # the first "a" record the function refuses
    healed = [False]

    def hook(rq):
        recs = [json.loads(ln) for _, _, ln in rq.records()]
        if not healed[0] and any(o["k"] == "a" and o["n"] >= stuck_first for o in recs):
            return Reply(500)
        return Reply(200, body={}, delay=0.005)

    fn.set_hook(hook)
    config = pcfg(tmp_path, fn, log, batch=4, ParallelizationFactor=10,
                  partition_key_field="k")
    s = sluice(config, args=["--log-format", "json"])

    def others_past():
        return [ln for ln in fn.lines() if json.loads(ln)["n"] > stuck_first + 40]

    wait_until(others_past, 20, "other keys delivered past the failing record", proc=s)
    wait_until(lambda: len([r for r in fn.requests() if r.status == 500]) >= 3, 10,
               "the failing key retried", proc=s)
    pos = checkpoint_positions(tmp_path / "state")
    assert all(p <= offs[stuck_first] for p in pos.values()), \
        "checkpoint %r passed the unfinished record at %d" % (pos, offs[stuck_first])
    healed[0] = True
    wait_until(lambda: len(fn.records()) >= len(lines), 20, "all lines once healed", proc=s)
    wait_until(lambda: list(checkpoint_positions(tmp_path / "state").values())
               == [os.path.getsize(log)], 10, "checkpoint at the end", proc=s)
    assert s.stop() == 0
    first = {}
    for r in fn.requests():
        if r.ok:
            for _, seq, ln in r.records():
                first.setdefault(seq, ln)
    assert sorted(first) == offs, "lost records"
    errs = check_per_key_order(fn.requests(), str(log))
    assert not errs, errs[:10]
    # key a: its failed batches were retried, never skipped: first deliveries in order
    a_seqs = [seq for r in fn.requests() if r.ok for k, seq, _ in r.records() if k == "a"]
    assert a_seqs == sorted(set(a_seqs)), a_seqs


def test_maximum_concurrency_one(tmp_path, fn, sluice):
    d = tmp_path / "d"
    d.mkdir()
    want = {}
    for f in range(4):
        ls = ["f%d-%03d" % (f, i) for i in range(40)]
        write_lines(d / ("f%d.log" % f), ls)
        want[str(d / ("f%d.log" % f))] = ls
    fn.set_hook(random_delay_hook(2, 0.01, 0.03))
    run_until_idle(sluice, pcfg(tmp_path, fn, str(d) + "/*.log", batch=5,
                                ScalingConfig={"MaximumConcurrency": 1}), timeout=120)
    assert fn.max_inflight() == 1, "MaximumConcurrency 1, measured %d" % fn.max_inflight()
    got = {}
    for k, _, ln in fn.records():
        got.setdefault(k, []).append(ln.decode())
    assert got == want


def test_maximum_concurrency_one_with_pf10(tmp_path, fn, sluice):
    log = tmp_path / "in.log"
    lines = [json.dumps({"k": "k%d" % (i % 10), "n": i}) for i in range(100)]
    write_lines(log, lines)
    fn.set_hook(random_delay_hook(3, 0.01, 0.03))
    run_until_idle(sluice, pcfg(tmp_path, fn, log, batch=5, ParallelizationFactor=10,
                                partition_key_field="k",
                                ScalingConfig={"MaximumConcurrency": 1}), timeout=120)
    assert fn.max_inflight() == 1
    assert sorted(ln.decode() for _, _, ln in fn.records()) == sorted(lines)


def test_maximum_concurrency_two_reached_not_exceeded(tmp_path, fn, sluice):
    d = tmp_path / "d"
    d.mkdir()
    for f in range(4):
        write_lines(d / ("f%d.log" % f), ["f%d-%03d" % (f, i) for i in range(30)])
    fn.set_hook(random_delay_hook(4, 0.03, 0.06))
    run_until_idle(sluice, pcfg(tmp_path, fn, str(d) + "/*.log", batch=5,
                                ScalingConfig={"MaximumConcurrency": 2}), timeout=120)
    assert fn.max_inflight() == 2, "MaximumConcurrency 2, measured %d" % fn.max_inflight()
    assert len(fn.records()) == 120


def test_without_cap_files_run_concurrently(tmp_path, fn, sluice):
    """Baseline for the two tests above: the measure does see concurrency."""
    d = tmp_path / "d"
    d.mkdir()
    for f in range(4):
        write_lines(d / ("f%d.log" % f), ["f%d-%03d" % (f, i) for i in range(30)])
    fn.set_hook(random_delay_hook(5, 0.03, 0.06))
    run_until_idle(sluice, pcfg(tmp_path, fn, str(d) + "/*.log", batch=5), timeout=120)
    assert fn.max_inflight() > 1


def test_pf_partial_failures_resume_per_lane(tmp_path, fn, sluice):
    """ReportBatchItemFailures under PF 4: a batch resumes at its lowest failed record; every
    record is delivered, first deliveries per key in order, checkpoint at the end."""
    log = tmp_path / "in.log"
    lines = [json.dumps({"k": "k%d" % (i % 4), "n": i}) for i in range(80)]
    write_lines(log, lines)
    offs = offsets_of(lines)
    failed_once = set()
    lock = threading.Lock()
    accepted = []
    retry_starts = []

    def hook(rq):
        recs = rq.records()
        with lock:
            bad = [q for _, q, ln in recs if json.loads(ln)["n"] % 9 == 4
                   and q not in failed_once]
            if bad:
                failed_once.update(bad)
                low = min(bad)
                accepted.extend((k, q) for k, q, _ in recs if q < low)
                retry_starts.append(low)
                return Reply(200, body={"batchItemFailures": [{"itemIdentifier": str(q)}
                                                             for q in bad]})
            accepted.extend((k, q) for k, q, _ in recs)
        return Reply(200, body={}, delay=0.005)

    fn.set_hook(hook)
    config = pcfg(tmp_path, fn, log, batch=5, ParallelizationFactor=4, partition_key_field="k",
                  FunctionResponseTypes=["ReportBatchItemFailures"], MaximumRetryAttempts=3)
    run_until_idle(sluice, config, timeout=60)
    assert sorted({q for _, q in accepted}) == offs, "lost records"
    last = {}
    seen = set()
    for k, q in accepted:
        if q in seen:
            continue
        seen.add(q)
        assert q > last.get(k, -1), "key %s out of order: %d after %d" % (k, q, last[k])
        last[k] = q
    # each partial failure was followed by a request starting at its lowest failed record
    firsts = [r.records()[0][1] for r in fn.requests() if r.records()]
    for low in retry_starts:
        assert low in firsts, "no retry started at %d" % low
    assert list(checkpoint_positions(tmp_path / "state").values()) == [os.path.getsize(log)]


def test_pf_poison_to_destination_others_delivered(tmp_path, fn, sluice):
    from helpers import destination_docs, file_destination, payload_records
    log = tmp_path / "in.log"
    lines = [json.dumps({"k": "k%d" % (i % 5), "n": i}) for i in range(50)]
    write_lines(log, lines)
    poison = lines[23]
    fn.set_hook(lambda rq: Reply(500) if poison.encode() in [ln for _, _, ln in rq.records()]
                else Reply(200, body={}, delay=0.005))
    config = pcfg(tmp_path, fn, log, batch=4, ParallelizationFactor=5, partition_key_field="k",
                  MaximumRetryAttempts=1, BisectBatchOnFunctionError=True,
                  DestinationConfig=file_destination(tmp_path / "dlq"))
    run_until_idle(sluice, config, timeout=60)
    assert sorted(ln.decode() for _, _, ln in fn.records()) == sorted(
        ln for ln in lines if ln != poison)
    docs = destination_docs(tmp_path / "dlq")
    assert [[ln.decode() for _, _, ln in payload_records(d)] for d in docs] == [[poison]]
    assert docs[0]["KinesisBatchInfo"]["shardId"] == str(log)
    errs = check_per_key_order(fn.requests(), str(log))
    assert not errs, errs[:5]
    assert list(checkpoint_positions(tmp_path / "state").values()) == [os.path.getsize(log)]
