"""Crash test: 100,000 lines over 4 files, SIGKILL sluice at five random moments, restart
with the same state_dir each time, then run to completion with --until-idle.

Every line must arrive at least once, in order per file; duplicates may only come from the
batches in flight at a kill.  Each run ("generation") sends header X-Gen: ${SLUICE_GEN}, so a
request is attributed to its run exactly, even when it reaches the server after the kill.

Env: CRASH_SEED (reproduce a run), CRASH_LINES (default 100000), CRASH_FILES (4),
CRASH_BATCH (100), CRASH_UNSAVED (max_unsaved_batches, 1).

What "in flight" means: per file, the batch the function was handling at the kill, plus the
delivered batches whose checkpoint was still on its way to the disk, at most
max_unsaved_batches. So each kill may repeat up to files x BatchSize x (1 + max_unsaved_batches)
lines."""

import json
import os
import random
import sys
import threading
import time

from helpers import base_config, file_mapping, http_fn, wait_until

N_LINES = int(os.environ.get("CRASH_LINES", "100000"))
N_FILES = int(os.environ.get("CRASH_FILES", "4"))
BATCH = int(os.environ.get("CRASH_BATCH", "100"))
UNSAVED = int(os.environ.get("CRASH_UNSAVED", "1"))
KILLS = 5
WIDTH = 64  # every line is exactly WIDTH bytes plus "\n", so offset = n * (WIDTH + 1)


def line_text(f, n):
    head = "f%d:%07d:" % (f, n)
    return head + "p" * (WIDTH - len(head))


def checkpoint_lines(state_dir):
    """Diagnostics only (never asserted): the checkpoint positions in state_dir, as line
    numbers, if the store's JSON looks like {"partitions": {id: {"pos": "offset"}}}."""
    out = []
    try:
        for name in sorted(os.listdir(state_dir)):
            if name.endswith(".json"):
                with open(os.path.join(state_dir, name)) as f:
                    parts = json.load(f).get("partitions", {})
                out.extend(sorted(int(v["pos"]) // (WIDTH + 1) for v in parts.values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return out


def test_crash_restart_at_least_once_in_order(tmp_path, fn, sluice):
    seed = int(os.environ.get("CRASH_SEED") or time.time_ns() % 1000000007)
    rnd = random.Random(seed)
    d = tmp_path / "data"
    d.mkdir()
    per_file = N_LINES // N_FILES
    paths = [str(d / ("part%d.log" % f)) for f in range(N_FILES)]
    for f, p in enumerate(paths):
        with open(p, "w") as fh:
            fh.write("".join(line_text(f, n) + "\n" for n in range(per_file)))

    received = [0]
    lock = threading.Lock()

    def count(rq):
        with lock:
            received[0] += len(rq.json["Records"]) if rq.json else 0
        return None  # fall through to the default reply (200)

    fn.set_hook(count)

    def got():
        with lock:
            return received[0]

    cfg = base_config(tmp_path, {"hook": http_fn(fn.url + "/crash", timeout=10,
                                                 headers={"X-Gen": "${SLUICE_GEN}"})},
                      [file_mapping(str(d) + "/*.log", "hook", batch=BATCH,
                                   max_unsaved_batches=UNSAVED)])
    thresholds = sorted(rnd.sample(range(N_LINES // 20, N_LINES * 9 // 10), KILLS))
    kill_at = []
    ck_at_kill = []  # diagnostics only: per file, the line the checkpoint pointed at
    s = sluice(cfg, env_extra={"SLUICE_GEN": "0"})
    t0 = time.monotonic()
    for gen, th in enumerate(thresholds):
        wait_until(lambda: got() >= th, 120, "%d records received (gen %d)" % (th, gen), proc=s)
        s.kill9()
        kill_at.append(got())
        ck_at_kill.append(checkpoint_lines(tmp_path / "state"))
        s = sluice(cfg, env_extra={"SLUICE_GEN": str(gen + 1)},
                   args=["--until-idle=2"] if gen + 1 == KILLS else [])
    rc = s.wait(300)
    assert rc == 0, "final run exited %s\n%s" % (rc, s.log_tail())
    elapsed = time.monotonic() - t0

    # ---- analysis -------------------------------------------------------------------------
    reqs = fn.requests()
    assert all(r.status == 200 for r in reqs)
    first_gen = {}  # (file, n) -> generation of first delivery
    last_first = [-1] * N_FILES  # per file, line number of the latest first delivery
    dup_by_kill = [0] * KILLS
    same_gen_dups = []
    # per kill and file: how far the next run went back (lines re-sent below the highest line
    # delivered before the kill); shows which file's checkpoint lagged
    max_before = [[-1] * N_FILES for _ in range(KILLS + 1)]
    first_in_gen = [[None] * N_FILES for _ in range(KILLS + 1)]
    order_errors = []
    shape_errors = []
    for r in reqs:
        gen = int(r.header("X-Gen", "-1"))
        assert 0 <= gen <= KILLS, "bad X-Gen %r" % r.header("X-Gen")
        recs = r.records()
        # decode, check offsets and contiguity within the batch, per file
        prev = {}
        for key, seq, raw in recs:
            ln = raw.decode()
            f, n = int(ln[1:ln.index(":")]), int(ln.split(":")[1])
            if key != paths[f] or seq != n * (WIDTH + 1) or ln != line_text(f, n):
                shape_errors.append((r.index, key, seq, ln[:20]))
            if f in prev and n != prev[f] + 1:
                shape_errors.append(("not contiguous", r.index, f, prev[f], n))
            prev[f] = n
            if first_in_gen[gen][f] is None:
                first_in_gen[gen][f] = n
            for g in range(gen + 1, KILLS + 1):
                max_before[g][f] = max(max_before[g][f], n)
            k = (f, n)
            if k not in first_gen:
                first_gen[k] = gen
                if n <= last_first[f]:
                    order_errors.append((f, last_first[f], n, r.index))
                last_first[f] = n
            elif first_gen[k] == gen:
                same_gen_dups.append((f, n, gen, r.index))
            else:
                dup_by_kill[gen - 1] += 1
    lost = [(f, n) for f in range(N_FILES) for n in range(per_file) if (f, n) not in first_gen]
    total_dups = sum(dup_by_kill)
    rewind = [[(max_before[g][f] + 1 - first_in_gen[g][f]) if first_in_gen[g][f] is not None
               else None for f in range(N_FILES)] for g in range(1, KILLS + 1)]
    report = {"seed": seed, "lines": per_file * N_FILES, "files": N_FILES, "batch": BATCH,
              "thresholds": thresholds, "received_at_kill": kill_at,
              "checkpoint_lines_at_kill": ck_at_kill,
              "records_received": got(), "requests": len(reqs), "lost": len(lost),
              "duplicates_total": total_dups, "duplicates_per_kill": dup_by_kill,
              "rewind_per_kill_per_file": rewind,
              "same_run_duplicates": len(same_gen_dups), "order_errors": len(order_errors),
              "seconds": round(elapsed, 2)}
    sys.stdout.write("\ncrash test report: %s\n" % json.dumps(report))
    with open(tmp_path / "crash-report.json", "w") as f:
        json.dump(report, f)

    assert not shape_errors, "bad records (first 10): %s" % shape_errors[:10]
    assert not lost, "lost %d lines, e.g. %s (seed %d)" % (len(lost), lost[:10], seed)
    assert not order_errors, "out of order first deliveries: %s (seed %d)" % (order_errors[:10],
                                                                              seed)
    assert not same_gen_dups, "duplicates within one run: %s" % same_gen_dups[:10]
    bound = N_FILES * BATCH * (1 + UNSAVED)
    assert all(x <= bound for x in dup_by_kill), \
        "duplicates per kill %s exceed %d (files x BatchSize x (1 + max_unsaved_batches)); " \
        "seed %d" % (dup_by_kill, bound, seed)
