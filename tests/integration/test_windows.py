"""Tumbling windows (TumblingWindowInSeconds, esm.md §6) through the whole pipeline, with the
project's HTTP function server as the function: windows aligned to their length by arrival
time, the state each invocation returns handed to the next one of its window, a final
invocation with no records, the checkpoint moving only after it, and a response without
"state" counted as a failed batch."""

import json
import time

from fnserver import Reply
from helpers import (base_config, checkpoint_positions, exit_counters, file_mapping, http_fn,
                     offsets_of, run_until_idle, write_lines)

FN = "/win"


def window_config(tmp_path, fn, glob, **extra):
    m = file_mapping(glob, "hook", batch=2, TumblingWindowInSeconds=60,
                     arrival_time_field="t", **extra)
    return base_config(tmp_path, {"hook": http_fn(fn.url + FN)}, [m])


def summing_hook(rq):
    """Adds the batch's "n" fields to the state it got and returns the new state."""
    ev = rq.json or {}
    state = dict(ev.get("state") or {})
    for r in ev.get("Records", []):
        import base64
        state["sum"] = state.get("sum", 0) + json.loads(base64.b64decode(r["kinesis"]["data"]))["n"]
        state["count"] = state.get("count", 0) + 1
    return Reply(200, body={"state": state})


def test_state_carried_across_invocations_and_final_invoke(tmp_path, fn, sluice):
    d = tmp_path / "in"
    d.mkdir()
    base = int(time.time()) // 60 * 60 - 600  # ten minutes ago, on a window boundary
    lines = [json.dumps({"n": i, "t": base + (i - 1) * 15}) for i in range(1, 9)]  # 2 windows of 4
    write_lines(str(d / "a.log"), lines)
    fn.set_hook(summing_hook)
    s = run_until_idle(sluice, window_config(tmp_path, fn, str(d) + "/*.log"))
    reqs = [r for r in fn.requests(FN)]
    events = [r.json for r in reqs]
    # Window 1: [1,2], [3,4], final; window 2: [5,6], [7,8], final.
    assert [len(e["Records"]) for e in events] == [2, 2, 0, 2, 2, 0], events
    assert [e["isFinalInvokeForWindow"] for e in events] == [False, False, True] * 2
    assert all(e["isWindowTerminatedEarly"] is False for e in events)
    assert events[0]["state"] == {}
    assert events[1]["state"] == {"sum": 3, "count": 2}
    assert events[2]["state"] == {"sum": 10, "count": 4}
    assert events[3]["state"] == {}
    assert events[5]["state"] == {"sum": 26, "count": 4}
    w1 = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base))
    w1_end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base + 60))
    w2_end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base + 120))
    assert events[0]["window"] == {"start": w1, "end": w1_end}
    assert events[2]["window"] == {"start": w1, "end": w1_end}
    assert events[3]["window"] == {"start": w1_end, "end": w2_end}
    for e in events:
        assert e["shardId"] == str(d / "a.log")
        assert e["eventSourceARN"] == "file://" + str(d / "a.log")
    assert exit_counters(s)["delivered"] == 8
    # Every window closed, so the checkpoint is at the end of the file.
    assert list(checkpoint_positions(str(tmp_path / "state")).values()) == \
        [offsets_of(lines)[-1] + len(lines[-1]) + 1]


def test_missing_state_fails_the_batch(tmp_path, fn, sluice):
    d = tmp_path / "in"
    d.mkdir()
    base = int(time.time()) // 60 * 60 - 600
    write_lines(str(d / "a.log"), [json.dumps({"n": 1, "t": base})])
    calls = []

    def hook(rq):
        calls.append(rq)
        if len(calls) == 1:
            return Reply(200, body={"no": "state"})
        return summing_hook(rq)

    fn.set_hook(hook)
    run_until_idle(sluice, window_config(tmp_path, fn, str(d) + "/*.log"))
    events = [r.json for r in fn.requests(FN)]
    # The first answer had no state: the same record is sent again, with the same state.
    assert [len(e["Records"]) for e in events] == [1, 1, 0]
    assert events[0]["state"] == {} and events[1]["state"] == {}
    assert events[2]["isFinalInvokeForWindow"] is True
    assert events[2]["state"] == {"sum": 1, "count": 1}


def test_window_records_are_replayed_after_a_crash_before_the_final(tmp_path, fn, sluice):
    """The checkpoint passes a window's records only after its final invocation, so a restart
    replays an unfinished window from its start, with fresh state."""
    d = tmp_path / "in"
    d.mkdir()
    base = int(time.time()) // 60 * 60 - 600
    lines = [json.dumps({"n": i, "t": base + i}) for i in range(1, 5)]
    write_lines(str(d / "a.log"), lines)
    fails = {"final": True}

    def hook(rq):
        ev = rq.json or {}
        if ev.get("isFinalInvokeForWindow") and fails["final"]:
            return Reply(500)
        return summing_hook(rq)

    fn.set_hook(hook)
    cfg = window_config(tmp_path, fn, str(d) + "/*.log")
    s = sluice(cfg)
    from helpers import wait_until
    wait_until(lambda: sum(1 for r in fn.requests(FN)
                           if (r.json or {}).get("isFinalInvokeForWindow")) >= 2,
               what="the final invocation failing twice")
    s.kill9()
    # No window closed, so nothing of the file is checkpointed.
    assert all(pos == 0 for pos in checkpoint_positions(str(tmp_path / "state")).values())
    fails["final"] = False
    before = fn.count()
    run_until_idle(sluice, cfg)
    events = [r.json for r in fn.requests(FN)[before:]]
    assert [len(e["Records"]) for e in events] == [2, 2, 0]
    assert events[0]["state"] == {}
    assert events[2]["state"] == {"sum": 10, "count": 4}
